/* Shared by the libFuzzer targets (scripts/fuzz_c.py builds and runs them
 * under AddressSanitizer and UndefinedBehaviorSanitizer). */
#ifndef VN_FUZZ_H
#define VN_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../vn_dp.h"

/* An invariant broken: say which and abort (libFuzzer keeps the input). */
#define MUST(cond)                                                              \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "invariant broken: %s (%s:%d)\n", #cond, __FILE__, \
                    __LINE__);                                                  \
            abort();                                                            \
        }                                                                       \
    } while (0)

/* The key of the shared test vectors (tests/unit/data/seal_vectors.json):
 * bytes 0..31, and the clock they were sealed at. */
static inline void fuzz_key(unsigned char *key)
{
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
}
#define FUZZ_NOW 1800000000.0

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
