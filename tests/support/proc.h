/* Test support: run the real binaries and real servers (redis-server, mosquitto) on loopback.
 *
 * Everything started here is stopped by pid (SIGTERM, then SIGKILL after a grace period) and
 * reaped; ports come from the kernel (bind to port 0), never fixed numbers.
 */
#ifndef PSKGW_TEST_PROC_H
#define PSKGW_TEST_PROC_H

#include <stddef.h>
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

/* A free TCP (or UDP when udp != 0) port on 127.0.0.1, by binding port 0 and closing. Racy:
 * another process may bind it before the caller's server does. Prefer a server that binds port 0
 * and reports its port, pskgw_test_reserve_port() for a port nobody may answer on, or
 * pskgw_test_wait_own_port() to make sure the server started on it is the one listening. */
int pskgw_test_free_port(int udp);
/* A port nobody else can take while the returned socket stays open: bound to 127.0.0.1 port 0,
 * never listening (TCP connections to it are refused; UDP datagrams to it are queued, unread).
 * *port gets the port. Returns the socket (the caller closes it), or -1. */
int pskgw_test_reserve_port(int udp, int *port);
/* Wait until process pid holds a socket on port (TCP: listening; UDP: bound) and no other
 * process holds one there. 0; -1 when pid exited, another process holds the port, or timeout_ms
 * passed (a guard against hanging). */
int pskgw_test_wait_own_port(pid_t pid, int port, int udp, int timeout_ms);
/* Wait until a TCP connect to 127.0.0.1:port succeeds. 0 or -1 on timeout. */
int pskgw_test_wait_tcp(int port, int timeout_ms);

/* redis-server on 127.0.0.1:*port (picked here, and checked to be held by that redis-server:
 * a port another process took first is never used), no persistence. 0 or -1. */
int pskgw_test_redis_start(pskgw_test_proc_t *p, int *port);
/* mosquitto on 127.0.0.1:*port (picked and checked the same way), anonymous allowed. 0 or -1. */
int pskgw_test_mosquitto_start(pskgw_test_proc_t *p, int *port);

/* Make a fresh temporary directory (mkdtemp under $TMPDIR or /tmp); path into buf. 0 or -1. */
int pskgw_test_tmpdir(char *buf, size_t cap);
/* rm -rf a directory made by pskgw_test_tmpdir. */
void pskgw_test_rmtree(const char *dir);

#endif
