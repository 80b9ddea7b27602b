"""Control-plane messages over NATS request-reply (documented in
docs/wire-format.md).  Pure: bytes in, values out.

Subjects, under ``<prefix>.<network>.ctl``:

    peers                 every node answers with its NodeInfo (many replies)
    node.<node_id>.ping   that node answers a pong echoing the request
    node.<node_id>.notice a notice for that node (no answer): another node
                          dropped its frames as larger than its MTU

Requests are small JSON objects (or empty); anything over MAX_REQUEST bytes,
not JSON, or not an object is ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields

MAX_REQUEST = 1024
NODE_ID_RE = re.compile(r"^[0-9a-f]{8,32}$")


def parse_request(data: bytes) -> dict[str, object] | None:
    """The request as a dict ({} for an empty one), or None to ignore it."""
    if not data:
        return {}
    if len(data) > MAX_REQUEST:
        return None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    hostname: str
    dev: str
    macs: list[str]  # the TAP's MAC first, then MACs learned behind its bridge
    network: str
    mode: str  # native, compat, bridge:<br>
    version: str
    uptime_s: float
    server: str
    counters: dict[str, object]
    # Since 0.2: absent in older nodes' replies.
    netns: str | None = None
    addresses: list[str] = field(default_factory=list)  # the TAP's, "198.18.0.1/24"
    leased: list[str] = field(default_factory=list)  # those of them from the address service
    mtu: int | None = None  # the TAP's (since 0.3: None from older nodes)

    def encode(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> NodeInfo | None:
        """A reply from another node, or None if it is not one."""
        try:
            d = json.loads(data)
            known = {f.name for f in fields(cls)}
            # Keys a newer release added are ignored, not fatal.
            info = cls(**{k: v for k, v in d.items() if k in known})
        except (ValueError, TypeError, UnicodeDecodeError, RecursionError, AttributeError):
            return None
        if not isinstance(info.macs, list) or not NODE_ID_RE.match(str(info.node_id)):
            return None
        if not isinstance(info.addresses, list) or not isinstance(info.leased, list):
            return None
        if info.mtu is not None and (not isinstance(info.mtu, int) or isinstance(info.mtu, bool)):
            return None
        return info


def pong(request: dict[str, object], node_id: str) -> bytes:
    """Reply to a ping: the node id and the request's token echoed."""
    token = request.get("token")
    echoed = token if isinstance(token, str) else None
    return json.dumps({"pong": node_id, "token": echoed}).encode()
