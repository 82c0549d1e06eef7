/* pskgw-devsim: inside the fleet, shared by fleet.c (the run: start ramp, samples, stop, the
 * end), fleet_dev.c (the per-device state machine: sessions, messages, acks, echo, rebinding and
 * reconnects) and fleet_sock.c (a device's UDP/TCP sockets and the records it writes). All of it
 * runs on the fleet's one loop. */
#ifndef PSKGW_DEVSIM_FLEET_INTERNAL_H
#define PSKGW_DEVSIM_FLEET_INTERNAL_H

#include "tools/devsim/fleet.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "tools/devsim/client.h"
#include "tools/devsim/payload.h"

#define RAMP_TICK_MS 5
#define START_BATCH  2000 /* devices started per loop turn at most (a burst stays responsive) */
#define ACK_RING     8
#define MAX_WIRE     (PSKGW_DEVSIM_PAYLOAD_MAX + 64)
#define REBIND_RETRY 1

enum { AFTER_FINISH = 0, AFTER_RECONNECT, AFTER_REBIND, AFTER_SOCKET_REBIND, AFTER_FAILOVER };

enum dstate {
    D_IDLE = 0,    /* not started */
    D_CONNECTING,  /* TCP connect in progress */
    D_HANDSHAKING, /* session started, not established */
    D_ESTABLISHED, /* sending messages */
    D_PROBING,     /* --rebind-every, --failover-to: the first message from a new port or to
                      the other node sent, its ack awaited */
    D_NOSESSION,   /* between sessions: the next session starts when the next message is due */
    D_DRAINING,    /* waiting for the acks of what was sent before finishing or closing */
    D_HOLDING,     /* all done, session kept open (--hold) */
    D_REPLAY,      /* --preencrypt: every message encrypted, waiting for the start or sending */
    D_ENDED,
};

typedef union {
    uv_handle_t h;
    uv_stream_t stream;
    uv_udp_t udp;
    uv_tcp_t tcp;
} sock_u;

typedef struct fleet fleet_t;

typedef struct {
    fleet_t *f;
    uint32_t index;
    uint8_t kind;
    uint8_t state;
    uint8_t cur;          /* socket slot in use */
    uint8_t sock_open[2]; /* initialised and its close callback not yet run */
    bool timers_init;
    bool idle;
    bool counted_up;
    bool new_socket;     /* the next session needs a new socket (TCP, or NAT rebinding) */
    bool failed_over;    /* --failover-to: the socket now goes to the other node */
    uint8_t after_drain; /* what D_DRAINING leads to: AFTER_FINISH, AFTER_RECONNECT, AFTER_REBIND */
    sock_u sock[2];
    uv_connect_t conn[2];
    uv_shutdown_t shut[2];
    uv_timer_t io_timer;  /* DTLS retransmission */
    uv_timer_t app_timer; /* handshake deadline, next message, ack wait, hold */
    pskgw_devsim_client_t *c;
    void *sess; /* --resume: the last established session's state, offered on the next one */
    uint64_t hs_start_ns;
    uint32_t sent, since_session, acks;
    uint32_t handshakes; /* sessions started (per-session identity number) */
    uint64_t bound_ns;   /* --rebind-every: when the current socket started carrying the session */
    uint8_t ring_head, ring_len;
    uint64_t ring[ACK_RING]; /* send times (ns) of unacknowledged messages */
    /* --expect-echo: the byte streams both ways (FNV-1a, independent of how they are cut) and
     * the stream offset where each unacknowledged message ends (beside ring); messages pushed
     * out of the ring are acknowledged once lost_end is back. */
    uint64_t tx_bytes, rx_bytes, tx_hash, rx_hash;
    uint64_t ends[ACK_RING];
    uint64_t lost_end;
    uint32_t lost_n;
    /* --preencrypt (fleet_replay.c): the device's records back to back, where each one ends,
     * the bytes of one message before encryption; rp_ready once they are all made. */
    uint8_t *rp_buf;
    uint32_t *rp_end;
    uint32_t rp_wlen;
    bool rp_ready;
} device_t;

typedef struct fleet_replay fleet_replay_t;

