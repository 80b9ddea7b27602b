"""--compat: rapidloop's Go vlan-nats wire format and subjects."""

import asyncio
import threading

import nats

from vlan_nats.core.subjects import go_hex_mac
from vlan_nats.lab.checks import ping
from vlan_nats.lab.hosts import Lab


def test_two_compat_nodes_talk_with_go_subjects(dataplane):
    with Lab(2, dataplane=dataplane, tag="vnc", node_args=["--compat"]) as lab:
        h1, h2 = lab.nodes
        mac2 = bytes.fromhex(h2.mac().replace(":", ""))
        subject = f"vlan.0.{go_hex_mac(mac2)}"
        assert len(subject) == len("vlan.0.") + 34
        seen: list[bytes] = []
        ready = threading.Event()
        stop = threading.Event()

        async def listen():
            nc = await nats.connect(lab.server.url)
            sub = await nc.subscribe(subject)
            await nc.flush()
            ready.set()
            while not stop.is_set():
                try:
                    msg = await sub.next_msg(timeout=0.2)
                except nats.errors.TimeoutError:
                    continue
                seen.append(msg.data)
            await nc.close()

        t = threading.Thread(target=lambda: asyncio.run(listen()))
        t.start()
        try:
            ready.wait(5)
            assert ping(h1.ns, h2.ip).ok
            h1.link_local()
            ll2 = h2.link_local()
            r = ping(h1.ns, f"{ll2}%{h1.dev}")
            assert r.ok, r.output
        finally:
            stop.set()
            t.join()
        # Bare Ethernet frames, no header: the destination MAC comes first.
        assert seen and all(m[:6] == mac2 for m in seen)
        assert any(m[12:14] == b"\x08\x00" for m in seen)
