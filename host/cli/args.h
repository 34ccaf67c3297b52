/* args.h — argument helpers shared by the nextcard commands. */
#ifndef HOST_CLI_ARGS_H
#define HOST_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

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
