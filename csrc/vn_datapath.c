/* The C datapath: the TAP fd and a libnats data connection, driven by the
 * Python control plane (vlan_nats/aio/ctunnel.py) through vn_datapath.h.
 *
 * TAP to NATS ("tx" thread): poll the TAP -> read frames until EAGAIN ->
 * per frame: the subject from the destination MAC, bridge learning (a new
 * source MAC is an upcall, answered before its frame leaves), unknown
 * unicast also to the flood subject, the storm bucket, sealing -> publish
 * into libnats' buffer.  Once the TAP is drained the "kick" thread flushes
 * that buffer (natsConnection_FlushTimeout writes the buffer at once; only
 * the kick thread waits for the PONG, so the reader never waits for a
 * round trip, and kicks that come while it waits are merged).
 *
 * NATS to TAP (libnats' delivery thread, one for all subscriptions): open a
 * sealed message, check the wire format, the ingress verdict from the table
 * core/forwarding.py computed, learn the source, write the TAP (one
 * write/writev per frame; a full TAP queue is a counted drop).
 *
 * Policy is not decided here: subjects are spelled from prefixes the
 * control plane gives, accept/drop comes from its verdict table, and what
 * to learn behind a bridge is its verdict on an upcall.  Counters are
 * atomics; the config lock is taken briefly and never across a syscall. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

#include <nats/nats.h>

#include "vn_datapath.h"
#include "vn_internal.h"

const int VN_WIRE_VERSION = VN_VERSION;
const int VN_WIRE_FLAG_VNET = VN_FLAG_VNET;
const int VN_WIRE_FLAG_SEALED = VN_FLAG_SEALED;
const int VN_SEAL_HEADER_LEN = VN_SEAL_HDR;
const int VN_SEAL_TAG_LEN = VN_SEAL_TAG;
const int VN_SEAL_WINDOW = 1024;
const int VN_NDROPS = VN_D_COUNT;
const char VN_LIBNATS_VERSION[] = NATS_VERSION_STRING;

enum { EV_NEW_LOCAL = 1, EV_MOVED_REMOTE, EV_DUP_MAC, EV_DROP, EV_DISCONNECTED,
       EV_RECONNECTED, EV_CLOSED, EV_ERROR, EV_TAP_ERROR, EV_CONNECTED };
const int VN_EV_NEW_LOCAL = EV_NEW_LOCAL;
const int VN_EV_MOVED_REMOTE = EV_MOVED_REMOTE;
const int VN_EV_DUP_MAC = EV_DUP_MAC;
const int VN_EV_DROP = EV_DROP;
const int VN_EV_DISCONNECTED = EV_DISCONNECTED;
const int VN_EV_RECONNECTED = EV_RECONNECTED;
const int VN_EV_CLOSED = EV_CLOSED;
const int VN_EV_ERROR = EV_ERROR;
const int VN_EV_TAP_ERROR = EV_TAP_ERROR;
const int VN_EV_CONNECTED = EV_CONNECTED;

enum { L_SERVED = 1, L_OVER_CAP, L_PINNED, L_PENDING };
const int VN_LOCAL_SERVED = L_SERVED;
const int VN_LOCAL_OVER_CAP = L_OVER_CAP;
const int VN_LOCAL_PINNED = L_PINNED;

/* Counters, in the order vn_counter_name() spells them. */
enum {
    C_TAP_RX_FRAMES, C_TAP_RX_BYTES, C_TAP_RX_GSO_FRAMES, C_TAP_RX_GSO_BYTES,
    C_TAP_TX_FRAMES, C_TAP_TX_BYTES, C_NATS_TX, C_NATS_RX,
    C_TX_KIND, C_TX_BYTES_KIND = C_TX_KIND + 3, C_RX_KIND = C_TX_BYTES_KIND + 3,
    C_RX_BYTES_KIND = C_RX_KIND + 3, C_FLOODED = C_RX_BYTES_KIND + 3, C_OVER_CAP,
    C_DISCONNECTS, C_RECONNECTS, C_EVENTS_LOST, C_DROPS,
    C_COUNT = C_DROPS + VN_D_COUNT
};
const int VN_NCOUNTERS = C_COUNT;

static const char *const COUNTER_NAMES[C_DROPS] = {
    "tap_rx_frames", "tap_rx_bytes", "tap_rx_gso_frames", "tap_rx_gso_bytes",
    "tap_tx_frames", "tap_tx_bytes", "nats_tx_msgs", "nats_rx_msgs",
    "tx_by_kind.unicast", "tx_by_kind.broadcast", "tx_by_kind.multicast",
    "tx_bytes_by_kind.unicast", "tx_bytes_by_kind.broadcast", "tx_bytes_by_kind.multicast",
    "rx_by_kind.unicast", "rx_by_kind.broadcast", "rx_by_kind.multicast",
    "rx_bytes_by_kind.unicast", "rx_bytes_by_kind.broadcast", "rx_bytes_by_kind.multicast",
    "flooded", "macs_over_cap", "nats_disconnects", "nats_reconnects", "events_lost",
};
static const char *const DROP_NAMES[VN_D_COUNT] = {
    "empty", "short", "version", "flags", "runt", "oversize", "vnet", "dup_mac",
    "not_for_us", "disconnected", "publish_error", "slow_consumer", "tap_write",
    "tap_down", "tap_runt", "flood_dup", "storm", "local_dst", "sealed_no_key",
    "unsealed", "seal_key", "seal_auth", "replay", "seal_stale",
};

