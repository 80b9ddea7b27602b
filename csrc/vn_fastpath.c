/* vlan-nats fast path: TAP open, offload negotiation and batched frame I/O.
 *
 * Flow: the asyncio layer sees the TAP fd readable -> one vn_read_batch()
 * drains up to N frames into preallocated slots -> Python picks subjects
 * and publishes.  In the other direction Python copies received frames
 * into one buffer per loop turn -> one vn_write_batch() writes them all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "vn_fastpath.h"

#ifndef IFF_TUN_EXCL
#define IFF_TUN_EXCL 0x8000
#endif
/* USO arrived in Linux 6.2 (include/uapi/linux/if_tun.h); older headers
 * lack the names but the values are fixed ABI. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif

const int VN_IFNAMSIZ = IFNAMSIZ;
const unsigned long VN_TUNSETIFF = TUNSETIFF;
const unsigned long VN_TUNSETOFFLOAD = TUNSETOFFLOAD;
const unsigned long VN_TUNSETVNETHDRSZ = TUNSETVNETHDRSZ;
const unsigned int VN_IFF_TAP = IFF_TAP;
const unsigned int VN_IFF_NO_PI = IFF_NO_PI;
const unsigned int VN_IFF_VNET_HDR = IFF_VNET_HDR;
const unsigned int VN_IFF_TUN_EXCL = IFF_TUN_EXCL;
const unsigned int VN_CLONE_NEWNET = CLONE_NEWNET;
/* We always use the 12-byte header: it is the size virtio 1.0 mandates and
 * the one QEMU and vhost use; 10 vs 12 mismatches lose every frame. */
const int VN_VNET_HDR_LEN = (int)sizeof(struct virtio_net_hdr_mrg_rxbuf);
const unsigned int VN_TUN_F_CSUM = TUN_F_CSUM;
const unsigned int VN_TUN_F_TSO4 = TUN_F_TSO4;
const unsigned int VN_TUN_F_TSO6 = TUN_F_TSO6;
const unsigned int VN_TUN_F_TSO_ECN = TUN_F_TSO_ECN;
const unsigned int VN_TUN_F_USO4 = TUN_F_USO4;
const unsigned int VN_TUN_F_USO6 = TUN_F_USO6;

int vn_tap_open(const char *name, int vnet_hdr, char *name_out)
{
    struct ifreq ifr;
    int fd, err;

    fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;

    memset(&ifr, 0, sizeof(ifr));
    /* IFF_TUN_EXCL: fail with EBUSY instead of attaching to an existing
     * (persistent) device of the same name. */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL;
    if (vnet_hdr)
        ifr.ifr_flags |= IFF_VNET_HDR;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        goto fail;

    if (vnet_hdr) {
        int sz = (int)sizeof(struct virtio_net_hdr_mrg_rxbuf);
        if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
            goto fail;
    }
    memcpy(name_out, ifr.ifr_name, IFNAMSIZ);
    return fd;

fail:
    err = errno;
    close(fd);
    return -err;
}

int vn_tap_set_offload(int fd, unsigned int flags)
{
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0)
        return -errno;
    return 0;
}

int vn_setns_net(int fd)
{
    if (setns(fd, CLONE_NEWNET) < 0)
        return -errno;
    return 0;
}

int vn_read_batch(int fd, unsigned char *buf, unsigned int slot,
                  unsigned int offset, unsigned int cap, unsigned int max,
                  unsigned int *lens)
{
    unsigned int i = 0;

    while (i < max) {
        ssize_t n = read(fd, buf + (size_t)i * slot + offset, cap);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || i > 0)
                break;
            return -errno;
        }
        lens[i++] = (unsigned int)n;
    }
    return (int)i;
}

int vn_write_batch(int fd, const unsigned char *buf, const unsigned int *offs,
                   const unsigned int *lens, unsigned int n, int *errs)
{
    unsigned int i;
    int ok = 0;

    for (i = 0; i < n; i++) {
        ssize_t w;
        do {
            w = write(fd, buf + offs[i], lens[i]);
        } while (w < 0 && errno == EINTR);
        if (w < 0) {
            errs[i] = errno;
        } else {
            errs[i] = 0;
            ok++;
        }
    }
    return ok;
}
