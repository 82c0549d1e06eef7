/* udpceiling: the machine's raw UDP receive ceiling on loopback, the figure pskgw's message rate
 * is compared with.
 *
 * A bounded sender process (fork) blasts fixed-size datagrams with sendmmsg() at a receiver in
 * this process that drains them with recvmmsg(); the receiver counts datagrams received per
 * second of its own CPU (and per second of wall time). The receiver sleeps --nap-ms between
 * drains so that it always reads full batches: its CPU per datagram is that of a saturated
 * receive path (the ceiling), independent of how fast one sender on a small box can send.
 * The sender stops after --seconds or --max-datagrams, whichever comes first; the receiver
 * stops when the sender is gone and the queue is empty (hard cap: --seconds + 3 s).
 *
 * One JSON object on stdout, a human line on stderr. Loopback only (127.0.0.1).
 *
 * usage: pskgw-udpceiling [--seconds S] [--size BYTES] [--batch N] [--max-datagrams N]
 *                         [--rcvbuf BYTES] [--nap-ms MS]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 256
#define MAX_SIZE  1472

static double now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

static double cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || !end || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The sender: runs in the child, writes the number of datagrams sent to `report_fd`. */
static int run_sender(unsigned short port, long seconds, long size, long batch, long max_dgrams,
                      int report_fd)
{
    static unsigned char buf[MAX_SIZE];
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    struct sockaddr_in dst;
    long long sent = 0;
    double end;
    int fd;

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return 1;
    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&dst, sizeof(dst)) != 0)
        return 1;
    memset(buf, 'u', sizeof(buf));
    memset(msgs, 0, sizeof(msgs));
    for (long i = 0; i < batch; i++) {
        iov[i].iov_base = buf;
        iov[i].iov_len = (size_t)size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    end = now_mono() + (double)seconds;
    while (sent < max_dgrams) {
        long n = batch;
        int r;

        if (now_mono() >= end)
            break;
        if (max_dgrams - sent < n)
            n = (long)(max_dgrams - sent);
        r = sendmmsg(fd, msgs, (unsigned)n, 0);
        if (r < 0) {
            if (errno == EINTR || errno == ENOBUFS || errno == EAGAIN)
                continue;
            break;
        }
        sent += r;
    }
    if (write(report_fd, &sent, sizeof(sent)) != (ssize_t)sizeof(sent))
        return 1;
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = { { "seconds", required_argument, NULL, 's' },
                                          { "size", required_argument, NULL, 'z' },
                                          { "batch", required_argument, NULL, 'b' },
                                          { "max-datagrams", required_argument, NULL, 'm' },
                                          { "rcvbuf", required_argument, NULL, 'r' },
                                          { "nap-ms", required_argument, NULL, 'n' },
                                          { "help", no_argument, NULL, 'H' },
                                          { NULL, 0, NULL, 0 } };
    static unsigned char bufs[MAX_BATCH][MAX_SIZE];
    struct mmsghdr msgs[MAX_BATCH];
    struct iovec iov[MAX_BATCH];
    long seconds = 3, size = 64, batch = 64, nap_ms = 5, max_dgrams = 200000000, rcvbuf = 33554432;
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    long long received = 0, sent = 0;
    double first = 0, last = 0, cpu0 = 0, cpu1 = 0, hard_end;
    int fd, pipefd[2], status = 0, sender_done = 0, got_rcvbuf = 0, opt;
    socklen_t olen = sizeof(got_rcvbuf);
    struct rusage child_ru;
    pid_t child;

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;

        switch (opt) {
        case 's':
            bad = parse_long(optarg, 1, 600, &seconds);
            break;
        case 'z':
            bad = parse_long(optarg, 1, MAX_SIZE, &size);
            break;
        case 'b':
            bad = parse_long(optarg, 1, MAX_BATCH, &batch);
            break;
        case 'm':
            bad = parse_long(optarg, 1, 2000000000L, &max_dgrams);
            break;
        case 'r':
            bad = parse_long(optarg, 4096, 1073741824L, &rcvbuf);
            break;
        case 'n':
            bad = parse_long(optarg, 1, 100, &nap_ms);
            break;
        default:
            bad = -1;
            break;
        }
        if (bad) {
            fprintf(stderr, "usage: pskgw-udpceiling [--seconds S (1-600)] [--size BYTES] "
                            "[--batch N (1-256)] [--max-datagrams N] [--rcvbuf BYTES] "
                            "[--nap-ms MS]\n");
            return 2;
        }
    }

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("udpceiling: socket");
        return 1;
    }
    /* SO_RCVBUFFORCE works as root; otherwise the kernel caps SO_RCVBUF at net.core.rmem_max. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ (int)rcvbuf }, sizeof(int)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ (int)rcvbuf }, sizeof(int));
    getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got_rcvbuf, &olen);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
        perror("udpceiling: bind");
        return 1;
    }
    if (pipe(pipefd) != 0) {
        perror("udpceiling: pipe");
        return 1;
    }
    child = fork();
    if (child < 0) {
        perror("udpceiling: fork");
        return 1;
    }
    if (child == 0) {
        close(fd);
        close(pipefd[0]);
        _exit(run_sender(ntohs(addr.sin_port), seconds, size, batch, max_dgrams, pipefd[1]));
    }
    close(pipefd[1]);

    memset(msgs, 0, sizeof(msgs));
    for (int i = 0; i < MAX_BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = MAX_SIZE;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    hard_end = now_mono() + (double)seconds + 3.0;
    cpu0 = cpu_self();
    for (;;) {
        int r, drained = 0;

        /* Let the queue fill while the receiver sleeps (no CPU), then drain it in full batches:
         * the receiver's CPU per datagram is then that of a saturated receive path, which is
         * what the gateway meets under load, not that of a receiver woken per datagram. */
        nanosleep(&(struct timespec){ 0, nap_ms * 1000000L }, NULL);
        while ((r = recvmmsg(fd, msgs, (unsigned)batch, MSG_DONTWAIT, NULL)) > 0) {
            if (received == 0)
                first = now_mono();
            received += r;
            drained += r;
            last = now_mono();
        }
        if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            perror("udpceiling: recvmmsg");
            break;
        }
        if (sender_done && drained == 0)
            break; /* sender gone and the queue empty */
        if (!sender_done && wait4(child, &status, WNOHANG, &child_ru) == child)
            sender_done = 1;
        if (now_mono() > hard_end)
            break;
    }
    cpu1 = cpu_self();
    if (!sender_done) {
        kill(child, SIGKILL);
        wait4(child, &status, 0, &child_ru);
    }
    if (read(pipefd[0], &sent, sizeof(sent)) != (ssize_t)sizeof(sent))
        sent = 0;
    close(pipefd[0]);
    close(fd);
    if (received == 0 || last <= first || cpu1 <= cpu0) {
        fprintf(stderr, "udpceiling: too few datagrams received (%lld of %lld)\n", received, sent);
        return 1;
    }
    {
        double wall = last - first, cpu = cpu1 - cpu0;
        double sender_cpu = tv_s(child_ru.ru_utime) + tv_s(child_ru.ru_stime);
        double lost = sent > 0 ? (double)(sent - received) / (double)sent : 0;

        fprintf(stderr,
                "udpceiling: %lld of %lld %ld-byte datagrams received in %.2f s: %.0f/s wall, "
                "%.0f/s of receiver CPU (%.2f s), sender CPU %.2f s, lost %.1f %%\n",
                received, sent, size, wall, (double)received / wall, (double)received / cpu, cpu,
                sender_cpu, lost * 100);
        printf("{\"size\":%ld,\"batch\":%ld,\"rcvbuf\":%d,\"sent\":%lld,\"received\":%lld,"
               "\"lost_share\":%.4f,\"wall_s\":%.3f,\"received_per_s\":%.0f,"
               "\"receiver_cpu_s\":%.3f,\"received_per_cpu_s\":%.0f,\"sender_cpu_s\":%.3f,"
               "\"sent_per_sender_cpu_s\":%.0f}\n",
               size, batch, got_rcvbuf, sent, received, lost, wall, (double)received / wall, cpu,
               (double)received / cpu, sender_cpu,
               sender_cpu > 0 ? (double)sent / sender_cpu : 0.0);
    }
    return 0;
}
