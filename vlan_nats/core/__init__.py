"""The pure core of vlan-nats: bytes in, values out.

Nothing here imports asyncio, nats, pyroute2, cffi or does OS I/O; time and
randomness are passed in.  tests/unit/test_core_purity.py holds it to that.
"""
