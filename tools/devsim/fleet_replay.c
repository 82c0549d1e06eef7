/* pskgw-devsim --preencrypt (see fleet_internal.h): a load generator much cheaper per message
 * than the gateway, so that the gateway's capacity, not the fleet's CPU, sets the rate.
 *
 * Each device handshakes for real; right after, it makes every message it has left into a DTLS
 * record (payload, E2E when asked, then OpenSSL's record layer writing into its memory BIO: real
 * records with consecutive sequence numbers, cut by their header's length in client.c) and keeps
 * them in memory. When every device of the run is ready (or ended), the ready file is written;
 * once the start file exists (a barrier across fleet processes), the records go out with
 * sendmmsg on each device's connected socket, devices in turn, at most REPLAY_BURST records of
 * one device per turn, each device's records in order: device i's message k is due at
 * (k + i / devices) / --rate seconds after the start (staggered: the offer is steady, not a
 * burst of every device at once). Nothing about the records is fake: the gateway decrypts them
 * as any other. */
#define _GNU_SOURCE
#include "tools/devsim/fleet_internal.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

#define REPLAY_BURST    8       /* records of one device per sendmmsg */
#define REPLAY_SLICE_NS 2000000 /* at most 2 ms of sending per loop turn */
#define REPLAY_SLACK    64      /* record bytes above the message: header, nonce, tag, padding */

struct fleet_replay {
    uv_timer_t start_timer; /* polls the start file */
    uv_timer_t send_timer;
    bool ready;      /* every device ready or ended: the ready file is written */
    bool sending;    /* started */
    bool done;       /* every ready device sent everything (or ended) */
    uint32_t gone;   /* devices that ended before they were ready */
    uint32_t active; /* ready devices with records left */
    uint32_t cursor; /* the device that goes first in the next turn */
    uint64_t ready_ns, t0_ns;
    double cpu0;
};

/* This process's CPU seconds: the first field of /proc/self/task/N/schedstat (ns on a CPU),
 * summed over the threads, as scripts/bench reads the gateway's; the process clock if none. */
static double proc_cpu_s(void)
{
    unsigned long long sum = 0, ns;
    char path[96];
    DIR *dir = opendir("/proc/self/task");
    if (dir != NULL) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "/proc/self/task/%.40s/schedstat", e->d_name);
            FILE *fp = fopen(path, "r");
            if (fp == NULL)
                continue;
            if (fscanf(fp, "%llu", &ns) == 1)
                sum += ns;
            fclose(fp);
        }
        closedir(dir);
    }
    if (sum > 0)
        return (double)sum / 1e9;
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double process_clock_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int fleet_replay_new(fleet_t *f)
{
    fleet_replay_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PSKGW_ENOMEM;
    if (uv_timer_init(&f->loop, &r->start_timer) != 0 ||
        uv_timer_init(&f->loop, &r->send_timer) != 0) {
        free(r);
        return PSKGW_EINTERNAL;
    }
    r->start_timer.data = r->send_timer.data = f;
    f->replay = r;
    f->s->replay.on = true;
    return 0;
}

void fleet_replay_free(fleet_t *f)
{
    if (f->dev != NULL) {
        for (uint32_t i = 0; i < f->n; i++) {
            free(f->dev[i].rp_buf);
            free(f->dev[i].rp_end);
            f->dev[i].rp_buf = NULL;
            f->dev[i].rp_end = NULL;
        }
    }
    free(f->replay);
    f->replay = NULL;
}

/* Every ready device has sent everything (or ended): the send phase's figures. */
static void send_over(fleet_t *f)
{
    fleet_replay_t *r = f->replay;
    if (r->done)
        return;
    r->done = true;
    uv_timer_stop(&r->send_timer);
    f->s->replay.send_s = (double)(uv_hrtime() - r->t0_ns) / 1e9;
    f->s->replay.send_cpu_s = proc_cpu_s() - r->cpu0;
}

/* Message k of device i is due (k + i / n) / rate seconds after the start: how many are due. */
static uint32_t due_of(const fleet_t *f, uint32_t i, double elapsed)
{
    double due = elapsed * f->o->rate + 1.0 - (double)i / (double)f->n;
    if (due <= 0)
        return 0;
    if (due >= (double)f->o->messages)
        return f->o->messages;
    return (uint32_t)due;
}

