/* The C datapath: the TAP fd and a libnats data connection, driven by the
 * Python control plane (vlan_nats/aio/ctunnel.py) through vn_datapath.h.
 *
 * One thread ("vn-datapath", vn_tx.c) polls the TAP and the data
 * connection's socket; libnats runs on that poll loop (its event-loop API,
 * vn_loop.c), so no frame is handed between threads:
 *
 * TAP to NATS: read frames until EAGAIN -> per frame: the subject from the
 * destination MAC, bridge learning (a new source MAC is an upcall; its
 * frames wait in a bounded hold queue, and the others keep moving, until
 * the control plane's verdict), what to publish from the egress table
 * (unknown unicast also to the flood subject, the storm bucket), sealing
 * -> publish into libnats' buffer.  A batch that
 * follows a quiet spell, or a big one, is written at once (no PING).
 *
 * NATS to TAP: the socket's reads are parsed by libnats, the messages taken
 * from the (synchronous) subscriptions: open a sealed message, check the
 * wire format, the ingress verdict from the table core/forwarding.py
 * computed, learn the source, write the TAP (one write/writev per frame; a
 * full TAP queue is a counted drop).
 *
 * The layouts measured and not kept (libnats' own reader and delivery
 * threads, a reader and a writer thread, flush threads and modes) are in
 * docs/performance.md.
 *
 * Policy is not decided here: subjects are spelled from prefixes the
 * control plane gives, what to send and what to accept comes from the
 * egress and ingress tables core/forwarding.py computes, and what to learn
 * behind a bridge is its verdict on an upcall.  Counters are
 * atomics; the config lock is taken briefly and never across a syscall. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
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

const char VN_LIBNATS_VERSION[] = NATS_VERSION_STRING;
const int VN_NCOUNTERS = C_COUNT;

double vn_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

double vn_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}


void vn_push_event(vn_dp *dp, int kind, int reason, long long value,
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
void vn_drop_event(vn_dp *dp, int reason, long long value, const char *subject, int slot,
                   const unsigned char *mac)
{
    double now = vn_mono();
    pthread_mutex_lock(&dp->ev_mu);
    int due = now - dp->last_event[slot] >= 1.0;
    if (due)
        dp->last_event[slot] = now;
    pthread_mutex_unlock(&dp->ev_mu);
    if (due)
        vn_push_event(dp, slot == VN_D_COUNT ? EV_DUP_MAC : EV_DROP, reason, value, mac, subject);
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
    sem_init(&dp->running, 0, 0);
    for (int i = 0; i < 8; i++) {
        dp->ingress[i] = -1;
        dp->egress[i] = EG_SEND;  /* until programmed: send, no flood, no storm limit */
    }
    dp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    dp->stop_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    dp->tx_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    atomic_store(&dp->sock_fd, -1);
    dp->txbuf = malloc(SLOT);
    dp->txseal = malloc(SEAL_SLOT);
    dp->subs = calloc(MAX_SUBS, sizeof(*dp->subs));
    if (dp->efd < 0 || dp->stop_efd < 0 || dp->tx_wake < 0 || !dp->txbuf || !dp->txseal ||
        !dp->subs || mtab_init(&dp->local, 64) < 0 || mtab_init(&dp->remote, 1 << 15) < 0) {
        vn_dp_free(dp);
        return NULL;
    }
    dp->remote_limit = 1 << 14;
    return dp;
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

