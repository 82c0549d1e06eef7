/* pskgw_statefile: the sessions handed from one pskgw process to the next (restart, upgrade).
 *
 * A state file is secret material (it holds session keys): each entry is sealed with
 * AES-256-GCM (random 12-byte IV, 16-byte tag) under a 32-byte key, with the entry's domain,
 * listener and peer as associated data, so an entry cannot be moved to another listener or peer.
 * A header sealed under the same key tells a foreign file (another key) from a damaged one.
 * Files are written 0600 through a temporary file and rename; buffers are wiped. Nothing here
 * logs; errors come back with a static reason for the caller's log line.
 *
 * File: "PSKGWSF1", 12-byte IV, 16-byte tag of the sealed header (no plaintext, associated data
 * "pskgw state file"), then entries: u16 associated-data length, associated data (domain NUL
 * listener NUL peer), u32 sealed length, IV, ciphertext, tag. Big-endian integers. */
#ifndef PSKGW_GATEWAY_STATEFILE_H
#define PSKGW_GATEWAY_STATEFILE_H

#include <stddef.h>
#include <stdint.h>

#define PSKGW_STATEFILE_KEY_LEN 32

/* The sealing key: a copy of kek when it is not NULL (cache.kek_file), else the key in
 * <state_dir>/state.key (32 raw bytes, mode 0600), created once from the system's random source
 * when missing. 0; PSKGW_EIO (*why says what; also a key file not owned by the effective user or
 * with any group or other permission), PSKGW_EPARSE (a key file of another size). */
int pskgw_statefile_key(const char *state_dir, const uint8_t *kek,
                        uint8_t key[PSKGW_STATEFILE_KEY_LEN], const char **why);

/* An in-memory state file being built. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    size_t entries;
} pskgw_statefile_t;

/* Starts a file (header sealed under key). 0, PSKGW_ENOMEM, PSKGW_ECRYPTO. */
int pskgw_statefile_begin(pskgw_statefile_t *f, const uint8_t key[PSKGW_STATEFILE_KEY_LEN]);
/* Seals one entry (rec: len bytes, borrowed). 0, PSKGW_EINVAL, PSKGW_ENOMEM, PSKGW_ECRYPTO. */
int pskgw_statefile_add(pskgw_statefile_t *f, const uint8_t key[PSKGW_STATEFILE_KEY_LEN],
                        const char *domain, const char *listener, const char *peer,
                        const uint8_t *rec, size_t len);
/* Writes it to path (0600, temporary file then rename). 0 or PSKGW_EIO (*why). */
int pskgw_statefile_save(const pskgw_statefile_t *f, const char *path, const char **why);
/* Wipes and frees the buffer. */
void pskgw_statefile_release(pskgw_statefile_t *f);

/* One opened entry: strings and rec are borrowed for the call. */
typedef void (*pskgw_statefile_entry_cb)(void *arg, const char *domain, const char *listener,
                                         const char *peer, const uint8_t *rec, size_t len);

/* Opens path: every entry is checked before any is given to cb, so a file is taken whole or not
 * at all. The file is removed once read (taken or refused), so no state is imported twice.
 * Returns the number of entries; PSKGW_ENOTFOUND (no file), PSKGW_EAUTH (a foreign file: its
 * header was sealed under another key), PSKGW_EPARSE (damaged: bad magic, truncated, or an entry
 * that does not authenticate), PSKGW_EIO (also: a file owned by another user, left in place),
 * PSKGW_ENOMEM; *why says which. */
int pskgw_statefile_load(const char *path, const uint8_t key[PSKGW_STATEFILE_KEY_LEN],
                         pskgw_statefile_entry_cb cb, void *arg, const char **why);

#endif
