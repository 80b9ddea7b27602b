"""Three real VMs on a private L2 network, provisioned like the Vagrantfile
(scripts/provision.sh through the systemd units), then checked.  The entry
point is scripts/vmlab.py; its docstring tells the whole story.

``run_lab`` builds (or reuses) the image, boots three QEMU VMs under
software emulation on a bridge inside a namespace, provisions them, runs
the checks and always tears everything down.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .vmimage import build_image, build_payload, ensure_tools, log, run

QEMU = ["-accel", "tcg,tb-size=128", "-M", "q35", "-m", "256", "-smp", "1"]
UNDERLAY = "198.18.200"
OVERLAY = "198.18.201"
NETWORK = "lab"


class Agent:
    """Talks to the agent of one VM over its second serial port."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock: socket.socket | None = None
        self._buf = b""
        self._n = 0

    def connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(self.path))
                self.sock = s
                break
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def call(
        self, cmd: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> dict[str, Any]:
        assert self.sock is not None
        self._n += 1
        req = {"id": self._n, "cmd": cmd, "timeout": timeout, "env": env or {}}
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        self.sock.settimeout(timeout + 30)
        while True:
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                try:
                    rep = json.loads(line)
                except ValueError:
                    continue
                if rep.get("id") == self._n:
                    return rep  # type: ignore[no-any-return]
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("agent connection closed")
            self._buf += chunk

    def sh(self, cmd: str, timeout: float = 300, env: dict[str, str] | None = None) -> str:
        rep = self.call(cmd, timeout, env)
        if rep["rc"] != 0:
            raise RuntimeError(
                f"{cmd!r} failed rc={rep['rc']}: {rep['err'][-2000:]}{rep['out'][-500:]}"
            )
        return str(rep["out"])

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self.connect(timeout)
        while True:
            # The guest only answers once its agent runs; until then bytes sit
            # in the serial FIFO or are lost, so ask again.
            self._n += 1
            req = {"id": self._n, "cmd": "echo up", "timeout": 10}
            assert self.sock is not None
            self.sock.sendall(json.dumps(req).encode() + b"\n")
            self.sock.settimeout(3)
            try:
                while b"\n" not in self._buf:
                    self._buf += self.sock.recv(65536)
                line, self._buf = self._buf.split(b"\n", 1)
                if json.loads(line).get("out", "").strip() == "up":
                    return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"agent {self.path} did not answer in {timeout:.0f} s")


class Lab:
    def __init__(self, work: Path, img: Path, kernel: Path, initrd: Path, payload: Path) -> None:
        self.work = work
        self.ns = f"vmlab{os.getpid()}"
        self.img, self.kernel, self.initrd, self.payload = img, kernel, initrd, payload
        self.procs: list[subprocess.Popen[bytes]] = []
        self.agents: list[Agent] = []

    def start(self, n: int = 3) -> None:
        ns = self.ns
        run("ip", "netns", "add", ns)
        run("ip", "-n", ns, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", ns, "link", "set", "br0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        for i in range(1, n + 1):
            tap = f"vmtap{i}"
            run("ip", "-n", ns, "tuntap", "add", "dev", tap, "mode", "tap")
            run("ip", "-n", ns, "link", "set", tap, "master", "br0", "up")
            disk = self.work / f"vm{i}.qcow2"
            run(
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(self.img),
                str(disk),
            )
            sock = self.work / f"vm{i}.agent"
            append = (
                f"root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet "
                f"vn.hostname=vm{i} vn.addr={UNDERLAY}.{10 + i}/24"
            )
            cmd = [
                "ip", "netns", "exec", ns, "qemu-system-x86_64", *QEMU,
                "-display", "none", "-monitor", "none", "-nodefaults",
                "-kernel", str(self.kernel), "-initrd", str(self.initrd), "-append", append,
                "-drive", f"file={disk},if=virtio,format=qcow2",
                "-drive", f"file={self.payload},if=virtio,format=raw,readonly=on",
                "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no",
                "-device", f"virtio-net-pci,netdev=n0,mac=52:54:00:c6:c8:{10 + i:02x}",
                "-chardev", f"file,id=con,path={self.work / f'vm{i}.console.log'}",
                "-serial", "chardev:con",
                "-chardev", f"socket,id=agt,path={sock},server=on,wait=off",
                "-serial", "chardev:agt",
            ]  # fmt: skip
            out = open(self.work / f"vm{i}.qemu.log", "wb")  # noqa: SIM115 - closed with the process
            self.procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
            self.agents.append(Agent(sock))

    def wait_booted(self, timeout: float) -> float:
        t0 = time.monotonic()
        errors: list[BaseException] = []

        def one(a: Agent) -> None:
            try:
                a.wait_ready(timeout)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=one, args=(a,)) for a in self.agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"qemu exited with {p.returncode}: see {self.work}/vm*.qemu.log")
        if errors:
            raise errors[0]
        return time.monotonic() - t0

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for a in self.agents:
            if a.sock is not None:
                a.sock.close()
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)


