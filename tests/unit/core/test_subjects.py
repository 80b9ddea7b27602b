import pytest

from vlan_nats.core.subjects import SubjectScheme, go_hex_mac, validate_network, validate_prefix

MAC = bytes.fromhex("0a1b2c3d4e5f")


def test_go_hex_mac_matches_go_fmt_x_on_hardwareaddr():
    # fmt.Sprintf("%x", net.HardwareAddr{0x0a,0x1b,0x2c,0x3d,0x4e,0x5f}) in Go:
    # %x goes through HardwareAddr.String() -> "0a:1b:2c:3d:4e:5f", hex-encoded.
    assert go_hex_mac(MAC) == "30613a31623a32633a33643a34653a3566"
    assert go_hex_mac(b"\xff" * 6) == "66663a66663a66663a66663a66663a6666"
    assert len(go_hex_mac(MAC)) == 34


def test_native_scheme():
    s = SubjectScheme("vlan", "7")
    assert s.for_frame(MAC) == "vlan.7.u.0a1b2c3d4e5f"
    assert s.for_frame(b"\xff" * 6) == "vlan.7.b"
    assert s.for_frame(bytes.fromhex("3333ff000001")) == "vlan.7.m.3333ff000001"
    assert s.broadcast == "vlan.7.b"


def test_compat_scheme_is_the_go_original():
    s = SubjectScheme("vlan", "0", compat=True)
    assert s.for_frame(MAC) == "vlan.0.30613a31623a32633a33643a34653a3566"
    assert s.for_frame(b"\xff" * 6) == "vlan.0"
    # Go nodes never subscribe to multicast subjects: send multicast as broadcast.
    assert s.for_frame(bytes.fromhex("333300000001")) == "vlan.0"
    # ... but listen where Go nodes publish multicast.
    g = bytes.fromhex("333300000001")
    assert s.subscriptions(MAC, frozenset({g})) == {
        "vlan.0",
        s.unicast(MAC),
        "vlan.0." + go_hex_mac(g),
    }


def test_compat_needs_numeric_network():
    with pytest.raises(ValueError):
        SubjectScheme("vlan", "lab", compat=True)


def test_subscriptions_ignore_broadcast_and_unicast_groups():
    s = SubjectScheme("p.q", "lab")
    groups = frozenset({bytes.fromhex("333300000001"), b"\xff" * 6, bytes.fromhex("020000000001")})
    assert s.subscriptions(MAC, groups) == {
        "p.q.lab.u.0a1b2c3d4e5f",
        "p.q.lab.b",
        "p.q.lab.m.333300000001",
    }


def test_cache_is_bounded():
    s = SubjectScheme("vlan", "0")
    for i in range(5000):
        s.for_frame(i.to_bytes(6, "big"))
    assert len(s._cache) <= 4096


@pytest.mark.parametrize("good", ["0", "4095", "lab", "a-b_c", "007"])
def test_networks(good):
    validate_network(good)


@pytest.mark.parametrize("bad", ["4096", "", "a.b", "a b", "*", ">", "x" * 65])
def test_bad_networks(bad):
    with pytest.raises(ValueError):
        validate_network(bad)


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a.*", "a.>", "a b"])
def test_bad_prefixes(bad):
    with pytest.raises(ValueError):
        validate_prefix(bad)
