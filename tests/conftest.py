"""Shared test set-up.

Sockets are blocked for every test except those to loopback (moto's server,
the local index of the benchmarks); tests marked ``live`` may use the network.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = str(address[0])
    return host in ("localhost", "::1") or host.startswith("127.")


def _guarded(real: Any) -> Any:
    def connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise RuntimeError(
                f"test tried to reach {address!r}: tests are offline; "
                "mark it @pytest.mark.live if it really needs the network"
            )
        return real(self, address)

    return connect


@pytest.fixture(autouse=True)
def _block_network(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    if request.node.get_closest_marker("live") is None:
        monkeypatch.setattr(socket.socket, "connect", _guarded(_real_connect))
        monkeypatch.setattr(socket.socket, "connect_ex", _guarded(_real_connect_ex))
    yield


@pytest.fixture
def fake_index() -> Iterator[Any]:
    """A ``responses.RequestsMock`` serving the recorded fixtures as the index
    ``https://index.test/pypi`` (and ``/simple``) with files on ``https://files.test``.

    See ``tests/fakeindex.py``; call ``fakeindex.serve`` yourself for the knobs.
    """
    import responses
    from fakeindex import serve

    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        serve(rsps)
        yield rsps
