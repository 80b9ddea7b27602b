/* The C datapath's data connection: libnats options from the control
 * plane's settings (the same servers and credentials as the control
 * connection), its callbacks (turned into events), and the subscriptions.
 * libnats' threads start with every signal blocked: the daemon's asyncio
 * loop takes SIGINT/SIGTERM/SIGHUP. */
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
        INC(dp, C_NATS_DISCONNECTS, 1);
        vn_push_event(dp, EV_DISCONNECTED, 0, 0, NULL, NULL);
    }
}

static void on_connected(natsConnection *nc, void *closure, int reconnect)
{
    vn_dp *dp = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof(url));
    atomic_store(&dp->connected, 1);
    if (reconnect)
        INC(dp, C_NATS_RECONNECTS, 1);
    vn_push_event(dp, reconnect ? EV_RECONNECTED : EV_CONNECTED, 0, 1, NULL, url);
}

static void on_reconnected(natsConnection *nc, void *closure) { on_connected(nc, closure, 1); }
static void on_first_connect(natsConnection *nc, void *closure) { on_connected(nc, closure, 0); }

static void on_closed(natsConnection *nc, void *closure)
{
    vn_dp *dp = closure;
    (void)nc;
    atomic_store(&dp->connected, 0);
    if (!atomic_load(&dp->stopping))
        vn_push_event(dp, EV_CLOSED, 0, 0, NULL, NULL);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    vn_dp *dp = closure;
    (void)sub;
    if (err == NATS_SLOW_CONSUMER)
        return;  /* counted from natsSubscription_GetDropped() */
    const char *text = NULL;
    natsConnection_GetLastError(nc, &text);
    vn_push_event(dp, EV_ERROR, (int)err, 0, NULL, text && *text ? text : natsStatus_GetText(err));
}

/* Secrets the connection asks for on every (re)connect: the control plane
 * replaces them when their files change (a token fixed while the server
 * refused us), so the next attempt uses the new ones.  Replaced values are
 * kept until the process ends: libnats may still be reading the old one. */
static pthread_mutex_t secrets_mu = PTHREAD_MUTEX_INITIALIZER;
static char *kept_seed, *kept_jwt, *kept_token;
struct spent { struct spent *next; char *s; };
static struct spent *spent;

static void replace(char **slot, const char *value)
{
    if (!value || !*value || (*slot && !strcmp(*slot, value)))
        return;
    struct spent *old = *slot ? malloc(sizeof(*old)) : NULL;
    if (old) {
        old->s = *slot;
        old->next = spent;
        spent = old;
    }
    *slot = strdup(value);
}

int vn_dp_set_secrets(vn_dp *dp, const char *token, const char *jwt, const char *seed)
{
    (void)dp;
    pthread_mutex_lock(&secrets_mu);
    replace(&kept_token, token);
    replace(&kept_jwt, jwt);
    replace(&kept_seed, seed);
    pthread_mutex_unlock(&secrets_mu);
    return 0;
}

static const char *token_cb(void *closure)
{
    (void)closure;
    pthread_mutex_lock(&secrets_mu);
    const char *t = kept_token;
    pthread_mutex_unlock(&secrets_mu);
    return t ? t : "";
}

static natsStatus user_jwt(char **jwt, char **custom, void *closure)
{
    (void)custom;
    (void)closure;
    pthread_mutex_lock(&secrets_mu);
    *jwt = kept_jwt ? strdup(kept_jwt) : NULL;
    pthread_mutex_unlock(&secrets_mu);
    return *jwt ? NATS_OK : NATS_NO_MEMORY;
}

static natsStatus sign_cb(char **custom, unsigned char **sig, int *len, const char *nonce,
                          void *closure)
{
    (void)custom;
    (void)closure;
    pthread_mutex_lock(&secrets_mu);
    char *seed = kept_seed ? strdup(kept_seed) : NULL;
    pthread_mutex_unlock(&secrets_mu);
    if (!seed)
        return NATS_NO_MEMORY;
    natsStatus s = nats_Sign(seed, nonce, sig, len);
    memset(seed, 0, strlen(seed));
    free(seed);
    return s;
}

static int fail_with(vn_dp *dp, natsStatus s, const char *what)
{
    const char *why = nats_GetLastError(NULL);
    snprintf(dp->error, sizeof(dp->error), "%s%s", what, why && *why ? why
             : natsStatus_GetText(s));
    return -(1000 + (int)s);
}