const char *vn_counter_name(int i)
{
    if (i < 0 || i >= C_COUNT)
        return NULL;
    return i < C_DROPS ? COUNTER_NAMES[i] : DROP_NAMES[i - C_DROPS];
}

#define VNET 12
#define ETH_HLEN 14
#define MAX_FRAME (65535 + ETH_HLEN + 8)
/* A read slot: 2 bytes of wire header room, the virtio header, the frame. */
#define SLOT (2 + VNET + MAX_FRAME)
#define SEAL_SLOT (SLOT + VN_SEAL_HDR + VN_SEAL_TAG)
#define SUBJ 256
#define NEVENTS 256
#define MAX_SUBS 8192
#define DRAIN_KICK 64        /* kick a flush at least every this many frames */
#define UPCALL_WAIT_MS 500

/* -- MAC tables: open addressing, linear probing, backward-shift delete -- */
struct mtab {
    uint64_t *keys;          /* mac + 1 (0: empty) */
    double *seen;
    unsigned char *state;
    unsigned int cap, count; /* cap: a power of two */
};

static uint64_t mac_key(const unsigned char *m)
{
    return ((uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
            (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5]) + 1;
}

static void key_mac(uint64_t k, unsigned char *m)
{
    k -= 1;
    for (int i = 0; i < 6; i++)
        m[i] = (unsigned char)(k >> (40 - 8 * i));
}

static int mtab_init(struct mtab *t, unsigned int cap)
{
    unsigned int c = 16;
    while (c < cap)
        c <<= 1;
    uint64_t *keys = calloc(c, sizeof(*keys));
    double *seen = calloc(c, sizeof(*seen));
    unsigned char *state = calloc(c, 1);
    if (!keys || !seen || !state) {
        free(keys);
        free(seen);
        free(state);
        return -ENOMEM;
    }
    free(t->keys);
    free(t->seen);
    free(t->state);
    t->keys = keys;
    t->seen = seen;
    t->state = state;
    t->cap = c;
    t->count = 0;
    return 0;
}

static void mtab_free(struct mtab *t)
{
    free(t->keys);
    free(t->seen);
    free(t->state);
    memset(t, 0, sizeof(*t));
}

static unsigned int mtab_home(const struct mtab *t, uint64_t k)
{
    return (unsigned int)((k * 0x9E3779B97F4A7C15ULL) >> 32) & (t->cap - 1);
}

/* Index of k, or -1. */
static int mtab_find(const struct mtab *t, uint64_t k)
{
    if (!t->cap)
        return -1;
    for (unsigned int i = mtab_home(t, k);; i = (i + 1) & (t->cap - 1)) {
        if (t->keys[i] == k)
            return (int)i;
        if (!t->keys[i])
            return -1;
    }
}

/* Index of k, inserted if absent (-1 when 3/4 full). */
static int mtab_put(struct mtab *t, uint64_t k, int *added)
{
    *added = 0;
    if (!t->cap)
        return -1;
    unsigned int i = mtab_home(t, k);
    for (;; i = (i + 1) & (t->cap - 1)) {
        if (t->keys[i] == k)
            return (int)i;
        if (!t->keys[i])
            break;
    }
    if (t->count >= t->cap / 4 * 3)
        return -1;
    t->keys[i] = k;
    t->count++;
    *added = 1;
    return (int)i;
}

static void mtab_del_at(struct mtab *t, unsigned int i)
{
    unsigned int mask = t->cap - 1, j = i;
    t->keys[i] = 0;
    t->count--;
    for (;;) {
        j = (j + 1) & mask;
        if (!t->keys[j])
            return;
        unsigned int h = mtab_home(t, t->keys[j]);
        /* Move j back to the hole at i when its home is not in (i, j]. */
        if ((j > i && (h <= i || h > j)) || (j < i && (h <= i && h > j))) {
            t->keys[i] = t->keys[j];
            t->seen[i] = t->seen[j];
            t->state[i] = t->state[j];
            t->keys[j] = 0;
            i = j;
        }
    }
}

static void mtab_clear(struct mtab *t)
{
    if (!t->cap)
        return;
    memset(t->keys, 0, t->cap * sizeof(*t->keys));
    t->count = 0;
}

/* -- the datapath -------------------------------------------------------- */
struct sub {
    char *subject;
    natsSubscription *sub;
};

struct vn_dp {
    int tap;
    int compat;
    natsOptions *opts;
    natsConnection *nc;
    atomic_int connected;
    atomic_int stopping;
    atomic_uint max_frame;
    _Atomic unsigned long long c[C_COUNT];
    long long dropped_gone;
    int pend_msgs, pend_bytes;
    int flush;               /* vn_conn_opts.flush */  /* slow-consumer drops of subscriptions since removed */
    char error[256];

    /* Config, read per frame under cfg (a read lock), set by the control plane. */
    pthread_rwlock_t cfg;
    unsigned char mac[6];
    char ucast[SUBJ], mcast[SUBJ], bcast[SUBJ], flood[SUBJ];
    int mac_style;
    signed char ingress[8];
    int bridge;
    double ageing;
    double storm_rate, storm_burst, tokens, storm_last;
    vn_sealer *sealer;       /* under seal_mu: replaced by the control plane */
    pthread_mutex_t seal_mu;
    vn_opener *opener;

    /* MAC tables, under tab. */
    pthread_mutex_t tab;
    struct mtab local, remote;
    unsigned int remote_limit;

    /* Subscriptions (control plane only). */
    pthread_mutex_t subs_mu;
    struct sub *subs;
    unsigned int nsubs;

    /* Events and upcalls. */
    pthread_mutex_t ev_mu;
    pthread_cond_t ev_cond;
    struct vn_event ev[NEVENTS];
    unsigned int ev_head, ev_len;
    int efd;
    int upcall_id, upcall_done;
    double last_event[VN_D_COUNT + 1];  /* per drop reason (+ dup MAC), rate limit */

    /* Threads. */
    int stop_efd;
    pthread_t tx, kick;
    int started;
    pthread_mutex_t kick_mu;
    pthread_cond_t kick_cond;
    int kick_wanted;

    unsigned char *txbuf, *txseal, *rxbuf;
};

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

#define INC(dp, i, n) atomic_fetch_add_explicit(&(dp)->c[(i)], (unsigned long long)(n), \
                                                memory_order_relaxed)
