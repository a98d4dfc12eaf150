"""The benchmark's own virtual environment and the clean environments tools run in.

``benchmarks/.cache/venv`` holds the latest pip, uv (both from the package index, as a
user would get them), matplotlib for the plot, and layerbuilder pip-installed (not
editable, as a user installs it) from ``benchmarks/.cache/src``, a snapshot of the
commit being measured (or of the work tree).  The harness re-executes itself in that
venv, so nothing here needs to be installed by hand and nothing is added to
layerbuilder's own dependencies.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import CACHE, REPO

__all__ = [
    "VENV",
    "bench_python",
    "ensure_venv",
    "in_venv",
    "install_snapshot",
    "reference_env",
    "snapshot",
    "source_label",
    "tool_paths",
]

VENV = CACHE / "venv"
# The layerbuilder being measured: a snapshot of a commit (or of the work tree), so that
# a run measures one known state of the code, not files others are editing meanwhile.
SRC = CACHE / "src"
TOOLS = ("pip", "uv", "matplotlib", "setuptools")
_STAMP = VENV / ".benchmarks-stamp"
_INSTALLED = VENV / ".layerbuilder-installed"
_SNAPSHOT_PATHS = ("layerbuilder", "pyproject.toml", "README.md", "LICENSE")


def bench_python() -> Path:
    return VENV / "bin" / "python"


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def reference_env(**extra: str) -> dict[str, str]:
    """The environment every measured tool runs in: no pip or uv configuration from the
    machine (``PIP_CONFIG_FILE=/dev/null``, no ``PIP_*``/``UV_*`` variables,
    ``UV_NO_CONFIG=1``), no layerbuilder settings, no Python downloads by uv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "LAYERBUILDER_", "VIRTUAL_ENV", "PYTHON"))
    }
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        UV_NO_CONFIG="1",
        UV_PYTHON_DOWNLOADS="never",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def snapshot(rev: str | None = "HEAD") -> str:
    """Copy layerbuilder's sources at *rev* (``None``: the work tree as it is now) to
    ``.cache/src``, which :func:`install_snapshot` installs; return what was taken
    (``<short sha>`` or ``<short sha>+worktree``)."""
    new = CACHE / "src.new"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    head = _git("rev-parse", "--short", "HEAD")
    if rev is None:
        for name in _SNAPSHOT_PATHS:
            src = REPO / name
            if src.is_dir():
                shutil.copytree(src, new / name, ignore=shutil.ignore_patterns("__pycache__"))
            elif src.exists():
                shutil.copy2(src, new / name)
        label = head + "+worktree"
    else:
        present = set(_git("ls-tree", "--name-only", rev).split())
        paths = [p for p in _SNAPSHOT_PATHS if p in present]
        archive = subprocess.run(
            ["git", "archive", "--format=tar", rev, *paths],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(new)], input=archive, check=True)
        label = _git("rev-parse", "--short", rev)
    (new / ".source").write_text(label)
    shutil.rmtree(SRC, ignore_errors=True)
    new.rename(SRC)
    return label


def source_label() -> str:
    try:
        return (SRC / ".source").read_text().strip()
    except OSError:
        return "unknown"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def _stamp() -> str:
    digest = hashlib.sha256((SRC / "pyproject.toml").read_bytes())
    digest.update(" ".join(TOOLS).encode())
    digest.update(str(SRC).encode())
    return digest.hexdigest()


def ensure_venv(python: str | None = None, *, upgrade: bool = False) -> Path:
    """Create or refresh the venv; return its interpreter."""
    if not (SRC / "pyproject.toml").exists():
        snapshot()
    py = bench_python()
    if not py.exists():
        print(f"benchmarks: creating {VENV}", file=sys.stderr)
        subprocess.check_call([python or sys.executable, "-m", "venv", str(VENV)])
        upgrade = True
    if upgrade or not _STAMP.exists() or _STAMP.read_text() != _stamp():
        print("benchmarks: installing " + ", ".join(TOOLS), file=sys.stderr)
        _pip(py, "-U", *TOOLS)
        _STAMP.write_text(_stamp())
    install_snapshot(py)
    return py


def _pip(python: Path, *args: str) -> None:
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, *args], env=reference_env(), capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"benchmarks: could not install {' '.join(args)}")


def _snapshot_digest() -> str:
    digest = hashlib.sha256()
    for name in _SNAPSHOT_PATHS:  # not build/ or *.egg-info, which installing writes
        top = SRC / name
        for path in sorted([top, *top.rglob("*")] if top.is_dir() else [top]):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(SRC)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def install_snapshot(python: Path) -> None:
    """Install the snapshot as a user gets layerbuilder: ``pip install``, not
    editable.  pip byte-compiles what it installs (the tools run with
    ``PYTHONDONTWRITEBYTECODE=1``, so an editable snapshot recompiled its modules on
    every run, ~0.1 s), and no editable finder sits on the import path (~0.02 s).
    Reinstalled only when the snapshot's files change."""
    want = _snapshot_digest()
    if _INSTALLED.exists() and _INSTALLED.read_text() == want:
        return
    print("benchmarks: installing the snapshot of layerbuilder", file=sys.stderr)
    _INSTALLED.unlink(missing_ok=True)
    # dependencies first (new ones appear), then the package itself afresh
    _pip(python, "--no-build-isolation", str(SRC))
    _pip(python, "--no-build-isolation", "--no-deps", "--force-reinstall", str(SRC))
    _INSTALLED.write_text(want)


def tool_paths() -> dict[str, Path]:
    bindir = VENV / "bin"
    return {
        "python": bindir / "python",
        "uv": bindir / "uv",
        "layerbuilder": bindir / "layerbuilder",
    }
