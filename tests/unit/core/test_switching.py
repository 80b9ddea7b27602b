from vlan_nats.core.switching import Learn, MacTable, TokenBucket

A, B, C = (bytes([2, 0, 0, 0, 0, i]) for i in (1, 2, 3))


def test_local_learning_and_ageing():
    t = MacTable(ageing=10, max_macs=2)
    t.pinned.add(A)
    assert t.learn_local(A, 0) is Learn.NEW
    assert t.learn_local(B, 0) is Learn.NEW
    assert t.learn_local(B, 5) is Learn.KNOWN
    assert t.learn_local(C, 5) is Learn.FULL  # cap: flood only
    assert not t.is_local(C)
    assert t.expire(14) == []  # B refreshed at 5
    assert t.expire(16) == [B]  # A is pinned: never aged out
    assert t.is_local(A) and not t.is_local(B)


def test_remote_knowledge_ages():
    t = MacTable(ageing=10)
    assert not t.is_known_remote(B, 0)
    assert t.learn_remote(B, 0) is Learn.NEW
    assert t.is_known_remote(B, 10)
    assert not t.is_known_remote(B, 10.5)  # unknown again: flood
    t.expire(11)
    assert B not in t.remote


def test_mac_moves_both_ways():
    t = MacTable()
    t.learn_local(B, 0)
    assert t.learn_remote(B, 1) is Learn.MOVED  # now seen on the network
    assert not t.is_local(B) and t.is_known_remote(B, 1)
    assert t.learn_local(B, 2) is Learn.MOVED  # back behind our bridge
    assert t.is_local(B) and B not in t.remote


def test_pinned_mac_does_not_move():
    t = MacTable()
    t.pinned.add(A)
    t.learn_local(A, 0)
    assert t.learn_remote(A, 1) is Learn.NEW  # someone spoofs us: we keep our MAC
    assert t.is_local(A)


def test_remote_table_is_bounded():
    t = MacTable(max_macs=4)
    for i in range(100):
        t.learn_remote(i.to_bytes(6, "big"), float(i))
    assert len(t.remote) <= 17


def test_token_bucket():
    b = TokenBucket(rate=10, burst=2, now=0)
    assert [b.allow(0) for _ in range(3)] == [True, True, False]
    assert b.allow(0.1)  # one token back after 0.1 s
    assert not b.allow(0.1)
    allowed = sum(b.allow(1 + i / 1000) for i in range(1000))  # 1000 tries in 1 s
    assert 9 <= allowed <= 13
    off = TokenBucket(rate=0)
    assert all(off.allow(0) for _ in range(100))
