"""One owner for the store layout: code names a store array by its constant in ``featstore.store.layout``
(``CLIP_TIMES``), never by a string literal ("clips/times"), so the layout can change in one place."""

import ast
from pathlib import Path

import pytest

from featstore.store import REQUIRED_ARRAYS

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("data_manifests", "featstore", "evaluate", "anonymize", "pipelines")
LAYOUT = Path("featstore/store/layout.py")  # the one module that spells the names
MODULES = sorted(str(path.relative_to(REPO)) for package in PACKAGES for path in (REPO / package).rglob("*.py")
                 if path.relative_to(REPO) != LAYOUT)
GROUPS = {name.split("/")[0] for name in REQUIRED_ARRAYS}  # clips, static, videos
# Pieces of an f-string that build an array name: f"videos/{column}", f"{kind}/embeddings"
NAME_PIECES = {f"{group}/" for group in GROUPS} | {"/" + name.split("/", 1)[1] for name in REQUIRED_ARRAYS}


def _docstrings(tree: ast.Module) -> set[int]:
    owners = [node for node in ast.walk(tree)
              if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))]
    return {id(node.body[0].value) for node in owners
            if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}


def array_name_literals(source: str) -> list[str]:
    """The lines that write a store array's name as a literal (docstrings may name arrays)."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            pieces = [part.value for part in node.values if isinstance(part, ast.Constant)]
            found += [f"line {node.lineno}: f-string piece {piece!r}" for piece in pieces if piece in NAME_PIECES]
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in REQUIRED_ARRAYS
              and id(node) not in docstrings):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_the_scan_finds_literal_names_and_spares_docstrings():
    source = '''
def rows(store, kind, column):
    """Reads clips/times."""
    return store.array("clips/times"), store.group[f"{kind}/embeddings"], store.array(f"videos/{column}")
'''
    assert array_name_literals(source) == ["line 4: 'clips/times'", "line 4: f-string piece '/embeddings'",
                                           "line 4: f-string piece 'videos/'"]
    assert array_name_literals('error = f"{name} has {n} rows"; label = "videos"') == []


@pytest.mark.parametrize("module", MODULES)
def test_every_module_names_arrays_by_their_constants(module):
    assert array_name_literals((REPO / module).read_text()) == [], (
        f"{module} writes a store array name as a literal: use the constant of featstore.store.layout")
