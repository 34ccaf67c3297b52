/* quant.h — weight formats on the host side: parsing format specs, the
 * quantization plan of `--quant`, and encoding / decoding one matrix row in
 * the card's layout (hls_kernels/krnl_types.h, the only definition of it).
 *
 * nc_quant_encode_row() is the exact inverse of the kernels' decoder
 * (krnl_unpack / krnl_wrow_load in hls_kernels/krnl_mem.h):
 * nc_quant_decode_row() reads back the same floats the card computes with.
 *
 * Errors follow libfdt: int returns, 0 ok, a negative -NC_QERR_* code.
 */
#ifndef HOST_MODEL_QUANT_H
#define HOST_MODEL_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "hls_kernels/krnl_types.h"

enum nc_qerr {
	NC_QERR_FORMAT = 1,	/* unknown format name */
	NC_QERR_GROUP,		/* group not 32, 64 or 128, or given to a float format */
	NC_QERR_PLAN,		/* --quant spec malformed */
	NC_QERR_META,		/* "nextcard.format.*" value malformed */
};

const char *nc_quant_strerror(int err);		/* accepts err or -err */

#define NC_QUANT_DEFAULT_GROUP 64u

/* "f32", "bf16", "f16", "int8", "int8:32|64|128", "int4", "int4:32|64|128"
 * (group 64 by default) -> a dt register value (KRNL_DT(fmt, group)).
 * Returns 0, -NC_QERR_FORMAT or -NC_QERR_GROUP. */
int nc_fmt_parse(const char *spec, uint32_t *dt);

/* dt -> "int4:64", "bf16", ...: the form nc_fmt_parse() reads.  Returns buf. */
char *nc_fmt_spec(uint32_t dt, char *buf, size_t len);

/* Which part of the model a weight matrix belongs to, for the plan. */
enum nc_tclass {
	NC_TC_EXPERT,	/* routed experts' gate/up/down projections */
	NC_TC_ATTN,	/* attention and Gated DeltaNet projections */
	NC_TC_SHARED,	/* shared expert */
	NC_TC_HEAD,	/* lm_head and embedding */
	NC_TC_COUNT
};

const char *nc_tclass_name(enum nc_tclass c);	/* "experts", "attn", "shared", "head" */

/* How the integer formats pick each group's scale. */
enum nc_round {
	NC_ROUND_CLIP,	/* search a clipping ratio per group (default) */
	NC_ROUND_RTN,	/* scale = max|w| / qmax, round to nearest */
};

/* dt[c] is used where set[c]; an unset class keeps the checkpoint's own
 * float format.  The router (mlp.gate) and the shared-expert gate are never
 * in any class. */
struct nc_quant_plan {
	uint32_t dt[NC_TC_COUNT];
	int set[NC_TC_COUNT];
	enum nc_round round;
};

/* Parse a --quant spec into p (zeroed first):
 *   int8[:G]       every class int8:G
 *   int4[:G]       experts int4:G, attn/shared/head int8:G (the accurate default)
 *   int4-all[:G]   every class int4:G
 *   experts=F,attn=F,shared=F,head=F   any subset, F as for nc_fmt_parse()
 * and, as an extra comma-separated item in either form, "rtn" or "clip" for
 * the rounding (clip by default): "int4:64,rtn".
 * Returns 0 or -NC_QERR_PLAN with the reason in err (err may be NULL). */
int nc_quant_plan_parse(const char *s, struct nc_quant_plan *p, char *err, size_t errlen);

/* Bytes of one encoded row: krnl_row_beats(dt, cols) * KRNL_BEAT_BYTES. */
static inline uint64_t nc_quant_row_bytes(uint32_t dt, uint32_t cols)
{
	return (uint64_t)krnl_row_beats(dt, cols) * KRNL_BEAT_BYTES;
}

/* Encode the row src[0..cols) into dst[0..nc_quant_row_bytes(dt, cols)) in
 * the card's layout, zero padding included.  dt must be krnl_dt_valid().
 * bf16 and f16 round to nearest even (f16 with subnormals, overflow to inf);
 * int8 / int4 are symmetric per group, q in [-127, 127] / [-7, 7], scale f32,
 * 0 for a group of zeros.  src must be finite for the integer formats. */
void nc_quant_encode_row(uint32_t dt, const float *src, uint32_t cols, uint8_t *dst);
void nc_quant_encode_row_ex(uint32_t dt, const float *src, uint32_t cols, uint8_t *dst,
			    enum nc_round round);

/* The reference decoder: dst[0..cols) = the values of the encoded row src. */
void nc_quant_decode_row(uint32_t dt, const uint8_t *src, uint32_t cols, float *dst);

/* One group of an integer format: the scale for x[0..n) (n <= KRNL_MAX_GROUP)
 * and the summed squared reconstruction error it gives, under rounding r. */
float nc_quant_group_scale(const float *x, uint32_t n, int32_t qmax, enum nc_round r,
			   double *sqerr);

/* The value of a pre-quantized tensor's "nextcard.format.<name>" metadata:
 * "<format spec>:<cols>", e.g. "int4:64:2048" (an integer format always with
 * its group).  format returns buf; parse returns 0 or -NC_QERR_META (also for
 * cols 0 or an integer format without its group), writing nothing then. */
char *nc_quant_meta_format(uint32_t dt, uint32_t cols, char *buf, size_t len);
int nc_quant_meta_parse(const char *v, uint32_t *dt, uint32_t *cols);

#define NC_QUANT_META_PREFIX "nextcard.format."

#endif
