"""The network's definition: which settings, their checks, the stored
format, and what a node runs (netdef.py).  No server."""

import pytest

from vlan_nats import netdef
from vlan_nats.errors import ConfigError

OWN = {"mtu": 1500, "storm_pps": 1000.0, "arp_routing": True, "mac_ageing": 300.0,
       "max_macs": 4096}  # fmt: skip


def test_the_settings_come_from_the_option_table():
    assert set(netdef.network_options()) == {
        "mtu", "storm_pps", "arp_routing", "mac_ageing", "max_macs", "pool", "range",
        "exclude", "lease", "sealed", "description",
    }  # fmt: skip
    assert netdef.node_keys() == ["mtu", "mac_ageing", "max_macs", "storm_pps", "arp_routing"]


@pytest.mark.parametrize(
    "text, value",
    [("9000", 9000), ("true", True), ("2.5", 2.5), ('["a", "b"]', ["a", "b"]),
     ("198.18.7.0/24", "198.18.7.0/24"), ('"lab LAN"', "lab LAN"), ("lab LAN", "lab LAN")],
)  # fmt: skip
def test_values_read_as_toml_or_text(text, value):
    assert netdef.parse_value(text) == value


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("frobs", 1, "unknown network setting 'frobs'"),
        ("mtu", 99999, "bad mtu 99999: must be 68-65535"),
        ("mtu", True, "bad mtu true: expected a number"),
        ("mtu", "9000", "expected a number"),
        ("arp_routing", 1, "expected true or false"),
        ("storm_pps", float("nan"), "not a number"),
        ("pool", "198.18.7.5/24", "host bits set"),
        ("description", "x" * 600, "longer than 512"),
    ],
)
def test_bad_values_are_refused_with_one_line(key, value, fragment):
    with pytest.raises(ConfigError) as e:
        netdef.check(key, value)
    assert fragment in str(e.value)


def test_good_values_take_the_options_types():
    assert netdef.check("storm_pps", 500) == 500.0
    assert netdef.check("exclude", "198.18.7.1") == ["198.18.7.1"]
    with pytest.raises(ConfigError, match="need a pool"):
        netdef.check_all({"range": "198.18.7.1-198.18.7.9"})


def test_stored_format_round_trips_and_refuses_what_it_cannot_read():
    d = netdef.Definition().changed({"mtu": 9000, "pool": "198.18.7.0/24"})
    back = netdef.decode(d.encode(), 7)
    assert back.settings == {"mtu": 9000, "pool": "198.18.7.0/24"} and back.revision == 7
    assert back.changed_by and back.changed_at > 0
    for bad, fragment in ((b"{", "not JSON"), (b"[]", "not a definition"),
                          (b'{"settings": {"mtu": "huge"}}', "bad mtu 'huge'")):  # fmt: skip
        with pytest.raises(ConfigError) as e:
            netdef.decode(bad)
        assert fragment in str(e.value)


def test_a_node_runs_the_networks_values_unless_given_its_own():
    values, overrides = netdef.effective(OWN, frozenset(), {"mtu": 9000, "storm_pps": 200.0})
    assert values["mtu"] == 9000 and values["storm_pps"] == 200.0 and overrides == []
    values, overrides = netdef.effective(OWN, frozenset({"mtu"}), {"mtu": 9000})
    assert values["mtu"] == 1500
    assert overrides == ["local --mtu 1500 overrides the network's 9000"]
    # The same value given explicitly is no override.
    assert netdef.effective(OWN, frozenset({"mtu"}), {"mtu": 1500})[1] == []
    # Settings a node does not run itself (the pool) change nothing here.
    assert netdef.effective(OWN, frozenset(), {"pool": "198.18.7.0/24"})[0] == OWN
