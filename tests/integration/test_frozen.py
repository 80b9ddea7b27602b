"""A frozen host (SIGSTOP) hurts nobody else, works again by itself once
continued, and says what the stall cost: in one log line, in status and
in its metrics (aio/stall.py; docs/reliability.md "A frozen host").

Host 1 broadcasts ~5 MB/s; host 3's own kernel keeps sending to its TAP
while its daemon is stopped, so frames pile up unread there.  On the C
datapath the server is given a small ``max_pending``, so it cuts the
stopped host off as a slow consumer; on the python datapath it keeps the
backlog (its default 64 MiB) and delivers it late.
"""

from __future__ import annotations

import signal
import time

import pytest

from vlan_nats.core.status import Status
from vlan_nats.lab.checks import ping, udp_stream, wait_ping, wait_until
from vlan_nats.lab.hosts import Lab, free_port
from vlan_nats.lab.natsserver import NatsServer

from .helpers import scrape

STOPPED = 6.0  # s; the daemon notices a stall beyond 3 s


@pytest.mark.parametrize(("dataplane", "max_pending"), [("c", 2 * 1024 * 1024), ("python", None)])
def test_a_frozen_host_comes_back_and_says_what_it_cost(dataplane, max_pending):
    config = f"max_pending: {max_pending}\n" if max_pending else None
    metrics = free_port()
    with Lab(3, tag="vnz", subnet="198.18.41", dataplane=dataplane,
             server=NatsServer(config=config), start_nodes=False) as lab:  # fmt: skip
        h1, h2, h3 = lab.nodes
        h3.args += ["--metrics-listen", f"127.0.0.1:{metrics}"]
        for n in lab.nodes:
            n.start()
        for a, b in ((h1, h2), (h3, h1), (h3, h2)):
            assert wait_ping(a.ns, b.ip).ok
        # ~5 MB/s of broadcasts from host 1; host 3's kernel sends 500
        # datagrams a second to host 2 (its TAP's queue fills while nobody
        # reads it).
        read = h3.link_stats()["tx"]
        flood = udp_stream(h1.ns, "198.18.41.255", 3500, 1400)
        unread = udp_stream(h3.ns, h2.ip, 500, 100)
        try:
            # Both streams flow (host 3's daemon reads them from its TAP).
            assert wait_until(lambda: h3.link_stats()["tx"] > read + 1000, 10)
            h3.proc.send_signal(signal.SIGSTOP)
            others = ping(h1.ns, h2.ip, count=int(STOPPED / 0.2), interval=0.2)
            h3.proc.send_signal(signal.SIGCONT)
            resumed = time.monotonic()
            back = wait_ping(h3.ns, h1.ip, timeout=10)
            back_s = time.monotonic() - resumed
            assert wait_until(lambda: any("stalled: " in x for x in h3.lines), 15), h3.lines[-10:]
        finally:
            for p in (flood, unread):
                p.kill()
                p.wait()
        line = next(x for x in h3.lines if "stalled: " in x)
        print(f"\n{dataplane}: {line}\nback after {back_s:.2f} s; others {others.received}/"
              f"{others.sent}")  # fmt: skip
        assert others.ok, others.output  # nobody else lost a ping
        assert back.received == 1, back.output  # works again by itself (within 10 s)
        assert "did not run for" in line and "nobody read (its queue was full)" in line
        cut = "cut our NATS connection (a slow consumer)" in line
        assert cut == (max_pending is not None), line
        assert (not cut) == ("the server kept what was sent to us" in line), line
        st = Status.from_json(h3.status())
        assert st.stall and st.stall["stalls"] == 1 and st.stall["tap_dropped"] > 0
        assert STOPPED - 1 < st.stall["last"]["seconds"] < STOPPED + 5
        assert any(p.startswith("stalled ") for p in st.problems()), st.problems()
        m = scrape(metrics)
        assert m[("vlan_nats_stalls_total", ())] == 1
        assert m[("vlan_nats_stall_problem", ())] == 1
        assert m[("vlan_nats_tap_unread_drops_total", ())] == st.stall["tap_dropped"]
        # The others were never told anything was wrong.
        for n in (h1, h2):
            assert not Status.from_json(n.status()).stall_problems


def test_frames_the_kernel_drops_unread_at_the_tap_are_said(lab2):
    """More than the datapath can read (64-byte datagrams as fast as a
    process can send them): the kernel drops the rest at the TAP, and the
    daemon says so, counts it, and keeps it a problem for a minute."""
    h1, h2 = lab2.nodes
    assert wait_ping(h1.ns, h2.ip).ok
    stream = udp_stream(h1.ns, h2.ip, 200_000, 18)
    try:
        assert wait_until(lambda: h1.link_stats()["tx_dropped"] > 0, 10)
        assert wait_until(lambda: any("kernel dropped frames at" in x for x in h1.lines), 5)
    finally:
        stream.kill()
        stream.wait()
    line = next(x for x in h1.lines if "kernel dropped frames at" in x)
    assert "that the datapath did not read in time (its queue was full)" in line, line
    st = Status.from_json(h1.status())
    assert st.stall and 0 < st.stall["tap_dropped"] <= h1.link_stats()["tx_dropped"]
    assert any("kernel dropped frames" in p for p in st.problems()), st.problems()
    assert wait_ping(h1.ns, h2.ip).received == 1
