/* The C datapath (vlan_nats._datapath): a TAP fd and a libnats data
 * connection, with its own threads.  The Python control plane programs it
 * through these calls; each returns a count, 0, or a negative errno, and
 * none touches a Python object.  Kept free of preprocessor directives so
 * that cffi parses it as it is.
 *
 * One thread ("vn-datapath") polls the TAP and the data connection's
 * socket and moves frames both ways; libnats runs on its poll loop (see
 * vn_datapath.c).
 * Counters are atomics, read with vn_dp_counters().  What the datapath
 * cannot decide alone becomes an event on vn_dp_event_fd(). */

/* The constants shared with core/ (wire and seal sizes, drop reasons,
 * counters, event kinds, local-table states, the egress table's layout)
 * are generated from it into vn_gen.h by csrc/build_datapath.py.  Calls
 * only the tests use are in vn_testhooks.h. */
extern const int VN_NCOUNTERS;   /* length of the vn_dp_counters() array: core.counters'
                                    DATAPATH_COUNTERS, then the DropReasons */
extern const char VN_LIBNATS_VERSION[];

/* -- sealing (vn_seal.c), usable on its own: the test vectors feed both
 *    this and core/seal.py ---------------------------------------------- */
typedef struct vn_sealer vn_sealer;
typedef struct vn_opener vn_opener;

/* A sender session: key (32 bytes), session (8 bytes).  NULL on error. */
vn_sealer *vn_sealer_new(const unsigned char *key, const unsigned char *session);
void vn_sealer_free(vn_sealer *s);
/* Seal msg (len bytes) for subject at wall-clock second `stamp` into out
 * (len + VN_SEAL_HEADER_LEN + VN_SEAL_TAG_LEN bytes).  Uses and advances
 * the session counter.  Returns the sealed length or -errno. */
int vn_sealer_seal(vn_sealer *s, const char *subject, const unsigned char *msg,
                   unsigned int len, unsigned int stamp, unsigned char *out);
unsigned long long vn_sealer_counter(vn_sealer *s);
void vn_sealer_set_counter(vn_sealer *s, unsigned long long counter);

/* Accepts nkeys keys of 32 bytes each; a clock skew limit in seconds; at
 * most max_sessions senders remembered.  NULL on error. */
vn_opener *vn_opener_new(const unsigned char *keys, unsigned int nkeys, double skew,
                         unsigned int max_sessions);
void vn_opener_free(vn_opener *o);
/* Accept these keys from now on; sessions under other keys are forgotten. */
int vn_opener_set_keys(vn_opener *o, const unsigned char *keys, unsigned int nkeys);
/* Open msg into out (at least len bytes).  Returns the plain length (>= 0),
 * or -(1000 + DropReason) when the message is refused.  *stale receives the
 * signed clock difference of a SEAL_STALE refusal.  Thread-safe. */
int vn_opener_open(vn_opener *o, const char *subject, const unsigned char *msg,
                   unsigned int len, double now, unsigned char *out, int *stale);
int vn_opener_sessions(vn_opener *o);

/* -- the datapath ------------------------------------------------------- */
typedef struct vn_dp vn_dp;

struct vn_conn_opts {
    const char *servers;     /* comma-separated URLs */
    const char *name;        /* the connection's name, shown by the server */
    const char *user;
    const char *password;
    const char *token;
    const char *nkey_public; /* nkey: its public key, signed with `seed` */
    const char *seed;        /* nkey or creds seed (text), kept in memory */
    const char *jwt;         /* creds: the user JWT */
    const char *tls_ca;
    const char *tls_cert;
    const char *tls_key;
    int tls;                 /* TLS on (with or without files) */
    int pending_msgs;        /* per-subscription limits */
    int pending_bytes;
    int ping_ms;
    int max_pings_out;
    int reconnect_wait_ms;
};

struct vn_event {
    int kind;                /* core.events.Event */
    int reason;              /* a DropReason (DROP), a verdict id (NEW_LOCAL) */
    long long value;         /* DROP: size or clock skew; CONN: 1 up, 0 down */
    unsigned char mac[6];
    char text[256];          /* a subject, an error or a URL */
};

/* A datapath for the TAP fd (opened with IFF_VNET_HDR).  NULL on ENOMEM. */
vn_dp *vn_dp_new(int tap_fd, int compat, unsigned int max_frame);
/* Connect (libnats retries in the background when no server answers yet).
 * Returns 0, or -(1000 + natsStatus) for an option libnats refused; then
 * vn_dp_error() says why. */
int vn_dp_connect(vn_dp *dp, const struct vn_conn_opts *opts);
/* Make the data connection anew (after libnats closed it): the threads
 * are stopped, the old connection and its subscriptions dropped, then
 * connect and start as before.  The caller subscribes again. */
