/* NATS -> TAP, on libnats' (single) delivery thread: open, check the wire
 * format (core/wire.py, core/vnet.py), apply the ingress verdict table,
 * learn the source, write the TAP. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "vn_dp.h"

/* -- NATS -> TAP ------------------------------------------------------------ */
static int check_vnet(const unsigned char *h, size_t frame_len, unsigned int max_frame)
{
    int flags = h[0], gso = h[1] & ~0x80;
    if (flags & ~3)
        return VN_D_VNET;
    if (flags & 1) {
        unsigned int start = h[6] | h[7] << 8, off = h[8] | h[9] << 8;
        if (start < ETH_HLEN || start + off + 2 > frame_len)
            return VN_D_VNET;
    }
    if (gso == 0) {
        if (h[1] & 0x80)
            return VN_D_VNET;
        return frame_len > max_frame ? VN_D_OVERSIZE : -1;
    }
    if ((gso != 1 && gso != 4 && gso != 5) || !(flags & 1))
        return VN_D_VNET;
    unsigned int size = h[4] | h[5] << 8, hdr_len = h[2] | h[3] << 8;
    if (size == 0 || hdr_len > frame_len || frame_len > MAX_FRAME)
        return VN_D_VNET;
    return -1;
}

/* core/wire.py check() and check_raw(): -1 or a drop reason. */
static int check_wire(const unsigned char *m, size_t n, int compat, unsigned int max_frame)
{
    if (n == 0)
        return VN_D_EMPTY;
    if (compat) {
        if (n < ETH_HLEN)
            return VN_D_RUNT;
        return n > max_frame ? VN_D_OVERSIZE : -1;
    }
    if (n < 2)
        return VN_D_SHORT;
    if (m[0] != VN_VERSION)
        return VN_D_VERSION;
    if (m[1] & VN_FLAG_SEALED)
        return VN_D_SEALED_NO_KEY;
    if (m[1] & ~VN_FLAG_VNET)
        return VN_D_FLAGS;
    if (m[1] & VN_FLAG_VNET) {
        if (n < 2 + VNET)
            return VN_D_SHORT;
        if (n - 2 - VNET < ETH_HLEN)
            return VN_D_RUNT;
        return check_vnet(m + 2, n - 2 - VNET, max_frame);
    }
    if (n - 2 < ETH_HLEN)
        return VN_D_RUNT;
    return n - 2 > max_frame ? VN_D_OVERSIZE : -1;
}

static void deliver(vn_dp *dp, const char *subject, const unsigned char *data, size_t n)
{
    unsigned int max_frame = atomic_load(&dp->max_frame);
    int reason = check_wire(data, n, dp->compat, max_frame);
    size_t off = dp->compat ? 0 : (n > 1 && data[1] & VN_FLAG_VNET) ? 2 + VNET : 2;
    int vnet = !dp->compat && n > 1 && (data[1] & VN_FLAG_VNET);
    if (reason < 0) {
        const unsigned char *dst = data + off, *src = data + off + 6;
        double now = vn_mono();
        pthread_rwlock_rdlock(&dp->cfg);
        int own_src = !memcmp(src, dp->mac, 6), own_dst = !memcmp(dst, dp->mac, 6);
        int flooded = !strcmp(subject, dp->flood);
        signed char table[8];
        memcpy(table, dp->ingress, 8);
        pthread_rwlock_unlock(&dp->cfg);
        if (own_src) {
            reason = VN_D_DUP_MAC;
            vn_drop_event(dp, VN_D_DUP_MAC, 0, subject, VN_D_COUNT, NULL);
        } else {
            /* Learn the source; one we served behind our bridge has moved. */
            int added, moved = 0, served = 0;
            uint64_t sk = mac_key(src), dk = mac_key(dst);
            pthread_mutex_lock(&dp->tab);
            /* Bounded (core.switching.remote_limit): a new MAC beyond the
             * limit forgets the others; unicast to them floods a little. */
            if (dp->remote.count >= dp->remote_limit && mtab_find(&dp->remote, sk) < 0)
                mtab_clear(&dp->remote);
            int i = mtab_put(&dp->remote, sk, &added);
            if (i >= 0)
                dp->remote.seen[i] = now;
            if (added) {
                int j = mtab_find(&dp->local, sk);
                if (j >= 0 && dp->local.state[j] != L_PINNED) {
                    mtab_del_at(&dp->local, (unsigned int)j);
                    moved = 1;
                }
            }
            if (!(dst[0] & 1) && !own_dst) {
                int j = mtab_find(&dp->local, dk);
                served = j >= 0 && dp->local.state[j] != L_OVER_CAP;
            }
            pthread_mutex_unlock(&dp->tab);
            if (moved)
                vn_push_event(dp, EV_MOVED_REMOTE, 0, 0, src, NULL);
            int cls = dst[0] & 1 ? 0 : own_dst ? 1 : served ? 2 : 3;
            reason = table[cls * 2 + flooded];
        }
    }
    if (reason >= 0) {
        DROP(dp, reason);
        /* An oversized frame names its sender (its source MAC): the control
         * plane tells that node its frames exceed our MTU. */
        const unsigned char *src = reason == VN_D_OVERSIZE && n >= off + ETH_HLEN
                                       ? data + off + 6 : NULL;
        if (reason == VN_D_OVERSIZE || reason == VN_D_SEALED_NO_KEY)
            vn_drop_event(dp, reason, (long long)n, subject, reason, src);
        return;
    }
    const unsigned char *dst = data + off;
    int kind = !(dst[0] & 1) ? 0 : (dst[0] & dst[1] & dst[2] & dst[3] & dst[4] & dst[5]) == 0xff
                                       ? 1 : 2;
    INC(dp, C_RX_KIND + kind, 1);
    INC(dp, C_RX_BYTES_KIND + kind, n - off);
    static const unsigned char zero[VNET];
    ssize_t w;
    if (vnet) {
        w = write(dp->tap, data + 2, n - 2);
    } else {
        struct iovec iov[2] = {{(void *)zero, VNET}, {(void *)(data + off), n - off}};
        w = writev(dp->tap, iov, 2);
    }
    if (w < 0) {
        DROP(dp, errno == EIO ? VN_D_TAP_DOWN : VN_D_TAP_WRITE);
        return;
    }
    INC(dp, C_TAP_TX_FRAMES, 1);
    INC(dp, C_TAP_TX_BYTES, n - off);
}

