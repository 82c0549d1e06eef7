/* Test support: run the real binaries and real servers (redis-server, mosquitto) on loopback.
 *
 * Everything started here is stopped by pid (SIGTERM, then SIGKILL after a grace period) and
 * reaped; ports come from the kernel (bind to port 0), never fixed numbers.
 */
#ifndef PSKGW_TEST_PROC_H
#define PSKGW_TEST_PROC_H

#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;
    int out_fd; /* read end of the child's stdout, or -1 */
} pskgw_test_proc_t;

/* Path of a built binary: "$PSKGW_BIN_DIR/name" (defaults to the current directory).
 * Returns a static buffer valid until the next call. */
const char *pskgw_test_bin(const char *name);
/* Path under the source tree: "$PSKGW_SOURCE_DIR/rel". Static buffer as above. */
const char *pskgw_test_src(const char *rel);

/* Start argv[0] with argv; stdout piped to p->out_fd when capture_stdout, else inherited.
 * stderr is inherited (CTest shows it). 0 or -1. */
int pskgw_test_spawn(pskgw_test_proc_t *p, char *const argv[], int capture_stdout);
/* Read one line from the child's stdout within timeout_ms (newline stripped). 0 or -1. */
int pskgw_test_read_line(pskgw_test_proc_t *p, char *buf, size_t cap, int timeout_ms);
/* Send sig; return the exit status as waitpid gives it (or -1 after SIGKILL on timeout). */
int pskgw_test_stop(pskgw_test_proc_t *p, int sig, int timeout_ms);
/* Wait for exit without signalling; -1 on timeout (the child is then killed). */
int pskgw_test_wait(pskgw_test_proc_t *p, int timeout_ms);

/* Ports: there is no "free port" helper (a port closed and handed on can be taken by another
 * process first). A server of ours binds port 0 and reports its port; another is started on a
 * port reserved here with pskgw_test_spawn_on_reserved(). */
/* A port nobody else can take while the returned socket stays open: bound to 127.0.0.1 port 0,
 * never listening (TCP connections to it are refused; UDP datagrams to it are queued, unread).
 * *port gets the port. Returns the socket (the caller closes it), or -1. */
int pskgw_test_reserve_port(int udp, int *port);
/* Wait until process pid holds a socket on port (TCP: listening; UDP: bound) and no other
 * process holds one there. 0; -1 when pid exited, another process holds the port, or timeout_ms
 * passed (a guard against hanging). */
int pskgw_test_wait_own_port(pid_t pid, int port, int udp, int timeout_ms);
/* Wait until process pid holds a socket bound to some port (TCP: listening) and return that
 * port (the first found): for a server told to bind port 0 that does not report its port.
 * -1 when pid exited or timeout_ms passed (a guard against hanging). */
int pskgw_test_wait_bound_port(pid_t pid, int udp, int timeout_ms);
/* Wait until a TCP connect to 127.0.0.1:port succeeds. 0 or -1 on timeout. */
int pskgw_test_wait_tcp(int port, int timeout_ms);

/* redis-server on 127.0.0.1:*port, a port reserved here (pskgw_test_reserve_port) and handed
 * to it by pskgw_test_spawn_on_reserved(): no other process can take it first. No persistence.
 * 0 once it accepts connections, or -1. */
int pskgw_test_redis_start(pskgw_test_proc_t *p, int *port);
/* The same, keeping the reservation: returns its socket (never listening; the caller closes
 * it), with which the port stays nobody else's after the server stops, and the server can be
 * started again there with pskgw_test_spawn_on_reserved(). -1 on failure. */
int pskgw_test_redis_start_held(pskgw_test_proc_t *p, int *port);
/* mosquitto on 127.0.0.1:*port (reserved and handed over the same way), anonymous allowed.
 * 0 or -1. */
int pskgw_test_mosquitto_start(pskgw_test_proc_t *p, int *port);