#define DROP(dp, r) INC(dp, C_DROPS + (r), 1)

static void push_event(vn_dp *dp, int kind, int reason, long long value,
                       const unsigned char *mac, const char *text)
{
    pthread_mutex_lock(&dp->ev_mu);
    if (dp->ev_len == NEVENTS) {
        pthread_mutex_unlock(&dp->ev_mu);
        INC(dp, C_EVENTS_LOST, 1);
        return;
    }
    struct vn_event *e = &dp->ev[(dp->ev_head + dp->ev_len++) % NEVENTS];
    e->kind = kind;
    e->reason = reason;
    e->value = value;
    if (mac)
        memcpy(e->mac, mac, 6);
    else
        memset(e->mac, 0, 6);
    snprintf(e->text, sizeof(e->text), "%s", text ? text : "");
    pthread_mutex_unlock(&dp->ev_mu);
    uint64_t one = 1;
    ssize_t w = write(dp->efd, &one, sizeof(one));
    (void)w;
}

/* A drop worth a log line: at most one event per reason per second (the
 * control plane rate-limits its lines further). */
static void drop_event(vn_dp *dp, int reason, long long value, const char *subject, int slot)
{
    double now = mono();
    pthread_mutex_lock(&dp->ev_mu);
    int due = now - dp->last_event[slot] >= 1.0;
    if (due)
        dp->last_event[slot] = now;
    pthread_mutex_unlock(&dp->ev_mu);
    if (due)
        push_event(dp, slot == VN_D_COUNT ? EV_DUP_MAC : EV_DROP, reason, value, NULL, subject);
}

vn_dp *vn_dp_new(int tap_fd, int compat, unsigned int max_frame)
{
    vn_dp *dp = calloc(1, sizeof(*dp));
    if (!dp)
        return NULL;
    dp->tap = tap_fd;
    dp->compat = compat;
    atomic_store(&dp->max_frame, max_frame);
    pthread_rwlock_init(&dp->cfg, NULL);
    pthread_mutex_init(&dp->seal_mu, NULL);
    pthread_mutex_init(&dp->tab, NULL);
    pthread_mutex_init(&dp->subs_mu, NULL);
    pthread_mutex_init(&dp->ev_mu, NULL);
    pthread_cond_init(&dp->ev_cond, NULL);
    pthread_mutex_init(&dp->kick_mu, NULL);
    pthread_cond_init(&dp->kick_cond, NULL);
    for (int i = 0; i < 8; i++)
        dp->ingress[i] = -1;
    dp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    dp->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    dp->txbuf = malloc(SLOT);
    dp->txseal = malloc(SEAL_SLOT);
    dp->rxbuf = malloc(SEAL_SLOT);
    dp->subs = calloc(MAX_SUBS, sizeof(*dp->subs));
    if (dp->efd < 0 || dp->stop_efd < 0 || !dp->txbuf || !dp->txseal || !dp->rxbuf ||
        !dp->subs || mtab_init(&dp->local, 64) < 0 || mtab_init(&dp->remote, 1 << 15) < 0) {
        vn_dp_free(dp);
        return NULL;
    }
    dp->remote_limit = 1 << 14;
    return dp;
}

int vn_dp_error(vn_dp *dp, char *out, unsigned int cap)
{
    const char *text = NULL;
    if (dp->nc && natsConnection_GetLastError(dp->nc, &text) != NATS_OK && text && *text)
        snprintf(out, cap, "%s", text);
    else
        snprintf(out, cap, "%s", dp->error);
    return (int)strlen(out);
}

