"""``network show``: one view of a network, read from JetStream KV: the
definition, every member (a node that stopped writing its entry for
MEMBER_GONE seconds is gone), the leases, and every problem the members
report."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ..core.subjects import SubjectScheme
from ..errors import ConfigError
from ..views import table


async def gather(nc: Any, scheme: SubjectScheme, now: float) -> dict[str, Any]:
    from ..aio import netkv
    from ..aio.leasestore import BucketMissing, IpamError, list_leases

    view: dict[str, Any] = {"network": scheme.network, "problems": []}
    try:
        kv = await netkv.definitions(nc, scheme.prefix, create=False)
        d = await netkv.get(kv, scheme.network)
    except BucketMissing:
        d = None
    except ConfigError as e:
        d = None
        view["problems"].append(f"the stored definition is refused: {e}")
    view["definition"] = dataclasses.asdict(d) if d else None
    try:
        members = await netkv.read_members(await netkv.members(nc, scheme, create=False))
    except IpamError:
        members = []
    for m in members:
        age = now - float(m.get("last_seen", 0))
        m["gone"] = age > netkv.MEMBER_GONE
        m["seen_ago_s"] = round(age, 1)
        where = f"{m.get('host')}/{m.get('dev')}"
        if m["gone"]:
            view["problems"].append(f"{where}: gone (last seen {age:.0f} s ago)")
        view["problems"] += [f"{where}: {p}" for p in m.get("problems", [])]
    view["members"] = members
    try:
        view["leases"] = [dataclasses.asdict(le) for le in await list_leases(nc, scheme)]
    except IpamError:
        view["leases"] = []
    return view


def render(view: dict[str, Any]) -> str:
    d = view["definition"]
    lines = [f"network {view['network']}"]
    if d is None:
        lines.append("  no definition: each node runs on its own settings")
    else:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d["changed_at"]))
        lines.append(f"  revision {d['revision']}, changed {when} from {d['changed_by'] or '?'}")
        for k, v in sorted(d["settings"].items()):
            lines.append(f"  {k} = {v}")
    rows = [
        (m.get("host", "?"), m.get("netns") or "-", m.get("dev", "?"), m.get("mac", "?"),
         " ".join(m.get("addresses", [])) or "-", m.get("mtu", "?"), m.get("revision", "-"),
         m.get("datapath", "?"), "gone" if m["gone"] else f"{m['seen_ago_s']:.0f} s ago")
        for m in view["members"]
    ]  # fmt: skip
    lines.append(f"members: {len(rows)}")
    if rows:
        lines.append(table(("HOST", "NETNS", "DEV", "MAC", "ADDRESSES", "MTU", "REV",
                            "DATAPATH", "SEEN"), rows))  # fmt: skip
    leases = view["leases"]
    lines.append(f"leases: {len(leases)}")
    if leases:
        lines.append(table(("ADDRESS", "MAC", "HOSTNAME"),
                           [(le["address"], le["mac"], le["hostname"] or "-") for le in leases]))
    lines.append("problems: " + ("none" if not view["problems"] else ""))
    lines += [f"  {p}" for p in view["problems"]]
    return "\n".join(lines)