/* Up to `want` of the device's next records in one sendmmsg: how many went (0 when the kernel
 * refused for now), or -1 when the socket failed (counted, the device ended). */
static int send_burst(device_t *d, uint32_t want)
{
    fleet_t *f = d->f;
    pskgw_devsim_replay_stats_t *rs = &f->s->replay;
    struct mmsghdr mm[REPLAY_BURST];
    struct iovec iov[REPLAY_BURST];
    memset(mm, 0, sizeof(mm));
    for (uint32_t j = 0; j < want; j++) {
        uint32_t k = d->sent + j;
        uint32_t start = k > 0 ? d->rp_end[k - 1] : 0;
        iov[j].iov_base = d->rp_buf + start;
        iov[j].iov_len = d->rp_end[k] - start;
        mm[j].msg_hdr.msg_iov = &iov[j];
        mm[j].msg_hdr.msg_iovlen = 1;
    }
    uv_os_fd_t fd;
    int m = -1;
    if (uv_fileno(&d->sock[d->cur].h, &fd) == 0) {
        m = sendmmsg(fd, mm, want, MSG_DONTWAIT);
        rs->syscalls++;
    }
    if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
        rs->eagain++;
        return 0;
    }
    if (m < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_SEND, 1);
        fleet_dev_end(d);
        return -1;
    }
    d->sent += (uint32_t)m;
    d->since_session += (uint32_t)m;
    rs->sent += (uint64_t)m;
    f->s->messages_sent += (uint64_t)m;
    f->s->bytes_sent += (uint64_t)m * d->rp_wlen;
    f->s->sent_by_device[d->index] = d->sent;
    return m;
}

/* One turn of device i: send what is due (a burst at most). True when more is due at once. */
static bool device_turn(fleet_t *f, uint32_t i, double elapsed, uint64_t *sent)
{
    device_t *d = &f->dev[i];
    if (d->state != D_REPLAY || d->sent >= f->o->messages)
        return false;
    uint32_t due = due_of(f, i, elapsed);
    if (due <= d->sent)
        return false;
    uint32_t want = due - d->sent < REPLAY_BURST ? due - d->sent : REPLAY_BURST;
    int m = send_burst(d, want);
    if (m <= 0)
        return false;
    *sent += (uint64_t)m;
    if (d->sent >= f->o->messages) {
        if (--f->replay->active == 0)
            send_over(f);
        fleet_dev_sent_all(d); /* may end the run */
        return false;
    }
    return (uint32_t)m == want && d->sent < due;
}

static void on_send(uv_timer_t *t)
{
    fleet_t *f = t->data;
    fleet_replay_t *r = f->replay;
    uint64_t until = uv_hrtime() + REPLAY_SLICE_NS;
    bool behind;
    uint64_t sent;
    do {
        double elapsed = (double)(uv_hrtime() - r->t0_ns) / 1e9;
        behind = false;
        sent = 0;
        for (uint32_t k = 0; k < f->n && !f->finishing && !r->done; k++)
            behind |= device_turn(f, (r->cursor + k) % f->n, elapsed, &sent);
        r->cursor = f->n > 0 ? (r->cursor + 1) % f->n : 0;
    } while (behind && sent > 0 && uv_hrtime() < until && !f->finishing && !r->done);
    if (f->finishing || r->done)
        return;
    uv_timer_start(&r->send_timer, on_send, behind ? 0 : 1, 0); /* 0: the next loop turn */
}

static void start_sending(fleet_t *f)
{
    fleet_replay_t *r = f->replay;
    r->sending = true;
    r->t0_ns = uv_hrtime();
    f->s->replay.wait_s = (double)(r->t0_ns - r->ready_ns) / 1e9;
    r->cpu0 = proc_cpu_s();
    if (r->active == 0) {
        send_over(f);
        return;
    }
    uv_timer_start(&r->send_timer, on_send, 0, 0);
}

static void on_start_poll(uv_timer_t *t)
{
    fleet_t *f = t->data;
    if (f->finishing || access(f->o->start_file, F_OK) != 0)
        return;
    uv_timer_stop(t);
    start_sending(f);
}

