/* Internal to the C datapath (vn_datapath.c, vn_seal.c): not for cffi. */
#ifndef VN_INTERNAL_H
#define VN_INTERNAL_H

/* Drop reasons (enum vn_drop), the counter layout (enum vn_counter), the
 * wire and seal sizes: generated from vlan_nats/core by the build script. */
#include "vn_gen.h"

/* A refusal returned by vn_opener_open(). */
#define VN_REFUSED(reason) (-(1000 + (reason)))


#endif
