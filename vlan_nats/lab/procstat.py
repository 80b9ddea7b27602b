"""CPU time and memory of processes, from /proc (benchmarks, scale, soak)."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (gone processes count 0)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def thread_cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far by thread name over ``pids`` (a profile by thread:
    the C datapath names its own, vn-*); the main thread is "main"."""
    out: dict[str, float] = {}
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            base = f"/proc/{pid}/task/{tid}"
            try:
                name = Path(f"{base}/comm").read_text().strip()
                fields = Path(f"{base}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if tid == str(pid):
                name = "main"
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of ``pid`` in MiB: PSS shares shared pages fairly."""
    rss = pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, *rest = line.split()
        if key == "Rss:":
            rss = int(rest[0]) / 1024
        elif key == "Pss:":
            pss = int(rest[0]) / 1024
    return rss, pss


def rss_mb(pid: int) -> float:
    return memory_mb(pid)[0]
