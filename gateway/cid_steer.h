/* CID steering of a SO_REUSEPORT group of UDP sockets (issue 15, section 3).
 *
 * With `workers = N` the workers' UDP sockets share one port and the kernel picks a socket by
 * hashing the 4-tuple: a device that comes back from a new port lands on any worker. Each
 * worker's Connection IDs carry its index in byte 0, so a classic BPF program attached with
 * SO_ATTACH_REUSEPORT_CBPF can send a datagram that starts with a DTLS 1.2 CID record (content
 * type 25, tls12_cid, RFC 9146) to socket index = CID byte 0. A CID record's header is
 * type(1) version(2) epoch(2) sequence(6) cid(...): the CID's byte 0 is payload byte 11.
 *
 * Anything else (another content type, a datagram shorter than 12 bytes, an index >= n) makes
 * the program return an index out of the group's range, and the kernel then falls back to its
 * 4-tuple hash (net/core/sock_reuseport.c, run_bpf_filter() returns NULL for an index >= the
 * group's socket count, reuseport_select_sock() then hashes; checked on this kernel, 6.18, by
 * tests/unit/cid_steer: out-of-range datagrams from many source ports reach several sockets, none
 * is lost). An out-of-range return is used rather than a computed hash because a cBPF program
 * cannot see the 4-tuple.
 *
 * The socket index is the socket's position in the group: the order in which the sockets were
 * bound (a socket that leaves the group is replaced by the last one). Worker i must therefore be
 * the i-th to bind: workers started in order 0..N-1, and restarted all together.
 *
 * Pure apart from pskgw_cid_steer_attach() (one setsockopt).
 */
#ifndef PSKGW_GATEWAY_CID_STEER_H
#define PSKGW_GATEWAY_CID_STEER_H

#include <linux/filter.h>
#include <stddef.h>

#define PSKGW_CID_STEER_TYPE      25u         /* tls12_cid */
#define PSKGW_CID_STEER_OFFSET    11u         /* CID byte 0 in a DTLS 1.2 CID record */
#define PSKGW_CID_STEER_FALLBACK  0xffffffffu /* an index no group has: the kernel hashes */
#define PSKGW_CID_STEER_MAX_INSNS 8u

/* Write the program into out (cap instructions, at least PSKGW_CID_STEER_MAX_INSNS) and its
 * length into *len. n > 0: indexes >= n fall back in the program itself; n = 0: no bound in the
 * program, the group's socket count bounds it (a worker does not know how many workers run).
 * Returns 0, or PSKGW_EINVAL when cap is too small (nothing written then). */
int pskgw_cid_steer_program(unsigned n, struct sock_filter *out, size_t cap, size_t *len);

/* Attach the program (bound n as above) to the reuseport group of fd, a UDP socket with
 * SO_REUSEPORT set (before or after bind: the program belongs to the group, the last attached
 * wins). Returns 0, or -1 with errno set (setsockopt's). */
int pskgw_cid_steer_attach(int fd, unsigned n);

#endif
