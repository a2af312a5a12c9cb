"""The packages import in one direction: data_manifests <- featstore <- evaluate <- anonymize <- pipelines.

A module imports only from its own package and from packages to its left, at module level and inside functions
alike (docs/where-things-live.md). Inside anonymize, no modules import each other in a circle at module level.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ORDER = ("data_manifests", "featstore", "evaluate", "anonymize", "pipelines")
REPO = Path(__file__).resolve().parents[1]


def module_files() -> dict[str, Path]:
    """Every module of the five packages by dotted name (a package by its own name, from its __init__.py)."""
    modules = {}
    for package in ORDER:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = module_files()


def is_type_checking_block(node: ast.AST) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``): its body never runs."""
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(module: str, path: Path | None = None) -> Iterator[tuple[int, str, bool]]:
    """(line, imported module, runs when the module is imported) for each import statement of ``module``.

    ``from a import b`` names ``a.b`` when that is a module, else ``a``; relative imports are resolved.
    Imports inside a function or an ``if TYPE_CHECKING:`` block do not run when the module is imported.
    """
    path = path or MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, at_import: bool) -> Iterator[tuple[int, str, bool]]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, at_import
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield node.lineno, submodule if submodule in MODULES else base, at_import
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            at_import = False  # the body runs when the function is called
        if is_type_checking_block(node):
            children = [(child, False) for child in node.body] + [(child, at_import) for child in node.orelse]
        else:
            children = [(child, at_import) for child in ast.iter_child_nodes(node)]
        for child, runs in children:
            yield from visit(child, runs)

    yield from visit(ast.parse(path.read_text(), filename=str(path)), True)


def test_every_import_follows_the_package_order():
    against = []
    for module, path in MODULES.items():
        rank = ORDER.index(module.split(".")[0])
        for line, imported, _ in imports_of(module):
            top = imported.split(".")[0]
            if top in ORDER and ORDER.index(top) > rank:
                against.append(f"{path.relative_to(REPO)}:{line} imports {imported}")
    assert not against, "imports against " + " <- ".join(ORDER) + ":\n" + "\n".join(dict.fromkeys(against))


def test_the_walk_sees_lazy_relative_and_type_checking_imports(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("from typing import TYPE_CHECKING\n"
                      "from . import ar\n"
                      "from ..metrics import pareto_front\n"
                      "if TYPE_CHECKING:\n"
                      "    from anonymize.config import TrainConfig\n"
                      "else:\n"
                      "    import json\n"
                      "def run():\n"
                      "    import pipelines.demo\n"
                      "    from anonymize import utility\n")
    assert list(imports_of("evaluate.protocols.example", source)) == [
        (1, "typing", True),
        (2, "evaluate.protocols.ar", True),  # a module
        (3, "evaluate.metrics", True),  # a name in a module
        (5, "anonymize.config", False),
        (7, "json", True),
        (9, "pipelines.demo", False),
        (10, "anonymize.utility", False),
    ]


def test_anonymize_modules_import_each_other_without_a_cycle():
    graph = {module: sorted({imported for _, imported, runs in imports_of(module)
                             if runs and imported in MODULES and imported != module
                             and imported.startswith("anonymize")})
             for module in MODULES if module.startswith("anonymize")}
    # depth-first search; a back edge (to a module still on the path) closes a cycle
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in graph.get(module, []):
            if state.get(imported) == "open":
                cycles.append(" -> ".join(path[path.index(imported):] + [imported]))
            elif imported not in state:
                visit(imported, path + [imported])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "module-level import cycles inside anonymize:\n" + "\n".join(cycles)
