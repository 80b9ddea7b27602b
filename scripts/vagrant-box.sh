#!/usr/bin/env bash
# Build a vagrant-libvirt box for machines without hardware virtualisation
# and without internet in the guests (see docs/multi-vm.md), and add it as
# "vlan-nats-lab":
#
#   sudo scripts/vagrant-box.sh [OUTDIR]        # ~2 minutes; default OUTDIR /var/cache/vlan-nats-vmlab/box
#
# With it, `vagrant up` of the three VMs took 12 min 22 s on a 2-vCPU machine
# without hardware virtualisation (docs/multi-vm.md lists the libvirt set-up
# that needs).
#
# Debian bookworm (debootstrap minbase) with systemd-networkd (a catch-all DHCP
# .network that sorts after Vagrant's 50-vagrant-*.network), openssh-server,
# sudo, rsync, python3-venv, the cloud kernel, a "vagrant" user with Vagrant's
# insecure key, and an empty /etc/machine-id (else every VM gets the same
# DHCP lease and the same vlan-nats MAC). The kernel boots directly (no
# bootloader) under QEMU's software emulation, its console written to a file.
set -euo pipefail

OUT=${1:-/var/cache/vlan-nats-vmlab/box}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PUBKEY=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -1 || true)
[ -n "$PUBKEY" ] || { echo "vagrant-box.sh: vagrant's keys/vagrant.pub not found (apt install vagrant)" >&2; exit 1; }

mkdir -p "$OUT"
root=$(mktemp -d /var/tmp/vlan-nats-box.XXXXXX)
cleanup() {
  grep " $root" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l || true
  rm -rf "$root"
}
trap cleanup EXIT

debootstrap --variant=minbase \
  --include=systemd,systemd-sysv,udev,kmod,iproute2,iputils-ping,procps,python3,python3-venv,openssh-server,sudo,rsync,linux-image-cloud-amd64 \
  bookworm "$root" "$MIRROR" >/dev/null
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
echo "/dev/vda / ext4 rw,relatime 0 1" > "$root/etc/fstab"
echo vagrant > "$root/etc/hostname"
cat > "$root/etc/systemd/network/99-dhcp.network" <<'EOF'
[Match]
Name=eth*
[Network]
DHCP=yes
EOF
chroot "$root" systemctl enable -q systemd-networkd
chroot "$root" useradd -m -s /bin/bash vagrant
echo "vagrant ALL=(ALL) NOPASSWD: ALL" > "$root/etc/sudoers.d/vagrant"
chmod 440 "$root/etc/sudoers.d/vagrant"
install -d -m 700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
install -m 600 -o 1000 -g 1000 "$PUBKEY" "$root/home/vagrant/.ssh/authorized_keys"
echo "UseDNS no" > "$root/etc/ssh/sshd_config.d/vagrant.conf"
# libvirt runs QEMU as libvirt-qemu, which cannot read ~/.vagrant.d: the
# kernel and initrd go where it can.
BOOT=/var/lib/libvirt/boot/vlan-nats-lab
install -d -m 755 "$BOOT"
install -m 644 "$root"/boot/vmlinuz-* "$BOOT/vmlinuz"
install -m 644 "$root"/boot/initrd.img-* "$BOOT/initrd.img"
rm -f "$root"/var/cache/apt/archives/*.deb

mke2fs -q -t ext4 -d "$root" -L root "$OUT/root.raw" 2G
qemu-img convert -O qcow2 "$OUT/root.raw" "$OUT/box.img"
rm -f "$OUT/root.raw"
cat > "$OUT/metadata.json" <<'EOF'
{"provider": "libvirt", "format": "qcow2", "virtual_size": 2}
EOF
cat > "$OUT/Vagrantfile" <<'EOF'
# The box's defaults: direct kernel boot under software emulation.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = "qemu"
    lv.cpu_mode = "custom"
    lv.cpu_model = "qemu64"
    lv.memory = 512
    lv.kernel = "/var/lib/libvirt/boot/vlan-nats-lab/vmlinuz"
    lv.initrd = "/var/lib/libvirt/boot/vlan-nats-lab/initrd.img"
    lv.cmd_line = "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
    lv.graphics_type = "none"
    lv.video_type = "none"
    # The console must be read or the guest stalls: run vagrant with
    # VN_CONSOLE_DIR set, and the project's Vagrantfile writes it to a file.
  end
end
EOF
(cd "$OUT" && tar cf vlan-nats-lab.box metadata.json Vagrantfile box.img)
vagrant box add -f --name vlan-nats-lab "$OUT/vlan-nats-lab.box"
echo "vagrant-box.sh: box vlan-nats-lab added ($(du -h "$OUT/vlan-nats-lab.box" | cut -f1))"
