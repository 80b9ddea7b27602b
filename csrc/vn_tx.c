/* TAP -> NATS, and the data connection's socket: the datapath's one thread
 * (poll the TAP and the socket, drain, route, learn, publish, write).
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
#include <sys/resource.h>
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

/* Bridge mode: learn `src` behind our bridge; its state after (enum
 * vn_local_state).  A new MAC is an upcall and L_PENDING until the control
 * plane's verdict: its frames wait in the hold queue meanwhile (the
 * subscription must reach the server before the frame that reveals it). */
static int learn_local(vn_dp *dp, const unsigned char *src, double now)
{
    uint64_t k = mac_key(src);
    int added;
    pthread_mutex_lock(&dp->tab);
    int i = mtab_find(&dp->local, k);
    if (i >= 0) {
        dp->local.seen[i] = now;
        int st = dp->local.state[i];
        pthread_mutex_unlock(&dp->tab);
        if (st == L_OVER_CAP)
            INC(dp, C_MACS_OVER_CAP, 1);
        return st;
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
        INC(dp, C_MACS_OVER_CAP, 1);
        return L_OVER_CAP;
    }
    vn_push_event(dp, EV_NEW_LOCAL, 0, moved, src, NULL);
    return L_PENDING;
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

/* Publish one frame at b (2 bytes of room, the virtio header, the frame of
 * len - VNET bytes) as core.forwarding.egress_table says.  `state`: its
 * destination's in the local table (bridge mode), else 0. */
static void send_frame(vn_dp *dp, unsigned char *b, size_t len, int state, double now,
                       double ageing, char *subject, char *flood)
{
    size_t flen = len - VNET;
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
    const unsigned char *dst = f;
    int kind = !(dst[0] & 1) ? 0 : (dst[0] & dst[1] & dst[2] & dst[3] & dst[4] & dst[5]) == 0xff
                                       ? 1 : 2;
    int cls = state == L_SERVED || state == L_PINNED || state == L_PENDING ? OUT_LOCAL
              : kind ? OUT_GROUP : remote_known(dp, dst, now, ageing) ? OUT_KNOWN : OUT_UNKNOWN;
    pthread_rwlock_rdlock(&dp->cfg);
    int e = dp->egress[cls * 2];
    if (e & EG_METERED && !storm_allow(dp, now))
        e = dp->egress[cls * 2 + 1];
    if (kind == 0)
        spell(subject, dp->ucast, dst, dp->mac_style);
    else if (kind == 1 || !dp->mcast[0])
        strcpy(subject, dp->bcast);
    else
        spell(subject, dp->mcast, dst, dp->mac_style);
    if (e & EG_FLOOD)
        strcpy(flood, dp->flood);
    pthread_rwlock_unlock(&dp->cfg);
    if (e >> EG_DROP_SHIFT)
        DROP(dp, (e >> EG_DROP_SHIFT) - 1);
    if (!(e & EG_SEND))
        return;
    if (kind == 1 && f[12] == 0x08 && f[13] == 0x06)
        vn_arp_route(dp, f, flen, now, subject);  /* rewrites the subject if routed */
    int ok = 1;
    publish(dp, subject, payload, (int)plen, &ok);
    if (ok && e & EG_FLOOD)
        publish(dp, flood, payload, (int)plen, &ok);
    if (!ok) {
        DROP(dp, VN_D_PUBLISH_ERROR);
        return;
    }
    if (e & EG_FLOOD)
        INC(dp, C_FLOODED, 1);
    INC(dp, C_NATS_TX_MSGS, 1);
    INC(dp, C_TX_KIND + kind, 1);
    INC(dp, C_TX_BYTES_KIND + kind, flen);
}

/* -- the hold queue: frames from a MAC waiting for its verdict ------------- */
static void hold(vn_dp *dp, const unsigned char *b, size_t len, double now)
{
    struct held *h = &dp->held[dp->nheld];
    if (dp->nheld == HOLD_FRAMES || dp->held_bytes + len > HOLD_BYTES ||
        !(h->buf = malloc(len + 2))) {
        DROP(dp, VN_D_HOLD_FULL);  /* and said (rate-limited): value = frames waiting */
        vn_drop_event(dp, VN_D_HOLD_FULL, dp->nheld, "", VN_D_HOLD_FULL, b + 2 + VNET + 6);
        return;
    }
    memcpy(h->buf, b, len + 2);
    h->len = len;
    h->until = now + UPCALL_WAIT_MS / 1000.0;
    h->src = mac_key(b + 2 + VNET + 6);
    dp->nheld++;
    dp->held_bytes += len;
}

/* Send the held frames whose source has its verdict, or has waited
 * UPCALL_WAIT_MS (then it is taken as served); keep the rest in order. */
static void release_held(vn_dp *dp, char *subject, char *flood)
{
    double now = vn_mono();
    pthread_rwlock_rdlock(&dp->cfg);
    double ageing = dp->ageing;
    pthread_rwlock_unlock(&dp->cfg);
    unsigned int kept = 0;
    for (unsigned int i = 0; i < dp->nheld; i++) {
        struct held h = dp->held[i];
        pthread_mutex_lock(&dp->tab);
        int j = mtab_find(&dp->local, h.src), st = j >= 0 ? dp->local.state[j] : 0;
        if (st == L_PENDING && now >= h.until)
            dp->local.state[j] = L_SERVED;  /* late: its verdict will correct it */
        pthread_mutex_unlock(&dp->tab);
        if (st == L_PENDING && now < h.until) {
            dp->held[kept++] = h;
            continue;
        }
        if (atomic_load_explicit(&dp->connected, memory_order_relaxed))
            send_frame(dp, h.buf, h.len, local_state(dp, h.buf + 2 + VNET), now, ageing,
                       subject, flood);
        else
            DROP(dp, VN_D_DISCONNECTED);
        free(h.buf);
        dp->held_bytes -= h.len;
    }
    dp->nheld = kept;
}

static int held_from(vn_dp *dp, uint64_t src)
{
    for (unsigned int i = 0; i < dp->nheld; i++)
        if (dp->held[i].src == src)
            return 1;
    return 0;
}

void vn_hold_free(vn_dp *dp)
{
    INC(dp, C_DROPS + VN_D_DISCONNECTED, dp->nheld);  /* the connection goes with them */
    for (unsigned int i = 0; i < dp->nheld; i++)
        free(dp->held[i].buf);
    dp->nheld = 0;
    dp->held_bytes = 0;
}

/* One frame read from the TAP, at b: 2 bytes of room, the virtio header,
 * the frame. */
static void tx_frame(vn_dp *dp, unsigned char *b, size_t len, char *subject, char *flood)
{
    INC(dp, C_TAP_RX_FRAMES, 1);
    if (len < VNET + ETH_HLEN) {
        INC(dp, C_TAP_RX_BYTES, len > VNET ? len - VNET : 0);
        DROP(dp, VN_D_TAP_RUNT);
        return;
    }
    INC(dp, C_TAP_RX_BYTES, len - VNET);
    if (!atomic_load_explicit(&dp->connected, memory_order_relaxed)) {
        DROP(dp, VN_D_DISCONNECTED);
        return;
    }
    if (atomic_load_explicit(&dp->blocked, memory_order_relaxed)) {
        DROP(dp, VN_D_NO_KEY);
        return;
    }
    double now = vn_mono();
    pthread_rwlock_rdlock(&dp->cfg);
    int bridge = dp->bridge;
    double ageing = dp->ageing;
    pthread_rwlock_unlock(&dp->cfg);
    if (!bridge) {
        send_frame(dp, b, len, 0, now, ageing, subject, flood);
        return;
    }
    const unsigned char *f = b + 2 + VNET;
    /* A MAC that waits for its verdict: its frames wait, in order; the
     * others' go on. */
    if (learn_local(dp, f + 6, now) == L_PENDING || held_from(dp, mac_key(f + 6)))
        hold(dp, b, len, now);
    else
        send_frame(dp, b, len, local_state(dp, f), now, ageing, subject, flood);
}

#define WRITE_NOW (32 * 1024)
/* Seconds of quiet after which a batch is written at once: 200 us was the
 * best of the idle thresholds measured (docs/performance.md, "the C
 * datapath": ping and 64-byte rate against the kick/asap/flusher modes). */
#define QUIET_S 200e-6
#define TX_BATCH 256  /* frames per turn before the socket's reads */

/* Read the TAP until it is drained (at most TX_BATCH frames, so that the
 * socket's reads get their turn) and publish.  1: the socket is full,
 * 0: go on, -1: the device is gone. */
static int tx_batch(vn_dp *dp, char *subject, char *flood)
{
    unsigned int n = 0;
    int backlog = 0;
    /* A batch that follows a quiet spell is latency: written at once (and
     * with no PING).  Under steady traffic the loop's 1 ms flush (FLUSH_S)
     * and full buffers write larger chunks, which is what small frames need. */
    int quiet = vn_mono() - dp->last_tx >= QUIET_S;
    for (;;) {
        ssize_t len = read(dp->tap, dp->txbuf + 2, SLOT - 2);
        if (len < 0) {
            int e = errno;
            if (e == EAGAIN || e == EINTR)
                break;
            vn_push_event(dp, EV_TAP_ERROR, e, 0, NULL, strerror(e));
            if (e == EBADFD || e == EBADF || e == ENODEV || e == EIO)
                return -1;
            break;
        }
        tx_frame(dp, dp->txbuf, (size_t)len, subject, flood);
        if (++n >= TX_BATCH)
            break;
        /* libnats' buffer is full: write it before reading on. */
        if (natsConnection_Buffered(dp->nc) >= IO_BUF && (backlog = vn_loop_write(dp)))
            break;
    }
    if (!n)
        return backlog;
    dp->last_tx = vn_mono();
    /* A batch of big frames (a TCP flow's GSO frames) is written now too,
     * rather than by libnats' flush timer 1 ms later. */
    if (natsConnection_Buffered(dp->nc) >= WRITE_NOW)
        quiet = 1;
    if (quiet && atomic_load(&dp->connected))
        backlog = vn_loop_write(dp);
    return backlog;
}

/* Buffered bytes not written at once (steady traffic, a PONG) are written
 * within this long: what libnats' flusher thread waited. */
#define FLUSH_S 1e-3

/* Delivered messages wait at most this long to be destroyed (the bounds
 * of vn_dp.h free them sooner under traffic). */
#define SPENT_S 1.0

/* How long poll may sleep: until a held frame's wait ends, the buffer's
 * flush is due or the delivered messages' time is up; NULL: no bound. */
static struct timespec *poll_bound(vn_dp *dp, double flush_at, struct timespec *ts)
{
    double until = dp->nheld ? dp->held[0].until : 0;
    if (flush_at && (!until || flush_at < until))
        until = flush_at;
    if (dp->nspent && (!until || dp->spent_since + SPENT_S < until))
        until = dp->spent_since + SPENT_S;
    if (!until)
        return NULL;
    double wait = until - vn_mono();
    wait = wait > 0 ? wait : 0;
    ts->tv_sec = (time_t)wait;
    ts->tv_nsec = (long)((wait - (double)ts->tv_sec) * 1e9);
    return ts;
}

/* What libnats buffered and nobody wrote yet: written when its time is
 * due.  Returns the new due time (0: nothing buffered). */
static double flush_due(vn_dp *dp, double flush_at, int *backlog)
{
    if (!dp->nc || atomic_load(&dp->sock_fd) < 0 || natsConnection_Buffered(dp->nc) <= 0)
        return 0;
    double now = vn_mono();
    if (!flush_at)
        return now + FLUSH_S;
    if (now < flush_at)
        return flush_at;
    *backlog = vn_loop_write(dp);
    return *backlog ? now + FLUSH_S : 0;
}

void *vn_tx_main(void *arg)
{
    vn_dp *dp = arg;
    pthread_setname_np(pthread_self(), "vn-datapath");
    /* Ahead of ordinary processes, as the kernel's own network stack is
     * (docs/performance.md: a sender at full rate starved it). */
    dp->nice_error = dp->nice && setpriority(PRIO_PROCESS, (id_t)gettid(), dp->nice) ? errno : 0;
    sem_post(&dp->running);
    char subject[SUBJ + 64], flood[SUBJ];
    int backlog = 0;  /* the socket is full: stop reading the TAP until POLLOUT */
    double flush_at = 0;
    while (!atomic_load(&dp->stopping)) {
        int sock = atomic_load(&dp->sock_fd);
        short want = 0;
        if (sock >= 0 && backlog)
            want |= POLLOUT;
        if (sock >= 0 && atomic_load(&dp->sock_read))
            want |= POLLIN;
        struct pollfd p[4] = {
            {.fd = dp->stop_efd, .events = POLLIN},
            {.fd = backlog ? -1 : dp->tap, .events = POLLIN},
            {.fd = dp->tx_wake, .events = POLLIN},
            {.fd = want ? sock : -1, .events = want},
        };
        struct timespec ts;
        if (ppoll(p, 4, poll_bound(dp, flush_at, &ts), NULL) < 0) {
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
        if (p[3].revents & (POLLIN | POLLERR | POLLHUP))
            vn_loop_read(dp);
        if (dp->nheld)  /* verdicts (a wake) or waits that ended */
            release_held(dp, subject, flood);
        if (p[3].revents & POLLOUT || p[2].revents)
            backlog = vn_loop_write(dp);
        if (p[1].revents)
            backlog = tx_batch(dp, subject, flood);
        if (backlog < 0)
            break;  /* the device is gone: the daemon says which way */
        flush_at = flush_due(dp, flush_at, &backlog);
        if (dp->nspent && vn_mono() >= dp->spent_since + SPENT_S)
            vn_loop_free_spent(dp);
    }
    vn_loop_free_spent(dp);
    return NULL;
}
