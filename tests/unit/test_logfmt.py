"""Log lines as JSON: the key=value fields of a message become members."""

import json
import logging

from vlan_nats.logfmt import JsonFormatter, split_fields


def test_split_fields():
    assert split_fields("ready dev=vn0 mac=02:00:00:00:00:01 netns=-") == (
        "ready",
        {"dev": "vn0", "mac": "02:00:00:00:00:01", "netns": "-"},
    )
    text, fields = split_fields("nats problem servers=a,b error='x y' (retrying)")
    assert text == "nats problem" and fields["error"] == "'x y' (retrying)"
    assert split_fields("no fields here") == ("no fields here", {})


def test_json_formatter_keeps_its_own_members():
    rec = logging.LogRecord(
        "vlan_nats.x", logging.INFO, "f", 1, "ready msg=%s level=%s", ("a", "b"), None
    )
    out = json.loads(JsonFormatter().format(rec))
    assert out["msg"] == "ready" and out["level"] == "info" and out["logger"] == "vlan_nats.x"
