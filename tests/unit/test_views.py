from vlan_nats.core.control import NodeInfo
from vlan_nats.views import peers_table, table, uptime


def test_table_aligns_columns():
    out = table(("A", "LONGER"), [(1, "x"), ("wide cell", "y")])
    lines = out.splitlines()
    assert lines[0] == "A          LONGER"
    assert lines[2] == "wide cell  y"


def test_uptime():
    assert uptime(59) == "0m59s"
    assert uptime(3725) == "1h02m"
    assert uptime(90000) == "1d01h"


def test_peers_table_counts_macs_behind():
    info = NodeInfo(
        "0123abcd",
        "h",
        "vnats0",
        ["02:00:00:00:00:01", "02:00:00:00:00:02"],
        "0",
        "bridge:br0",
        "0.1.0",
        5,
        "-",
        {"tap_rx_frames": 3},
    )
    row = peers_table([info]).splitlines()[1]
    assert "02:00:00:00:00:01 (+1 behind)" in row and "bridge:br0" in row
