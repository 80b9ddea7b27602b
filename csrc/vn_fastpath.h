/* Declarations of the vlan-nats fast path, shared by cffi (cdef) and the C
 * source.  Every function returns a count or a negative errno and never
 * touches Python objects.  Kept free of preprocessor directives so that
 * cffi can parse it as it is. */

/* ABI facts read from the kernel headers by the compiler, so that Python
 * never writes them a second time (vlan_nats.fastpath checks its fallback
 * copy against these). */
extern const int VN_IFNAMSIZ;
extern const int VN_VNET_HDR_LEN;      /* sizeof(struct virtio_net_hdr_mrg_rxbuf) */
extern const unsigned int VN_TUN_F_CSUM;
extern const unsigned int VN_TUN_F_TSO4;
extern const unsigned int VN_TUN_F_TSO6;
extern const unsigned int VN_TUN_F_TSO_ECN;
extern const unsigned int VN_TUN_F_USO4;
extern const unsigned int VN_TUN_F_USO6;
/* Read by the tests, to check the pure-Python fallback's copies. */
extern const unsigned long VN_TUNSETIFF;
extern const unsigned long VN_TUNSETOFFLOAD;
extern const unsigned long VN_TUNSETVNETHDRSZ;
extern const unsigned int VN_IFF_TAP;
extern const unsigned int VN_IFF_NO_PI;
extern const unsigned int VN_IFF_VNET_HDR;
extern const unsigned int VN_IFF_TUN_EXCL;
extern const unsigned int VN_CLONE_NEWNET;

/* Open /dev/net/tun as a non-persistent TAP named `name` (IFF_TAP |
 * IFF_NO_PI | IFF_TUN_EXCL, plus IFF_VNET_HDR with a 12-byte header when
 * vnet_hdr is non-zero).  The fd is non-blocking and close-on-exec.  The
 * kernel's final name is copied to name_out (VN_IFNAMSIZ bytes).
 * Returns the fd or -errno. */
int vn_tap_open(const char *name, int vnet_hdr, char *name_out);

/* TUNSETOFFLOAD.  Returns 0 or -errno. */
int vn_tap_set_offload(int fd, unsigned int flags);

/* setns(fd, CLONE_NEWNET) for the calling thread.  Returns 0 or -errno. */
int vn_setns_net(int fd);

/* Read frames until EAGAIN or until `max` frames were read.  Frame i is
 * read to buf + i*slot + offset, at most `cap` bytes; its length goes to
 * lens[i].  Returns the number of frames read (0 on EAGAIN), or -errno if
 * the first read failed otherwise.  A later failure ends the batch early
 * and is reported by the next call. */
int vn_read_batch(int fd, unsigned char *buf, unsigned int slot,
                  unsigned int offset, unsigned int cap, unsigned int max,
                  unsigned int *lens);

/* Write n frames, frame i being lens[i] bytes at buf + offs[i].  errs[i]
 * receives 0 or the errno of that frame's write.  Returns the number of
 * frames written. */
int vn_write_batch(int fd, const unsigned char *buf, const unsigned int *offs,
                   const unsigned int *lens, unsigned int n, int *errs);
