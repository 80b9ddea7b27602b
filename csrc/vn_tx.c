/* TAP -> NATS: the reader thread (poll, drain, route, learn, publish) and
 * the kick thread that flushes libnats' buffer once the TAP is drained.
 * See vn_datapath.c for the flow. */
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

/* -- TAP -> NATS ------------------------------------------------------------ */
static const char HEX[] = "0123456789abcdef";

/* prefix + the MAC, spelled as the scheme wants. */
static void spell(char *out, const char *prefix, const unsigned char *mac, int style)
{
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    for (int i = 0; i < 6; i++) {
        if (style == 0) {
            out[n++] = HEX[mac[i] >> 4];
            out[n++] = HEX[mac[i] & 15];
        } else {  /* hex of the text "aa:bb:..": each character as 2 hex digits */
            char t[3] = {HEX[mac[i] >> 4], HEX[mac[i] & 15], ':'};
            for (int j = 0; j < (i < 5 ? 3 : 2); j++) {
                out[n++] = HEX[(unsigned char)t[j] >> 4];
                out[n++] = HEX[(unsigned char)t[j] & 15];
            }
        }
    }
    out[n] = 0;
}

int vn_subject(const char *prefix, const unsigned char *mac, int style, char *out,
               unsigned int cap)
{
    if (strlen(prefix) + 40 > cap)
        return -ENAMETOOLONG;
    spell(out, prefix, mac, style);
    return (int)strlen(out);
}

static int storm_allow(vn_dp *dp, double now)
{
    if (dp->storm_rate <= 0)
        return 1;
    double tokens = dp->tokens + (now - dp->storm_last) * dp->storm_rate;
    dp->storm_last = now;
    if (tokens >= 1.0) {
        dp->tokens = (tokens < dp->storm_burst ? tokens : dp->storm_burst) - 1.0;
        return 1;
    }
    dp->tokens = tokens;
    return 0;
}

/* Bridge mode: learn `src` behind our bridge.  A new MAC is an upcall; its
 * frame waits for the verdict (the subscription must reach the server
 * before the frame that reveals the MAC). */
static void learn_local(vn_dp *dp, const unsigned char *src, double now)
{
    uint64_t k = mac_key(src);
    int added;
    pthread_mutex_lock(&dp->tab);
    int i = mtab_find(&dp->local, k);
    if (i >= 0) {
        dp->local.seen[i] = now;
        int over = dp->local.state[i] == L_OVER_CAP;
        pthread_mutex_unlock(&dp->tab);
        if (over)
            INC(dp, C_OVER_CAP, 1);
        return;
    }
    i = mtab_put(&dp->local, k, &added);
    int moved = 0;
    if (i >= 0) {
        dp->local.seen[i] = now;
        dp->local.state[i] = L_PENDING;
        int j = mtab_find(&dp->remote, k);  /* it was on the network until now */
        if (j >= 0) {
            mtab_del_at(&dp->remote, (unsigned int)j);
            moved = 1;
        }
    }
    pthread_mutex_unlock(&dp->tab);
    if (i < 0) {  /* the table itself is full: flooding only */
        INC(dp, C_OVER_CAP, 1);
        return;
    }
    pthread_mutex_lock(&dp->ev_mu);
    int id = ++dp->upcall_id;
    dp->upcall_done = 0;
    pthread_mutex_unlock(&dp->ev_mu);
    vn_push_event(dp, EV_NEW_LOCAL, id, moved, src, NULL);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)UPCALL_WAIT_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&dp->ev_mu);
    while (!dp->upcall_done && !atomic_load(&dp->stopping))
        if (pthread_cond_timedwait(&dp->ev_cond, &dp->ev_mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&dp->ev_mu);
}

static int local_state(vn_dp *dp, const unsigned char *mac)
{
    pthread_mutex_lock(&dp->tab);
    int i = mtab_find(&dp->local, mac_key(mac));
    int st = i >= 0 ? dp->local.state[i] : 0;
    pthread_mutex_unlock(&dp->tab);
    return st;
}

static int remote_known(vn_dp *dp, const unsigned char *mac, double now, double ageing)
{
    pthread_mutex_lock(&dp->tab);
    int i = mtab_find(&dp->remote, mac_key(mac));
    int known = i >= 0 && now - dp->remote.seen[i] <= ageing;
    pthread_mutex_unlock(&dp->tab);
    return known;
}

static void publish(vn_dp *dp, const char *subject, const unsigned char *data, int len,
                    int *ok)
{
    pthread_mutex_lock(&dp->seal_mu);
    if (dp->sealer) {
        int n = vn_sealer_seal(dp->sealer, subject, data, (unsigned int)len,
                               (unsigned int)(uint64_t)vn_wall(), dp->txseal);
        pthread_mutex_unlock(&dp->seal_mu);
        if (n < 0) {
            *ok = 0;
            return;
        }
        data = dp->txseal;
        len = n;
    } else {
        pthread_mutex_unlock(&dp->seal_mu);
    }
    if (natsConnection_Publish(dp->nc, subject, data, len) != NATS_OK)
        *ok = 0;
}