/* Sealed messages are opened into a buffer of the receiving thread's own
 * (the datapath thread; allocated on first use). */
static pthread_key_t rxbuf_key;
static pthread_once_t rxbuf_once = PTHREAD_ONCE_INIT;

static void rxbuf_key_make(void) { pthread_key_create(&rxbuf_key, free); }

static unsigned char *rxbuf(void)
{
    pthread_once(&rxbuf_once, rxbuf_key_make);
    unsigned char *b = pthread_getspecific(rxbuf_key);
    if (!b && (b = malloc(SEAL_SLOT)))
        pthread_setspecific(rxbuf_key, b);
    return b;
}

/* One received message, to the TAP or a counted drop.  The caller keeps
 * the message (and destroys it). */
void vn_rx(vn_dp *dp, natsMsg *msg)
{
    if (atomic_load(&dp->stopping))
        return;
    const unsigned char *data = (const unsigned char *)natsMsg_GetData(msg);
    size_t n = (size_t)natsMsg_GetDataLength(msg);
    const char *subject = natsMsg_GetSubject(msg);
    INC(dp, C_NATS_RX_MSGS, 1);
    pthread_rwlock_rdlock(&dp->cfg);
    vn_opener *opener = dp->opener;
    if (opener) {
        int refused = -1, stale = 0;
        if (n < 2 || !(data[1] & VN_FLAG_SEALED)) {
            refused = VN_D_UNSEALED;
        } else if (n > SEAL_SLOT) {
            refused = VN_D_OVERSIZE;
        } else {
            unsigned char *buf = rxbuf();
            int r = buf ? vn_opener_open(opener, subject, data, (unsigned int)n, vn_wall(), buf,
                                         &stale)
                        : -ENOMEM;
            if (r >= 0) {
                data = buf;
                n = (size_t)r;
            } else {
                refused = r <= -1000 ? -r - 1000 : VN_D_SEAL_AUTH;
            }
        }
        if (refused >= 0) {
            pthread_rwlock_unlock(&dp->cfg);
            DROP(dp, refused);
            long long value = refused == VN_D_SEAL_STALE ? stale
                              : n > 2 ? (long long)((const unsigned char *)natsMsg_GetData(msg))[2]
                                      : -1;
            vn_drop_event(dp, refused, value, subject, refused, NULL);
            return;
        }
    }
    pthread_rwlock_unlock(&dp->cfg);
    /* The opener is replaced only under the write lock. */
    if (atomic_load_explicit(&dp->blocked, memory_order_relaxed))
        DROP(dp, VN_D_NO_KEY);  /* a sealed network and no key here */
    else
        deliver(dp, subject, data, n);
}

void vn_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    vn_rx(closure, msg);
    natsMsg_Destroy(msg);
}

