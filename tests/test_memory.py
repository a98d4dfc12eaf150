"""The entry points' malloc setting (layerbuilder.memory)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from layerbuilder.memory import limit_malloc_arenas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_arenas_are_limited_in_a_fresh_process_unless_the_user_chose() -> None:
    code = "from layerbuilder.memory import limit_malloc_arenas as f; print(f())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr
    env = {"MALLOC_ARENA_MAX": "4", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.stdout.strip() == "False", done.stderr


def test_elsewhere_it_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert limit_malloc_arenas() is False
