"""The C datapath's local MAC table, kept in step with core's MacTable.

C learns per frame: it keeps when each MAC was last read from the TAP and
its state (core.events.LocalState).  What to do with a MAC is decided here
by core.switching.MacTable, the one owner of the rules: a new MAC is
served (its subscription made before C's verdict releases its frames) or
over the cap; a MAC served here that arrives from the network has moved;
an idle one is forgotten.  What changed is left in the Forwarder's events
for the switch (aio/switchctl.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..cdatapath import CDatapath
from ..core.events import Event, LocalState
from ..core.forwarding import Forwarder
from ..core.subjects import SubjectScheme
from ..core.switching import Learn


class CMacs:
    def __init__(self, dp: CDatapath, forwarder: Forwarder, scheme: SubjectScheme,
                 subscribe: Callable[[str], None]) -> None:  # fmt: skip
        self.dp = dp
        self.forwarder = forwarder
        self.scheme = scheme
        self._subscribe = subscribe

    def new_local(self, mac: bytes, moved: bool) -> None:
        """A source MAC read from the TAP behind our bridge, first seen (an
        upcall): the table decides; a MAC served is subscribed before the
        verdict (dp.verdict, the caller's) lets its frames go."""
        fwd = self.forwarder
        r = fwd.table.learn_local(mac, time.monotonic())
        if r is Learn.FULL:
            fwd.events.append((Event.FULL, mac))
            self.dp.local_set(mac, LocalState.OVER_CAP)
            return
        if r is not Learn.KNOWN:
            fwd.events.append((Event.MOVED_LOCAL if moved else Event.NEW_LOCAL, mac))
        self._subscribe(self.scheme.unicast(mac))
        self.dp.local_set(mac, LocalState.SERVED)

    def moved_remote(self, mac: bytes) -> bool:
        """A MAC served behind our bridge arrived from the network (C has
        forgotten it locally): the table follows."""
        t = self.forwarder.table
        if mac not in t.local or mac in t.pinned:
            return False
        del t.local[mac]
        self.forwarder.events.append((Event.MOVED_REMOTE, mac))
        return True

    def expire(self, now: float) -> tuple[list[bytes], bool]:
        """Age local MACs (C keeps when each was last read, core decides):
        the MACs forgotten, and whether an upcall had been lost (a MAC C
        learned that the table never heard of: it is decided now)."""
        t, fwd = self.forwarder.table, self.forwarder
        missed = False
        for mac, idle, state in self.dp.local_dump(t.max_macs):
            if mac in t.local:
                t.local[mac] = now - idle
            elif idle > t.ageing:
                self.dp.local_del(mac)  # over the cap, or missed: to be asked about again
            elif state != LocalState.OVER_CAP:
                self.new_local(mac, False)  # its upcall was lost (events_lost)
                missed = True
        if missed:
            self.dp.verdict()
        gone = t.expire(now)
        for mac in gone:
            if mac != fwd.mac:
                self.dp.local_del(mac)
        return gone, missed