/* -- connection callbacks (libnats' threads) ------------------------------ */
static void on_disconnected(natsConnection *nc, void *closure)
{
    vn_dp *dp = closure;
    (void)nc;
    if (atomic_exchange(&dp->connected, 0) && !atomic_load(&dp->stopping)) {
        INC(dp, C_DISCONNECTS, 1);
        push_event(dp, EV_DISCONNECTED, 0, 0, NULL, NULL);
    }
}

static void on_connected(natsConnection *nc, void *closure, int reconnect)
{
    vn_dp *dp = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    atomic_store(&dp->connected, 1);
    if (reconnect)
        INC(dp, C_RECONNECTS, 1);
    push_event(dp, reconnect ? EV_RECONNECTED : EV_CONNECTED, 0, 1, NULL, url);
}

static void on_reconnected(natsConnection *nc, void *closure) { on_connected(nc, closure, 1); }
static void on_first_connect(natsConnection *nc, void *closure) { on_connected(nc, closure, 0); }

static void on_closed(natsConnection *nc, void *closure)
{
    vn_dp *dp = closure;
    (void)nc;
    atomic_store(&dp->connected, 0);
    if (!atomic_load(&dp->stopping))
        push_event(dp, EV_CLOSED, 0, 0, NULL, NULL);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    vn_dp *dp = closure;
    (void)sub;
    if (err == NATS_SLOW_CONSUMER)
        return;  /* counted from natsSubscription_GetDropped() */
    const char *text = NULL;
    natsConnection_GetLastError(nc, &text);
    push_event(dp, EV_ERROR, (int)err, 0, NULL, text && *text ? text : natsStatus_GetText(err));
}

static natsStatus user_jwt(char **jwt, char **custom, void *closure)
{
    (void)custom;
    *jwt = strdup((const char *)closure);
    return *jwt ? NATS_OK : NATS_NO_MEMORY;
}

static natsStatus sign_cb(char **custom, unsigned char **sig, int *len, const char *nonce,
                          void *closure)
{
    (void)custom;
    return nats_Sign((const char *)closure, nonce, sig, len);
}

static char *keep(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* Seeds and JWTs live as long as the datapath (libnats calls back for
 * them on every reconnect, after --run-as may have dropped root). */
static char *kept_seed, *kept_jwt;

int vn_dp_connect(vn_dp *dp, const struct vn_conn_opts *o)
{
    /* libnats starts threads (timers, delivery, reader, flusher): they
     * must not take the daemon's signals, which the asyncio loop handles. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int ret = 0;
    natsStatus s = nats_Open(-1);
    if (s == NATS_OK)
        s = nats_SetMessageDeliveryPoolSize(1);
    if (s != NATS_OK) {
        snprintf(dp->error, sizeof(dp->error), "nats_Open: %s", natsStatus_GetText(s));
        ret = -(1000 + (int)s);
        goto out;
    }
    dp->flush = o->flush;
    dp->pend_msgs = o->pending_msgs;
    dp->pend_bytes = o->pending_bytes;
    ret = -ENOMEM;
    if (natsOptions_Create(&dp->opts) != NATS_OK)
        goto out;
    ret = 0;
    {
        natsOptions *op = dp->opts;
        char *urls = strdup(o->servers), *save = NULL;
        const char *list[64];
        int n = 0;
        for (char *t = strtok_r(urls, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
            list[n++] = t;
        natsStatus st = natsOptions_SetServers(op, list, n);
        free(urls);
        if (st != NATS_OK) {
            snprintf(dp->error, sizeof(dp->error), "servers: %s", natsStatus_GetText(st));
            ret = -(1000 + (int)st);
            goto out;
        }
#define OPT(call)                                                                     \
        do {                                                                          \
            natsStatus s_ = (call);                                                   \
            if (s_ != NATS_OK) {                                                      \
                const char *why_ = nats_GetLastError(NULL);                           \
                snprintf(dp->error, sizeof(dp->error), "%s", why_ && *why_ ? why_     \
                         : natsStatus_GetText(s_));                                   \
                ret = -(1000 + (int)s_);                                              \
                goto out;                                                             \
            }                                                                         \
        } while (0)
        OPT(natsOptions_SetNoRandomize(op, true));
        OPT(natsOptions_SetName(op, o->name));
        OPT(natsOptions_SetNoEcho(op, true));
        OPT(natsOptions_SetAllowReconnect(op, true));
        OPT(natsOptions_SetMaxReconnect(op, -1));
        OPT(natsOptions_SetReconnectWait(op, o->reconnect_wait_ms));
        OPT(natsOptions_SetTimeout(op, 2000));
        OPT(natsOptions_SetPingInterval(op, o->ping_ms));
        OPT(natsOptions_SetMaxPingsOut(op, o->max_pings_out));
        OPT(natsOptions_SetIOBufSize(op, o->io_buf));
        if (o->flush == 1)
            OPT(natsOptions_SetSendAsap(op, true));
        /* Frames published while disconnected are dropped and counted (the
         * tx thread checks first); nothing stale is replayed later. */
        OPT(natsOptions_SetReconnectBufSize(op, 1));
        OPT(natsOptions_SetMaxPendingMsgs(op, o->pending_msgs));
        OPT(natsOptions_UseGlobalMessageDelivery(op, true));
        OPT(natsOptions_SetDisconnectedCB(op, on_disconnected, dp));
        OPT(natsOptions_SetReconnectedCB(op, on_reconnected, dp));
        OPT(natsOptions_SetClosedCB(op, on_closed, dp));
        OPT(natsOptions_SetErrorHandler(op, on_error, dp));
        OPT(natsOptions_SetRetryOnFailedConnect(op, true, on_first_connect, dp));
        if (o->user)
            OPT(natsOptions_SetUserInfo(op, o->user, o->password));
        if (o->token)
            OPT(natsOptions_SetToken(op, o->token));
        if (o->seed) {
            free(kept_seed);
            kept_seed = keep(o->seed);
        }
        if (o->jwt) {
            free(kept_jwt);
            kept_jwt = keep(o->jwt);
            OPT(natsOptions_SetUserCredentialsCallbacks(op, user_jwt, kept_jwt, sign_cb,
                                                        kept_seed));
        } else if (o->nkey_public) {
            OPT(natsOptions_SetNKey(op, o->nkey_public, sign_cb, kept_seed));
        }
        if (o->tls) {
            OPT(natsOptions_SetSecure(op, true));
            if (o->tls_ca)
                OPT(natsOptions_LoadCATrustedCertificates(op, o->tls_ca));
            if (o->tls_cert)
                OPT(natsOptions_LoadCertificatesChain(op, o->tls_cert, o->tls_key));
        }
#undef OPT
        s = natsConnection_Connect(&dp->nc, op);
        if (s == NATS_OK) {
            char url[256] = "";
            natsConnection_GetConnectedUrl(dp->nc, url, sizeof(url));
            if (!atomic_exchange(&dp->connected, 1))
                push_event(dp, EV_CONNECTED, 0, 1, NULL, url);
        } else if (s != NATS_NOT_YET_CONNECTED) {
            const char *why = nats_GetLastError(NULL);
            snprintf(dp->error, sizeof(dp->error), "%s", why && *why ? why : natsStatus_GetText(s));
            ret = -(1000 + (int)s);
        }
    }
out:
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ret;
}

