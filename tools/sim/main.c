/* pskgw-sim: a simulator of the u-blox security service (see README.md and `pskgw-sim --help`).
 *
 * The main thread parses flags, generates the TLS certificate when asked, starts the server,
 * prints the base URL as its first stdout line and waits for SIGTERM/SIGINT (blocked in every
 * thread, taken with sigwait) before stopping cleanly and exiting 0.
 */
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/err.h"
#include "common/codec.h"
#include "common/wipe.h"
#include "tools/rotkeys/rotkeys.h"
#include "tools/sim/simcert.h"
#include "tools/sim/simcfg.h"
#include "tools/sim/simserver.h"

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return PSKGW_EIO;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : PSKGW_EIO;
}

static int hex_member(json_t *o, const char *name, const uint8_t *b, size_t n)
{
    char hex[2 * 128 + 1];
    int rc = pskgw_hex_encode(b, n, hex, sizeof(hex), true);
    if (rc == 0)
        rc = json_object_set_new(o, name, json_string(hex)) == 0 ? 0 : PSKGW_ENOMEM;
    pskgw_wipe(hex, sizeof(hex));
    return rc;
}

/* --show-device: what the simulated device holds, for demos and docs. */
static int show_device(const char *seed, uint32_t dev)
{
    char id[PSKGW_ROT_IDENTITY_HEX_LEN + 1], uid[PSKGW_ROT_UID_LEN + 1];
    uint8_t psk[PSKGW_ROT_PSK_MAX_LEN], ki[PSKGW_ROT_KI_MAX_LEN], msg[5 + 32];
    size_t n = 0;
    json_t *o = json_object();
    int rc = o ? 0 : PSKGW_ENOMEM;
    if (rc == 0)
        rc = pskgw_rot_identity_hex(seed, dev, id);
    if (rc == 0)
        rc = pskgw_rot_uid(seed, dev, uid);
    if (rc == 0) {
        json_object_set_new(o, "device", json_integer(dev));
        json_object_set_new(o, "identity", json_string(id));
        json_object_set_new(o, "ROTPublicUID", json_string(uid));
    }
    if (rc == 0)
        rc = pskgw_rot_psk(seed, dev, 128, psk, sizeof(psk), &n);
    if (rc == 0)
        rc = hex_member(o, "psk_128", psk, n);
    if (rc == 0)
        rc = pskgw_rot_psk(seed, dev, 256, psk, sizeof(psk), &n);
    if (rc == 0)
        rc = hex_member(o, "psk_256", psk, n);
    if (rc == 0)
        rc = pskgw_rot_e2e_ki(seed, dev, PSKGW_ROT_E2E_V1, 0, ki, sizeof(ki), &n);
    if (rc == 0)
        rc = hex_member(o, "ki_v1", ki, n);
    if (rc == 0)
        rc = pskgw_rot_e2e_ki(seed, dev, PSKGW_ROT_E2E_V2, 0, ki, sizeof(ki), &n);
    if (rc == 0)
        rc = hex_member(o, "ki_v2", ki, n);
    if (rc == 0)
        rc = pskgw_rot_e2e_encrypt(seed, dev, PSKGW_ROT_E2E_V1, (const uint8_t *)"HELLO", 5, msg,
                                   sizeof(msg), &n);
    if (rc == 0)
        rc = hex_member(o, "hello_v1", msg, n);
    if (rc == 0)
        rc = pskgw_rot_e2e_encrypt(seed, dev, PSKGW_ROT_E2E_V2, (const uint8_t *)"HELLO", 5, msg,
                                   sizeof(msg), &n);
    if (rc == 0)
        rc = hex_member(o, "hello_v2", msg, n);
    pskgw_wipe(psk, sizeof(psk));
    if (rc == 0) {
        if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            rc = PSKGW_EIO;
        printf("\n");
    } else {
        fprintf(stderr, "pskgw-sim: %s\n", pskgw_strerror(rc));
    }
    json_decref(o);
    return rc;
}

/* Many concurrent connections need descriptors: raise the soft limit to the hard one. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    pskgw_sim_cfg_t *cfg = NULL;
    pskgw_sim_server_t *srv = NULL;
    char *key_pem = NULL, *cert_pem = NULL;
    char err[256] = "";
    char url[320];
    int status = 1;
    sigset_t sigs;

    cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        fprintf(stderr, "pskgw-sim: out of memory\n");
        return 1;
    }
    if (pskgw_sim_cfg_parse(cfg, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "pskgw-sim: %s (see --help)\n", err);
        free(cfg);
        return 2;
    }
    /* The lead's test scripts turn strict mode on for every simulator they start. */
    const char *strict_env = getenv("PSKGW_SIM_STRICT");
    if (strict_env && strcmp(strict_env, "1") == 0)
        cfg->strict = true;
    if (cfg->show_device) {
        int rc = show_device(cfg->seed, cfg->show_index);
        free(cfg);
        return rc < 0 ? 1 : 0;
    }
    if (cfg->help) {
        fputs(pskgw_sim_cfg_usage(), stdout);
        free(cfg);
        return 0;
    }

    /* Block the stop signals before any thread exists, so only sigwait() below sees them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    /* jansson's blocks are wiped when freed (common/wipe.h): parsed requests hold APISecrets,
     * answers hold PSKs, E2E keys and tokens. */
    json_set_alloc_funcs(pskgw_wiping_malloc, pskgw_wiping_free);
    json_object_seed(0);

    if (cfg->tls) {
        char host[256];
        size_t n = cfg->host_len < sizeof(host) - 1 ? cfg->host_len : sizeof(host) - 1;
        memcpy(host, cfg->host, n);
        host[n] = '\0';
        int rc = pskgw_sim_cert_generate(host, &key_pem, &cert_pem);
        if (rc < 0) {
            fprintf(stderr, "pskgw-sim: certificate generation failed: %s\n", pskgw_strerror(rc));
            goto done;
        }
        if (cfg->cert_out && write_file(cfg->cert_out, cert_pem) < 0) {
            fprintf(stderr, "pskgw-sim: cannot write \"%s\": %s\n", cfg->cert_out, strerror(errno));
            goto done;
        }
    }
    int rc = pskgw_sim_server_new(cfg, key_pem, cert_pem, &srv);
    if (rc < 0) {
        fprintf(stderr, "pskgw-sim: cannot start: %s\n", pskgw_strerror(rc));
        goto done;
    }
    if (pskgw_sim_server_start(srv, url, sizeof(url)) < 0)
        goto done; /* it said why */
    printf("%s\n", url);
    fflush(stdout);
    fprintf(stderr, "pskgw-sim: serving %s (%zu domain%s, %u devices, token ttl %u s%s)\n", url,
            cfg->ndomains, cfg->ndomains == 1 ? "" : "s", (unsigned)cfg->devices, cfg->token_ttl_s,
            cfg->strict ? ", strict" : "");

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    fprintf(stderr, "pskgw-sim: signal %d, stopping\n", sig);
    status = 0;
done:
    pskgw_sim_server_free(srv);
    pskgw_free_secret_str(key_pem);
    free(cert_pem);
    free(cfg);
    return status;
}
