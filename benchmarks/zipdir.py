"""Zip a directory the way people zip a ``pip install --target`` tree into a layer.

``python -m benchmarks.zipdir SRC OUT.zip`` writes every file under *SRC* (paths
relative to *SRC*, sorted) with :mod:`zipfile` and deflate at its default level.
"""

from __future__ import annotations

import os
import sys
import zipfile

__all__ = ["zip_dir"]


def zip_dir(src: str, out: str) -> int:
    count = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                zf.write(path, os.path.relpath(path, src))
                count += 1
    return count


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m benchmarks.zipdir SRC OUT.zip")
    zip_dir(sys.argv[1], sys.argv[2])
