/* Redis test support: see redistest.h. */
#include "redistest.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <unistd.h>

/* redis-server's arguments: port (ps, 16 bytes), no persistence, password when not NULL. */
static void redis_argv(char *argv[16], char ps[16], int port, const char *password)
{
    size_t n = 0;

    snprintf(ps, 16, "%d", port);
    argv[n++] = "/usr/bin/redis-server";
    argv[n++] = "--port";
    argv[n++] = ps;
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--save";
    argv[n++] = "";
    argv[n++] = "--appendonly";
    argv[n++] = "no";
    argv[n++] = "--dir";
    argv[n++] = "/tmp";
    argv[n++] = "--loglevel";
    argv[n++] = "warning";
    if (password) {
        argv[n++] = "--requirepass";
        argv[n++] = (char *)password;
    }
    argv[n] = NULL;
}

int pskgw_test_redis_start_pw(pskgw_test_proc_t *p, int *port, const char *password)
{
    char ps[16];
    char *argv[16];
    int fd = pskgw_test_reserve_port(0, port);

    if (fd < 0)
        return -1;
    redis_argv(argv, ps, *port, password);
    if (pskgw_test_spawn_on_reserved(p, argv, fd, *port, 30000) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int pskgw_test_redis_spawn_on(pskgw_test_proc_t *p, int port, const char *password)
{
    char ps[16];
    char *argv[16];

    redis_argv(argv, ps, port, password);
    if (pskgw_test_spawn(p, argv, 0) < 0)
        return -1;
    return pskgw_test_wait_own_port(p->pid, port, 0, 30000);
}

static void ok_reply(redisContext *rc, const char *what, redisReply *r)
{
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "%s: %s", what,
              r ? r->str : (rc->err ? rc->errstr : "no reply"));
    freeReplyObject(r);
}

redisContext *pskgw_test_redis_connect(int port, const char *password, int db)
{
    redisContext *rc = redisConnect("127.0.0.1", port);

    cr_assert(rc && !rc->err, "sync redis client on port %d", port);
    if (password)
        ok_reply(rc, "AUTH", redisCommand(rc, "AUTH %s", password));
    ok_reply(rc, "SELECT", redisCommand(rc, "SELECT %d", db));
    return rc;
}

long long pskgw_test_redis_int(int port, const char *password, int db, const char *cmd,
                               const char *key)
{
    redisContext *rc = pskgw_test_redis_connect(port, password, db);
    redisReply *r = redisCommand(rc, "%s %s", cmd, key);
    long long n;

    cr_assert(r && r->type == REDIS_REPLY_INTEGER, "%s %s", cmd, key);
    n = r->integer;
    freeReplyObject(r);
    redisFree(rc);
    return n;
}
