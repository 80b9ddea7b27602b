/* The data connection on the datapath's own poll loop (libnats' external
 * event-loop API, natsOptions_SetEventLoop), instead of libnats' reader and
 * delivery threads.  The datapath thread (vn_tx.c) polls the socket with
 * the TAP:
 *
 *   readable  natsConnection_ProcessReadEvent (parse) -> take the messages
 *             from the (synchronous) subscriptions -> vn_on_msg -> the TAP.
 *   writable  natsConnection_ProcessWriteEvent: at once after a batch that
 *             follows a quiet spell, when 32 KiB or libnats' buffer are
 *             full, when another thread asks (a SUB, a PING), else within
 *             a millisecond of the first buffered byte (vn_tx.c).
 *
 * libnats' callbacks below only record what to poll and wake the loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "vn_dp.h"

void vn_wake(int efd)
{
    uint64_t one = 1;
    ssize_t w = write(efd, &one, sizeof(one));
    (void)w;
}

static natsStatus ev_attach(void **userData, void *loop, natsConnection *nc, natsSock sock)
{
    vn_dp *dp = loop;
    (void)nc;
    *userData = dp;
    atomic_store(&dp->sock_fd, (int)sock);
    atomic_store(&dp->sock_read, 1);
    vn_wake(dp->tx_wake);
    return NATS_OK;
}

static natsStatus ev_read(void *userData, bool add)
{
    vn_dp *dp = userData;
    atomic_store(&dp->sock_read, add);
    vn_wake(dp->tx_wake);
    return NATS_OK;
}

static natsStatus ev_write(void *userData, bool add)
{
    vn_dp *dp = userData;
    if (atomic_exchange(&dp->sock_write, add) != add && add && !pthread_equal(pthread_self(), dp->tx))
        vn_wake(dp->tx_wake);
    return NATS_OK;
}

static natsStatus ev_detach(void *userData)
{
    vn_dp *dp = userData;
    atomic_store(&dp->sock_fd, -1);
    atomic_store(&dp->sock_write, 0);
    vn_wake(dp->tx_wake);
    return NATS_OK;
}

natsStatus vn_loop_options(vn_dp *dp, natsOptions *op)
{
    return natsOptions_SetEventLoop(op, dp, ev_attach, ev_read, ev_write, ev_detach);
}

/* Write what libnats buffered, if it wants it written.  Returns 1 while
 * some stays behind (the socket is full: wait for POLLOUT). */
int vn_loop_write(vn_dp *dp)
{
    if (atomic_load(&dp->sock_fd) < 0 || !dp->nc)
        return 0;
    /* Never with an empty buffer: libnats takes a 0-byte send() for a
     * closed connection.  Only this thread writes, so what it sees
     * buffered can only grow before the write. */
    if (natsConnection_Buffered(dp->nc) <= 0)
        return 0;
    natsConnection_ProcessWriteEvent(dp->nc);
    return atomic_load(&dp->sock_write);
}

/* Take up to `max` messages from the subscriptions, oldest subscription
 * first, under subs_mu (no system call in there). */
static int take(vn_dp *dp, natsMsg **out, int max)
{
    int n = 0;
    pthread_mutex_lock(&dp->subs_mu);
    for (unsigned int i = 0; i < dp->nsubs && n < max; i++) {
        uint64_t q = 0;
        if (natsSubscription_QueuedMsgs(dp->subs[i].sub, &q) != NATS_OK)
            continue;
        while (q-- > 0 && n < max) {
            natsStatus s = natsSubscription_NextMsg(&out[n], dp->subs[i].sub, 0);
            if (s == NATS_OK)
                n++;
            else if (s != NATS_SLOW_CONSUMER)  /* said once after a cut: go on */
                break;
        }
    }
    pthread_mutex_unlock(&dp->subs_mu);
    return n;
}

void vn_loop_free_spent(vn_dp *dp)
{
    for (unsigned int i = 0; i < dp->nspent; i++)
        natsMsg_Destroy(dp->spent[i]);
    dp->nspent = 0;
    dp->spent_bytes = 0;
}

/* Read the socket once and write what came to the TAP. */
void vn_loop_read(vn_dp *dp)
{
    natsMsg *batch[64];
    natsConnection_ProcessReadEvent(dp->nc);
    int n;
    do {
        n = take(dp, batch, 64);
        for (int i = 0; i < n; i++) {
            vn_rx(dp, batch[i]);
            if (!dp->nspent)
                dp->spent_since = vn_mono();
            dp->spent[dp->nspent++] = batch[i];
            dp->spent_bytes += (size_t)natsMsg_GetDataLength(batch[i]);
            if (dp->nspent == SPENT_MSGS || dp->spent_bytes >= SPENT_BYTES)
                vn_loop_free_spent(dp);
        }
    } while (n == 64);
}