/* One frame at b: 2 bytes of room, the virtio header, the frame. */
static void tx_frame(vn_dp *dp, unsigned char *b, size_t len, char *subject, char *flood)
{
    INC(dp, C_TAP_RX_FRAMES, 1);
    if (len < VNET + ETH_HLEN) {
        INC(dp, C_TAP_RX_BYTES, len > VNET ? len - VNET : 0);
        DROP(dp, VN_D_TAP_RUNT);
        return;
    }
    size_t flen = len - VNET;
    INC(dp, C_TAP_RX_BYTES, flen);
    if (!atomic_load_explicit(&dp->connected, memory_order_relaxed)) {
        DROP(dp, VN_D_DISCONNECTED);
        return;
    }
    unsigned char *vh = b + 2, *f = b + 2 + VNET;
    const unsigned char *payload;
    size_t plen;
    if (dp->compat) {
        payload = f;
        plen = flen;
    } else if (vh[0] == 0 && vh[1] == 0) {
        f[-2] = VN_VERSION;  /* no virtio flags, no GSO: omit the header */
        f[-1] = 0;
        payload = f - 2;
        plen = flen + 2;
    } else {
        if (vh[1]) {
            INC(dp, C_TAP_RX_GSO_FRAMES, 1);
            INC(dp, C_TAP_RX_GSO_BYTES, flen);
        }
        b[0] = VN_VERSION;
        b[1] = VN_FLAG_VNET;
        vh[10] = vh[11] = 0;  /* num_buffers: unused, not written by tun */
        payload = b;
        plen = len + 2;
    }
    const unsigned char *dst = f, *src = f + 6;
    int kind = !(dst[0] & 1) ? 0 : (dst[0] & dst[1] & dst[2] & dst[3] & dst[4] & dst[5]) == 0xff
                                       ? 1 : 2;
    double now = vn_mono();
    pthread_rwlock_rdlock(&dp->cfg);
    int bridge = dp->bridge;
    double ageing = dp->ageing;
    pthread_rwlock_unlock(&dp->cfg);
    if (bridge) {
        learn_local(dp, src, now);
        int st = local_state(dp, dst);
        if (st == L_SERVED || st == L_PINNED || st == L_PENDING) {
            DROP(dp, VN_D_LOCAL_DST);  /* for our own side: the bridge has it */
            return;
        }
    }
    /* Go nodes (compat) know no flood subject. */
    int flood_too = kind == 0 && !dp->compat && !remote_known(dp, dst, now, ageing);
    pthread_rwlock_rdlock(&dp->cfg);
    if ((flood_too || kind != 0) && !storm_allow(dp, now)) {
        pthread_rwlock_unlock(&dp->cfg);
        DROP(dp, VN_D_STORM);
        if (kind != 0)
            return;
        flood_too = 0;
        pthread_rwlock_rdlock(&dp->cfg);
    }
    if (kind == 0)
        spell(subject, dp->ucast, dst, dp->mac_style);
    else if (kind == 1 || !dp->mcast[0])
        strcpy(subject, dp->bcast);
    else
        spell(subject, dp->mcast, dst, dp->mac_style);
    if (flood_too)
        strcpy(flood, dp->flood);
    pthread_rwlock_unlock(&dp->cfg);
    if (kind == 1 && f[12] == 0x08 && f[13] == 0x06)
        vn_arp_route(dp, f, flen, now, subject);  /* rewrites the subject if routed */
    int ok = 1;
    publish(dp, subject, payload, (int)plen, &ok);
    if (ok && flood_too)
        publish(dp, flood, payload, (int)plen, &ok);
    if (!ok) {
        DROP(dp, VN_D_PUBLISH_ERROR);
        return;
    }
    if (flood_too)
        INC(dp, C_FLOODED, 1);
    INC(dp, C_NATS_TX, 1);
    INC(dp, C_TX_KIND + kind, 1);
    INC(dp, C_TX_BYTES_KIND + kind, flen);
}

static void kick(vn_dp *dp)
{
    if (dp->flush != 0)
        return;
    pthread_mutex_lock(&dp->kick_mu);
    if (!dp->kick_wanted) {
        dp->kick_wanted = 1;
        pthread_cond_signal(&dp->kick_cond);
    }
    pthread_mutex_unlock(&dp->kick_mu);
}

#define WRITE_NOW (32 * 1024)
#define OWN_FLUSH 0.001