int vn_dp_set_blocked(vn_dp *dp, int blocked)
{
    atomic_store(&dp->blocked, blocked);
    return 0;
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

int vn_dp_set_egress(vn_dp *dp, const int *table, unsigned int n)
{
    if (n != 8)
        return -EINVAL;
    pthread_rwlock_wrlock(&dp->cfg);
    memcpy(dp->egress, table, sizeof(dp->egress));
    pthread_rwlock_unlock(&dp->cfg);
    return 0;
}

int vn_dp_set_bridge(vn_dp *dp, int bridge, double ageing, unsigned int max_macs,
                     unsigned int remote_limit)
{
    if (!remote_limit)
        return -EINVAL;
    pthread_mutex_lock(&dp->tab);
    int r = 0;
    dp->remote_limit = remote_limit;
    if (remote_limit > dp->remote.cap / 2) {
        mtab_free(&dp->remote);
        r = mtab_init(&dp->remote, 2 * remote_limit);
    }
    if (bridge && r == 0) {
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
    dp->storm_last = vn_mono();
    pthread_rwlock_unlock(&dp->cfg);
    return 0;
}


int vn_dp_local_set(vn_dp *dp, const unsigned char *mac, int state)
{
    int added;
    pthread_mutex_lock(&dp->tab);
    int i = mtab_put(&dp->local, mac_key(mac), &added);
    if (i >= 0) {
        dp->local.state[i] = (unsigned char)state;
        if (added)
            dp->local.seen[i] = vn_mono();
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
    double now = vn_mono();
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
    double now = vn_mono();
    pthread_mutex_lock(&dp->tab);
    for (unsigned int i = 0; i < dp->remote.cap; i++)
        n += dp->remote.keys[i] && now - dp->remote.seen[i] <= ageing;
    pthread_mutex_unlock(&dp->tab);
    return n;
}

int vn_dp_verdict(vn_dp *dp)
{
    vn_wake(dp->tx_wake);  /* the datapath thread releases what waited */
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


/* -- lifecycle --------------------------------------------------------------- */
int vn_dp_start(vn_dp *dp)
{
    if (dp->started)
        return -EALREADY;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int r = pthread_create(&dp->tx, NULL, vn_tx_main, dp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return -r;
    /* Until the thread has its priority: privileges may be dropped next. */
    while (sem_wait(&dp->running) != 0 && errno == EINTR)
        ;
    dp->started = 1;
    return 0;
}

int vn_dp_set_nice(vn_dp *dp, int nice)
{
    if (nice < -20 || nice > 19)
        return -EINVAL;
    dp->nice = nice;
    return 0;
}

int vn_dp_nice_error(vn_dp *dp) { return dp->nice_error; }

void vn_dp_stop(vn_dp *dp)
{
    atomic_store(&dp->stopping, 1);
    if (dp->started) {
        uint64_t one = 1;
        ssize_t w = write(dp->stop_efd, &one, sizeof(one));
        (void)w;
        pthread_join(dp->tx, NULL);
        dp->started = 0;
        vn_hold_free(dp);
    }
    if (dp->nc) {
        vn_drop_subs(dp);
        natsConnection_Close(dp->nc);
        natsConnection_Destroy(dp->nc);
        dp->nc = NULL;
        /* Wait for libnats' threads, so that no callback runs after free. */
        nats_CloseAndWait(2000);
    }
    natsOptions_Destroy(dp->opts);
    dp->opts = NULL;
}

/* A data connection libnats closed for good (the same auth error twice on
 * a server: a token being fixed) is made anew, with the credentials the
 * control plane has now; the TAP, tables and counters stay. */
int vn_dp_reconnect(vn_dp *dp, const struct vn_conn_opts *opts)
{
    int was_started = dp->started;
    vn_dp_stop(dp);
    uint64_t v;
    ssize_t r = read(dp->stop_efd, &v, sizeof(v));
    (void)r;
    atomic_store(&dp->stopping, 0);
    int ret = vn_dp_connect(dp, opts);
    if (ret == 0 && was_started)
        ret = vn_dp_start(dp);
    return ret;
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
    if (dp->tx_wake >= 0)
        close(dp->tx_wake);
    mtab_free(&dp->local);
    mtab_free(&dp->remote);
    free(dp->txbuf);
    free(dp->txseal);
    free(dp->subs);
    sem_destroy(&dp->running);
    free(dp);
}

