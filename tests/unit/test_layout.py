"""The house rule: sweedle_core runs without Ray or an HTTP framework."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "sweedle_core"
BANNED = {"ray", "fastapi", "starlette"}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def test_sweedle_core_imports_neither_ray_nor_fastapi():
    offenders = {
        str(path.relative_to(CORE)): sorted(imported_roots(path) & BANNED)
        for path in CORE.rglob("*.py")
        if imported_roots(path) & BANNED
    }
    assert offenders == {}