struct fleet {
    const pskgw_devsim_opts_t *o;
    pskgw_devsim_stats_t *s;
    uv_loop_t loop;
    pskgw_devsim_client_ctx_t *ctx;
    device_t *dev;
    uint32_t n;
    uint32_t next_start;
    uint32_t run_id;
    uv_timer_t ramp_timer, tick_timer, stop_timer;
    uv_signal_t sigint, sigterm;
    pskgw_devsim_hostile_t *hostile; /* --attack, or NULL */
    fleet_replay_t *replay;          /* --preencrypt, or NULL */
    uint64_t t0_ns;
    bool finishing;
    bool tty;
    double next_plain_progress;
    pskgw_devsim_hist_t hs_sec, msg_sec;
    uint64_t last_hs, last_msgs, last_acks, last_errs;
    size_t samples_cap;
    uint8_t pt[PSKGW_DEVSIM_PAYLOAD_MAX];
    uint8_t e2e[PSKGW_DEVSIM_PAYLOAD_MAX + 64];
    uint8_t wire[MAX_WIRE];
    uint8_t rx[65536];
};

/* ---- fleet.c ---- */
/* The run ends once every device has ended and the attack (if any) is done. */
void fleet_maybe_finish(fleet_t *f);

/* ---- fleet_dev.c: one device ---- */
/* Whether device i is in the share (0..1) of devices with a property, spread evenly. */
bool fleet_share_hit(uint64_t i, double share);
void fleet_count_error(device_t *d, pskgw_devsim_error_t e, uint64_t n);
/* --expect-echo: at the end, every byte back and equal (else counted). */
void fleet_check_echo(device_t *d);
/* Start the device (its first session now or when its first message is due). */
void fleet_dev_start(device_t *d);
/* The device is done: its session freed, its sockets and timers closing, counted ended. */
void fleet_dev_end(device_t *d);
/* A new session on the device's current socket (a TCP socket is connected). */
void fleet_session_start(device_t *d);
/* Bytes from the peer, the peer's close, a handshake failure, the DTLS retransmission timer:
 * the socket side's events into the state machine. */
void fleet_deliver(device_t *d, const uint8_t *data, size_t len);
void fleet_peer_closed(device_t *d);
void fleet_hs_failed(device_t *d, int rc);
void fleet_on_io_timer(uv_timer_t *t);

/* Message n of the device (payload, E2E, framing) into f->wire; *wlen its length. 0 or the
 * payload or E2E error. */
int fleet_message_build(device_t *d, uint32_t n, size_t *wlen);
/* --preencrypt: every message is out (fleet_replay.c): finish as after the last message. */
void fleet_dev_sent_all(device_t *d);

/* ---- fleet_replay.c: --preencrypt ---- */
/* The replay of the run (its timers on f's loop): 0, PSKGW_ENOMEM or PSKGW_EINTERNAL. */
int fleet_replay_new(fleet_t *f);
/* Free what fleet_replay_new and the devices' preparation allocated (after the loop closed). */
void fleet_replay_free(fleet_t *f);
/* The device is established: encrypt every message it has left into records kept in memory
 * (an encryption error ends the device, counted as `send`); once every device of the run is
 * ready or ended, the run's ready file is written and sending starts (after the start file). */
void fleet_replay_prepare(device_t *d);
/* The device ended (any state): the start may wait for it no longer. */
void fleet_replay_on_end(device_t *d);

/* ---- fleet_sock.c: the device's sockets ---- */
/* Open socket slot (UDP bound to the device's source address, or TCP connecting: the session
 * starts from the connect callback). 0 or a negative code (counted). */
int fleet_sock_open(device_t *d, int slot);
/* --failover-to: the current UDP socket (same source port) now sends to the other node. */
int fleet_sock_failover(device_t *d);
void fleet_sock_close(device_t *d, int slot);
/* TCP: shut down, then close; UDP: close. */
void fleet_sock_retire(device_t *d, int slot);
void fleet_on_sock_closed(uv_handle_t *h);
/* Write what the client has queued; arm the DTLS retransmission timer. */
void fleet_flush(device_t *d);
void fleet_arm_io(device_t *d);

#endif
