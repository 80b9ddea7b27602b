import pytest

from vlan_nats.core.mac import (
    format_mac,
    is_multicast,
    is_unicast_assignable,
    parse_mac,
    random_mac,
    stable_mac,
)


@pytest.mark.parametrize(
    "text, raw",
    [
        ("02:00:5e:10:00:01", bytes.fromhex("02005e100001")),
        ("02-00-5E-10-00-01", bytes.fromhex("02005e100001")),
        ("02005e100001", bytes.fromhex("02005e100001")),
    ],
)
def test_parse(text, raw):
    assert parse_mac(text) == raw


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "zz:00:00:00:00:00",
        "02:00:5e:10:00",
        "02:00-5e:10:00:01",
        "02:00:5e:10:00:01:02",
        "2:0:5e:10:0:1",
    ],
)
def test_parse_rejects(bad):
    with pytest.raises(ValueError):
        parse_mac(bad)


def test_format():
    assert format_mac(bytes.fromhex("0a0b0c0d0e0f")) == "0a:0b:0c:0d:0e:0f"


def test_stable_mac_is_local_unicast_and_stable():
    mid = "0123456789abcdef0123456789abcdef"
    a = stable_mac(mid, "0", "vnats0")
    assert a == stable_mac(mid + "\n", "0", "vnats0")
    assert a[0] & 0x02 and not a[0] & 0x01
    assert a != stable_mac(mid, "1", "vnats0")
    assert a != stable_mac(mid, "0", "other0")  # two daemons of one network on a host
    assert a != stable_mac("fedcba9876543210fedcba9876543210", "0", "vnats0")
    assert is_unicast_assignable(a)


def test_random_mac():
    m = random_mac(b"\xff" * 6)
    assert m == b"\xfe" + b"\xff" * 5
    assert is_unicast_assignable(m)
    with pytest.raises(ValueError):
        random_mac(b"\x00")


def test_group_bits():
    assert is_multicast(b"\x01\x00\x5e\x00\x00\x01")
    assert is_multicast(b"\xff" * 6)
    assert not is_unicast_assignable(b"\x00" * 6)
    assert not is_unicast_assignable(b"\x33\x33\x00\x00\x00\x01")
