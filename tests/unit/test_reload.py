"""SIGHUP's config reload (reload.py) over a fake file: live changes are
applied and kept, the others named until the file says the running value
again, a bad file changes nothing."""

import logging

from vlan_nats import config
from vlan_nats.errors import ConfigError
from vlan_nats.reload import ConfigReload


def test_live_changes_apply_and_the_rest_waits_for_a_restart(monkeypatch, caplog):
    monkeypatch.setattr(config, "read_machine_id", lambda: "0123456789abcdef0123456789abcdef")
    running = config.build(network="7", dev="lab0", storm_pps=1000)
    file = {"cfg": running}
    applied = []

    def read():
        if isinstance(file["cfg"], Exception):
            raise file["cfg"]
        return file["cfg"], False

    r = ConfigReload(running, read, False, lambda change, new: applied.append(str(change)))
    caplog.set_level(logging.INFO)
    assert r() == running and r.restart_needed == []  # nothing changed
    file["cfg"] = config.build(network="8", dev="lab0", storm_pps=500)
    now = r()
    assert applied == ["storm_pps 1000.0 -> 500.0"] and now.storm_pps == 500.0
    assert now.network == "7" and r.restart_needed == ["network 7 -> 8"]
    assert any("needs a restart" in m and m.startswith("config reload: network 7 -> 8")
               for m in caplog.messages)  # fmt: skip
    file["cfg"] = ConfigError("bad --mtu 1")
    assert r() == now and r.restart_needed == ["network 7 -> 8"]  # kept as it was
    assert any("config reload failed" in m for m in caplog.messages)
    file["cfg"] = config.build(network="7", dev="lab0", storm_pps=500)  # the file put back
    r()
    assert r.restart_needed == [] and len(applied) == 1


def test_without_a_config_file_there_is_nothing_to_read():
    cfg = config.build(network="7", mac="random")
    assert ConfigReload(cfg, None, False, lambda c, n: None)() is cfg
