/* Sealed frames in C: the envelope of core/seal.py (see its docstring for
 * the layout), with OpenSSL's libcrypto.  Per-session keys are
 * HKDF-SHA256(key, salt=session, info="vlan-nats v1 frames"); the nonce is
 * the 64-bit counter, big-endian in 12 bytes; the associated data is the
 * envelope header and the subject.  A receiver keeps a 1024-counter replay
 * window per (session, key id) and refuses clocks more than `skew` away.
 *
 * Each sealer and each session keeps its EVP_CIPHER_CTX keyed once, so a
 * frame costs no allocation.  The opener is locked (the control plane may
 * change its keys while the delivery thread opens). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "vn_datapath.h"
#include "vn_internal.h"

#define KEY_LEN 32
#define SESSION_LEN 8
#define WINDOW VN_SEAL_WIN
#define WORDS (WINDOW / 64)
#define MAX_KEYS 4

static const char INFO[] = "vlan-nats v1 frames";
static const char KID_LABEL[] = "vlan-nats key id";

static unsigned char key_id(const unsigned char *key)
{
    unsigned char in[sizeof(KID_LABEL) - 1 + KEY_LEN], md[SHA256_DIGEST_LENGTH];
    memcpy(in, KID_LABEL, sizeof(KID_LABEL) - 1);
    memcpy(in + sizeof(KID_LABEL) - 1, key, KEY_LEN);
    SHA256(in, sizeof(in), md);
    return md[0];
}

/* RFC 5869 with one output block (32 bytes is all we need). */
static int session_key(const unsigned char *key, const unsigned char *session, unsigned char *out)
{
    unsigned char prk[32], block[sizeof(INFO) - 1 + 1];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), session, SESSION_LEN, key, KEY_LEN, prk, &n))
        return -1;
    memcpy(block, INFO, sizeof(INFO) - 1);
    block[sizeof(INFO) - 1] = 1;
    if (!HMAC(EVP_sha256(), prk, sizeof(prk), block, sizeof(block), out, &n))
        return -1;
    return 0;
}

static void nonce(uint64_t ctr, unsigned char *iv)
{
    memset(iv, 0, 4);
    for (int i = 0; i < 8; i++)
        iv[4 + i] = (unsigned char)(ctr >> (56 - 8 * i));
}

static EVP_CIPHER_CTX *gcm_ctx(const unsigned char *key, int enc)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c)
        return NULL;
    if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, NULL, enc) != 1) {
        EVP_CIPHER_CTX_free(c);
        return NULL;
    }
    return c;
}

/* -- sealer -------------------------------------------------------------- */
struct vn_sealer {
    EVP_CIPHER_CTX *ctx;
    unsigned char kid;
    unsigned char session[SESSION_LEN];
    uint64_t counter;
};

vn_sealer *vn_sealer_new(const unsigned char *key, const unsigned char *session)
{
    unsigned char sk[KEY_LEN];
    vn_sealer *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (session_key(key, session, sk) < 0 || !(s->ctx = gcm_ctx(sk, 1))) {
        free(s);
        return NULL;
    }
    s->kid = key_id(key);
    memcpy(s->session, session, SESSION_LEN);
    return s;
}

void vn_sealer_free(vn_sealer *s)
{
    if (s) {
        EVP_CIPHER_CTX_free(s->ctx);
        free(s);
    }
}

unsigned long long vn_sealer_counter(vn_sealer *s) { return s->counter; }
void vn_sealer_set_counter(vn_sealer *s, unsigned long long counter) { s->counter = counter; }

static int aead(EVP_CIPHER_CTX *c, int enc, const unsigned char *iv, const unsigned char *hdr,
                const char *subject, const unsigned char *in, int len, unsigned char *out,
                unsigned char *tag)
{
    int n = 0, m = 0;
    if (EVP_CipherInit_ex(c, NULL, NULL, NULL, iv, enc) != 1)
        return -1;
    if (EVP_CipherUpdate(c, NULL, &n, hdr, VN_SEAL_HDR) != 1)
        return -1;
    if (EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)subject, (int)strlen(subject)) != 1)
        return -1;
    n = 0;
    if (len > 0 && EVP_CipherUpdate(c, out, &n, in, len) != 1)
        return -1;
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, VN_SEAL_TAG, tag) != 1)
        return -1;
    if (EVP_CipherFinal_ex(c, out + n, &m) != 1)
        return -1;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, VN_SEAL_TAG, tag) != 1)
        return -1;
    return n + m;
}

