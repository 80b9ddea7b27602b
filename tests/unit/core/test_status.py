"""The typed Status: one JSON encoding, read tolerantly, problems in words."""

from vlan_nats.core.status import FORMAT, Status
from vlan_nats.views import problems_lines, status_table


def test_json_round_trip_and_format():
    st = Status(dev="vnats7", netns="h1", connected=True, counters={"drops": {"storm": 2}})
    doc = st.to_json()
    assert doc["format"] == FORMAT and doc["dev"] == "vnats7"
    assert Status.from_json(doc) == st
    assert st.key == ("h1", "vnats7") and st.drops == 2


def test_other_versions_read_tolerantly():
    # An older daemon's document (no nats_error, no format) and a newer one's
    # (a field we do not know) both read.
    old = Status.from_json({"dev": "vnats0", "connected": False, "counters": {}})
    assert old.nats_error is None and old.format == FORMAT
    new = Status.from_json({"dev": "vnats0", "connected": True, "from_the_future": 1})
    assert new.connected


def test_problems_in_words():
    ok = Status(dev="a", connected=True)
    assert ok.problems() == []
    bad = Status(
        dev="vnats7",
        netns="h2",
        connected=False,
        nats_error="authorization violation",
        duplicate_mac={
            "mac": "02:5e:00:00:00:42",
            "frames": 3,
            "last_seen_s_ago": 1.5,
            "others": [{"node_id": "3f2a9c1d", "hostname": "vm", "netns": "h3", "dev": "vnats7"}],
        },
        foreign_bridge="br0",
    )
    lines = problems_lines([ok, bad])
    assert lines == [
        "h2/vnats7: not connected to NATS (authorization violation)",
        "h2/vnats7: duplicate MAC 02:5e:00:00:00:42: also used by vm/h3/vnats7 (3f2a9c1d), "
        "3 frames, last 1.5 s ago",
        "h2/vnats7: a port of bridge br0 without --bridge: hosts behind it are unreachable",
    ]
    assert "disconnected (authorization violation)" in status_table([bad])