# -- the checks -------------------------------------------------------------


def provision(lab: Lab) -> dict[str, float]:
    """vm1 (hub and node) first, then the other nodes side by side."""
    times: dict[str, float] = {}
    errors: list[BaseException] = []
    hub = f"{UNDERLAY}.11"

    def one(i: int, a: Agent) -> None:
        env = {
            "VN_ROLE": "hub" if i == 1 else "node",
            "VN_HUB": hub,
            "VN_ADDRESS": f"{OVERLAY}.{i}/24",
            "VN_NETWORK": NETWORK,
            "VN_TOKEN_FILE": "/mnt/lab/token",
            "VN_SRC": "/mnt/lab",
        }
        t0 = time.monotonic()
        try:
            out = a.sh("bash /mnt/lab/scripts/provision.sh", timeout=900, env=env)
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller
            errors.append(e)
            return
        times[f"vm{i}"] = time.monotonic() - t0
        log(f"vm{i} provisioned in {times[f'vm{i}']:.0f} s: {out.strip().splitlines()[-1]}")

    one(1, lab.agents[0])
    threads = [
        threading.Thread(target=one, args=(i, a)) for i, a in enumerate(lab.agents[1:], start=2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return dict(sorted(times.items()))


def ping_ok(a: Agent, target: str, count: int = 3) -> tuple[bool, str]:
    rep = a.call(f"ping -n -c {count} -i 0.3 -W 2 {target}", timeout=60)
    m = re.search(r"rtt min/avg/max/mdev = [\d.]+/([\d.]+)/", rep["out"])
    return rep["rc"] == 0, f"{m.group(1)} ms" if m else "lost"


Check = tuple[str, bool, str]


def checks(lab: Lab, transfer_mb: int) -> list[Check]:
    """Every check of the lab, in order: pings, a TCP transfer, a hub restart."""
    agents = lab.agents
    return [*_pings(agents), _transfer(agents, transfer_mb), _hub_restart(agents)]


def _pings(agents: list[Agent]) -> list[Check]:
    """IPv4 and IPv6 link-local, every ordered pair."""
    results: list[Check] = []
    n = len(agents)
    for i in range(n):
        for j in range(n):
            if i != j:
                # The first ping of a pair also resolves ARP: allow a retry.
                ok, detail = ping_ok(agents[i], f"{OVERLAY}.{j + 1}")
                if not ok:
                    ok, detail = ping_ok(agents[i], f"{OVERLAY}.{j + 1}")
                results.append((f"IPv4 vm{i + 1} -> vm{j + 1}", ok, detail))
    ll = []
    for a in agents:
        out = a.sh("ip -6 -o addr show dev vnats0 scope link")
        m = re.search(r"inet6 (fe80::[0-9a-f:]+)/64", out)
        ll.append(m.group(1) if m else "")
    for i in range(n):
        for j in range(n):
            if i != j:
                ok, detail = ping_ok(agents[i], f"{ll[j]}%vnats0")
                results.append((f"IPv6 link-local vm{i + 1} -> vm{j + 1}", ok, detail))
    return results


def _transfer(agents: list[Agent], transfer_mb: int) -> Check:
    """TCP with checksums: vm2 -> vm3 (through the hub on vm1)."""
    xfer = "/opt/vlan-nats/bin/python -m vlan_nats.lab.xfer"
    rx, tx = agents[2], agents[1]
    rx.sh(f"(nohup {xfer} recv {OVERLAY}.3 5201 > /tmp/rx.json 2>&1 &) ; sleep 3", timeout=30)
    t0 = time.monotonic()
    sent = json.loads(tx.sh(f"{xfer} send {OVERLAY}.3 5201 {transfer_mb}", timeout=600))
    got = {}
    for _ in range(30):
        text = rx.sh("cat /tmp/rx.json")
        if text.strip():
            got = json.loads(text.strip().splitlines()[-1])
            break
        time.sleep(1)
    secs = time.monotonic() - t0
    ok = bool(got) and sent.get("sha256") == got.get("sha256")
    mbit = transfer_mb * 8 * 1.048576 / float(sent.get("seconds", secs) or secs)
    return (
        f"TCP {transfer_mb} MiB vm2 -> vm3, SHA-256",
        ok,
        f"{mbit:.1f} Mbit/s, sha256 {'match' if ok else 'MISMATCH'}",
    )


def _hub_restart(agents: list[Agent]) -> Check:
    """The hub restarted: traffic resumes."""
    a1, a2 = agents[0], agents[1]
    a2.sh(
        f"(nohup ping -n -D -i 0.2 -W 1 {OVERLAY}.3 > /tmp/ping.log 2>&1 &) ; sleep 2", timeout=30
    )
    t_restart = time.time()
    a1.sh("systemctl restart vlan-nats-hub", timeout=120)
    deadline = time.monotonic() + 90
    resumed = None
    while time.monotonic() < deadline:
        log_text = a2.sh("cat /tmp/ping.log")
        stamps = [float(s) for s in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", log_text, re.M)]
        after = [s for s in stamps if s > t_restart + 0.5]
        if after:
            resumed = after[0] - t_restart
            break
        time.sleep(1)
    a2.call("pkill -INT ping")
    return (
        "hub restarted, vm2 -> vm3 traffic resumes",
        resumed is not None,
        f"first reply {resumed:.1f} s after the restart" if resumed is not None
        else "no reply in 90 s",
    )  # fmt: skip


def run_lab(
    root: Path, transfer_mb: int, rebuild_image: bool, keep: bool
) -> tuple[list[tuple[str, bool, str]], float, dict[str, float], float]:
    """(checks, boot seconds, provisioning seconds per step, total seconds).
    The work directory (consoles, logs) is kept with ``keep`` or on failure."""
    ensure_tools()
    t_all = time.monotonic()
    img, kernel, initrd = build_image(rebuild_image)
    work = Path(tempfile.mkdtemp(prefix="vmlab-"))
    lab = None
    # Ctrl-C and SIGTERM both end in the finally below.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        token = hashlib.sha256(os.urandom(32)).hexdigest()
        payload = build_payload(work, token, root)
        lab = Lab(work, img, kernel, initrd, payload)
        lab.start()
        boot = lab.wait_booted(timeout=300)
        log(f"3 VMs answer {boot:.0f} s after start")
        prov = provision(lab)
        results = checks(lab, transfer_mb)
    except BaseException:
        log(f"FAILED; logs in {work}")
        keep = True
        raise
    finally:
        if lab is not None:
            lab.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return results, boot, prov, time.monotonic() - t_all