void *vn_tx_main(void *arg)
{
    vn_dp *dp = arg;
    pthread_setname_np(pthread_self(), dp->evloop == 2 ? "vn-datapath" : "vn-tap-reader");
    char subject[SUBJ + 64], flood[SUBJ];
    int backlog = 0;  /* event loop: the socket is full, stop reading the TAP */
    /* Event loop with our own flush timer (flush "own"): libnats writes
     * nothing by itself (send-asap, no flusher thread); what a batch leaves
     * buffered is written by this thread within OWN_FLUSH seconds. */
    int own = dp->evloop && dp->flush == 4;
    double pending = 0;  /* own: when unwritten data was first left behind */
    while (!atomic_load(&dp->stopping)) {
        int timeout = -1;
        if (own && pending > 0) {
            double left = pending + OWN_FLUSH - vn_mono();
            timeout = left > 0 ? (int)(left * 1000) + 1 : 0;
        }
        int sock = dp->evloop ? atomic_load(&dp->sock_fd) : -1;
        short want = 0;
        if (sock >= 0 && atomic_load(&dp->sock_write))
            want |= POLLOUT;
        if (sock >= 0 && dp->evloop == 2 && atomic_load(&dp->sock_read))
            want |= POLLIN;  /* one thread: the socket's reads too */
        struct pollfd p[4] = {
            {.fd = dp->stop_efd, .events = POLLIN},
            {.fd = backlog ? -1 : dp->tap, .events = POLLIN},
            {.fd = dp->evloop ? dp->tx_wake : -1, .events = POLLIN},
            {.fd = want ? sock : -1, .events = want},
        };
        int ready = poll(p, 4, timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents)
            break;
        if (p[2].revents) {
            uint64_t v;
            ssize_t r = read(dp->tx_wake, &v, sizeof(v));
            (void)r;
        }
        if (p[3].revents & POLLNVAL) {  /* closed by a reconnect: wait for the attach */
            atomic_compare_exchange_strong(&dp->sock_fd, &sock, -1);
            continue;
        }
        if (dp->evloop == 2 && (p[3].revents & (POLLIN | POLLERR | POLLHUP))) {
            vn_loop_read(dp);
            if (own && atomic_load(&dp->sock_write))
                p[2].revents = POLLIN;  /* a PONG to send: write below */
        }
        if (own && pending > 0 && (ready == 0 || vn_mono() - pending >= OWN_FLUSH)) {
            backlog = vn_loop_write(dp);
            pending = 0;
        }
        if (dp->evloop && (p[3].revents & POLLOUT || p[2].revents)) {
            backlog = vn_loop_write(dp);
            pending = 0;
        }
        if (!(p[1].revents))
            continue;
        unsigned int n = 0;
        double start = vn_mono();
        /* A batch that follows a quiet spell is latency: flush it at once.
         * Under steady traffic libnats' flusher (~1 ms) and full buffers
         * write larger chunks, which is what small frames need. */
        int quiet = start - dp->last_tx >= dp->kick_idle;
        for (;;) {
            ssize_t len = read(dp->tap, dp->txbuf + 2, SLOT - 2);
            if (len < 0) {
                int e = errno;
                if (e == EAGAIN || e == EINTR)
                    break;
                vn_push_event(dp, EV_TAP_ERROR, e, 0, NULL, strerror(e));
                if (e == EBADFD || e == EBADF || e == ENODEV || e == EIO) {
                    kick(dp);
                    return NULL;  /* the device is gone: the daemon says which way */
                }
                break;
            }
            tx_frame(dp, dp->txbuf, (size_t)len, subject, flood);
            if (++n >= 256 && dp->evloop == 2)
                break;  /* one thread: let the socket's reads in */
            /* Event loop: libnats' buffer is full; write it before reading on
             * (with our own timer every publish asks for a write: look at
             * the size instead). */
            if (dp->evloop && atomic_load(&dp->sock_write) &&
                (!own || natsConnection_Buffered(dp->nc) >= WRITE_NOW) &&
                (backlog = vn_loop_write(dp)))
                break;
        }
        if (n) {
            dp->last_tx = vn_mono();
            /* Event loop: a batch of big frames (a TCP flow's GSO frames) is
             * written now rather than by libnats' flusher 1 ms later. */
            if (dp->evloop && !quiet && natsConnection_Buffered(dp->nc) >= WRITE_NOW)
                quiet = 1;
            if (!quiet || !atomic_load(&dp->connected)) {
                if (own && pending == 0 && natsConnection_Buffered(dp->nc) > 0)
                    pending = dp->last_tx;
                continue;
            }
            if (dp->evloop) {
                backlog = vn_loop_write(dp);  /* at once, and no PING */
                pending = 0;
            }
            else if (dp->flush == 3)
                natsConnection_FlushTimeout(dp->nc, 1);  /* writes now; waits <= 1 ms */
            else
                kick(dp);
        }
    }
    return NULL;
}

/* Flushes libnats' buffer when the TAP is drained.  FlushTimeout writes the
 * buffer (and a PING) at once, then waits for the PONG: here, not in the
 * reader.  libnats' own flusher still runs for the rest. */
void *vn_kick_main(void *arg)
{
    vn_dp *dp = arg;
    pthread_setname_np(pthread_self(), "vn-kick");
    pthread_mutex_lock(&dp->kick_mu);
    while (!atomic_load(&dp->stopping)) {
        while (!dp->kick_wanted && !atomic_load(&dp->stopping))
            pthread_cond_wait(&dp->kick_cond, &dp->kick_mu);
        dp->kick_wanted = 0;
        pthread_mutex_unlock(&dp->kick_mu);
        if (!atomic_load(&dp->stopping) && atomic_load(&dp->connected))
            natsConnection_FlushTimeout(dp->nc, 1000);
        pthread_mutex_lock(&dp->kick_mu);
    }
    pthread_mutex_unlock(&dp->kick_mu);
    return NULL;
}

