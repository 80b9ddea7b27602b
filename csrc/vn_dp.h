/* The C datapath's own declarations, shared by its sources (not for cffi):
 *
 *   vn_datapath.c  the datapath object: programming, events, counters, lifecycle
 *   vn_mactab.c    MAC tables (open addressing)
 *   vn_conn.c      the data connection (libnats options, callbacks, subscriptions)
 *   vn_tx.c        the datapath thread: TAP -> NATS, and the socket's turns
 *   vn_rx.c        NATS -> TAP: message delivery
 *   vn_arp.c       routed ARP: a request to its target's subject
 *   vn_seal.c      sealed frames (libcrypto) */
#ifndef VN_DP_H
#define VN_DP_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>

#include <nats/nats.h>

#include "vn_datapath.h"
#include "vn_internal.h"

#include "vn_testhooks.h"

/* Event kinds (enum vn_event_kind) and local-table states (enum vn_local_state) are
 * core/events.py's, in vn_gen.h. */
/* The counter array: enum vn_counter (vn_gen.h, from core.counters.
 * DATAPATH_COUNTERS), then the drops.  The by-kind counters are indexed
 * from their first (FrameKind order). */
#define C_TX_KIND C_TX_BY_KIND_UNICAST
#define C_TX_BYTES_KIND C_TX_BYTES_BY_KIND_UNICAST
#define C_RX_KIND C_RX_BY_KIND_UNICAST
#define C_RX_BYTES_KIND C_RX_BYTES_BY_KIND_UNICAST
#define C_COUNT (C_DROPS + VN_D_COUNT)

#define VNET 12
#define ETH_HLEN 14
#define MAX_FRAME (65535 + ETH_HLEN + 8)
/* A read slot: 2 bytes of wire header room, the virtio header, the frame. */
#define SLOT (2 + VNET + MAX_FRAME)
#define SEAL_SLOT (SLOT + VN_SEAL_HDR + VN_SEAL_TAG)
#define SUBJ 256
#define NEVENTS 1024         /* a burst of new MACs behind a bridge: one upcall each */
#define MAX_SUBS 8192
#define UPCALL_WAIT_MS 500  /* a held frame waits this long for its verdict */
/* Frames held for verdicts, at most (then counted drops): a burst of 2000
 * new MACs in 70 ms (scripts/bench_newmacs.py) fills 256 half-way through. */
#define HOLD_FRAMES 1024
#define HOLD_BYTES (4u << 20)
#define ARP_LEN 28           /* an Ethernet/IPv4 ARP payload */
#define ARP_KEY 14           /* sender MAC and address, target address */
#define ARP_SLOTS 1024       /* remembered (sender, target) pairs: a power of two */
/* libnats' socket buffer: 256 KiB measured best with the offloads' 64 KiB
 * GSO frames (docs/performance.md, the C datapath's knobs). */
#define IO_BUF (256 * 1024)
/* Received messages are destroyed in batches, at these bounds or a second
 * after the first (vn_tx.c): libnats frees each one on its collector
 * thread, and waking that thread per message cost a wake-up per frame. */
#define SPENT_MSGS 64
#define SPENT_BYTES (1u << 20)

struct held {                /* a frame read from the TAP, waiting for its source's verdict */
    unsigned char *buf;      /* 2 bytes of room, the virtio header, the frame */
    size_t len;              /* the virtio header and the frame */
    double until;            /* sent anyway from then on */
    uint64_t src;            /* its source MAC (mac_key) */
};

struct arp_seen {
    unsigned char key[ARP_KEY];
    double when;             /* 0: empty */
};


/* -- MAC tables (vn_mactab.c): open addressing, linear probing,
 *    backward-shift delete; the caller locks --------------------------------- */
struct mtab {
    uint64_t *keys;          /* mac + 1 (0: empty) */
    double *seen;
    unsigned char *state;
    unsigned int cap, count; /* cap: a power of two */
};

