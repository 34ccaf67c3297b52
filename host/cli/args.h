/* args.h — argument helpers shared by the nextcard commands. */
#ifndef HOST_CLI_ARGS_H
#define HOST_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>
#include "model/engine.h"

/* Options of the card's state pool, shared by every command that opens a
 * card: put NC_POOL_OPTS in the getopt_long table and hand each option to
 * nc_pool_opt. */
#define NC_POOL_OPTS \
	{ "seqs", required_argument, 0, 0x101 }, \
	{ "speculative", required_argument, 0, 0x108 }, \
	{ "kv-pages", required_argument, 0, 0x102 }, \
	{ "prefix-every", required_argument, 0, 0x103 }, \
	{ "prefix-budget-mib", required_argument, 0, 0x104 }, \
	{ "kv", required_argument, 0, 0x105 }, \
	{ "watchdog-ms", required_argument, 0, 0x106 }, \
	{ "inject-fault", required_argument, 0, 0x107 }, \
	{ "no-card-reset", no_argument, 0, 0x109 }
#define NC_POOL_USAGE "[--seqs N] [--kv-pages N] [--kv f32|bf16] " \
		      "[--prefix-every N (0: no prefix cache)] [--prefix-budget-mib M] " \
		      "[--watchdog-ms N] [--no-card-reset] [--speculative mtp[:1]] " \
		      "[--inject-fault error@N|hang@N (tests)]"

/* 1 if o is a pool option (its value parsed into eo), 0 if it is not one,
 * -1 with the reason in err if its value is bad. */
int nc_pool_opt(int o, const char *arg, struct nc_engine_opts *eo, char *err, size_t errlen);

/* Parse "5,17,42" (decimal, non-negative, comma-separated, no empties) into a
 * malloc'd array.  0, or -1 with the reason in err. */
int nc_parse_ids(const char *s, int32_t **ids, uint32_t *n, char *err, size_t errlen);

/* Strict unsigned decimal in [lo, hi].  0 or -1. */
int nc_parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out);
int nc_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* Strict float in [lo, hi].  0 or -1. */
int nc_parse_float(const char *s, float lo, float hi, float *out);

/* Print ids comma-separated and a newline. */
void nc_print_ids(const int32_t *ids, uint32_t n);

#endif