int vn_sealer_seal(vn_sealer *s, const char *subject, const unsigned char *msg, unsigned int len,
                   unsigned int stamp, unsigned char *out)
{
    unsigned char iv[12];
    uint64_t ctr = s->counter++;
    out[0] = VN_VERSION;
    out[1] = VN_FLAG_SEALED;
    out[2] = s->kid;
    memcpy(out + 3, s->session, SESSION_LEN);
    for (int i = 0; i < 8; i++)
        out[11 + i] = (unsigned char)(ctr >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        out[19 + i] = (unsigned char)(stamp >> (24 - 8 * i));
    nonce(ctr, iv);
    int n = aead(s->ctx, 1, iv, out, subject, msg, (int)len, out + VN_SEAL_HDR,
                 out + VN_SEAL_HDR + len);
    if (n != (int)len)
        return -EIO;
    return (int)len + VN_SEAL_HDR + VN_SEAL_TAG;
}

/* -- opener -------------------------------------------------------------- */
struct session {
    int used;
    unsigned char id[SESSION_LEN];
    unsigned char kid;
    int key;                 /* index into keys */
    EVP_CIPHER_CTX *ctx;
    int64_t top;             /* highest counter accepted, -1 none */
    uint64_t bits[WORDS];    /* bit i: counter top - i seen */
    double last_seen;
};

struct vn_opener {
    pthread_mutex_t mu;
    unsigned char keys[MAX_KEYS][KEY_LEN];
    unsigned char kids[MAX_KEYS];
    unsigned int nkeys;
    double skew;
    unsigned int max;
    unsigned int n;          /* sessions[0..n) are in use */
    struct session *sessions;
    EVP_CIPHER_CTX *trial;   /* for a new session's first message */
};

vn_opener *vn_opener_new(const unsigned char *keys, unsigned int nkeys, double skew,
                         unsigned int max_sessions)
{
    vn_opener *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->sessions = calloc(max_sessions ? max_sessions : 1, sizeof(struct session));
    o->trial = EVP_CIPHER_CTX_new();
    if (!o->sessions || !o->trial) {
        vn_opener_free(o);
        return NULL;
    }
    pthread_mutex_init(&o->mu, NULL);
    o->skew = skew;
    o->max = max_sessions ? max_sessions : 1;
    if (vn_opener_set_keys(o, keys, nkeys) < 0) {
        vn_opener_free(o);
        return NULL;
    }
    return o;
}

static void forget(struct session *s)
{
    EVP_CIPHER_CTX_free(s->ctx);
    memset(s, 0, sizeof(*s));
}

void vn_opener_free(vn_opener *o)
{
    if (!o)
        return;
    if (o->sessions)
        for (unsigned int i = 0; i < o->n; i++)
            forget(&o->sessions[i]);
    free(o->sessions);
    EVP_CIPHER_CTX_free(o->trial);
    free(o);
}

int vn_opener_set_keys(vn_opener *o, const unsigned char *keys, unsigned int nkeys)
{
    if (nkeys > MAX_KEYS)
        return -EINVAL;
    unsigned char old[MAX_KEYS][KEY_LEN];
    unsigned int nold;
    pthread_mutex_lock(&o->mu);
    memcpy(old, o->keys, sizeof(old));
    nold = o->nkeys;
    for (unsigned int i = 0; i < nkeys; i++) {
        memcpy(o->keys[i], keys + i * KEY_LEN, KEY_LEN);
        o->kids[i] = key_id(keys + i * KEY_LEN);
    }
    o->nkeys = nkeys;
    /* Sessions under a key still accepted are kept (re-pointed to its new
     * index); the others are forgotten. */
    for (unsigned int i = 0; i < o->n;) {
        struct session *s = &o->sessions[i];
        int keep = -1;
        for (unsigned int k = 0; k < nkeys && (unsigned int)s->key < nold; k++)
            if (!memcmp(o->keys[k], old[s->key], KEY_LEN))
                keep = (int)k;
        if (keep >= 0) {
            s->key = keep;
            i++;
            continue;
        }
        forget(s);
        if (i != --o->n) {   /* keep [0, n) dense: move the last one here */
            *s = o->sessions[o->n];
            memset(&o->sessions[o->n], 0, sizeof(*s));
        }
    }
    pthread_mutex_unlock(&o->mu);
    return 0;
}

int vn_opener_sessions(vn_opener *o)
{
    int n;
    pthread_mutex_lock(&o->mu);
    n = (int)o->n;
    pthread_mutex_unlock(&o->mu);
    return n;
}

static int window_seen(const struct session *s, uint64_t ctr)
{
    if ((int64_t)ctr > s->top)
        return 0;
    uint64_t back = (uint64_t)s->top - ctr;
    if (back >= WINDOW)
        return 1;
    return (int)(s->bits[back / 64] >> (back % 64) & 1);
}

static void window_mark(struct session *s, uint64_t ctr)
{
    if ((int64_t)ctr > s->top) {
        uint64_t shift = s->top < 0 ? WINDOW : ctr - (uint64_t)s->top;
        if (shift >= WINDOW) {
            memset(s->bits, 0, sizeof(s->bits));
        } else {
            unsigned int w = (unsigned int)(shift / 64), b = (unsigned int)(shift % 64);
            for (int i = WORDS - 1; i >= 0; i--) {
                uint64_t v = 0;
                if (i - (int)w >= 0) {
                    v = s->bits[i - w] << b;
                    if (b && i - (int)w - 1 >= 0)
                        v |= s->bits[i - w - 1] >> (64 - b);
                }
                s->bits[i] = v;
            }
        }
        s->bits[0] |= 1;
        s->top = (int64_t)ctr;
    } else {
        uint64_t back = (uint64_t)s->top - ctr;
        s->bits[back / 64] |= (uint64_t)1 << (back % 64);
    }
}

static struct session *find(vn_opener *o, const unsigned char *id, unsigned char kid)
{
    for (unsigned int i = 0; i < o->n; i++) {
        struct session *s = &o->sessions[i];
        if (s->kid == kid && !memcmp(s->id, id, SESSION_LEN))
            return s;
    }
    return NULL;
}

static struct session *slot(vn_opener *o)
{
    if (o->n < o->max)
        return &o->sessions[o->n++];
    struct session *oldest = &o->sessions[0];
    for (unsigned int i = 1; i < o->n; i++)
        if (o->sessions[i].last_seen < oldest->last_seen)
            oldest = &o->sessions[i];
    forget(oldest);
    return oldest;
}

/* A message from a sender session not seen yet: opened with each key of
 * its key id (a session key derived from it); the one that opens it makes
 * the session, in *sp.  0, or a refusal (or -ENOMEM).  Under o->mu. */
static int new_session(vn_opener *o, const unsigned char *msg, const char *subject, int body,
                       const unsigned char *iv, unsigned char *tag, unsigned char *out,
                       struct session **sp)
{
    unsigned char kid = msg[2];
    int found = -1;
    unsigned char sk[KEY_LEN];
    for (unsigned int k = 0; k < o->nkeys && found < 0; k++) {
        if (o->kids[k] != kid || session_key(o->keys[k], msg + 3, sk) < 0)
            continue;
        if (EVP_CipherInit_ex(o->trial, EVP_aes_256_gcm(), NULL, sk, NULL, 0) != 1)
            continue;
        if (aead(o->trial, 0, iv, msg, subject, msg + VN_SEAL_HDR, body, out, tag) == body)
            found = (int)k;
    }
    if (found < 0)
        return VN_REFUSED(VN_D_SEAL_AUTH);
    EVP_CIPHER_CTX *ctx = gcm_ctx(sk, 0);
    if (!ctx)
        return -ENOMEM;
    struct session *s = slot(o);
    s->used = 1;
    memcpy(s->id, msg + 3, SESSION_LEN);
    s->kid = kid;
    s->key = found;
    s->ctx = ctx;
    s->top = -1;
    *sp = s;
    return 0;
}

int vn_opener_open(vn_opener *o, const char *subject, const unsigned char *msg, unsigned int len,
                   double now, unsigned char *out, int *stale)
{
    if (len < VN_SEAL_HDR + VN_SEAL_TAG)
        return VN_REFUSED(VN_D_SHORT);
    if (msg[0] != VN_VERSION)
        return VN_REFUSED(VN_D_VERSION);
    if (msg[1] != VN_FLAG_SEALED)
        return VN_REFUSED(VN_D_FLAGS);
    unsigned char kid = msg[2];
    uint64_t ctr = 0;
    uint32_t stamp = 0;
    for (int i = 0; i < 8; i++)
        ctr = ctr << 8 | msg[11 + i];
    for (int i = 0; i < 4; i++)
        stamp = stamp << 8 | msg[19 + i];
    int body = (int)len - VN_SEAL_HDR - VN_SEAL_TAG;
    unsigned char iv[12], tag[VN_SEAL_TAG];
    memcpy(tag, msg + len - VN_SEAL_TAG, VN_SEAL_TAG);
    nonce(ctr, iv);
    int ret;
    pthread_mutex_lock(&o->mu);
    int have = 0;
    for (unsigned int k = 0; k < o->nkeys; k++)
        have |= o->kids[k] == kid;
    if (!have) {
        ret = VN_REFUSED(VN_D_SEAL_KEY);
        goto out;
    }
    /* Signed difference modulo 2**32, as core/seal.py computes it. */
    int64_t diff = (int64_t)(int32_t)(stamp - (uint32_t)(int64_t)now);
    if (fabs((double)diff) > o->skew) {
        *stale = (int)diff;
        ret = VN_REFUSED(VN_D_SEAL_STALE);
        goto out;
    }
    struct session *s = find(o, msg + 3, kid);
    if (s) {
        if (window_seen(s, ctr)) {
            ret = VN_REFUSED(VN_D_REPLAY);
            goto out;
        }
        if (aead(s->ctx, 0, iv, msg, subject, msg + VN_SEAL_HDR, body, out, tag) != body) {
            ret = VN_REFUSED(VN_D_SEAL_AUTH);
            goto out;
        }
    } else if ((ret = new_session(o, msg, subject, body, iv, tag, out, &s)) < 0) {
        goto out;
    }
    window_mark(s, ctr);
    s->last_seen = now;
    ret = body;
out:
    pthread_mutex_unlock(&o->mu);
    return ret;
}