int vn_dp_connected(vn_dp *dp, char *url, unsigned int cap)
{
    if (cap)
        url[0] = 0;
    if (dp->nc && cap)
        natsConnection_GetConnectedUrl(dp->nc, url, cap);
    return atomic_load(&dp->connected);
}

/* -- programming ----------------------------------------------------------- */
int vn_dp_set_mac(vn_dp *dp, const unsigned char *mac)
{
    pthread_rwlock_wrlock(&dp->cfg);
    unsigned char old[6];
    memcpy(old, dp->mac, 6);
    memcpy(dp->mac, mac, 6);
    pthread_rwlock_unlock(&dp->cfg);
    pthread_mutex_lock(&dp->tab);
    int i = mtab_find(&dp->local, mac_key(old)), added;
    if (i >= 0 && dp->local.state[i] == L_PINNED)
        mtab_del_at(&dp->local, (unsigned int)i);
    i = mtab_put(&dp->local, mac_key(mac), &added);
    if (i >= 0)
        dp->local.state[i] = L_PINNED;
    pthread_mutex_unlock(&dp->tab);
    return i >= 0 ? 0 : -ENOSPC;
}

int vn_dp_set_max_frame(vn_dp *dp, unsigned int max_frame)
{
    atomic_store(&dp->max_frame, max_frame);
    return 0;
}

int vn_dp_set_subjects(vn_dp *dp, const char *unicast, const char *multicast,
                       const char *broadcast, const char *flood, int mac_style)
{
    if (strlen(unicast) + 40 >= SUBJ || strlen(multicast) + 40 >= SUBJ ||
        strlen(broadcast) >= SUBJ || strlen(flood) >= SUBJ)
        return -ENAMETOOLONG;
    pthread_rwlock_wrlock(&dp->cfg);
    snprintf(dp->ucast, SUBJ, "%s", unicast);
    snprintf(dp->mcast, SUBJ, "%s", multicast);
    snprintf(dp->bcast, SUBJ, "%s", broadcast);
    snprintf(dp->flood, SUBJ, "%s", flood);
    dp->mac_style = mac_style;
    pthread_rwlock_unlock(&dp->cfg);
    return 0;
}

int vn_dp_set_ingress(vn_dp *dp, const signed char *table, unsigned int n)
{
    if (n != 8)
        return -EINVAL;
    pthread_rwlock_wrlock(&dp->cfg);
    memcpy(dp->ingress, table, 8);
    pthread_rwlock_unlock(&dp->cfg);
    return 0;
}

