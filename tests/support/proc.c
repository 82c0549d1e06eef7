#define _GNU_SOURCE
#include "proc.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char path_buf[4096];

const char *pskgw_test_bin(const char *name)
{
    const char *dir = getenv("PSKGW_BIN_DIR");

    snprintf(path_buf, sizeof(path_buf), "%s/%s", dir ? dir : ".", name);
    return path_buf;
}

const char *pskgw_test_src(const char *rel)
{
    const char *dir = getenv("PSKGW_SOURCE_DIR");

    snprintf(path_buf, sizeof(path_buf), "%s/%s", dir ? dir : ".", rel);
    return path_buf;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pskgw_test_spawn(pskgw_test_proc_t *p, char *const argv[], int capture_stdout)
{
    int fds[2] = { -1, -1 };
    pid_t pid;

    p->pid = -1;
    p->out_fd = -1;
    if (capture_stdout && pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        if (fds[0] >= 0) {
            close(fds[0]);
            close(fds[1]);
        }
        return -1;
    }
    if (pid == 0) {
        /* A test process that crashes must not leave its servers running (they would hold
         * CTest's output pipe open and hang the run). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (capture_stdout)
            dup2(fds[1], STDOUT_FILENO);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (capture_stdout) {
        close(fds[1]);
        p->out_fd = fds[0];
    }
    p->pid = pid;
    return 0;
}

int pskgw_test_read_line(pskgw_test_proc_t *p, char *buf, size_t cap, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    size_t n = 0;

    if (p->out_fd < 0 || cap == 0)
        return -1;
    while (n + 1 < cap) {
        struct pollfd pfd = { p->out_fd, POLLIN, 0 };
        long long left = deadline - now_ms();
        char c;

        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        if (read(p->out_fd, &c, 1) != 1)
            return -1;
        if (c == '\n')
            break;
        buf[n++] = c;
    }
    buf[n] = '\0';
    return 0;
}

int pskgw_test_wait(pskgw_test_proc_t *p, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int status;

    if (p->pid <= 0)
        return -1;
    for (;;) {
        pid_t r = waitpid(p->pid, &status, WNOHANG);
        if (r == p->pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            status = -1;
            break;
        }
        usleep(10000);
    }
    p->pid = -1;
    if (p->out_fd >= 0) {
        close(p->out_fd);
        p->out_fd = -1;
    }
    return status;
}

int pskgw_test_stop(pskgw_test_proc_t *p, int sig, int timeout_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, sig);
    return pskgw_test_wait(p, timeout_ms);
}

int pskgw_test_reserve_port(int udp, int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Inodes of the sockets on port in one /proc/net table (TCP: listening ones only). */
static int port_inodes(const char *table, int port, int tcp, unsigned long *ino, int n, int cap)
{
    FILE *f = fopen(table, "r");
    char line[512];

    if (f == NULL)
        return n;
    if (fgets(line, sizeof(line), f) == NULL) { /* the header */
        fclose(f);
        return n;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char local[128];
        unsigned st;
        unsigned long inode;
        const char *colon;

        if (sscanf(line, "%*d: %127s %*s %x %*s %*s %*s %*u %*u %lu", local, &st, &inode) != 3)
            continue;
        colon = strrchr(local, ':');
        if (colon == NULL || strtol(colon + 1, NULL, 16) != port || (tcp && st != 0x0A))
            continue;
        if (n < cap)
            ino[n++] = inode;
    }
    fclose(f);
    return n;
}

/* How many of a process's sockets owned_by and owned_port look at. */
#define OWN_SOCKETS 1024

/* The inodes of process pid's sockets (at most cap): the number found. */
static int socket_inodes(pid_t pid, unsigned long *ino, int cap)
{
    char dir[64];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    d = opendir(dir);
    if (d == NULL)
        return 0;
    while (n < cap && (e = readdir(d)) != NULL) {
        char path[320], link[64];
        ssize_t k;

        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        k = readlink(path, link, sizeof(link) - 1);
        if (k <= 0)
            continue;
        link[k] = '\0';
        if (sscanf(link, "socket:[%lu]", &ino[n]) == 1)
            n++;
    }
    closedir(d);
    return n;
}

/* How many of the n socket inodes are open in process pid (among its first OWN_SOCKETS). */
static int owned_by(pid_t pid, const unsigned long *ino, int n)
{
    unsigned long mine[OWN_SOCKETS];
    int nmine = socket_inodes(pid, mine, OWN_SOCKETS);
    int owned = 0;

    for (int j = 0; j < nmine; j++)
        for (int i = 0; i < n; i++)
            owned += ino[i] == mine[j];
    return owned;
}

/* The process exists and has not exited (a zombie has). */
static int running(pid_t pid)
{
    char path[64], buf[512];
    FILE *f;
    const char *paren;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    paren = strrchr(buf, ')');
    return paren != NULL && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

int pskgw_test_wait_own_port(pid_t pid, int port, int udp, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;

    while (now_ms() < deadline) {
        unsigned long ino[64];
        int n = 0;
        int owned;

        if (!running(pid))
            return -1;
        n = port_inodes(udp ? "/proc/net/udp" : "/proc/net/tcp", port, !udp, ino, n, 64);
        n = port_inodes(udp ? "/proc/net/udp6" : "/proc/net/tcp6", port, !udp, ino, n, 64);
        owned = n > 0 ? owned_by(pid, ino, n) : 0;
        if (n > 0 && owned == n)
            return 0;
        if (owned > 0)
            return -1; /* shared with another process */
        /* Not bound yet, or held by another process: then ours fails to bind and exits, or
         * binds beside it (SO_REUSEADDR/SO_REUSEPORT) and is found sharing. */
        usleep(20000); /* polling /proc: nothing tells us when a process binds */
    }
    return -1;
}

/* The port of a socket of process pid in one /proc/net table (TCP: listening), 0 if none. The
 * process's sockets are read once, then the table: a machine with 100k sockets of other
 * processes (a bench's fleet) made a pass over /proc/PID/fd per table line outlast the guard. */
static int owned_port(pid_t pid, const char *table, int tcp)
{
    unsigned long mine[OWN_SOCKETS];
    int nmine = socket_inodes(pid, mine, OWN_SOCKETS);
    FILE *f;
    char line[512];
    int port = 0;

    if (nmine == 0 || (f = fopen(table, "r")) == NULL)
        return 0;
    if (fgets(line, sizeof(line), f) == NULL) { /* the header */
        fclose(f);
        return 0;
    }
    while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
        char local[128];
        unsigned st;
        unsigned long inode;
        const char *colon;

        if (sscanf(line, "%*d: %127s %*s %x %*s %*s %*s %*u %*u %lu", local, &st, &inode) != 3)
            continue;
        colon = strrchr(local, ':');
        if (colon == NULL || (tcp && st != 0x0A) || inode == 0)
            continue;
        for (int i = 0; i < nmine && port == 0; i++)
            if (mine[i] == inode)
                port = (int)strtol(colon + 1, NULL, 16);
    }
    fclose(f);
    return port;
}

int pskgw_test_wait_bound_port(pid_t pid, int udp, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;

    while (now_ms() < deadline) {
        int port;

        if (!running(pid))
            return -1;
        port = owned_port(pid, udp ? "/proc/net/udp" : "/proc/net/tcp", !udp);
        if (port == 0)
            port = owned_port(pid, udp ? "/proc/net/udp6" : "/proc/net/tcp6", !udp);
        if (port > 0)
            return port;
        usleep(20000); /* polling /proc: nothing tells us when a process binds */
    }
    return -1;
}

int pskgw_test_wait_tcp(int port, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;

    while (now_ms() < deadline) {
        struct sockaddr_in sa;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        int ok;

        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        if (ok)
            return 0;
        usleep(20000);
    }
    return -1;
}

/* A server on a port reserved here (pskgw_test_reserve_port, then pskgw_test_spawn_on_reserved):
 * no other process can take the port before, while or after it binds. The reservation's socket
 * is returned (the caller keeps it to restart the server on that port, or closes it). */
static int start_server(pskgw_test_proc_t *p, int *port,
                        int (*make_argv)(char **argv, char *bufs, int port))
{
    char bufs[512];
    char *argv[16];
    int prt = 0;
    int fd = pskgw_test_reserve_port(0, &prt);

    p->pid = -1;
    p->out_fd = -1;
    if (fd < 0)
        return -1;
    make_argv(argv, bufs, prt);
    if (pskgw_test_spawn_on_reserved(p, argv, fd, prt, 30000) < 0 ||
        pskgw_test_wait_tcp(prt, 30000) < 0) {
        if (p->pid > 0)
            pskgw_test_stop(p, SIGKILL, 5000);
        close(fd);
        return -1;
    }
    *port = prt;
    return fd;
}

static int redis_argv(char **argv, char *bufs, int port)
{
    snprintf(bufs, 16, "%d", port);
    argv[0] = "/usr/bin/redis-server";
    argv[1] = "--port";
    argv[2] = bufs;
    argv[3] = "--bind";
    argv[4] = "127.0.0.1";
    argv[5] = "--save";
    argv[6] = "";
    argv[7] = "--appendonly";
    argv[8] = "no";
    argv[9] = "--dir";
    argv[10] = "/tmp";
    argv[11] = "--loglevel";
    argv[12] = "warning";
    argv[13] = NULL;
    return 0;
}

int pskgw_test_redis_start_held(pskgw_test_proc_t *p, int *port)
{
    return start_server(p, port, redis_argv);
}

int pskgw_test_redis_start(pskgw_test_proc_t *p, int *port)
{
    int fd = start_server(p, port, redis_argv);

    if (fd < 0)
        return -1;
    close(fd); /* the server holds the port now */
    return 0;
}

static int mosquitto_argv(char **argv, char *bufs, int port)
{
    /* mosquitto 2 needs a config file for a listener; write a small one per port. */
    char *conf = bufs + 16;
    FILE *f;

    snprintf(conf, 200, "/tmp/pskgw-test-mosquitto-%d.conf", port);
    f = fopen(conf, "w");
    if (f) {
        fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n", port);
        fclose(f);
    }
    argv[0] = "/usr/sbin/mosquitto";
    argv[1] = "-c";
    argv[2] = conf;
    argv[3] = NULL;
    return 0;
}

int pskgw_test_mosquitto_start(pskgw_test_proc_t *p, int *port)
{
    int fd = start_server(p, port, mosquitto_argv);

    if (fd < 0)
        return -1;
    close(fd); /* the server holds the port now */
    return 0;
}

int pskgw_test_tmpdir(char *buf, size_t cap)
{
    const char *base = getenv("TMPDIR");

    if (snprintf(buf, cap, "%s/pskgw-test-XXXXXX", base ? base : "/tmp") >= (int)cap)
        return -1;
    return mkdtemp(buf) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void pskgw_test_rmtree(const char *dir)
{
    if (dir && strncmp(dir, "/tmp", 4) == 0)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    else if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int pskgw_test_spawn_logged(pskgw_test_proc_t *p, char *const argv[], int capture_stdout,
                            const char *err_path)
{
    int fds[2] = { -1, -1 };
    int err_fd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    pid_t pid;

    p->pid = -1;
    p->out_fd = -1;
    if (err_fd < 0)
        return -1;
    if (capture_stdout && pipe2(fds, O_CLOEXEC) < 0)
        goto fail;
    pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* as in pskgw_test_spawn */
        if (capture_stdout)
            dup2(fds[1], STDOUT_FILENO);
        dup2(err_fd, STDERR_FILENO);
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(err_fd);
    if (capture_stdout) {
        close(fds[1]);
        p->out_fd = fds[0];
    }
    p->pid = pid;
    return 0;
fail:
    if (fds[0] >= 0) {
        close(fds[0]);
        close(fds[1]);
    }
    close(err_fd);
    return -1;
}

/* The first line of path containing needle, into line (when not NULL). 1 found, 0 not (yet). */
static int find_line(const char *path, const char *needle, char *line, size_t cap)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t n;
    int found = 0;

    if (f == NULL)
        return 0;
    while (!found && (n = getline(&buf, &bcap, f)) > 0) {
        if (buf[n - 1] != '\n')
            break; /* a line still being written */
        buf[n - 1] = '\0';
        found = strstr(buf, needle) != NULL;
    }
    if (found && line != NULL && cap > 0)
        snprintf(line, cap, "%s", buf);
    free(buf);
    fclose(f);
    return found;
}

int pskgw_test_wait_log(const char *path, const char *needle, pid_t pid, char *line, size_t cap,
                        int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    int rc = -1;

    if (in >= 0 && inotify_add_watch(in, path, IN_MODIFY | IN_CLOSE_WRITE) < 0) {
        close(in);
        in = -1;
    }
    for (;;) {
        struct pollfd pfd = { in, POLLIN, 0 };
        long long left = deadline - now_ms();
        char ev[4096];

        /* drain the events first: a write after this is seen by the next poll */
        while (in >= 0 && read(in, ev, sizeof(ev)) > 0)
            ;
        if (find_line(path, needle, line, cap)) {
            rc = 0;
            break;
        }
        if (left <= 0 || (pid > 0 && !running(pid)))
            break; /* the read above came after its exit: nothing more will be written */
        /* woken by a write; at least every 100 ms to notice the writer's exit */
        poll(&pfd, in >= 0 ? 1 : 0, left < 100 ? (int)left : 100);
    }
    if (in >= 0)
        close(in);
    return rc;
}

int pskgw_test_log_port(const char *path, const char *prefix, pid_t pid, int timeout_ms)
{
    char line[1024];
    const char *at;
    char *end;
    long port;

    if (pskgw_test_wait_log(path, prefix, pid, line, sizeof(line), timeout_ms) < 0)
        return -1;
    at = strstr(line, prefix);
    if (at == NULL) /* the line was cut to the buffer before the prefix */
        return -1;
    at += strlen(prefix);
    errno = 0;
    port = strtol(at, &end, 10);
    if (errno != 0 || end == at || port <= 0 || port > 65535)
        return -1;
    return (int)port;
}

/* Whether the file holds a sanitizer report. */
static int has_sanitizer_report(const char *path)
{
    static const char *const marks[] = { "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                         "runtime error:" };

    for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++)
        if (find_line(path, marks[i], NULL, 0))
            return 1;
    return 0;
}

static void copy_to_stderr(const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    char buf[4096];
    size_t n;

    if (f == NULL)
        return;
    fprintf(stderr, "--- stderr of %s (%s)\n", what, path);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        fwrite(buf, 1, n, stderr);
    fprintf(stderr, "--- end of the stderr of %s\n", what);
    fclose(f);
}

int pskgw_test_judge_exit(const char *what, int status, int want_exit, const char *err_path,
                          char *why, size_t cap)
{
    int report = err_path != NULL && has_sanitizer_report(err_path);

    if (status == -1)
        snprintf(why, cap, "%s was still running at the guard deadline (killed)", what);
    else if (WIFSIGNALED(status))
        snprintf(why, cap, "%s ended by signal %d, not by exit %d", what, WTERMSIG(status),
                 want_exit);
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != want_exit)
        snprintf(why, cap, "%s exited %d, not %d", what, WEXITSTATUS(status), want_exit);
    else if (report)
        snprintf(why, cap, "%s: sanitizer report in its stderr (%s)", what, err_path);
    else
        return 0;
    if (err_path != NULL)
        copy_to_stderr(what, err_path);
    return -1;
}

int pskgw_test_stop_checked(pskgw_test_proc_t *p, const char *what, int want_exit,
                            const char *err_path, int guard_ms, char *why, size_t cap)
{
    if (p->pid <= 0)
        return 0;
    return pskgw_test_judge_exit(what, pskgw_test_stop(p, SIGTERM, guard_ms), want_exit, err_path,
                                 why, cap);
}

static int set_reuseaddr(int fd, int on)
{
    return setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
}

int pskgw_test_spawn_on_reserved(pskgw_test_proc_t *p, char *const argv[], int fd, int port,
                                 int timeout_ms)
{
    int rc = -1;

    p->pid = -1;
    p->out_fd = -1;
    if (set_reuseaddr(fd, 1) < 0)
        return -1;
    if (pskgw_test_spawn(p, argv, 0) == 0)
        rc = pskgw_test_wait_own_port(p->pid, port, 0, timeout_ms);
    set_reuseaddr(fd, 0); /* nobody else may bind beside the server or after it */
    if (rc < 0 && p->pid > 0)
        pskgw_test_stop(p, SIGKILL, 5000);
    return rc;
}

int pskgw_test_limit_address_space(size_t headroom, struct rlimit *old)
{
    unsigned long long pages = 0;
    struct rlimit rl;
    FILE *f = fopen("/proc/self/statm", "r");
    int n;

    if (f == NULL)
        return -1;
    n = fscanf(f, "%llu", &pages);
    fclose(f);
    if (n != 1 || getrlimit(RLIMIT_AS, &rl) != 0)
        return -1;
    if (old != NULL)
        *old = rl;
    rl.rlim_cur = (rlim_t)(pages * (unsigned long long)sysconf(_SC_PAGESIZE) + headroom);
    return setrlimit(RLIMIT_AS, &rl) == 0 ? 0 : -1;
}
