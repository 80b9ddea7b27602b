"""MTU mismatches are said on both sides (aio/mtucheck.py): the receiver
names the sender of frames above its MTU and tells it; a node started with
another MTU than its neighbours' says so at start."""

import pytest

from vlan_nats.lab.checks import wait_until

from .conftest import require_root


def kinds(node):
    return {p["kind"]: p for p in node.status()["mtu_problems"]}


def test_big_frames_dropped_by_a_smaller_mtu_are_named_on_both_sides(lab2):
    h1, h2 = lab2.nodes
    h2.ns.run("ip", "link", "set", "dev", h2.dev, "mtu", "9000")
    # DF set: 8972 bytes of ICMP fit h2's 9000, not h1's 1500.
    h2.ns.run("ping", "-c", "3", "-i", "0.2", "-W", "1", "-M", "do", "-s", "8972", h1.ip,
              check=False)  # fmt: skip
    named = lambda: h2.dev in kinds(h1).get("too_big_from", {}).get("node", "")  # noqa: E731
    assert wait_until(named, 5), h1.lines[-5:]
    mine = kinds(h1)["too_big_from"]
    assert h2.dev in mine["node"] and h2.mac() in mine["node"] and mine["mtu"] == 1500
    line = next(x for x in h1.lines if "frames above our MTU dropped" in x)
    assert "from=" in line and h2.dev in line and "mtu=1500" in line, line
    # The sender is told, and says so too.
    assert wait_until(lambda: "too_big_for" in kinds(h2), 5), h2.lines[-5:]
    theirs = kinds(h2)["too_big_for"]
    assert h1.dev in theirs["node"] and theirs["mtu"] == 1500, theirs
    assert any("exceed another node's MTU" in x and h1.dev in x for x in h2.lines)
    # Its MTU changed: compared with the others' again, once they had time to follow.
    assert wait_until(lambda: "differs" in kinds(h2), 5), kinds(h2)


def test_a_node_started_with_another_mtu_says_so_at_start(lab2):
    require_root()
    h3 = lab2.add_node(3, extra=["--mtu", "9000"])
    try:
        differs = kinds(h3).get("differs")
        assert differs and differs["mtu"] == 1500, h3.status()["mtu_problems"]
        assert all(n.dev in differs["node"] for n in lab2.nodes[:2]), differs
        assert any("mtu 9000 differs from other nodes'" in x for x in h3.lines), h3.lines[-5:]
    finally:
        h3.stop()


@pytest.fixture(autouse=True)
def _root():
    require_root()
