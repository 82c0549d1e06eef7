/* CID steering of a SO_REUSEPORT group (see cid_steer.h). */
#define _DEFAULT_SOURCE /* SO_ATTACH_REUSEPORT_CBPF (Linux) */
#include "gateway/cid_steer.h"

#include <sys/socket.h>

#include "common/err.h"

int pskgw_cid_steer_program(unsigned n, struct sock_filter *out, size_t cap, size_t *len)
{
    /* The program sees the UDP payload (the kernel pulled the UDP header): offset 0 is the DTLS
     * record's content type. A load past the end would end the program with 0 (socket 0), so the
     * length is checked first. */
    const struct sock_filter head[] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, PSKGW_CID_STEER_OFFSET + 1, 0, 0 /* -> fb */),
        /* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
        /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PSKGW_CID_STEER_TYPE, 0, 0 /* -> fb */),
        /* 4 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, PSKGW_CID_STEER_OFFSET),
    };
    size_t nh = sizeof(head) / sizeof(head[0]);
    size_t total = nh + (n > 0 ? 1 : 0) + 2;
    size_t fb = total - 1, i;

    if (out == NULL || len == NULL || cap < total)
        return PSKGW_EINVAL;
    for (i = 0; i < nh; i++)
        out[i] = head[i];
    out[1].jf = (unsigned char)(fb - 2);
    out[3].jf = (unsigned char)(fb - 4);
    if (n > 0) {
        /* index >= n: fall back (jt skips the "ret A" after it) */
        out[i] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, n, 1, 0);
        i++;
    }
    out[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
    out[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, PSKGW_CID_STEER_FALLBACK);
    *len = i;
    return 0;
}

int pskgw_cid_steer_attach(int fd, unsigned n)
{
    struct sock_filter code[PSKGW_CID_STEER_MAX_INSNS];
    struct sock_fprog prog;
    size_t len;

    if (pskgw_cid_steer_program(n, code, PSKGW_CID_STEER_MAX_INSNS, &len) != 0)
        return -1; /* cannot happen: the buffer holds the longest program */
    prog.len = (unsigned short)len;
    prog.filter = code;
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog));
}
