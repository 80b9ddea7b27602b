"""What the daemon says when the device, its namespace or its bridge change."""

import asyncio
import errno
import logging
from types import SimpleNamespace

from vlan_nats.aio import linkfollow
from vlan_nats.aio.linkfollow import LinkFollower
from vlan_nats.control import netns
from vlan_nats.control.link import LinkState
from vlan_nats.errors import LinkError, NetnsError, TapError

STATE = LinkState(index=5, name="vnats7", mac=b"\x02" * 6, mtu=1500, up=True)


class FakeCtl:
    async def name_of(self, index):
        return {9: "br0"}.get(index, f"#{index}")


def follower(tmp_path, monkeypatch, ns="h1", bridge=None):
    monkeypatch.setattr(netns, "NETNS_DIR", str(tmp_path))
    if ns:
        (tmp_path / ns).touch()
    cfg = SimpleNamespace(netns=ns, dev="vnats7", bridge=bridge)
    dev = SimpleNamespace(ctl=FakeCtl(), index=5, state=STATE, addresses=())
    failed = []
    return LinkFollower(cfg, dev, None, None, failed.append), failed


def test_a_deleted_device_and_a_deleted_namespace_are_told_apart(tmp_path, monkeypatch):
    f, failed = follower(tmp_path, monkeypatch)
    f.tap_failed(TapError(errno.EBADFD, "read: File descriptor in bad state"))
    assert isinstance(failed[-1], LinkError) and failed[-1].strerror == "device vnats7 was deleted"
    (tmp_path / "h1").unlink()  # ip netns del h1
    f.tap_failed(TapError(errno.EBADFD, "read: File descriptor in bad state"))
    assert isinstance(failed[-1], NetnsError) and failed[-1].strerror == "namespace h1 was deleted"


def test_other_tap_errors_pass_through(tmp_path, monkeypatch):
    f, failed = follower(tmp_path, monkeypatch)
    err = TapError(errno.ENOMEM, "read: out of memory")
    f.tap_failed(err)
    assert failed == [err]


def test_enslaving_without_bridge_mode_is_warned_once(tmp_path, monkeypatch, caplog):
    f, _ = follower(tmp_path, monkeypatch, ns=None)
    port = LinkState(index=5, name="vnats7", mac=b"\x02" * 6, mtu=1500, up=True, master=9)

    async def body():
        await f._check_bridge_port(port)
        await f._check_bridge_port(port)
        assert f.foreign_master == "br0"
        await f._check_bridge_port(STATE)

    with caplog.at_level(logging.INFO, logger=linkfollow.__name__):
        asyncio.run(body())
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "--bridge br0" in warned[0].getMessage()
    assert f.foreign_master is None and "left bridge br0" in caplog.records[-1].getMessage()
