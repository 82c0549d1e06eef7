/* pskgw-sinkbench: one sink on its own, as fast as it takes messages (a report, not a test).
 *
 *   pskgw-sinkbench --sink file|http|redis-stream|mqtt|kafka [--target T] [--messages N]
 *                   [--devices D] [--size B] [--in-flight W] [--json FILE]
 *
 * A sink set with the one sink (sinks/sinkset.h) on a libuv loop gets N E2E-V1-shaped
 * envelopes (B-byte payloads) from D devices, keeping up to QUEUE messages submitted and not yet
 * done (topped up from the done callbacks); a warm-up of N/10 messages (at least 2 x QUEUE, so
 * that the freelists reach the most messages ever outstanding) is done first (connections made,
 * freelists filled) and not counted. Reported: wall time, messages per
 * second and CPU per message of this process (getrusage: the loop, libuv's thread pool, curl's
 * and librdkafka's threads: the sink's whole client side).
 * Targets: file: a path (default /tmp/pskgw-sinkbench.jsonl, removed after); redis-stream:
 * redis://host:port; mqtt: host:port (QoS 1); http: a URL, or none: a receiver process
 * (libmicrohttpd, answers 204) is forked on 127.0.0.1; kafka: bootstrap servers, or none:
 * librdkafka's mock cluster (one broker) runs in a forked process. A forked receiver's CPU is
 * reported apart (receiver_cpu_s). allocations_per_message: the heap allocations made by pskgw's
 * own code (the sinks and their drivers, statically linked: counted through the linker's
 * --wrap=malloc,calloc,realloc,strdup,strndup, all threads) during the measured messages, per
 * message; the client libraries' own (libcurl, hiredis, libmosquitto, librdkafka: shared) are
 * not in it. 0 in steady state (issue 13). */
#include "sinks/envelope.h"
#include "sinks/sinkset.h"
#include "allocwrap.h"

#include <errno.h>
#include <stdatomic.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define QUEUE       4096
#define MAX_DEVICES 100000

static struct {
    const char *sink;
    const char *target;
    const char *json;
    unsigned long messages;
    unsigned devices;
    size_t size;
    unsigned in_flight;
} opt = { NULL, NULL, NULL, 100000, 500, 64, 64 };

static uv_loop_t loop;
static pskgw_sinkset_t *set;
static uint8_t *payload;
static char (*dev_names)[24];
static unsigned long submitted;
static unsigned long done;
static unsigned long failed;
static unsigned long goal; /* submit up to this many */
static bool closed;

/* ---- allocations of our code (--wrap, bench/CMakeLists.txt) ---- */

static atomic_ulong allocs;

/* Counts; never fails one (tests/support/allocwrap.c has the --wrap targets). */
bool pskgw_allocwrap_fail(const char *fn, size_t n, const void *caller)
{
    (void)fn;
    (void)n;
    (void)caller;
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    return false;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(int who)
{
    struct rusage ru;

    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_done(void *arg, int status);

static void top_up(void)
{
    static const pskgw_envelope_e2e_t x = { 1, "11010000000701020304050607080000", "AES_128_CCM",
                                            "0002000089280003", 0 };

    while (submitted < goal && submitted - done < QUEUE) {
        pskgw_envelope_t env = {
            .domain = "bench",
            .listener = "dtls",
            .transport = "dtls",
            .peer = "127.0.0.1:40001",
            .psk_identity = dev_names[submitted % opt.devices],
            .rot_public_uid = "",
            .session_id = submitted % opt.devices,
            .seq = submitted,
            .received_at_ms = wall_ms(),
            .payload = payload,
            .payload_len = opt.size,
            .e2e = &x,
        };
        int rc = pskgw_sinkset_submit(set, &env, on_done, NULL, NULL);

        if (rc < 0) {
            fprintf(stderr, "pskgw-sinkbench: submit: %d\n", rc);
            exit(1);
        }
        submitted++;
    }
}

static void on_done(void *arg, int status)
{
    (void)arg;
    done++;
    if (status < 0)
        failed++;
    if (submitted - done < QUEUE / 2)
        top_up();
}

static void on_closed(void *arg)
{
    (void)arg;
    closed = true;
}

/* ---- receivers in forked processes --------------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **state)
{
    static int marker;
    struct MHD_Response *r;
    enum MHD_Result ret;

    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)data;
    if (*state == NULL) {
        *state = &marker;
        return MHD_YES;
    }
    if (*data_size > 0) {
        *data_size = 0; /* consumed */
        return MHD_YES;
    }
    r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(con, 204, r);
    MHD_destroy_response(r);
    return ret;
}

