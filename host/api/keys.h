/* keys.h — API keys and their quotas for the HTTP port.
 *
 * Key file (--keys FILE), one key per line, '#' starts a comment:
 *   KEY [name=NAME] [rpm=N] [tpm=N] [concurrent=N]
 * KEY: 16..256 printable characters, no spaces.  NAME (default "key<line>")
 * is what /metrics shows; the key itself is never logged nor shown.
 * rpm: requests a minute, tpm: tokens (prompt + completion) a minute,
 * concurrent: requests in flight; 0 or absent: no limit.  Rates are token
 * buckets that refill continuously (a minute's worth at most).
 *
 * The file can be loaded again (SIGHUP): usage and buckets stay with the
 * name, so a reload neither forgives nor forgets.  Lookups compare every key
 * in constant time.
 */
#ifndef HOST_API_KEYS_H
#define HOST_API_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define NC_KEYS_MAX 256

struct nc_keys;

/* 0, or -1 with a one-line reason (the line number, never the key). */
int nc_keys_load(struct nc_keys **out, const char *path, char *err, size_t errlen);
/* Load the file again into k (same names keep their state); on error k is
 * unchanged. */
int nc_keys_reload(struct nc_keys *k, const char *path, char *err, size_t errlen);
void nc_keys_free(struct nc_keys *k);

/* The slot of the key given as "Bearer KEY" (auth: the Authorization
 * header, may be NULL), or -1. */
int nc_keys_find(struct nc_keys *k, const char *auth);

/* Admit a request of `tokens` expected tokens for slot s at now_ns: 0, or the
 * seconds to wait before retrying (>= 1) with *why "requests per minute",
 * "tokens per minute" or "concurrent requests". */
uint32_t nc_keys_admit(struct nc_keys *k, int s, uint32_t tokens, uint64_t now_ns,
		       const char **why);
/* A request of slot s ended having used `tokens` (prompt + completion; the
 * difference from what admission charged is settled). */
void nc_keys_done(struct nc_keys *k, int s, uint32_t charged, uint32_t tokens);

/* Per-name counters for /metrics: name, requests, tokens, refused. */
struct nc_key_usage {
	char name[64];
	uint64_t requests, tokens, refused;
};
uint32_t nc_keys_usage(struct nc_keys *k, struct nc_key_usage *out, uint32_t max);

#endif
