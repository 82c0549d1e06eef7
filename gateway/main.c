/* pskgw: the PSK (D)TLS gateway for u-blox root-of-trust devices. */
#include "common/err.h"
#include "common/log.h"
#include "gateway/version.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: pskgw [--config FILE]... [--check-config FILE...] [--log-level LEVEL]\n"
                 "             [--log-format text|json] [--version] [--help]\n"
                 "\n"
                 "  --version             print pskgw's version, wolfSSL's and the PSK suites\n"
                 "  --help                this text\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;

    while ((c = getopt_long(argc, argv, "Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'V':
            return pskgw_version_print(stdout) == 0 ? 0 : 1;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    usage(stderr);
    return 2;
}
