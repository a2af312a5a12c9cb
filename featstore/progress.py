"""The extraction progress display: videos, videos/s, clips/s, share of time in the encoder forward, ETA."""

from __future__ import annotations

import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class ExtractProgress:
    """A rich progress bar when enabled; counting still happens when disabled (for summaries)."""

    def __init__(self, total_videos: int, enabled: bool = True):
        self.total = total_videos
        self.enabled = enabled and total_videos > 0
        self.videos = self.failed = self.clips = 0
        self._started = time.perf_counter()
        self._progress = Progress(
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TextColumn("videos {task.fields[rates]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(compact=True),
            disable=not self.enabled,
        )
        self._task = None

    def __enter__(self) -> ExtractProgress:
        self._progress.start()
        self._task = self._progress.add_task("extract", total=self.total, rates="")
        return self

    def __exit__(self, *exc_info) -> None:
        self._progress.stop()

    def video_done(self, n_clips: int, forward_seconds: float, failed: bool = False) -> None:
        """One more video finished; ``forward_seconds`` is the encoder's total time so far."""
        self.videos += 1
        self.failed += int(failed)
        self.clips += n_clips
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        rates = f"{self.videos / elapsed:.1f}/s {self.clips / elapsed:.0f} clips/s fwd {forward_seconds / elapsed:.0%}"
        if self.failed:
            rates += f"  [red]{self.failed} failed"
        self._progress.update(self._task, advance=1, rates=rates)