/* Make a fresh temporary directory (mkdtemp under $TMPDIR or /tmp); path into buf. 0 or -1. */
int pskgw_test_tmpdir(char *buf, size_t cap);
/* rm -rf a directory made by pskgw_test_tmpdir. */
void pskgw_test_rmtree(const char *dir);
/* Lower this process's soft address-space limit (RLIMIT_AS) to what it maps now and headroom
 * bytes more: a mapping larger than that fails with ENOMEM from then on, as under a LimitAS= or
 * vm.overcommit_memory = 2 (the slab's 16 GiB range). The previous soft limit into *old (NULL:
 * not wanted), for setrlimit to restore. 0 or -1. */
int pskgw_test_limit_address_space(size_t headroom, struct rlimit *old);

/* Our own programs (pskgw, pskgw-sim, pskgw-devsim) run with their stderr captured, so that a
 * test can wait on what they log and judge how they ended (issue 17: every process a test starts
 * is stopped with SIGTERM, its exit status and sanitizer output checked). */

/* Start argv as pskgw_test_spawn() does, with the child's stderr written to the file err_path
 * (created or truncated before the child runs) instead of inherited. 0 or -1. */
int pskgw_test_spawn_logged(pskgw_test_proc_t *p, char *const argv[], int capture_stdout,
                            const char *err_path);
/* Wait until a line of the file path contains needle; that line (newline stripped, cut to cap)
 * into line when line is not NULL. Woken by writes to the file (inotify), not by a timer. 0; -1
 * when process pid (if > 0) has exited without writing it, or after timeout_ms (a guard against
 * hanging, never a statement about speed). */
int pskgw_test_wait_log(const char *path, const char *needle, pid_t pid, char *line, size_t cap,
                        int timeout_ms);
/* The port a process logged after prefix (e.g. pskgw's "on udp 127.0.0.1:" or "admin endpoint on
 * http://127.0.0.1:", logged once the socket is bound): waits for that line in the file path as
 * pskgw_test_wait_log() does. The port (1..65535); -1 when the line never came (pid exited, or
 * timeout_ms passed: a guard) or holds no port. */
int pskgw_test_log_port(const char *path, const char *prefix, pid_t pid, int timeout_ms);
/* Judge how a process ended: status (as pskgw_test_wait()/pskgw_test_stop() return it) must be
 * a normal exit with want_exit, and err_path (its captured stderr; NULL: none) must hold no
 * sanitizer report ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"). 0 when
 * both hold; -1 otherwise, with the reason as a sentence in why (what, e.g. "pskgw", names the
 * process) and the captured stderr copied to this process's stderr (CTest shows it, and its
 * FAIL_REGULAR_EXPRESSION sees the report too). */
int pskgw_test_judge_exit(const char *what, int status, int want_exit, const char *err_path,
                          char *why, size_t cap);
/* Stop one of our programs and judge it: SIGTERM, wait up to guard_ms (a guard against hanging:
 * SIGKILL after it, which then fails the check), then pskgw_test_judge_exit(). Returns 0 at once
 * when p holds no process (already stopped). */
int pskgw_test_stop_checked(pskgw_test_proc_t *p, const char *what, int want_exit,
                            const char *err_path, int guard_ms, char *why, size_t cap);

/* Start a server (argv) told to listen on TCP port, a port reserved by fd
 * (pskgw_test_reserve_port(0, &port)) that stays reserved: fd lets the server bind beside it
 * only while this call waits (SO_REUSEADDR on fd, which the server must set on its listener
 * too, as redis-server and mosquitto do; binds without it are refused all along), then refuses
 * again, so the port is nobody else's before, during and after the server's life, and the
 * server can be restarted on it. fd stays the caller's (still never listening). 0 once that
 * process listens there alone (pskgw_test_wait_own_port, timeout_ms a guard); -1 otherwise (a
 * process started is then killed and reaped). */
int pskgw_test_spawn_on_reserved(pskgw_test_proc_t *p, char *const argv[], int fd, int port,
                                 int timeout_ms);

#endif
