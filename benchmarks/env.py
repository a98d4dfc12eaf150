"""The benchmark's own virtual environment and the clean environments tools run in.

``benchmarks/.cache/venv`` holds the latest pip, uv (both from the package index, as a
user would get them), matplotlib for the plot, and layerbuilder installed editable from
this work tree.  The harness re-executes itself in that venv, so nothing here needs
to be installed by hand and nothing is added to layerbuilder's own dependencies.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from . import CACHE, REPO

__all__ = [
    "VENV",
    "bench_python",
    "ensure_venv",
    "in_venv",
    "reference_env",
    "tool_paths",
]

VENV = CACHE / "venv"
TOOLS = ("pip", "uv", "matplotlib")
_STAMP = VENV / ".benchmarks-stamp"


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


def _stamp() -> str:
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    digest.update(" ".join(TOOLS).encode())
    return digest.hexdigest()


def ensure_venv(python: str | None = None, *, upgrade: bool = False) -> Path:
    """Create or refresh the venv; return its interpreter."""
    py = bench_python()
    if not py.exists():
        print(f"benchmarks: creating {VENV}", file=sys.stderr)
        subprocess.check_call([python or sys.executable, "-m", "venv", str(VENV)])
        upgrade = True
    if upgrade or not _STAMP.exists() or _STAMP.read_text() != _stamp():
        print("benchmarks: installing pip, uv, matplotlib and layerbuilder", file=sys.stderr)
        env = reference_env()
        pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for args in (["-U", *TOOLS], ["-e", str(REPO)]):
            done = subprocess.run([*pip, *args], env=env, capture_output=True, text=True)
            if done.returncode != 0:
                sys.stderr.write(done.stdout + done.stderr)
                raise SystemExit(f"benchmarks: could not install {' '.join(args)}")
        _STAMP.write_text(_stamp())
    return py


def tool_paths() -> dict[str, Path]:
    bindir = VENV / "bin"
    return {
        "python": bindir / "python",
        "uv": bindir / "uv",
        "layerbuilder": bindir / "layerbuilder",
    }
