#!/usr/bin/env python3
"""Coverage-guided fuzzing of every decoder that takes bytes from the network.

    .venv/bin/pip install atheris        # in the 'test' extra
    .venv/bin/python scripts/fuzz.py [--seconds 60] [--target wire,vnet,seal,control]

Each target runs in its own process (atheris takes the process over) for
``--seconds``; a crash or a broken invariant stops it with the input that
caused it, written by libFuzzer as ./crash-<sha1>, and a non-zero exit.

Targets and their invariants:

  wire     wire.check / check_raw: a DropReason or None, never an exception;
           an accepted message has a frame of at least 14 bytes
  vnet     vnet.check on any header: a DropReason or None
  seal     Opener.open on any bytes (also with our key id byte in place):
           a DropReason, never plaintext (forgery) and never an exception;
           and seal -> open round trips any message
  control  parse_request, NodeInfo.decode, pong: None or a value, never an
           exception; a parsed request is a dict within the size limit
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable

TARGET_NAMES = ("wire", "vnet", "seal", "control")


def load_targets() -> dict[str, Callable[[bytes], None]]:
    """Import the decoders (under atheris's instrumentation when fuzzing)."""
    from vlan_nats.core import control, seal, vnet, wire
    from vlan_nats.core.counters import DropReason
    from vlan_nats.crypto import aes_gcm

    key = bytes(range(32))
    now = 1_800_000_000.0
    opener = seal.Opener([key], aead=aes_gcm)
    sealer = seal.Sealer(key, b"fuzz-ses", lambda: now, aead=aes_gcm)

    def t_wire(data: bytes) -> None:
        for max_frame in (1514, 9018):
            r = wire.check(data, max_frame)
            assert r is None or isinstance(r, DropReason)
            if r is None:
                assert len(data) - wire.frame_offset(data[1]) >= 14
            r = wire.check_raw(data, max_frame)
            assert r is None or isinstance(r, DropReason)

    def t_vnet(data: bytes) -> None:
        # Contract: the caller (wire.check) has made sure the 12 bytes exist.
        if len(data) < 2 + vnet.HDR_LEN:
            return
        frame_len = int.from_bytes(data[:2], "little")
        r = vnet.check(data[2:], 0, frame_len, 1514)
        assert r is None or isinstance(r, DropReason)

    def t_seal(data: bytes) -> None:
        subject = "vlan.0.u.020000000001"
        assert isinstance(opener.open(data, subject, now), DropReason), "forged message opened"
        if len(data) > 3:
            forged = bytes([1, 2, seal.key_id(key)]) + data[3:]
            assert isinstance(opener.open(forged, subject, now), DropReason), "forgery"
        assert opener.open(sealer.seal(subject, data), subject, now) == data

    def t_control(data: bytes) -> None:
        req = control.parse_request(data)
        assert req is None or (isinstance(req, dict) and len(data) <= control.MAX_REQUEST)
        if req is not None:
            assert isinstance(control.pong(req, "n1"), bytes)
        info = control.NodeInfo.decode(data)
        assert info is None or isinstance(info, control.NodeInfo)

    return {"wire": t_wire, "vnet": t_vnet, "seal": t_seal, "control": t_control}


def run_one(name: str, libfuzzer_args: list[str]) -> None:
    import atheris

    # Coverage feedback from our modules only: instrumenting everything
    # (cryptography, json) slows the loop and has hung runs here.
    with atheris.instrument_imports(include=["vlan_nats"]):
        target = load_targets()[name]
    atheris.Setup([sys.argv[0], *libfuzzer_args], target)
    atheris.Fuzz()


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  .venv/bin/python scripts/fuzz.py --seconds 60 --target seal",
    )
    ap.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    ap.add_argument("--target", default=",".join(TARGET_NAMES), help="comma-separated subset")
    ap.add_argument("--one", choices=TARGET_NAMES, help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args()
    if args.one:
        run_one(args.one, rest)
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz.py: atheris is not installed (pip install atheris)", file=sys.stderr)
        return 2
    failed = []
    for name in args.target.split(","):
        if name not in TARGET_NAMES:
            print(f"fuzz.py: unknown target {name!r} (known: {', '.join(TARGET_NAMES)})")
            return 2
        cmd = [sys.executable, __file__, "--one", name, f"-max_total_time={args.seconds}"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.seconds + 60)
        except subprocess.TimeoutExpired:
            print(f"{name:8} HUNG  (no result {args.seconds + 60} s after start)")
            failed.append(name)
            continue
        tail = [ln for ln in r.stderr.splitlines() if ln.startswith(("#", "Done", "=="))]
        print(f"{name:8} {'ok' if r.returncode == 0 else 'FAILED'}  {tail[-1] if tail else ''}")
        if r.returncode != 0:
            failed.append(name)
            print(r.stderr[-3000:], file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
