"""The VM lab's image and payload (see vlan_nats/lab/vmlab.py).

The image (cached in /var/cache/vlan-nats-vmlab, or $VMLAB_CACHE): Debian
bookworm from ``debootstrap --variant=minbase`` with systemd, iproute2,
python3-venv and the cloud kernel, plus a small agent that runs commands
sent over a second serial port; about 100 s the first time.  The payload:
a wheelhouse of the checkout and its dependencies (the VMs have no
internet) with scripts/provision.sh, on a small second disk.
"""

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

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
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload, no-any-return]


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
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (root / cache).glob("*.deb"):
            f.unlink()
    run("mke2fs", "-q", "-t", "ext4", "-d", str(root), "-L", "root", str(img), "1200M")
    shutil.rmtree(root)
    log(f"image built in {time.monotonic() - t0:.0f} s: {img} ({img.stat().st_size >> 20} MiB)")
    return img, kernel, initrd


def build_payload(work: Path, token: str, root: Path) -> Path:
    """A small disk with the wheelhouse of this checkout and provision.sh."""
    payload = work / "payload"
    wheels = payload / "wheelhouse"
    wheels.mkdir(parents=True)
    t0 = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(root)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (payload / "scripts").mkdir()
    shutil.copy(root / "scripts/provision.sh", payload / "scripts/provision.sh")
    (payload / "token").write_text(token)
    img = work / "payload.img"
    run("mke2fs", "-q", "-t", "ext4", "-d", str(payload), str(img), "256M")
    n = len(list(wheels.iterdir()))
    log(f"wheelhouse: {n} wheels in {time.monotonic() - t0:.0f} s")
    return img


# -- the VMs ----------------------------------------------------------------