int vn_dp_set_bridge(vn_dp *dp, int bridge, double ageing, unsigned int max_macs)
{
    pthread_mutex_lock(&dp->tab);
    int r = 0;
    if (bridge) {
        /* Room for the MACs served, those over the cap, and slack. */
        struct mtab t = {0};
        r = mtab_init(&t, 4 * max_macs + 64);
        if (r == 0) {
            for (unsigned int i = 0; i < dp->local.cap; i++)
                if (dp->local.keys[i]) {
                    int added, j = mtab_put(&t, dp->local.keys[i], &added);
                    t.seen[j] = dp->local.seen[i];
                    t.state[j] = dp->local.state[i];
                }
            mtab_free(&dp->local);
            dp->local = t;
            dp->remote_limit = 4 * max_macs;
            if (dp->remote_limit > dp->remote.cap / 2) {
                mtab_free(&dp->remote);
                r = mtab_init(&dp->remote, 2 * dp->remote_limit);
            }
        }
    }
    pthread_mutex_unlock(&dp->tab);
    pthread_rwlock_wrlock(&dp->cfg);
    dp->bridge = bridge;
    dp->ageing = ageing;
    pthread_rwlock_unlock(&dp->cfg);
    return r;
}

int vn_dp_set_storm(vn_dp *dp, double rate, double burst)
{
    pthread_rwlock_wrlock(&dp->cfg);
    dp->storm_rate = rate;
    dp->storm_burst = burst;
    dp->tokens = burst;
    dp->storm_last = mono();
    pthread_rwlock_unlock(&dp->cfg);
    return 0;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);

int vn_dp_subscribe(vn_dp *dp, const char *subject)
{
    if (!dp->nc)
        return -ENOTCONN;
    pthread_mutex_lock(&dp->subs_mu);
    for (unsigned int i = 0; i < dp->nsubs; i++)
        if (!strcmp(dp->subs[i].subject, subject)) {
            pthread_mutex_unlock(&dp->subs_mu);
            return 0;
        }
    int r = -ENOSPC;
    if (dp->nsubs < MAX_SUBS) {
        natsSubscription *sub = NULL;
        natsStatus s = natsConnection_Subscribe(&sub, dp->nc, subject, on_msg, dp);
        if (s == NATS_OK) {
            natsSubscription_SetPendingLimits(sub, dp->pend_msgs, dp->pend_bytes);
            r = 1;
            dp->subs[dp->nsubs].subject = strdup(subject);
            dp->subs[dp->nsubs++].sub = sub;
        } else {
            r = -(1000 + (int)s);
        }
    }
    pthread_mutex_unlock(&dp->subs_mu);
    return r;
}

static void drop_sub(vn_dp *dp, unsigned int i)
{
    int64_t dropped = 0;
    if (natsSubscription_GetDropped(dp->subs[i].sub, &dropped) == NATS_OK)
        dp->dropped_gone += dropped;
    natsSubscription_Unsubscribe(dp->subs[i].sub);
    natsSubscription_Destroy(dp->subs[i].sub);
    free(dp->subs[i].subject);
    dp->subs[i] = dp->subs[--dp->nsubs];
}

int vn_dp_unsubscribe(vn_dp *dp, const char *subject)
{
    int r = 0;
    pthread_mutex_lock(&dp->subs_mu);
    for (unsigned int i = 0; i < dp->nsubs; i++)
        if (!strcmp(dp->subs[i].subject, subject)) {
            drop_sub(dp, i);
            r = 1;
            break;
        }
    pthread_mutex_unlock(&dp->subs_mu);
    return r;
}

long long vn_dp_dropped(vn_dp *dp)
{
    long long n;
    pthread_mutex_lock(&dp->subs_mu);
    n = dp->dropped_gone;
    for (unsigned int i = 0; i < dp->nsubs; i++) {
        int64_t d = 0;
        if (natsSubscription_GetDropped(dp->subs[i].sub, &d) == NATS_OK)
            n += d;
    }
    pthread_mutex_unlock(&dp->subs_mu);
    return n;
}

int vn_dp_set_pending_limits(vn_dp *dp, int msgs, int bytes)
{
    int r = 0;
    pthread_mutex_lock(&dp->subs_mu);
    for (unsigned int i = 0; i < dp->nsubs; i++)
        if (natsSubscription_SetPendingLimits(dp->subs[i].sub, msgs, bytes) != NATS_OK)
            r = -EINVAL;
    pthread_mutex_unlock(&dp->subs_mu);
    return r;
}

int vn_dp_local_set(vn_dp *dp, const unsigned char *mac, int state)
{
    int added;
    pthread_mutex_lock(&dp->tab);
    int i = mtab_put(&dp->local, mac_key(mac), &added);
    if (i >= 0) {
        dp->local.state[i] = (unsigned char)state;
        if (added)
            dp->local.seen[i] = mono();
    }
    pthread_mutex_unlock(&dp->tab);
    return i >= 0 ? added : -ENOSPC;
}

int vn_dp_local_del(vn_dp *dp, const unsigned char *mac)
{
    pthread_mutex_lock(&dp->tab);
    int i = mtab_find(&dp->local, mac_key(mac));
    if (i >= 0)
        mtab_del_at(&dp->local, (unsigned int)i);
    pthread_mutex_unlock(&dp->tab);
    return i >= 0;
}

