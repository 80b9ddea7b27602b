"""aio/priority.py: what the datapath's thread got of --datapath-nice, and
how a failure shows (log once, status problem, metrics).  No root needed."""

from __future__ import annotations

import errno
import logging
import os

from vlan_nats.aio import metrics
from vlan_nats.aio.priority import Priority
from vlan_nats.core.status import Status


def test_taken_is_no_problem():
    p = Priority(-10)
    p.took(0, "the C datapath's thread")
    assert p.status() == {"wanted": -10, "nice": -10, "error": None}
    assert Status(connected=True, datapath_nice=p.status()).problems() == []


def test_zero_is_left_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "setpriority", lambda *a: calls.append(a))
    p = Priority(0)
    p.take_here()
    assert calls == [] and p.status() is None


def test_refused_is_logged_once_and_a_problem(caplog):
    p = Priority(-10)
    with caplog.at_level(logging.WARNING, logger="vlan_nats.aio.priority"):
        p.took(errno.EACCES, "the C datapath's thread")
        p.took(errno.EACCES, "the C datapath's thread")  # a restart: said once
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "Permission denied" in warned[0]
    st = Status(connected=True, datapath_nice=p.status())
    (problem,) = st.problems()
    assert problem.startswith("datapath priority: cannot run the C datapath's thread at nice -10")
    assert "CAP_SYS_NICE" in problem and "--datapath-nice 0" in problem
    p.took(0, "the C datapath's thread")  # granted later (a restart with the right)
    assert p.status()["error"] is None


def test_the_event_loop_takes_it(monkeypatch):
    def refuse(*a):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refuse)
    p = Priority(-3)
    p.take_here()
    assert "the event loop at nice -3 (Operation not permitted)" in p.status()["error"]


def test_metrics_carry_it():
    p = Priority(-10)
    p.took(errno.EPERM, "the event loop")
    fams = {f.name: f for f in metrics._priority(Status(connected=True, datapath_nice=p.status()))}
    assert fams["vlan_nats_datapath_nice"].samples[0].value == p.nice
    (sample,) = fams["vlan_nats_datapath_priority_problem"].samples
    assert sample.value == 1 and "cannot run the event loop" in sample.labels["error"]
