"""The local status socket: one JSON document per connection."""

import asyncio

import pytest

from vlan_nats.aio import statussock
from vlan_nats.core.status import Status
from vlan_nats.errors import ControlError


def test_serve_and_read_all(tmp_path):
    a = statussock.socket_path("vnats7", "h2", tmp_path)
    b = statussock.socket_path("vnats7", "h1", tmp_path)
    stale = statussock.socket_path("gone0", None, tmp_path)

    async def body():
        servers = [
            await statussock.serve(a, lambda: Status(dev="vnats7", netns="h2").to_json()),
            await statussock.serve(b, lambda: Status(dev="vnats7", netns="h1").to_json()),
        ]
        stale.touch()  # a socket file nobody answers (a killed daemon)
        got = await asyncio.to_thread(statussock.read_all, None, tmp_path)
        one = await asyncio.to_thread(statussock.read_all, "vnats7", tmp_path)
        for s in servers:
            s.close()
        return got, one

    got, one = asyncio.run(body())
    assert [st.key for st in got] == [("h1", "vnats7"), ("h2", "vnats7")]  # stable order
    assert len(one) == 2 and oct(a.stat().st_mode & 0o777) == "0o700"


def test_sockets_only_root_may_read_are_explained(tmp_path, monkeypatch):
    statussock.socket_path("vnats0", None, tmp_path).touch()

    def refuse(path, timeout=3.0):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(statussock, "read", refuse)
    with pytest.raises(ControlError) as e:
        statussock.read_all(None, tmp_path)
    assert str(tmp_path) in str(e.value) and "sudo" in str(e.value)
