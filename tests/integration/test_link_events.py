"""What users do to the device with `ip`, and what the daemon says."""


import pytest

from vlan_nats.lab.checks import ping, wait_until
from vlan_nats.lab.hosts import Lab, Namespace, Node
from vlan_nats.lab.proc import all_lines


def wait_exit(node: Node, timeout: float = 10.0) -> int:
    assert node.proc is not None
    rc = node.proc.wait(timeout)
    all_lines(node.proc)
    return rc


def error_lines(node: Node) -> list[str]:
    return [line for line in node.lines if line.startswith("vlan-nats up: error:")]


@pytest.mark.parametrize("run", range(3))  # it raced: 1 run in 3 said EBADFD
def test_ip_link_del_is_one_clear_line(run, dataplane):
    with Lab(1, dataplane=dataplane, tag="vnl") as lab:
        h1 = lab.nodes[0]
        h1.ns.run("ip", "link", "del", h1.dev)
        assert wait_exit(h1) == 1
        assert error_lines(h1) == [f"vlan-nats up: error: device {h1.dev} was deleted"]
        assert not any("Traceback" in line or "bad state" in line for line in h1.lines)


@pytest.mark.parametrize("run", range(2))
def test_ip_netns_del_is_one_clear_line(run, dataplane):
    with Lab(2, dataplane=dataplane, tag="vnl") as lab:
        h1, h2 = lab.nodes
        name = h1.ns.name
        assert ping(h2.ns, h1.ip, count=1).ok
        h1.ns.run("ip", "netns", "del", name, check=False)
        h1.ns.alive = False
        assert wait_exit(h1) == 1
        assert error_lines(h1) == [f"vlan-nats up: error: namespace {name} was deleted"]
        # Our sockets held it; with the daemon gone, the namespace (and the
        # TAP in it) are gone too.
        assert not Namespace.exists(name)


def test_enslaved_without_bridge_mode_is_warned(dataplane):
    with Lab(1, dataplane=dataplane, tag="vnl") as lab:
        h1 = lab.nodes[0]
        br = f"{lab.prefix}br"
        h1.ns.run("ip", "link", "add", br, "type", "bridge")
        h1.ns.run("ip", "link", "set", h1.dev, "master", br)
        wait_until(lambda: any(f"port of bridge {br}" in x for x in h1.lines), 5)
        warned = [line for line in h1.lines if f"port of bridge {br}" in line]
        assert len(warned) == 1 and " WARNING " in warned[0], h1.lines[-3:]
        assert f"--bridge {br}" in warned[0]
        assert h1.status()["foreign_bridge"] == br
        # Leaving the bridge is news too (and not a deleted device: the bridge
        # driver reports it as an RTM_DELLINK of family AF_BRIDGE).
        h1.ns.run("ip", "link", "set", h1.dev, "nomaster")
        wait_until(lambda: any(f"left bridge {br}" in x for x in h1.lines), 5)
        assert h1.status()["foreign_bridge"] is None
        assert h1.proc.poll() is None and any(f"left bridge {br}" in x for x in h1.lines)


def test_mtu_mismatch_is_said_by_the_receiver(dataplane):
    with Lab(2, dataplane=dataplane, tag="vnl") as lab:
        h1, h2 = lab.nodes
        h1.ns.run("ip", "link", "set", "dev", h1.dev, "mtu", "9000")
        assert not ping(h1.ns, h2.ip, count=1, deadline=2, size=8000).ok
        wait_until(lambda: any("frame too large for our MTU" in x for x in h2.lines), 5)
        said = [x for x in h2.lines if "frame too large for our MTU" in x]
        assert said and "mtu=1500" in said[0] and "same MTU" in said[0], h2.lines[-3:]
        assert h2.status()["counters"]["drops"]["oversize"] >= 1
