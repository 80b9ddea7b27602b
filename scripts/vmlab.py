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
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("VMLAB_CACHE", "/var/cache/vlan-nats-vmlab"))
SUITE = "bookworm"
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "udev",
    "kmod",
    "iproute2",
    "iputils-ping",
    "procps",
    "python3",
    "python3-venv",
    "linux-image-cloud-amd64",
]
QEMU = ["-accel", "tcg,tb-size=128", "-M", "q35", "-m", "256", "-smp", "1"]
UNDERLAY = "198.18.200"
OVERLAY = "198.18.201"
NETWORK = "lab"
TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "debootstrap": "debootstrap",
    "mke2fs": "e2fsprogs",
}

# The agent inside each VM: reads one JSON command per line from /dev/ttyS1
# (raw mode), runs it with bash, answers one JSON line.  Also brings up the
# underlay from vn.* kernel parameters and mounts the lab disk.
AGENT = r"""#!/usr/bin/python3
import json, os, subprocess, termios, tty
cmdline = dict(a.split("=", 1) for a in open("/proc/cmdline").read().split() if "=" in a)
subprocess.run(["hostname", cmdline.get("vn.hostname", "vm")])
subprocess.run(["ip", "link", "set", "lo", "up"])
subprocess.run(["ip", "link", "set", "eth0", "up"])
if "vn.addr" in cmdline:
    subprocess.run(["ip", "addr", "add", cmdline["vn.addr"], "dev", "eth0"])
os.makedirs("/mnt/lab", exist_ok=True)
subprocess.run(["mount", "-o", "ro", "/dev/vdb", "/mnt/lab"])
fd = os.open("/dev/ttyS1", os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
attrs = termios.tcgetattr(fd)
attrs[4] = attrs[5] = termios.B115200
termios.tcsetattr(fd, termios.TCSANOW, attrs)
f = os.fdopen(fd, "r+b", buffering=0)
buf = b""
while True:
    chunk = f.read(4096)
    if not chunk:
        continue
    buf += chunk
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        try:
            req = json.loads(line)
        except ValueError:
            continue
        try:
            env = dict(os.environ, **req.get("env", {}))
            r = subprocess.run(["bash", "-c", req["cmd"]], capture_output=True, text=True,
                               timeout=req.get("timeout", 300), env=env)
            rep = {"id": req.get("id"), "rc": r.returncode,
                   "out": r.stdout[-20000:], "err": r.stderr[-20000:]}
        except subprocess.TimeoutExpired:
            rep = {"id": req.get("id"), "rc": -1, "out": "", "err": "timeout"}
        f.write(json.dumps(rep).encode() + b"\n")
"""
AGENT_UNIT = """[Unit]
Description=vmlab agent (commands over /dev/ttyS1)
After=systemd-udevd.service local-fs.target
[Service]
ExecStart=/usr/local/sbin/vmlab-agent
Restart=always
[Install]
WantedBy=multi-user.target
"""


def log(msg: str) -> None:
    print(f"vmlab: {msg}", file=sys.stderr, flush=True)


def run(*argv: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload]