int vn_dp_reconnect(vn_dp *dp, const struct vn_conn_opts *opts);
/* New token, creds JWT or seed (NULL or "": unchanged), used from the next
 * connection attempt on. */
int vn_dp_set_secrets(vn_dp *dp, const char *token, const char *jwt, const char *seed);
int vn_dp_error(vn_dp *dp, char *out, unsigned int cap);
/* Start the datapath thread.  Signals stay blocked in it. */
int vn_dp_start(vn_dp *dp);
/* The nice value the datapath thread takes as it starts (-20..19, 0: the
 * process's own); vn_dp_nice_error(): 0, or the errno of setting it. */
int vn_dp_set_nice(vn_dp *dp, int nice);
int vn_dp_nice_error(vn_dp *dp);
/* Stop the threads and close the data connection (the TAP fd stays open). */
void vn_dp_stop(vn_dp *dp);
void vn_dp_free(vn_dp *dp);

/* Connection state: 1 connected, 0 not; the URL in out. */
int vn_dp_connected(vn_dp *dp, char *url, unsigned int cap);
/* Wait until the server has processed everything sent so far (PING/PONG),
 * e.g. the SUBs before the daemon says it is ready: 0, or -(1000+status). */
int vn_dp_flush(vn_dp *dp, int timeout_ms);

/* Programming. */
int vn_dp_set_mac(vn_dp *dp, const unsigned char *mac);
int vn_dp_set_max_frame(vn_dp *dp, unsigned int max_frame);
/* Forward nothing either way while set (each frame a no_key drop). */
int vn_dp_set_blocked(vn_dp *dp, int blocked);
/* Subject spelling: unicast and multicast prefixes (the MAC is appended:
 * mac_style 0 = 12 lowercase hex digits, 1 = the Go original's hex of
 * "aa:bb:.."; an empty multicast prefix sends groups to `broadcast`). */
int vn_dp_set_subjects(vn_dp *dp, const char *unicast, const char *multicast,
                       const char *broadcast, const char *flood, int mac_style);
/* The ingress verdict table from core.forwarding.ingress_table(): entry
 * [dst_class * 2 + flooded] is -1 (accept) or a DropReason.  dst classes:
 * 0 group, 1 our MAC, 2 served behind our bridge, 3 another MAC. */
int vn_dp_set_ingress(vn_dp *dp, const signed char *table, unsigned int n);
/* The egress table from core.forwarding.egress_table(): entry
 * [dst_class * 2 + storm_spent] holds the EG_* bits and the drop to count. */
int vn_dp_set_egress(vn_dp *dp, const int *table, unsigned int n);
/* Bridge mode: learn local sources (upcalls), up to max_macs; ageing of
 * remote MACs; at most remote_limit of them (core.switching.remote_limit). */
int vn_dp_set_bridge(vn_dp *dp, int bridge, double ageing, unsigned int max_macs,
                     unsigned int remote_limit);
/* The storm bucket (core.switching.TokenBucket's rate and burst). */
int vn_dp_set_storm(vn_dp *dp, double rate, double burst);
/* Routed ARP (core/arp.py): requests go to `prefix` + the target's 8 hex
 * digits unless rule[gratuitous * 2 + repeat] says broadcast (1); a repeat
 * is the same sender and target within `window` seconds.  "" turns it off. */
int vn_dp_set_arp(vn_dp *dp, const char *prefix, const signed char *rule, unsigned int n,
                  double window);
int vn_dp_subscribe(vn_dp *dp, const char *subject);
int vn_dp_unsubscribe(vn_dp *dp, const char *subject);
int vn_dp_local_set(vn_dp *dp, const unsigned char *mac, int state);
int vn_dp_local_del(vn_dp *dp, const unsigned char *mac);
/* Local MACs and seconds since each was last read from the TAP. */
int vn_dp_local_dump(vn_dp *dp, unsigned char *macs, double *idle, int *states,
                     unsigned int max);
/* The control plane decided on new local MACs (vn_dp_local_set): their held
 * frames go. */
int vn_dp_verdict(vn_dp *dp);
/* MACs heard from the network within `ageing` seconds (our peers). */
int vn_dp_remote_count(vn_dp *dp, double ageing);
/* Sealing: the datapath takes ownership of both (NULL: none). */
int vn_dp_set_sealer(vn_dp *dp, vn_sealer *s);
int vn_dp_set_opener(vn_dp *dp, vn_opener *o);
int vn_dp_opener_sessions(vn_dp *dp);


/* Counters, in VN_NCOUNTERS' order, copied to out. */
int vn_dp_counters(vn_dp *dp, unsigned long long *out, unsigned int n);
/* An eventfd, readable while events wait. */
int vn_dp_event_fd(vn_dp *dp);
int vn_dp_events(vn_dp *dp, struct vn_event *out, unsigned int max);
/* Slow-consumer drops of our subscriptions so far (libnats' count). */
long long vn_dp_dropped(vn_dp *dp);
