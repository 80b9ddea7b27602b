"""The soak's short version (scripts/soak.py; the 30-minute run's figures
are in docs/reliability.md#soak): 16 hosts, a 3-server JetStream cluster
and two address-service instances under random faults for 2 minutes,
every check passed.  VLAN_NATS_SOAK sets another duration (e.g. 30m)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def test_sixteen_hosts_under_random_faults_pass_every_check():
    duration = os.environ.get("VLAN_NATS_SOAK", "2m")
    r = subprocess.run([sys.executable, str(SCRIPT), duration, "--hosts", "16", "--mib", "10"],
                       capture_output=True, text=True, timeout=3600)  # fmt: skip
    print(r.stdout[-4000:], r.stderr[-2000:])
    summary = next((x for x in r.stdout.splitlines() if x.startswith("summary: ")), "")
    assert r.returncode == 0 and summary, r.stdout[-3000:] + r.stderr[-3000:]
    assert "16 hosts, 3 servers, 2 address services" in summary
    assert "fault errors 0" in summary
    m = re.search(r"faults (\d+) \(([^)]*)\)", summary)
    assert m and int(m.group(1)) >= 15, summary  # one every ~3 s
    assert len(m.group(2).split(", ")) >= 5, summary  # of several kinds
