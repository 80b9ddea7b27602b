"""The counters and the C datapath's counter layout (core/counters.py)."""

from vlan_nats.core.counters import DATAPATH_COUNTERS, Counters


def test_the_datapath_counters_are_counters_fields():
    """csrc/build_datapath.py turns DATAPATH_COUNTERS into the C enum, and
    cdatapath.read_counters copies each into the Counters field it names."""
    snap = Counters().snapshot()
    for name in DATAPATH_COUNTERS:
        field, _, kind = name.partition(".")
        assert name == "events_lost" or field in snap, name
        if kind:
            assert kind in snap[field], name  # type: ignore[operator]
    assert len(set(DATAPATH_COUNTERS)) == len(DATAPATH_COUNTERS)
