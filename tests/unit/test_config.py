import pytest

from vlan_nats import config
from vlan_nats.errors import ConfigError


@pytest.fixture(autouse=True)
def machine_id(monkeypatch):
    monkeypatch.setattr(config, "read_machine_id", lambda: "0123456789abcdef0123456789abcdef")


def test_defaults():
    c = config.build()
    assert c.servers == ("nats://127.0.0.1:4222",)
    assert c.network == "0" and c.dev == "vnats0" and c.mtu == 1500 and c.up
    assert c.mac == config.build().mac  # stable
    assert c.mac[0] & 0x02 and not c.mac[0] & 0x01


def test_dev_follows_network():
    assert config.build(network="42").dev == "vnats42"
    assert config.build(network="007").network == "7"


def test_mac_options():
    assert config.build(mac="02:00:00:00:00:05").mac == bytes.fromhex("020000000005")
    r1, r2 = config.build(mac="random").mac, config.build(mac="random").mac
    assert r1 != r2 and r1[0] & 0x02
    assert config.build(network="1").mac != config.build(network="2").mac
    assert config.build(dev="a0").mac != config.build(dev="b0").mac
    assert config.build(dev="a0").mac == config.build(dev="a0").mac


@pytest.mark.parametrize(
    "kw, fragment",
    [
        ({"mac": "01:00:00:00:00:01"}, "--mac"),
        ({"mac": "00:00:00:00:00:00"}, "--mac"),
        ({"mac": "nonsense"}, "--mac"),
        ({"network": "4096"}, "network"),
        ({"network": "a.b"}, "network"),
        ({"servers": ["http://x:1"]}, "--server"),
        ({"servers": ["nats://:4222"]}, "--server"),
        ({"servers": ["nats://h:99999"]}, "--server"),
        ({"mtu": 67}, "--mtu"),
        ({"mtu": 70000}, "--mtu"),
        ({"addresses": ["198.18.0.1"]}, "--address"),
        ({"addresses": ["198.18.0.300/24"]}, "--address"),
        ({"dev": "x" * 16}, "--dev"),
        ({"dev": "a/b"}, "--dev"),
        ({"network": "a-very-long-network-name"}, "--dev"),
        ({"netns": "../x"}, "--netns"),
        ({"subject_prefix": "a.*"}, "prefix"),
        ({"compat": True, "network": "lab"}, "--compat"),
        ({"log_level": "loud"}, "--log-level"),
    ],
)
def test_rejects(kw, fragment):
    with pytest.raises(ConfigError) as e:
        config.build(**kw)
    assert fragment in str(e.value)


def test_server_without_scheme_and_several():
    c = config.build(servers=["198.18.0.1:4222", "tls://198.18.0.2:4443"])
    assert c.servers == ("nats://198.18.0.1:4222", "tls://198.18.0.2:4443")


def test_no_machine_id(monkeypatch, tmp_path):
    monkeypatch.undo()
    monkeypatch.setattr(config, "MACHINE_ID_FILES", (str(tmp_path / "none"),))
    with pytest.raises(ConfigError, match="machine-id"):
        config.build()
    assert config.build(mac="random").mac