/* Fork a receiver; it writes its address (one line) to the pipe and runs until SIGTERM. */
static pid_t fork_receiver(const char *kind, char *addr, size_t cap)
{
    int fds[2];
    pid_t pid;
    ssize_t n;

    if (pipe(fds) < 0)
        return -1;
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        char line[512];
        sigset_t ss;
        int sig;

        close(fds[0]);
        sigemptyset(&ss);
        sigaddset(&ss, SIGTERM);
        sigprocmask(SIG_BLOCK, &ss, NULL);
        if (strcmp(kind, "http") == 0) {
            struct MHD_Daemon *d = MHD_start_daemon(
                MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, NULL,
                MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_SOCK_ADDR, NULL, MHD_OPTION_END);
            const union MHD_DaemonInfo *i =
                d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
            if (!i)
                _exit(1);
            snprintf(line, sizeof(line), "http://127.0.0.1:%u/ingest\n", (unsigned)i->port);
        } else {
            char err[256];
            rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new(), err, sizeof(err));
            rd_kafka_mock_cluster_t *mc = rk ? rd_kafka_mock_cluster_new(rk, 1) : NULL;
            if (!mc || rd_kafka_mock_topic_create(mc, "bench", 4, 1) != 0)
                _exit(1);
            snprintf(line, sizeof(line), "%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        }
        if (write(fds[1], line, strlen(line)) < 0)
            _exit(1);
        close(fds[1]);
        sigwait(&ss, &sig);
        _exit(0); /* no cleanup: the parent measured what it needed */
    }
    close(fds[1]);
    n = read(fds[0], addr, cap - 1);
    close(fds[0]);
    if (n <= 1)
        return -1;
    addr[n - 1] = '\0'; /* the newline */
    return pid;
}

/* ---- main ------------------------------------------------------------------------------------ */

static int usage(void)
{
    fprintf(stderr, "usage: pskgw-sinkbench --sink file|http|redis-stream|mqtt|kafka [--target T] "
                    "[--messages N] [--devices D] [--size B] [--in-flight W] [--json FILE]\n");
    return 2;
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (!v)
            return usage();
        if (strcmp(a, "--sink") == 0)
            opt.sink = v;
        else if (strcmp(a, "--target") == 0)
            opt.target = v;
        else if (strcmp(a, "--json") == 0)
            opt.json = v;
        else if (strcmp(a, "--messages") == 0)
            opt.messages = strtoul(v, NULL, 10);
        else if (strcmp(a, "--devices") == 0)
            opt.devices = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--size") == 0)
            opt.size = strtoul(v, NULL, 10);
        else if (strcmp(a, "--in-flight") == 0)
            opt.in_flight = (unsigned)strtoul(v, NULL, 10);
        else
            return usage();
    }
    if (!opt.sink || opt.messages == 0 || opt.devices == 0 || opt.devices > MAX_DEVICES ||
        opt.size > 65536 || opt.in_flight == 0)
        return usage();
    return 0;
}

/* Sink options for opt.sink; addr holds a forked receiver's address. */
static int make_options(pskgw_sink_options_t *o, char *addr, size_t cap, pid_t *rx, char *host)
{
    static const pskgw_sink_kv_t props[] = { { "linger.ms", "5" } };

    memset(o, 0, sizeof(*o));
    o->name = "bench";
    o->queue_size = QUEUE;
    o->in_flight = opt.in_flight;
    *rx = 0;
    if (strcmp(opt.sink, "file") == 0) {
        o->type = PSKGW_SINK_FILE;
        o->file.path = opt.target ? opt.target : "/tmp/pskgw-sinkbench.jsonl";
    } else if (strcmp(opt.sink, "http") == 0 || strcmp(opt.sink, "kafka") == 0) {
        const char *t = opt.target;
        if (!t) {
            if ((*rx = fork_receiver(opt.sink, addr, cap)) < 0)
                return -1;
            t = addr;
        }
        if (opt.sink[0] == 'h') {
            o->type = PSKGW_SINK_HTTP;
            o->http.url = t;
        } else {
            o->type = PSKGW_SINK_KAFKA;
            o->kafka.brokers = t;
            o->kafka.topic = "bench";
            o->kafka.props = props;
            o->kafka.n_props = 1;
        }
    } else if (strcmp(opt.sink, "redis-stream") == 0) {
        o->type = PSKGW_SINK_REDIS_STREAM;
        o->redis.url = opt.target ? opt.target : "redis://127.0.0.1:6379";
        o->redis.stream = "bench:{psk_identity}";
        o->redis.maxlen = 1000;
    } else if (strcmp(opt.sink, "mqtt") == 0) {
        const char *t = opt.target ? opt.target : "127.0.0.1:1883";
        const char *colon = strrchr(t, ':');
        if (!colon || (size_t)(colon - t) >= 256)
            return -1;
        memcpy(host, t, (size_t)(colon - t));
        host[colon - t] = '\0';
        o->type = PSKGW_SINK_MQTT;
        o->mqtt.host = host;
        o->mqtt.port = atoi(colon + 1);
        o->mqtt.topic = "bench/{psk_identity}";
        o->mqtt.qos = 1;
    } else {
        return -1;
    }
    return 0;
}