def ensure_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        log(f"installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )


def mirror() -> str:
    for path in Path("/etc/apt/sources.list.d").glob("*.sources"):
        m = re.search(r"^URIs:\s*(\S+/debian)\s*$", path.read_text(), re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


# -- the image --------------------------------------------------------------


def build_image(rebuild: bool) -> tuple[Path, Path, Path]:
    """(disk image, kernel, initrd), built once and cached."""
    key = hashlib.sha256((SUITE + " ".join(PACKAGES) + AGENT + AGENT_UNIT).encode()).hexdigest()
    d = CACHE / f"image-{key[:12]}"
    img, kernel, initrd = d / "rootfs.img", d / "vmlinuz", d / "initrd.img"
    if img.exists() and kernel.exists() and initrd.exists() and not rebuild:
        log(f"image cached: {img}")
        return img, kernel, initrd
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    try:
        return _build_image(d, img, kernel, initrd)
    except BaseException:
        # debootstrap mounts /proc and /sys inside the tree while it works.
        for line in reversed(Path("/proc/mounts").read_text().splitlines()):
            mnt = line.split()[1]
            if mnt.startswith(str(d)):
                subprocess.run(["umount", "-l", mnt], check=False)
        shutil.rmtree(d, ignore_errors=True)
        raise


def _build_image(d: Path, img: Path, kernel: Path, initrd: Path) -> tuple[Path, Path, Path]:
    root = d / "root"
    t0 = time.monotonic()
    log(f"debootstrap {SUITE} from {mirror()} (about 100 s) ...")
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            SUITE,
            str(root),
            mirror(),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (root / "etc/hostname").write_text("vm\n")
    (root / "etc/machine-id").write_text("")  # each VM makes its own on first boot
    with contextlib.suppress(FileNotFoundError):
        (root / "var/lib/dbus/machine-id").unlink()
    (root / "etc/fstab").write_text("/dev/vda / ext4 rw,relatime 0 1\n")
    agent = root / "usr/local/sbin/vmlab-agent"
    agent.write_text(AGENT)
    agent.chmod(0o755)
    (root / "etc/systemd/system/vmlab-agent.service").write_text(AGENT_UNIT)
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "vmlab-agent.service").symlink_to("/etc/systemd/system/vmlab-agent.service")
    # No password logins at all; the console shows boot messages only.
    run("chroot", str(root), "passwd", "-l", "root")
    for p in (root / "boot").iterdir():
        if p.name.startswith("vmlinuz-"):
            shutil.copy(p, kernel)
        elif p.name.startswith("initrd.img-"):
            shutil.copy(p, initrd)
    for p in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (root / p).glob("*.deb"):
            f.unlink()
    run("mke2fs", "-q", "-t", "ext4", "-d", str(root), "-L", "root", str(img), "1200M")
    shutil.rmtree(root)
    log(f"image built in {time.monotonic() - t0:.0f} s: {img} ({img.stat().st_size >> 20} MiB)")
    return img, kernel, initrd


def build_payload(work: Path, token: str) -> Path:
    """A small disk with the wheelhouse of this checkout and provision.sh."""
    payload = work / "payload"
    wheels = payload / "wheelhouse"
    wheels.mkdir(parents=True)
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (payload / "scripts").mkdir()
    shutil.copy(ROOT / "scripts/provision.sh", payload / "scripts/provision.sh")
    (payload / "token").write_text(token)
    img = work / "payload.img"
    run("mke2fs", "-q", "-t", "ext4", "-d", str(payload), str(img), "256M")
    n = len(list(wheels.iterdir()))
    log(f"wheelhouse: {n} wheels in {time.monotonic() - t0:.0f} s")
    return img


# -- the VMs ----------------------------------------------------------------


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

    def call(self, cmd: str, timeout: float = 300, env: dict[str, str] | None = None) -> dict:
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


def checks(lab: Lab, transfer_mb: int) -> list[tuple[str, bool, str]]:
    results: list[tuple[str, bool, str]] = []
    agents = lab.agents
    n = len(agents)
    # IPv4, every ordered pair.
    for i in range(n):
        for j in range(n):
            if i != j:
                # The first ping of a pair also resolves ARP: allow a retry.
                ok, detail = ping_ok(agents[i], f"{OVERLAY}.{j + 1}")
                if not ok:
                    ok, detail = ping_ok(agents[i], f"{OVERLAY}.{j + 1}")
                results.append((f"IPv4 vm{i + 1} -> vm{j + 1}", ok, detail))
    # IPv6 link-local, every ordered pair.
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
    # TCP with checksums: vm2 -> vm3 (through the hub on vm1).
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
    results.append(
        (
            f"TCP {transfer_mb} MiB vm2 -> vm3, SHA-256",
            ok,
            f"{mbit:.1f} Mbit/s, sha256 {'match' if ok else 'MISMATCH'}",
        )
    )
    # The hub restarted: traffic resumes.
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
    results.append(
        (
            "hub restarted, vm2 -> vm3 traffic resumes",
            resumed is not None,
            f"first reply {resumed:.1f} s after the restart"
            if resumed is not None
            else "no reply in 90 s",
        )
    )
    return results


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
    ensure_tools()
    t_all = time.monotonic()
    img, kernel, initrd = build_image(args.rebuild_image)
    work = Path(tempfile.mkdtemp(prefix="vmlab-"))
    lab = None
    # Ctrl-C and SIGTERM both end in the finally below.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        token = hashlib.sha256(os.urandom(32)).hexdigest()
        payload = build_payload(work, token)
        lab = Lab(work, img, kernel, initrd, payload)
        lab.start()
        boot = lab.wait_booted(timeout=300)
        log(f"3 VMs answer {boot:.0f} s after start")
        prov = provision(lab)
        results = checks(lab, args.transfer_mb)
    except BaseException:
        log(f"FAILED; logs in {work}")
        args.keep = True
        raise
    finally:
        if lab is not None:
            lab.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.monotonic() - t_all
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
