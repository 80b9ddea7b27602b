"""What a reload changes (core/settings.py, config.settings_of)."""

from vlan_nats import config
from vlan_nats.core.settings import LIVE, Change, diff


def test_diff_splits_live_changes_from_those_that_need_a_restart():
    old = {"storm_pps": 1000.0, "network": "7", "mtu": 1500, "servers": ("nats://a:4222",)}
    new = {"storm_pps": 500.0, "network": "8", "mtu": 1500, "servers": ("nats://b:4222",)}
    live, restart = diff(old, new)
    assert live == [Change("storm_pps", 1000.0, 500.0)]
    assert [str(c) for c in restart] == ["network 7 -> 8", "servers nats://a:4222 -> nats://b:4222"]
    assert diff(old, dict(old)) == ([], [])
    assert {"mtu", "storm_pps", "log_level"} <= LIVE and "network" not in LIVE


def test_settings_of_compares_files_by_path_and_a_mac_only_when_given(monkeypatch):
    monkeypatch.setattr(config, "read_machine_id", lambda: "0123456789abcdef0123456789abcdef")
    a = config.build(network="7", mac="random")
    b = config.build(network="7", mac="random")  # another random MAC: not a change
    assert diff(config.settings_of(a, False), config.settings_of(b, False)) == ([], [])
    c = config.build(network="7", mac="02:00:00:00:00:07")
    _, restart = diff(config.settings_of(a, False), config.settings_of(c, True))
    assert [x.name for x in restart] == ["mac"]
