/* args.c — strict parsing of command-line values. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"

#define MAX_IDS (1u << 22)

int nc_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

int nc_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v;

	if (nc_parse_u64(s, lo, hi, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int nc_parse_float(const char *s, float lo, float hi, float *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= lo && v <= hi))
		return -1;
	*out = (float)v;
	return 0;
}

int nc_parse_ids(const char *s, int32_t **ids, uint32_t *n, char *err, size_t errlen)
{
	uint32_t cap = 1, k = 0;
	int32_t *v;

	*ids = NULL;
	*n = 0;
	for (const char *p = s; *p; p++)
		cap += *p == ',';
	if (cap > MAX_IDS) {
		snprintf(err, errlen, "too many ids (%u, at most %u)", cap, MAX_IDS);
		return -1;
	}
	v = malloc(cap * sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (const char *p = s;; p++) {
		char *end;
		unsigned long long x;

		if (*p < '0' || *p > '9') {
			snprintf(err, errlen, "bad id list at '%.16s' (want 5,17,42)", p);
			free(v);
			return -1;
		}
		errno = 0;
		x = strtoull(p, &end, 10);
		if (errno || x > INT32_MAX || (*end && *end != ',')) {
			snprintf(err, errlen, "bad id list at '%.16s' (want 5,17,42)", p);
			free(v);
			return -1;
		}
		v[k++] = (int32_t)x;
		p = end;
		if (!*p)
			break;
	}
	*ids = v;
	*n = k;
	return 0;
}

void nc_print_ids(const int32_t *ids, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", ids[i]);
	printf("\n");
}

int nc_pool_opt(int o, const char *arg, struct nc_engine_opts *eo, char *err, size_t errlen)
{
	uint64_t mib;

	switch (o) {
	case 0x101:
		if (nc_parse_u32(arg, 1, FW_MAX_SEQS, &eo->seqs))
			return snprintf(err, errlen, "--seqs wants a number 1..%u", FW_MAX_SEQS), -1;
		return 1;
	case 0x102:
		if (nc_parse_u32(arg, 1, UINT32_MAX, &eo->kv_pages))
			return snprintf(err, errlen, "--kv-pages wants a number of pages"), -1;
		return 1;
	case 0x103:
		if (nc_parse_u32(arg, 0, 1u << 20, &eo->prefix_every))
			return snprintf(err, errlen, "--prefix-every wants positions 0..1048576"), -1;
		if (eo->prefix_every == 0)
			eo->prefix_every = NC_PREFIX_OFF;
		return 1;
	case 0x105:
		if (!strcmp(arg, "f32"))
			eo->kv = NC_KV_F32;
		else if (!strcmp(arg, "bf16"))
			eo->kv = NC_KV_BF16;
		else
			return snprintf(err, errlen, "--kv wants f32 or bf16"), -1;
		return 1;
	case 0x106:
		if (nc_parse_u32(arg, 1, 86400000, &eo->watchdog_ms))
			return snprintf(err, errlen, "--watchdog-ms wants 1..86400000"), -1;
		return 1;
	case 0x107:
		eo->inject_fault = arg;
		return 1;
	case 0x109:	/* a card that fails stays failed (no reset) */
		eo->no_reset = 1;
		return 1;
	case 0x108:
		/* the checkpoint's MTP head drafts one token per step */
		if (!strcmp(arg, "mtp") || !strcmp(arg, "mtp:1"))
			eo->spec = 1;
		else if (!strncmp(arg, "mtp:", 4))
			return snprintf(err, errlen, "--speculative mtp:K: only K = 1 is built (one"
					" draft verified per step)"), -1;
		else
			return snprintf(err, errlen, "--speculative wants mtp or mtp:1 (the"
					" checkpoint's multi-token-prediction head)"), -1;
		return 1;
	case 0x104:
		if (nc_parse_u64(arg, 1, 1u << 30, &mib))
			return snprintf(err, errlen, "--prefix-budget-mib wants MiB 1..2^30"), -1;
		eo->prefix_budget = mib << 20;
		return 1;
	default:
		return 0;
	}
}
