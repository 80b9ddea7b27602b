"""What a reload changes (SIGHUP re-reads the config file).  Pure.

The daemon turns its running Config and the re-read one into plain
values (``config.settings_of``); ``diff`` says which settings changed and,
of those, which apply live and which take a restart.  The daemon hands
each live change to the one place that applies it and names the others
in one WARNING and in ``status`` until it is restarted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Applied to a running daemon: the datapaths' storm rate and switching
# tables, the log level, the TAP's MTU (ip link set: the datapaths follow).
LIVE = frozenset({"storm_pps", "mac_ageing", "max_macs", "log_level", "mtu"})


@dataclass(frozen=True, slots=True)
class Change:
    name: str  # the option's name (options.py)
    old: object
    new: object

    def __str__(self) -> str:
        return f"{self.name} {_show(self.old)} -> {_show(self.new)}"


def _show(v: object) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(str(x) for x in v) or "-"
    return "-" if v is None else str(v)


def diff(
    old: Mapping[str, object], new: Mapping[str, object], live: frozenset[str] = LIVE
) -> tuple[list[Change], list[Change]]:
    """(changes applied live, changes that need a restart), by name."""
    changed = [Change(k, old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys())
               if old.get(k) != new.get(k)]  # fmt: skip
    return [c for c in changed if c.name in live], [c for c in changed if c.name not in live]
