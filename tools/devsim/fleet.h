/* pskgw-devsim: the fleet of simulated devices on one libuv loop.
 *
 * Each device owns its socket (uv_udp_t, or uv_tcp_t for TLS) bound to its own 127.x.y.z source
 * address and port, a client session (client.h) and two timers (DTLS retransmission; its next
 * action). Devices start at the --ramp rate, handshake, send their messages at --rate, reconnect or
 * rebind as asked, and end; the run ends when every device has ended or at --duration, whichever
 * comes first, or at SIGINT/SIGTERM (the summary is still written; unfinished devices count as
 * errors). Everything is counted in pskgw_devsim_stats_t.
 */
#ifndef PSKGW_TOOLS_DEVSIM_FLEET_H
#define PSKGW_TOOLS_DEVSIM_FLEET_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "tools/devsim/hist.h"
#include "tools/devsim/hostile.h"
#include "tools/devsim/opts.h"

/* Errors by kind (each counted once per occurrence). */
#define PSKGW_DEVSIM_ERROR_MAP(X)                                                            \
    X(SOCKET, "socket", "could not open, bind or connect a socket")                          \
    X(HS_ALERT, "hs_alert", "a good device's handshake failed with a peer alert")            \
    X(HS_TIMEOUT, "hs_timeout", "a good device's handshake did not finish in time")          \
    X(HS_ERROR, "hs_error", "a good device's handshake failed otherwise")                    \
    X(PEER_CLOSED, "peer_closed", "the gateway ended a session with messages left")          \
    X(SEND, "send", "a message could not be encrypted or sent")                              \
    X(ACK_MISSING, "ack_missing", "messages never acknowledged (--expect-ack)")              \
    X(ECHO_MISMATCH, "echo_mismatch", "echoed bytes differ from those sent (--expect-echo)") \
    X(BAD_ACCEPTED, "bad_accepted", "an unknown or wrong-PSK device got through")            \
    X(UNFINISHED, "unfinished", "a good device had not finished at --duration")

typedef enum {
#define PSKGW_DEVSIM_ERR_ENUM_(name, key, text) PSKGW_DEVSIM_ERR_##name,
    PSKGW_DEVSIM_ERROR_MAP(PSKGW_DEVSIM_ERR_ENUM_)
#undef PSKGW_DEVSIM_ERR_ENUM_
        PSKGW_DEVSIM_ERR_COUNT
} pskgw_devsim_error_t;

const char *pskgw_devsim_error_key(pskgw_devsim_error_t e);
const char *pskgw_devsim_error_text(pskgw_devsim_error_t e);

/* One per-second sample (for plots). */
typedef struct {
    double t; /* seconds since the start */
    uint32_t devices_up;
    uint64_t handshakes; /* completed during this second */
    uint64_t messages;   /* sent during this second */
    uint64_t acks;       /* received during this second */
    uint64_t errors;     /* errors during this second (all kinds) */
    uint64_t hs_p50_us, hs_p99_us;
    uint64_t msg_p50_us, msg_p99_us; /* with --expect-ack */
} pskgw_devsim_sample_t;

/* --preencrypt: what making the records and sending them cost this process. */
typedef struct {
    bool on;
    uint32_t devices_ready; /* devices whose records were all made */
    uint64_t records;       /* records made (one per message) */
    uint64_t record_bytes;  /* their bytes on the wire (DTLS headers included) */
    uint64_t damaged;       /* --replay-damage: records damaged before sending (0 or 1) */
    double prepare_cpu_s;   /* CPU spent making them (E2E, DTLS; CLOCK_PROCESS_CPUTIME_ID) */
    double wait_s;          /* from ready (the ready file) to the start (the start file) */
    double send_s;          /* wall time from the start to the last record sent */
    double send_cpu_s;      /* this process's CPU meanwhile (/proc/self/task/N/schedstat) */
    uint64_t sent;          /* records sent */
    uint64_t syscalls;      /* sendmmsg calls */
    uint64_t eagain;        /* sendmmsg calls the kernel refused for now (sent again later) */
} pskgw_devsim_replay_stats_t;