int vn_dp_local_dump(vn_dp *dp, unsigned char *macs, double *idle, int *states, unsigned int max)
{
    unsigned int n = 0;
    double now = mono();
    pthread_mutex_lock(&dp->tab);
    for (unsigned int i = 0; i < dp->local.cap && n < max; i++)
        if (dp->local.keys[i]) {
            key_mac(dp->local.keys[i], macs + 6 * n);
            idle[n] = now - dp->local.seen[i];
            states[n++] = dp->local.state[i];
        }
    pthread_mutex_unlock(&dp->tab);
    return (int)n;
}

int vn_dp_remote_count(vn_dp *dp, double ageing)
{
    int n = 0;
    double now = mono();
    pthread_mutex_lock(&dp->tab);
    for (unsigned int i = 0; i < dp->remote.cap; i++)
        n += dp->remote.keys[i] && now - dp->remote.seen[i] <= ageing;
    pthread_mutex_unlock(&dp->tab);
    return n;
}

int vn_dp_verdict(vn_dp *dp, int id, int state)
{
    (void)state;
    pthread_mutex_lock(&dp->ev_mu);
    if (id == dp->upcall_id)
        dp->upcall_done = 1;
    pthread_cond_broadcast(&dp->ev_cond);
    pthread_mutex_unlock(&dp->ev_mu);
    return 0;
}

int vn_dp_set_sealer(vn_dp *dp, vn_sealer *s)
{
    pthread_mutex_lock(&dp->seal_mu);
    vn_sealer *old = dp->sealer;
    dp->sealer = s;
    pthread_mutex_unlock(&dp->seal_mu);
    vn_sealer_free(old);
    return 0;
}

int vn_dp_set_opener(vn_dp *dp, vn_opener *o)
{
    pthread_rwlock_wrlock(&dp->cfg);
    vn_opener *old = dp->opener;
    dp->opener = o;
    pthread_rwlock_unlock(&dp->cfg);
    if (old != o)
        vn_opener_free(old);
    return 0;
}

int vn_dp_opener_sessions(vn_dp *dp)
{
    pthread_rwlock_rdlock(&dp->cfg);
    int n = dp->opener ? vn_opener_sessions(dp->opener) : 0;
    pthread_rwlock_unlock(&dp->cfg);
    return n;
}

int vn_dp_counters(vn_dp *dp, unsigned long long *out, unsigned int n)
{
    if (n > C_COUNT)
        n = C_COUNT;
    for (unsigned int i = 0; i < n; i++)
        out[i] = atomic_load_explicit(&dp->c[i], memory_order_relaxed);
    if (n > C_DROPS + VN_D_SLOW_CONSUMER)
        out[C_DROPS + VN_D_SLOW_CONSUMER] += (unsigned long long)vn_dp_dropped(dp);
    return (int)n;
}

int vn_dp_event_fd(vn_dp *dp) { return dp->efd; }

int vn_dp_events(vn_dp *dp, struct vn_event *out, unsigned int max)
{
    uint64_t v;
    ssize_t r = read(dp->efd, &v, sizeof(v));
    (void)r;
    unsigned int n = 0;
    pthread_mutex_lock(&dp->ev_mu);
    while (dp->ev_len && n < max) {
        out[n++] = dp->ev[dp->ev_head];
        dp->ev_head = (dp->ev_head + 1) % NEVENTS;
        dp->ev_len--;
    }
    int more = dp->ev_len > 0;
    pthread_mutex_unlock(&dp->ev_mu);
    if (more) {
        uint64_t one = 1;
        r = write(dp->efd, &one, sizeof(one));
    }
    return (int)n;
}

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
    push_event(dp, EV_NEW_LOCAL, id, moved, src, NULL);
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
                               (unsigned int)(uint64_t)wall(), dp->txseal);
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
    double now = mono();
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

static void *tx_main(void *arg)
{
    vn_dp *dp = arg;
    char subject[SUBJ + 64], flood[SUBJ];
    struct pollfd p[2] = {{.fd = dp->tap, .events = POLLIN}, {.fd = dp->stop_efd, .events = POLLIN}};
    while (!atomic_load(&dp->stopping)) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        unsigned int n = 0;
        for (;;) {
            ssize_t len = read(dp->tap, dp->txbuf + 2, SLOT - 2);
            if (len < 0) {
                int e = errno;
                if (e == EAGAIN || e == EINTR)
                    break;
                push_event(dp, EV_TAP_ERROR, e, 0, NULL, strerror(e));
                if (e == EBADFD || e == EBADF || e == ENODEV || e == EIO) {
                    kick(dp);
                    return NULL;  /* the device is gone: the daemon says which way */
                }
                break;
            }
            tx_frame(dp, dp->txbuf, (size_t)len, subject, flood);
            if (++n % DRAIN_KICK == 0)
                kick(dp);
        }
        kick(dp);
    }
    return NULL;
}

/* Flushes libnats' buffer when the TAP is drained.  FlushTimeout writes the
 * buffer (and a PING) at once, then waits for the PONG: here, not in the
 * reader.  libnats' own flusher still runs for the rest. */