/* Submit until `until` messages are done. */
static void run_until(unsigned long until)
{
    goal = until;
    top_up();
    while (done < until)
        uv_run(&loop, UV_RUN_ONCE);
}

int main(int argc, char **argv)
{
    pskgw_sink_options_t o;
    char addr[512] = "";
    char host[256];
    pid_t rx;
    unsigned long warm;
    double t0, c0, t1, c1, rx_cpu = 0;
    unsigned long a0, a1;
    char rx_txt[32] = "null";
    FILE *out;

    if (parse_args(argc, argv) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    payload = malloc(opt.size ? opt.size : 1);
    dev_names = calloc(opt.devices, sizeof(*dev_names));
    if (!payload || !dev_names)
        return 1;
    for (size_t i = 0; i < opt.size; i++)
        payload[i] = (uint8_t)(i * 131 + 7);
    for (unsigned i = 0; i < opt.devices; i++)
        snprintf(dev_names[i], sizeof(dev_names[i]), "bench-dev-%u", i);
    if (make_options(&o, addr, sizeof(addr), &rx, host) != 0) {
        fprintf(stderr, "pskgw-sinkbench: bad --sink/--target, or the receiver did not start\n");
        return 1;
    }
    uv_loop_init(&loop);
    if (pskgw_sinkset_new(&loop, &o, 1, &set) != 0) {
        fprintf(stderr, "pskgw-sinkbench: cannot make the sink\n");
        return 1;
    }
    /* at least twice the queue: the freelists reach the most messages ever outstanding */
    warm = opt.messages / 10 < 2 * QUEUE ? 2 * QUEUE : opt.messages / 10;
    run_until(warm);
    t0 = now_s();
    c0 = cpu_s(RUSAGE_SELF);
    a0 = atomic_load(&allocs);
    run_until(warm + opt.messages);
    a1 = atomic_load(&allocs);
    t1 = now_s();
    c1 = cpu_s(RUSAGE_SELF);
    pskgw_sinkset_close(set, on_closed, NULL);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (rx > 0) {
        int st;
        kill(rx, SIGTERM);
        if (waitpid(rx, &st, 0) == rx) /* the only child: RUSAGE_CHILDREN is its CPU */
            rx_cpu = cpu_s(RUSAGE_CHILDREN);
    }
    if (strcmp(opt.sink, "file") == 0 && !opt.target)
        unlink(o.file.path);
    if (rx > 0)
        snprintf(rx_txt, sizeof(rx_txt), "%.6f", rx_cpu);
    out = opt.json ? fopen(opt.json, "w") : stdout;
    if (!out)
        return 1;
    fprintf(out,
            "{\"sink\":\"%s\",\"messages\":%lu,\"warmup\":%lu,\"devices\":%u,\"payload_bytes\":%zu,"
            "\"in_flight\":%u,\"queue\":%d,\"failed\":%lu,\"wall_s\":%.6f,\"per_s\":%.1f,"
            "\"cpu_s\":%.6f,\"cpu_us_per_message\":%.3f,\"messages_per_cpu_s\":%.1f,"
            "\"receiver_cpu_s\":%s,\"allocations\":%lu,\"allocations_per_message\":%.3f}\n",
            opt.sink, opt.messages, warm, opt.devices, opt.size, opt.in_flight, QUEUE, failed,
            t1 - t0, (double)opt.messages / (t1 - t0), c1 - c0,
            (c1 - c0) * 1e6 / (double)opt.messages, (double)opt.messages / (c1 - c0), rx_txt,
            a1 - a0, (double)(a1 - a0) / (double)opt.messages);
    if (out != stdout)
        fclose(out);
    free(payload);
    free(dev_names);
    return failed ? 1 : 0;
}
