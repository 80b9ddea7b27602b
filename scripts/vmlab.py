#!/usr/bin/env python3
"""Three real VMs on a private L2 network, provisioned like the Vagrantfile, then checked.

    sudo .venv/bin/python scripts/vmlab.py [--transfer-mb 20] [--rebuild-image] [--keep]

What it does (everything is torn down at the end, also on failure or Ctrl-C):

1. the image (cached in /var/cache/vlan-nats-vmlab): Debian bookworm from
   ``debootstrap --variant=minbase`` with systemd, iproute2, python3-venv and
   the cloud kernel, plus a small agent that runs commands sent over a second
   serial port; about 100 s the first time;
2. a wheelhouse of this checkout and its dependencies (built here; the VMs
   have no internet) on a small second disk, with scripts/provision.sh;
3. a namespace holding a bridge and three TAPs, and three QEMU VMs under
   software emulation (``-accel tcg,tb-size=128 -M q35 -m 256``; /dev/kvm
   here runs no stock kernel), each with its own copy-on-write overlay;
   underlay 198.18.200.11-13/24, hostname and address on the kernel command
   line; each console is written to a file, so it never stalls;
4. provisions them through the systemd units: vm1 runs ``vlan-nats hub`` and
   a node, vm2 and vm3 nodes (virtual LAN 198.18.201.1-3/24, network "lab");
5. checks from inside the VMs: IPv4 ping all pairs, IPv6 link-local all
   pairs, a TCP transfer with SHA-256 on both ends, then restarts the hub
   (systemctl restart vlan-nats-hub) and measures until traffic resumes;
6. prints a table (also with --json) and exits 0 only if every check passed.

Needs: qemu-system-x86 qemu-utils debootstrap e2fsprogs (installed with apt if
missing), root, ~1.3 GB of memory, a Debian mirror (deb.debian.org or the one
in /etc/apt/sources.list.d/debian.sources).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vlan_nats.lab.vmlab import run_lab

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose wheel the VMs get


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  sudo .venv/bin/python scripts/vmlab.py --transfer-mb 20",
    )
    ap.add_argument("--transfer-mb", type=int, default=20, help="TCP transfer size (default 20)")
    ap.add_argument("--rebuild-image", action="store_true", help="rebuild the cached image")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("vmlab.py: run as root (namespaces, TAPs, debootstrap)", file=sys.stderr)
        return 1
    results, boot, prov, total = run_lab(ROOT, args.transfer_mb, args.rebuild_image, args.keep)
    passed = all(ok for _, ok, _ in results)
    if args.json:
        print(json.dumps({"boot_s": boot, "provision_s": prov, "total_s": total,
                          "checks": [{"check": c, "ok": ok, "detail": d} for c, ok, d in results]},
                         indent=2))  # fmt: skip
    else:
        width = max(len(c) for c, _, _ in results)
        print(f"{'CHECK'.ljust(width)}  RESULT  DETAIL")
        for c, ok, d in results:
            print(f"{c.ljust(width)}  {'ok' if ok else 'FAIL':6}  {d}")
        prov_text = ", ".join(f"{k} {v:.0f} s" for k, v in prov.items())
        print(f"\nboot (3 VMs in parallel, until their agents answer): {boot:.0f} s")
        print(f"provisioning (scripts/provision.sh; vm1, then vm2 and vm3 at once): {prov_text}")
        n_ok = sum(ok for _, ok, _ in results)
        print(f"total: {total:.0f} s; {n_ok}/{len(results)} checks passed")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