static void *kick_main(void *arg)
{
    vn_dp *dp = arg;
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
        double now = mono();
        pthread_rwlock_rdlock(&dp->cfg);
        int own_src = !memcmp(src, dp->mac, 6), own_dst = !memcmp(dst, dp->mac, 6);
        int flooded = !strcmp(subject, dp->flood);
        signed char table[8];
        memcpy(table, dp->ingress, 8);
        pthread_rwlock_unlock(&dp->cfg);
        if (own_src) {
            reason = VN_D_DUP_MAC;
            drop_event(dp, VN_D_DUP_MAC, 0, subject, VN_D_COUNT);
        } else {
            /* Learn the source; one we served behind our bridge has moved. */
            int added, moved = 0, served = 0;
            uint64_t sk = mac_key(src), dk = mac_key(dst);
            pthread_mutex_lock(&dp->tab);
            if (dp->remote.count >= dp->remote_limit)
                mtab_clear(&dp->remote);  /* bounded: forget, flood a little */
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
                push_event(dp, EV_MOVED_REMOTE, 0, 0, src, NULL);
            int cls = dst[0] & 1 ? 0 : own_dst ? 1 : served ? 2 : 3;
            reason = table[cls * 2 + flooded];
        }
    }
    if (reason >= 0) {
        DROP(dp, reason);
        if (reason == VN_D_OVERSIZE || reason == VN_D_SEALED_NO_KEY)
            drop_event(dp, reason, (long long)n, subject, reason);
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

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    vn_dp *dp = closure;
    (void)nc;
    (void)sub;
    if (atomic_load(&dp->stopping)) {
        natsMsg_Destroy(msg);
        return;
    }
    const unsigned char *data = (const unsigned char *)natsMsg_GetData(msg);
    size_t n = (size_t)natsMsg_GetDataLength(msg);
    const char *subject = natsMsg_GetSubject(msg);
    INC(dp, C_NATS_RX, 1);
    pthread_rwlock_rdlock(&dp->cfg);
    vn_opener *opener = dp->opener;
    if (opener) {
        int refused = -1, stale = 0;
        if (n < 2 || !(data[1] & VN_FLAG_SEALED)) {
            refused = VN_D_UNSEALED;
        } else if (n > SEAL_SLOT) {
            refused = VN_D_OVERSIZE;
        } else {
            int r = vn_opener_open(opener, subject, data, (unsigned int)n, wall(), dp->rxbuf,
                                   &stale);
            if (r >= 0) {
                data = dp->rxbuf;
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
            drop_event(dp, refused, value, subject, refused);
            natsMsg_Destroy(msg);
            return;
        }
    }
    pthread_rwlock_unlock(&dp->cfg);
    /* The opener is replaced only under the write lock, and rxbuf is this
     * (single) delivery thread's own. */
    deliver(dp, subject, data, n);
    natsMsg_Destroy(msg);
}

/* -- lifecycle --------------------------------------------------------------- */
int vn_dp_start(vn_dp *dp)
{
    if (dp->started)
        return -EALREADY;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = pthread_create(&dp->tx, NULL, tx_main, dp);
    if (r == 0) {
        r = pthread_create(&dp->kick, NULL, kick_main, dp);
        if (r != 0) {
            atomic_store(&dp->stopping, 1);
            uint64_t one = 1;
            ssize_t w = write(dp->stop_efd, &one, sizeof(one));
            (void)w;
            pthread_join(dp->tx, NULL);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return -r;
    dp->started = 1;
    return 0;
}

void vn_dp_stop(vn_dp *dp)
{
    atomic_store(&dp->stopping, 1);
    if (dp->started) {
        uint64_t one = 1;
        ssize_t w = write(dp->stop_efd, &one, sizeof(one));
        (void)w;
        pthread_mutex_lock(&dp->ev_mu);
        pthread_cond_broadcast(&dp->ev_cond);
        pthread_mutex_unlock(&dp->ev_mu);
        pthread_mutex_lock(&dp->kick_mu);
        pthread_cond_signal(&dp->kick_cond);
        pthread_mutex_unlock(&dp->kick_mu);
        pthread_join(dp->tx, NULL);
        pthread_join(dp->kick, NULL);
        dp->started = 0;
    }
    if (dp->nc) {
        pthread_mutex_lock(&dp->subs_mu);
        while (dp->nsubs)
            drop_sub(dp, dp->nsubs - 1);
        pthread_mutex_unlock(&dp->subs_mu);
        natsConnection_Close(dp->nc);
        natsConnection_Destroy(dp->nc);
        dp->nc = NULL;
        /* Wait for libnats' threads, so that no callback runs after free. */
        nats_CloseAndWait(2000);
    }
    natsOptions_Destroy(dp->opts);
    dp->opts = NULL;
}

void vn_dp_free(vn_dp *dp)
{
    if (!dp)
        return;
    vn_dp_stop(dp);
    vn_sealer_free(dp->sealer);
    vn_opener_free(dp->opener);
    if (dp->efd >= 0)
        close(dp->efd);
    if (dp->stop_efd >= 0)
        close(dp->stop_efd);
    mtab_free(&dp->local);
    mtab_free(&dp->remote);
    free(dp->txbuf);
    free(dp->txseal);
    free(dp->rxbuf);
    free(dp->subs);
    free(dp);
}
