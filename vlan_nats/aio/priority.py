"""``--datapath-nice``: the priority of the thread that moves frames.

A sender at full rate on the same host shares the CPUs with the datapath;
at equal priority the scheduler gives it as much as the datapath, and what
it sends beyond what the datapath reads is dropped at the TAP.  The kernel's
own network stack runs ahead of every process; the datapath thread runs at
a nice value below 0 (-10 by default, as tinc's "high") for the same reason
(docs/performance.md, "Priority").

The C datapath's thread takes it as it starts (csrc/vn_tx.c); the python
datapath is the event loop, so this thread takes it.  A thread the C
datapath starts again after privileges were dropped (a data connection
made anew) may still take it (privdrop.drop raises RLIMIT_NICE).  What
could not be set is logged once, shown by ``status`` as a problem and in
the metrics.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)


class Priority:
    """The nice value wanted for the datapath's thread, and what it got."""

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        self.nice = 0
        self.error: str | None = None

    def took(self, err: int, thread: str) -> None:
        """``thread`` started with ``err`` (0: it has the wanted value)."""
        if not err:
            if self.error:
                log.info("datapath priority: %s now runs at nice %d", thread, self.wanted)
            self.nice, self.error = self.wanted, None
            return
        error = (
            f"cannot run {thread} at nice {self.wanted} ({os.strerror(err)}): it runs at "
            "the process's nice; give the daemon CAP_SYS_NICE or set --datapath-nice 0"
        )
        if error != self.error:
            log.warning("datapath priority: %s", error)
        self.nice, self.error = os.getpriority(os.PRIO_PROCESS, 0), error

    def take_here(self) -> None:
        """This thread moves the frames (the python datapath's event loop)."""
        if not self.wanted:
            return
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.wanted)
        except OSError as e:
            self.took(e.errno or 1, "the event loop")
        else:
            self.took(0, "the event loop")

    def status(self) -> dict[str, Any] | None:
        if not self.wanted:
            return None
        return {"wanted": self.wanted, "nice": self.nice, "error": self.error}
