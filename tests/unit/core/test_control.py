from hypothesis import given
from hypothesis import strategies as st

from vlan_nats.core.control import MAX_REQUEST, NodeInfo, parse_request, pong


def test_parse_request():
    assert parse_request(b"") == {}
    assert parse_request(b'{"token": "x"}') == {"token": "x"}
    assert parse_request(b"[1, 2]") is None
    assert parse_request(b"not json") is None
    assert parse_request(b"\xff\xfe") is None
    assert parse_request(b'{"a": "' + b"x" * MAX_REQUEST + b'"}') is None


@given(st.binary(max_size=2048))
def test_parse_request_never_raises(data):
    r = parse_request(data)
    assert r is None or isinstance(r, dict)


def test_node_info_round_trip():
    info = NodeInfo(
        "0123abcd",
        "host",
        "vnats0",
        ["02:00:00:00:00:01"],
        "0",
        "native",
        "0.1.0",
        1.5,
        "nats://x:4222",
        {"tap_rx_frames": 1},
    )
    assert NodeInfo.decode(info.encode()) == info
    assert NodeInfo.decode(b"{}") is None
    assert NodeInfo.decode(b"garbage") is None
    bad = info.encode().replace(b"0123abcd", b"../../x")
    assert NodeInfo.decode(bad) is None


def test_pong_echoes_only_string_tokens():
    assert pong({"token": "t1"}, "ab12cd34") == b'{"pong": "ab12cd34", "token": "t1"}'
    assert pong({"token": {"x": 1}}, "ab12cd34") == b'{"pong": "ab12cd34", "token": null}'