uint64_t mac_key(const unsigned char *m);
void key_mac(uint64_t k, unsigned char *m);
int mtab_init(struct mtab *t, unsigned int cap);
void mtab_free(struct mtab *t);
int mtab_find(const struct mtab *t, uint64_t k);
int mtab_put(struct mtab *t, uint64_t k, int *added);
void mtab_del_at(struct mtab *t, unsigned int i);
void mtab_clear(struct mtab *t);

/* -- the datapath ---------------------------------------------------------- */
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
    atomic_int blocked;      /* forward nothing (a sealed network, no key) */
    atomic_int stopping;
    atomic_uint max_frame;
    _Atomic unsigned long long c[C_COUNT];
    long long dropped_gone;
    int pend_msgs, pend_bytes;
    double last_tx;          /* when the datapath thread last published (its own) */
    /* The data connection runs on the datapath thread's poll loop (vn_loop.c). */
    atomic_int sock_fd;      /* its socket, -1 while detached */
    atomic_int sock_read, sock_write;  /* what libnats wants polled */
    int tx_wake;             /* eventfd: look at the socket again */
    char error[256];

    /* Config, read per frame under cfg (a read lock), set by the control plane. */
    pthread_rwlock_t cfg;
    unsigned char mac[6];
    char ucast[SUBJ], mcast[SUBJ], bcast[SUBJ], flood[SUBJ];
    int mac_style;
    signed char ingress[8];
    int egress[8];           /* core.forwarding.egress_table() */
    int bridge;
    double ageing;
    double storm_rate, storm_burst, tokens, storm_last;
    char arp[SUBJ];          /* routed ARP: the subject prefix ("": off) */
    signed char arp_rule[4]; /* core.arp.arp_table(): [gratuitous * 2 + repeat] */
    double arp_window;
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
    struct vn_event ev[NEVENTS];
    unsigned int ev_head, ev_len;
    int efd;
    struct held held[HOLD_FRAMES];  /* the datapath thread's own */
    unsigned int nheld;
    size_t held_bytes;
    double last_event[VN_D_COUNT + 1];  /* per drop reason (+ dup MAC), rate limit */

    /* Threads. */
    int nice;                /* the datapath thread's, set as it starts (0: left) */
    int nice_error;          /* errno of that, 0: done */
    sem_t running;           /* posted by the thread once it has its priority */
    int stop_efd;
    pthread_t tx;
    int started;

    natsMsg *spent[SPENT_MSGS];  /* delivered, to destroy (the thread's own) */
    unsigned int nspent;
    size_t spent_bytes;
    double spent_since;      /* when the first of them was delivered */

    unsigned char *txbuf, *txseal;
    struct arp_seen arp_seen[ARP_SLOTS];  /* the TAP reader's own */
};


#define INC(dp, i, n) atomic_fetch_add_explicit(&(dp)->c[(i)], (unsigned long long)(n), \
                                                memory_order_relaxed)
#define DROP(dp, r) INC(dp, C_DROPS + (r), 1)

/* vn_datapath.c */
double vn_mono(void);
double vn_wall(void);
void vn_push_event(vn_dp *dp, int kind, int reason, long long value,
                   const unsigned char *mac, const char *text);
void vn_drop_event(vn_dp *dp, int reason, long long value, const char *subject, int slot,
                   const unsigned char *mac);
/* vn_conn.c */
void vn_drop_subs(vn_dp *dp);
/* vn_tx.c */
void *vn_tx_main(void *arg);
/* vn_loop.c */
natsStatus vn_loop_options(vn_dp *dp, natsOptions *op);
int vn_loop_write(vn_dp *dp);
void vn_wake(int efd);  /* write 1 to an eventfd */
void vn_hold_free(vn_dp *dp);  /* the held frames, freed (the thread is stopped) */
void vn_loop_read(vn_dp *dp);
void vn_loop_free_spent(vn_dp *dp);  /* destroy the delivered messages */
/* vn_arp.c: 1 and the target's subject in `subject` when the broadcast
 * frame f is an ARP request to route; 0: it stays a broadcast (counted). */
int vn_arp_route(vn_dp *dp, const unsigned char *f, size_t flen, double now, char *subject);
/* vn_rx.c */
void vn_rx(vn_dp *dp, natsMsg *msg);  /* the caller destroys msg */
void vn_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);

#endif
