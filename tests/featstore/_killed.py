"""Running a writer in a fresh process that dies by SIGKILL (as ``kill -9``) at a chosen step."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRELUDE = """
import os, signal

def kill_here(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def run_until_killed(code: str) -> None:
    """Run ``code`` (which calls ``kill_here()`` mid-way) in a new Python process; assert it was killed."""
    done = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
