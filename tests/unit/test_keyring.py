"""The sealing keys in use: loaded into a tunnel, reloaded, kept on error."""

import os

from vlan_nats import keys
from vlan_nats.keyring import KeyRing
from vlan_nats.keys import SealKeys


class FakeTunnel:
    """Records what the key ring hands a datapath (either has set_keys)."""

    def __init__(self):
        self.sealer = None  # the sealing key and its session number
        self.sessions = 0
        self.accept = []

    def set_keys(self, key, new_session, accept):
        if self.sealer is None or new_session:
            self.sessions += 1
            self.sealer = (key, self.sessions)
        self.accept = accept

    def sealing_sessions(self):
        return 0


def test_load_and_rollover(tmp_path):
    k1, k2 = tmp_path / "k1", tmp_path / "k2"
    keys.write_new_key(str(k1))
    ring, t = KeyRing(SealKeys(str(k1), str(k2))), FakeTunnel()
    ring.load(t)
    first = t.sealer
    assert ring.status(t)["accepting"] == [keys.describe(keys.load_key(str(k1)))]
    keys.write_new_key(str(k2))  # the accept key appears: SIGHUP picks it up
    ring.reload(t)
    assert len(ring.accepting) == 2 and t.sealer is first  # same key: same session
    os.replace(k2, k1)  # roll: the new key seals
    ring.reload(t)
    assert t.sealer is not first and ring.status(t)["key"] == ring.accepting[0]


def test_a_failed_reload_keeps_the_keys(tmp_path):
    k1 = tmp_path / "k1"
    keys.write_new_key(str(k1))
    ring, t = KeyRing(SealKeys(str(k1))), FakeTunnel()
    ring.load(t)
    before = (t.sealer, ring.key)
    k1.write_bytes(b"short")
    ring.reload(t)
    assert (t.sealer, ring.key) == before


def test_no_key_file_is_a_plain_network():
    ring, t = KeyRing(None), FakeTunnel()
    ring.load(t)
    ring.reload(t)
    assert t.sealer is None and ring.status(t) is None
