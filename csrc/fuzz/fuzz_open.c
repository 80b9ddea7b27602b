/* libFuzzer target: the seal opener (vn_seal.c's vn_opener_open) on any
 * bytes.  Invariants: it returns a plain length or a refusal; whatever it
 * opens is exactly what the key's holder sealed (sealing the plaintext
 * again with the session, counter and stamp of its header gives the input
 * back, byte for byte): a forgery never opens.  And seal -> open round
 * trips any message. */
#include <string.h>

#include "fuzz.h"

static const char SUBJECT[] = "vlan.lab.u.020000000001";
static vn_opener *opener;
static vn_opener *roundtrip;
static vn_sealer *sealer;
static unsigned char key[32];

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void check_genuine(const uint8_t *data, size_t size, const unsigned char *plain, int n)
{
    MUST(size == (size_t)n + VN_SEAL_HDR + VN_SEAL_TAG);
    vn_sealer *s = vn_sealer_new(key, data + 3);
    MUST(s != NULL);
    vn_sealer_set_counter(s, be64(data + 11));
    unsigned int stamp = (unsigned int)data[19] << 24 | data[20] << 16 | data[21] << 8 | data[22];
    unsigned char *again = malloc(size);
    MUST(again != NULL);
    int m = vn_sealer_seal(s, SUBJECT, plain, (unsigned int)n, stamp, again);
    MUST(m == (int)size && memcmp(again, data, size) == 0);
    free(again);
    vn_sealer_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!opener) {
        fuzz_key(key);
        opener = vn_opener_new(key, 1, 300, 64);
        roundtrip = vn_opener_new(key, 1, 300, 64);
        sealer = vn_sealer_new(key, (const unsigned char *)"fuzz-ses");
        MUST(opener && roundtrip && sealer);
    }
    if (size > 70000)
        return 0;
    unsigned char *out = malloc(size + 1);
    int stale = 0;
    int r = vn_opener_open(opener, SUBJECT, data, (unsigned int)size, FUZZ_NOW, out, &stale);
    MUST(r >= 0 || (r <= -1000 && r > -1000 - VN_D_COUNT));
    if (r >= 0)
        check_genuine(data, size, out, r);
    free(out);

    /* Round trip: what we seal opens to itself. */
    unsigned char *sealed = malloc(size + VN_SEAL_HDR + VN_SEAL_TAG);
    unsigned char *back = malloc(size + VN_SEAL_HDR + VN_SEAL_TAG);
    int n = vn_sealer_seal(sealer, SUBJECT, data, (unsigned int)size, (unsigned int)FUZZ_NOW,
                           sealed);
    MUST(n == (int)(size + VN_SEAL_HDR + VN_SEAL_TAG));
    int m = vn_opener_open(roundtrip, SUBJECT, sealed, (unsigned int)n, FUZZ_NOW, back, &stale);
    MUST(m == (int)size && memcmp(back, data, size) == 0);
    free(sealed);
    free(back);
    return 0;
}