/* The data connection's options: 0, or -(1000 + status) with dp->error. */
static int set_options(vn_dp *dp, natsOptions *op, const struct vn_conn_opts *o)
{
    char *urls = strdup(o->servers), *save = NULL;
    const char *list[64];
    int n = 0;
    if (!urls)
        return -ENOMEM;
    for (char *t = strtok_r(urls, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
        list[n++] = t;
    natsStatus st = natsOptions_SetServers(op, list, n);
    free(urls);
    if (st != NATS_OK)
        return fail_with(dp, st, "servers: ");
#define OPT(call)                                   \
    do {                                            \
        natsStatus s_ = (call);                     \
        if (s_ != NATS_OK)                          \
            return fail_with(dp, s_, "");           \
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
    OPT(natsOptions_SetIOBufSize(op, IO_BUF));
    /* No flusher thread: with the event loop, "send asap" only asks the
     * loop to write, and the loop decides when (vn_tx.c).  libnats'
     * flusher was woken by every publish and again 1 ms later. */
    OPT(natsOptions_SetSendAsap(op, true));
    /* Frames published while disconnected are dropped and counted (the
     * datapath checks first); nothing stale is replayed later. */
    OPT(natsOptions_SetReconnectBufSize(op, 1));
    OPT(natsOptions_SetMaxPendingMsgs(op, o->pending_msgs));
    OPT(vn_loop_options(dp, op));
    OPT(natsOptions_SetDisconnectedCB(op, on_disconnected, dp));
    OPT(natsOptions_SetReconnectedCB(op, on_reconnected, dp));
    OPT(natsOptions_SetClosedCB(op, on_closed, dp));
    OPT(natsOptions_SetErrorHandler(op, on_error, dp));
    OPT(natsOptions_SetRetryOnFailedConnect(op, true, on_first_connect, dp));
    if (o->user)
        OPT(natsOptions_SetUserInfo(op, o->user, o->password));
    vn_dp_set_secrets(dp, o->token, o->jwt, o->seed);
    if (o->token)
        OPT(natsOptions_SetTokenHandler(op, token_cb, NULL));
    if (o->jwt)
        OPT(natsOptions_SetUserCredentialsCallbacks(op, user_jwt, NULL, sign_cb, NULL));
    else if (o->nkey_public)
        OPT(natsOptions_SetNKey(op, o->nkey_public, sign_cb, NULL));
    if (o->tls) {
        OPT(natsOptions_SetSecure(op, true));
        if (o->tls_ca)
            OPT(natsOptions_LoadCATrustedCertificates(op, o->tls_ca));
        if (o->tls_cert)
            OPT(natsOptions_LoadCertificatesChain(op, o->tls_cert, o->tls_key));
    }
#undef OPT
    return 0;
}

int vn_dp_connect(vn_dp *dp, const struct vn_conn_opts *o)
{
    /* libnats starts threads (timers, its collector; with "send asap" and
     * the event loop no reader, delivery or flusher): they
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
    dp->pend_msgs = o->pending_msgs;
    dp->pend_bytes = o->pending_bytes;
    ret = -ENOMEM;
    if (natsOptions_Create(&dp->opts) != NATS_OK)
        goto out;
    ret = set_options(dp, dp->opts, o);
    if (ret < 0)
        goto out;
    s = natsConnection_Connect(&dp->nc, dp->opts);
    if (s == NATS_OK) {
        char url[256] = "";
        natsConnection_GetConnectedUrl(dp->nc, url, sizeof(url));
        if (!atomic_exchange(&dp->connected, 1))
            vn_push_event(dp, EV_CONNECTED, 0, 1, NULL, url);
    } else if (s != NATS_NOT_YET_CONNECTED) {
        ret = fail_with(dp, s, "");
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


int vn_dp_flush(vn_dp *dp, int timeout_ms)
{
    if (!dp->nc)
        return -ENOTCONN;
    natsStatus s = natsConnection_FlushTimeout(dp->nc, timeout_ms);
    return s == NATS_OK ? 0 : -(1000 + (int)s);
}

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
        /* Synchronous: the datapath thread takes the messages (vn_loop.c). */
        natsStatus s = natsConnection_SubscribeSync(&sub, dp->nc, subject);
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

void vn_drop_subs(vn_dp *dp)
{
    pthread_mutex_lock(&dp->subs_mu);
    while (dp->nsubs)
        drop_sub(dp, dp->nsubs - 1);
    pthread_mutex_unlock(&dp->subs_mu);
}
