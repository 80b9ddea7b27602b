/* Calls of the C datapath that only the tests use (cffi parses this file
 * after vn_datapath.h): the parts the unit tests hold against core/. */

/* The subject vn_dp_set_subjects' spelling gives `mac`. */
int vn_subject(const char *prefix, const unsigned char *mac, int style, char *out,
               unsigned int cap);
/* The ARP request parser alone: 1 and the sender's MAC and address (10
 * bytes) and the target address (4) for an untagged Ethernet/IPv4 request,
 * else 0. */
int vn_arp_request(const unsigned char *f, unsigned int len, unsigned char *sender,
                   unsigned char *target);