typedef struct {
    uint32_t devices, good, unknown, wrong_psk, idle;
    uint32_t started;
    uint32_t up; /* sessions established right now */
    uint32_t up_max;
    uint32_t completed; /* good devices that sent everything */
    uint32_t ended;     /* devices done, one way or the other */
    uint64_t handshakes_started, handshakes_ok;
    uint64_t expected_failures; /* bad devices refused, as they should be */
    uint64_t expected_unknown, expected_wrong_psk;
    uint64_t messages_sent, bytes_sent; /* application bytes (after E2E and framing) */
    uint64_t messages_planned;          /* good devices x --messages */
    uint64_t acks;
    uint64_t retransmissions; /* DTLS timer expiries */
    uint64_t reconnects, rebinds, peer_closes;
    /* --rebind-every: sockets replaced under a live session; of those, sessions the gateway
     * followed (the first message's ack came) and sessions lost (it did not: a new handshake
     * followed, counted in rehandshakes); messages sent into a lost session (sent again after
     * the new handshake; not errors) */
    uint64_t socket_rebinds, rebinds_followed, sessions_lost, rehandshakes, lost_messages;
    /* --failover-to: devices moved to the other node; of those, sessions taken over there (the
     * first message's ack came); the lost ones are counted in sessions_lost and rehandshakes */
    uint64_t failovers, failovers_followed;
    uint64_t cid_sessions; /* --cid: handshakes that negotiated a Connection ID */
    /* --resume: handshakes that were abbreviated (of handshakes_ok), and the summed handshake
     * times (us) of the resumed and the full ones */
    uint64_t resumed, resumed_us, full_us;
    uint64_t send_drops; /* datagrams the kernel refused (EAGAIN) */
    uint64_t errors[PSKGW_DEVSIM_ERR_COUNT];
    pskgw_devsim_hist_t hs;  /* handshake latency, whole run */
    pskgw_devsim_hist_t msg; /* message latency (ack), whole run */
    double elapsed_s;
    bool interrupted;               /* ended by SIGINT/SIGTERM */
    double cpu_user_s, cpu_sys_s;   /* the simulator's own CPU time */
    uint64_t max_rss_kb;            /* the simulator's own peak RSS */
    const char *cipher;             /* negotiated (static), NULL if none */
    pskgw_devsim_sample_t *samples; /* owned; free with pskgw_devsim_stats_deinit */
    size_t n_samples;
    /* For --verify-file: messages sent by each good device (index -> count), owned. */
    uint32_t *sent_by_device;
    pskgw_devsim_attack_stats_t attack; /* --attack: what the hostile scenario did */
    pskgw_devsim_replay_stats_t replay; /* --preencrypt */
} pskgw_devsim_stats_t;

/* Run the whole scenario on a fresh loop; fills *stats (deinit it afterwards). With --attack the
 * hostile scenario (hostile.h) runs on the same loop and the run ends when both the devices and
 * the attack are done (or at --duration). Start-up failures (the client context, a loop, memory,
 * too few file descriptors, --attack-identities not writable) return PSKGW_ECONFIG, PSKGW_ENOMEM,
 * PSKGW_EFULL or PSKGW_EIO before any device starts; otherwise 0, whatever the devices did. */
int pskgw_devsim_fleet_run(const pskgw_devsim_opts_t *o, uint32_t run_id,
                           pskgw_devsim_stats_t *stats);

void pskgw_devsim_stats_deinit(pskgw_devsim_stats_t *s);

uint64_t pskgw_devsim_stats_errors(const pskgw_devsim_stats_t *s);

/* Handshakes of good devices that failed (hs_alert + hs_timeout + hs_error). */
uint64_t pskgw_devsim_stats_hs_failures(const pskgw_devsim_stats_t *s);

#endif
