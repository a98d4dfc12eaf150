"""Against the live index (off by default: ``pytest -m live``)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from layerbuilder.build import build_layer

pytestmark = pytest.mark.live


def test_numpy_layer_for_python311_imports_and_computes(tmp_path: Path) -> None:
    pythons = sorted(Path("/root/.pyenv/versions").glob("3.11.*/bin/python3.11"))
    if not pythons:
        pytest.skip("no CPython 3.11 here")
    result = build_layer(["numpy"], "python3.11", "x86_64", tmp_path / "numpy.zip")
    [numpy] = result.wheels
    # numpy 2.3 and later ship x86_64 wheels for glibc 2.28 only; AL2 has 2.26
    assert "manylinux_2_28" not in numpy.file.filename or "manylinux_2_17" in numpy.file.filename
    with zipfile.ZipFile(result.path) as zf:
        assert all(n.startswith("python/lib/python3.11/site-packages/") for n in zf.namelist())
        zf.extractall(tmp_path / "opt")
    site = tmp_path / "opt" / "python/lib/python3.11/site-packages"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import numpy as np;"
        "a = np.arange(12.0).reshape(3, 4); print(np.__version__, (a @ a.T).trace(),"
        " round(float(np.linalg.det(np.eye(3) * 2)), 6), np.__file__.startswith(sys.argv[1]))"
    )
    out = subprocess.run(
        [str(pythons[-1]), "-I", "-c", code, str(site)], capture_output=True, text=True, check=True
    )
    version, trace, det, inside = out.stdout.split()
    assert version == numpy.version
    assert (trace, det, inside) == ("506.0", "8.0", "True")
