"""The code stays `ruff check`, `ruff format --check` and `mypy --strict` clean."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the `test` extra)")
    return found


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=str)
def test_ruff(args: list[str]) -> None:
    out = subprocess.run([_tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow
def test_mypy_strict() -> None:
    pytest.importorskip("mypy", reason="mypy is in the `test` extra")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "layerbuilder"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _type_unions(tree: ast.Module) -> list[int]:
    """Lines where a module- or class-level name is bound to ``A | B`` of names:
    a union of types evaluated when the module loads, which Python 3.9 (the oldest
    the package supports) cannot do.  Flag constants (``FLAG_A | FLAG_B``) and
    numbers are left alone."""

    def typeish(node: ast.expr) -> bool:
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return typeish(node.left) and typeish(node.right)
        if isinstance(node, ast.Constant):
            return node.value is None
        if isinstance(node, ast.Subscript):
            return typeish(node.value)
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", "")
        return bool(name) and not name.isupper() and (name[0].isupper() or name in _BUILTINS)

    lines = []
    bodies = [tree.body] + [n.body for n in tree.body if isinstance(n, ast.ClassDef)]
    for stmt in (s for body in bodies for s in body):
        value = stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.BinOp) and isinstance(value.op, ast.BitOr) and typeish(value):
            lines.append(stmt.lineno)
    return lines


_BUILTINS = {"int", "str", "bytes", "float", "bool", "list", "dict", "tuple", "set", "frozenset"}


def test_no_runtime_type_unions_that_python_3_9_cannot_evaluate() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "layerbuilder").glob("*.py"))
        if (lines := _type_unions(ast.parse(path.read_text(), str(path))))
    }
    assert found == {}, f"use typing.Union/Optional for these aliases: {found}"


def test_the_union_check_finds_what_python_3_9_rejects() -> None:
    src = "Scanned = ElfInfo | ElfError | None\nMASK = A_FLAG | B_FLAG\nn = 0x1 | 0x20\n"
    src += "Alias = Union[A, B]\nclass C:\n    Kind = int | str\n"
    assert _type_unions(ast.parse(src)) == [1, 6]