/* Written whole (a temporary file renamed), so that a reader never sees it half written. */
static void write_ready_file(const fleet_t *f)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", f->o->ready_file);
    FILE *fp = n > 0 && (size_t)n < sizeof(tmp) ? fopen(tmp, "w") : NULL;
    bool ok = fp != NULL;
    if (fp != NULL) {
        ok = fprintf(fp, "ready %u devices %" PRIu64 " records\n", f->s->replay.devices_ready,
                     f->s->replay.records) > 0;
        ok = fclose(fp) == 0 && ok;
    }
    if (!ok || rename(tmp, f->o->ready_file) != 0)
        fprintf(stderr, "pskgw-devsim: cannot write the ready file %s: %s\n", f->o->ready_file,
                strerror(errno));
}

/* Every device ready or ended: say so, then start (now, or once the start file exists). */
static void check_ready(fleet_t *f)
{
    fleet_replay_t *r = f->replay;
    if (r->ready || f->finishing || f->s->replay.devices_ready + r->gone < f->n)
        return;
    r->ready = true;
    r->ready_ns = uv_hrtime();
    if (f->o->ready_file != NULL)
        write_ready_file(f);
    if (f->o->start_file != NULL)
        uv_timer_start(&r->start_timer, on_start_poll, 0, 1);
    else
        start_sending(f);
}

/* The device's messages from d->sent on, made into records. 0 or an error. */
static int make_records(device_t *d)
{
    fleet_t *f = d->f;
    const pskgw_devsim_opts_t *o = f->o;
    uint32_t n = o->messages - d->sent;
    size_t wlen = 0, cap = 0, used = 0;
    d->rp_end = calloc(n, sizeof(*d->rp_end));
    if (d->rp_end == NULL)
        return PSKGW_ENOMEM;
    for (uint32_t k = 0; k < n; k++) {
        int rc = fleet_message_build(d, d->sent + k, &wlen);
        if (rc == 0)
            rc = pskgw_devsim_client_write(d->c, f->wire, wlen);
        if (rc < 0)
            return rc;
        const uint8_t *data;
        size_t len, first = used;
        while (pskgw_devsim_client_next_out(d->c, &data, &len)) {
            if (used + len > cap) {
                size_t ncap = (size_t)n * (wlen + REPLAY_SLACK);
                ncap = ncap > 2 * cap ? ncap : 2 * cap;
                ncap = ncap > used + len ? ncap : used + len;
                uint8_t *nb = realloc(d->rp_buf, ncap);
                if (nb == NULL)
                    return PSKGW_ENOMEM;
                d->rp_buf = nb;
                cap = ncap;
            }
            memcpy(d->rp_buf + used, data, len);
            used += len;
        }
        if (used == first || used > UINT32_MAX)
            return PSKGW_ETLS;
        if (o->damage && o->damage_device == d->index && o->damage_message == d->sent + k) {
            d->rp_buf[used - 1] ^= 0x01; /* the record's last byte: its authentication tag */
            f->s->replay.damaged++;
        }
        d->rp_end[k] = (uint32_t)used;
    }
    d->rp_wlen = (uint32_t)wlen;
    f->s->replay.records += n;
    f->s->replay.record_bytes += used;
    return 0;
}

void fleet_replay_prepare(device_t *d)
{
    fleet_t *f = d->f;
    double c0 = process_clock_s();
    int rc = make_records(d);
    f->s->replay.prepare_cpu_s += process_clock_s() - c0;
    if (rc < 0) {
        fleet_count_error(d, PSKGW_DEVSIM_ERR_SEND, 1);
        fleet_dev_end(d);
        return;
    }
    d->state = D_REPLAY;
    d->rp_ready = true;
    f->s->replay.devices_ready++;
    f->replay->active++;
    check_ready(f);
}

void fleet_replay_on_end(device_t *d)
{
    fleet_t *f = d->f;
    fleet_replay_t *r = f->replay;
    if (r == NULL)
        return;
    if (!d->rp_ready) {
        r->gone++;
        check_ready(f);
    } else if (d->sent < f->o->messages && r->active > 0 && --r->active == 0 && r->sending) {
        send_over(f);
    }
}
