#!/usr/bin/env python3
"""Coverage-guided fuzzing of the C datapath's decoders with libFuzzer,
under AddressSanitizer and UndefinedBehaviorSanitizer (clang from Debian:
packages clang and libclang-rt-14-dev).  scripts/fuzz.py does the same for
the Python decoders.

    .venv/bin/python scripts/fuzz_c.py [--seconds 60] [--target wire,open,rx,arp]

Targets (csrc/fuzz/, each states its invariants):

  wire   vn_rx.c's check_wire and check_vnet
  open   vn_seal.c's vn_opener_open: a forgery never opens; seal -> open
  rx     vn_rx.c's vn_on_msg: the receive path up to the TAP write (/dev/null)
  arp    vn_arp.c's vn_arp_request and vn_arp_route

Each is seeded from the shared test vectors (tests/unit/data) and runs for
``--seconds``; its corpus grows in build/fuzz/corpus/<target> (kept between
runs).  A crash, a sanitizer report or a broken invariant stops it: the
input is written to build/fuzz/crash-<target>-<sha1>, and the exit is 1.
Inputs kept in tests/unit/data/fuzz/<target>/ (findings, fixed) are run
first, every time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
BUILD = ROOT / "build" / "fuzz"
REGRESSIONS = ROOT / "tests" / "unit" / "data" / "fuzz"
TARGETS = ("wire", "open", "rx", "arp")
FLAGS = [
    "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
    "-fno-omit-frame-pointer", f"-I{CSRC}",
]  # fmt: skip


def build(target: str) -> Path:
    cc = shutil.which("clang")
    if cc is None:
        sys.exit("fuzz_c.py: clang is not installed (apt install clang libclang-rt-14-dev)")
    # csrc/vn_gen.h, generated from vlan_nats/core when the build script is imported
    sys.path.insert(0, str(CSRC))
    sys.path.insert(0, str(ROOT))
    sources = __import__("build_datapath").SOURCES
    src = CSRC / "fuzz" / f"fuzz_{target}.c"
    included = set(re.findall(r'#include "\.\./(vn_\w+)\.c"', src.read_text()))
    out = BUILD / f"fuzz_{target}"
    BUILD.mkdir(parents=True, exist_ok=True)
    cmd = [cc, *FLAGS, str(src), *(str(CSRC / f"{s}.c") for s in sources if s not in included),
           "-lnats", "-lcrypto", "-lpthread", "-o", str(out)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"fuzz_c.py: building {target} failed:\n{r.stderr}")
    return out


def seeds(target: str) -> list[bytes]:
    """Inputs to start from: the sealed vectors, their plaintexts (wire
    messages), an ARP request."""
    vectors = json.loads((ROOT / "tests" / "unit" / "data" / "seal_vectors.json").read_text())
    plain = [bytes.fromhex(c["plain"]) for c in vectors["seal"]]
    sealed = [bytes.fromhex(c["sealed"]) for c in vectors["seal"]]
    arp = (
        b"\xff" * 6 + bytes([2, 0, 0, 0, 0, 2]) + b"\x08\x06"
        + bytes([0, 1, 8, 0, 6, 4, 0, 1]) + bytes([2, 0, 0, 0, 0, 2, 198, 18, 0, 2])
        + bytes(6) + bytes([198, 18, 0, 1])
    )  # fmt: skip
    if target == "wire":
        return plain + [b"\x01\x00" + arp]
    if target == "open":
        return sealed
    if target == "rx":  # first byte: 0 plain, 1 compat, 2 sealed (+4: the flood subject)
        return [b"\x00" + p for p in plain] + [b"\x02" + s for s in sealed] + [b"\x01" + arp]
    return [arp]


def run(target: str, seconds: int) -> tuple[bool, str]:
    exe = build(target)
    corpus = BUILD / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    for s in seeds(target):
        (corpus / hashlib.sha1(s).hexdigest()).write_bytes(s)
    kept = REGRESSIONS / target
    if kept.is_dir() and any(kept.iterdir()):  # the findings, fixed: run them first
        r = subprocess.run([str(exe), *map(str, sorted(kept.iterdir()))],
                           capture_output=True, text=True)  # fmt: skip
        if r.returncode != 0:
            return False, f"a kept input fails again:\n{r.stderr[-3000:]}"
    r = subprocess.run(
        [str(exe), str(corpus), f"-max_total_time={seconds}", "-print_final_stats=1",
         f"-artifact_prefix={BUILD}/crash-{target}-", "-timeout=10", "-rss_limit_mb=2048"],
        capture_output=True, text=True, timeout=seconds + 120,
    )  # fmt: skip
    execs = re.search(r"stat::number_of_executed_units:\s*(\d+)", r.stderr)
    cov = re.findall(r"cov: (\d+)", r.stderr)
    line = f"{int(execs.group(1)) if execs else 0} executions, cov {cov[-1] if cov else '?'}"
    if r.returncode != 0:
        return False, f"{line}\n{r.stderr[-4000:]}"
    return True, f"{line}, corpus {len(os.listdir(corpus))} inputs"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  .venv/bin/python scripts/fuzz_c.py --seconds 600 --target open",
    )
    ap.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    ap.add_argument("--target", default=",".join(TARGETS), help="comma-separated subset")
    args = ap.parse_args()
    failed = []
    for name in args.target.split(","):
        if name not in TARGETS:
            print(f"fuzz_c.py: unknown target {name!r} (known: {', '.join(TARGETS)})")
            return 2
        ok, text = run(name, args.seconds)
        print(f"{name:5} {'ok' if ok else 'FAILED'}  {text}", flush=True)
        if not ok:
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
