import base64
import os
import stat

import pytest

from vlan_nats import config, keys
from vlan_nats.errors import ConfigError


def test_genkey_writes_32_private_bytes(tmp_path):
    p = tmp_path / "k"
    key = keys.write_new_key(str(p))
    assert p.read_bytes() == key and len(key) == 32
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    with pytest.raises(ConfigError, match="exists"):
        keys.write_new_key(str(p))
    assert keys.write_new_key(str(p), force=True) != key


def test_load_raw_and_base64(tmp_path):
    raw = os.urandom(32)
    (tmp_path / "raw").write_bytes(raw)
    (tmp_path / "b64").write_text(base64.b64encode(raw).decode() + "\n")
    assert keys.load_key(str(tmp_path / "raw")) == raw
    assert keys.load_key(str(tmp_path / "b64")) == raw


@pytest.mark.parametrize("content", [b"", b"x" * 31, b"not base64 at all!!", b"A" * 5000])
def test_load_bad(tmp_path, content):
    (tmp_path / "k").write_bytes(content)
    with pytest.raises(ConfigError, match="genkey"):
        keys.load_key(str(tmp_path / "k"))


def test_loose_permissions_reported(tmp_path):
    p = tmp_path / "k"
    keys.write_new_key(str(p))
    os.chmod(p, 0o644)
    loose: list[str] = []
    keys.load_key(str(p), loose=loose)
    assert loose == [str(p)]


def test_config_options(tmp_path):
    k = tmp_path / "k"
    keys.write_new_key(str(k))
    cfg = config.build(key_file=str(k), mac="random")
    assert cfg.seal == keys.SealKeys(str(k), None)
    with pytest.raises(ConfigError, match="--compat"):
        config.build(key_file=str(k), compat=True, mac="random")
    with pytest.raises(ConfigError, match="needs --key-file"):
        config.build(accept_key_file=str(k), mac="random")
    with pytest.raises(ConfigError, match="cannot read --key-file"):
        config.build(key_file=str(tmp_path / "missing"), mac="random")
