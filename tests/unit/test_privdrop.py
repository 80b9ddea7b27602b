import pytest

from vlan_nats import config, privdrop
from vlan_nats.errors import ConfigError


def test_lookup():
    nobody = privdrop.lookup("nobody")
    assert nobody.uid > 0 and nobody.name == "nobody"
    assert "cap_net_admin" in privdrop.describe(nobody)
    with pytest.raises(ConfigError, match="no such user"):
        privdrop.lookup("no-such-user-x")
    with pytest.raises(ConfigError, match="root"):
        privdrop.lookup("root")


def test_config_option():
    assert config.build(run_as="nobody", mac="random").run_as == privdrop.lookup("nobody")
    assert config.build(mac="random").run_as is None
