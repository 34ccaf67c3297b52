/* krnl_cycles.h — a cycle model of every kernel, in one table.
 *
 * For each kernel id (krnl_abi.h) a function estimates, from the argument
 * registers of a call and a small context for the data-dependent trip counts,
 * the cycles one compute unit takes at the kernel clock and the HBM beats it
 * moves per port.  It follows the loop structure of the kernel source as it
 * is: every loop with `#pragma HLS PIPELINE` (and every innermost loop, which
 * Vitis HLS pipelines by itself) costs trip count x II + pipeline depth, loops
 * inside a pipelined loop are unrolled into its depth, and loops around
 * pipelined loops pay their body once per iteration.  II is 1 where the
 * pragma says so, as if the arrays an iteration touches in parallel were
 * partitioned to allow it; a loop that carries a float sum through a scalar
 * has II = the adder's latency.
 *
 * Beats are exact: they are what the C-sim meter (krnl_mem.h, krnl_meter.c)
 * counts per port for the same call (tests/unit/test_cycles.c checks that).
 * Cycles are an estimate built from the latencies below, which are
 * assumptions for f32 operators at 300 MHz on UltraScale+ (Alveo U55C/U280),
 * not synthesis results: v++ reports are the authority once they exist.
 *
 * Not a kernel: never synthesized.  Left out of v++ and hls-lint
 * (hls_kernels/hls.mk), and all of it under #ifndef __SYNTHESIS__, which
 * hls-lint skips, so it may use function pointers and doubles.
 */
#ifndef KRNL_CYCLES_H
#define KRNL_CYCLES_H
#ifndef __SYNTHESIS__	/* C-simulation / host only: hls-lint and v++ never see it */

#include <stdint.h>
#include "krnl_abi.h"
#include "krnl_common.h"

/* ---- the clock and the port ----------------------------------------------- */
#define KRNL_CYCLE_HZ         300000000u	/* kernel clock the kernels are shaped for */
#define KRNL_CYCLE_BEAT_BYTES KRNL_BEAT_BYTES	/* 64: one 512-bit m_axi beat per cycle at II=1 */

/* ---- latencies (cycles at 300 MHz), assumptions ---------------------------
 * Vitis HLS floating-point cores on UltraScale+ at 300 MHz, typical ranges
 * from the operator characterisation that v++ prints in its schedule:
 *   f32 add 4-7, mul 3-4, compare 1, exp ~20, log ~20, divide / sqrt 15-30,
 *   int -> float 4; BRAM/URAM read 1-3; m_axi read 64 (the adapter's default
 *   latency= setting; HBM through the interconnect is ~100-200 ns); the write
 *   response that ends a burst ~32. */
#define KRNL_CY_FADD    5	/* f32 add/sub (fadd, full DSP) */
#define KRNL_CY_FMUL    3	/* f32 multiply (fmul, max DSP) */
#define KRNL_CY_FCMP    1	/* f32 compare + select: a carried max stays at II=1 */
#define KRNL_CY_FEXP   20	/* expf */
#define KRNL_CY_FLOG   20	/* logf, log1pf */
#define KRNL_CY_FDIV   16	/* f32 divide */
#define KRNL_CY_FSQRT  16	/* sqrtf */
#define KRNL_CY_CVT     4	/* int -> f32 (dequantization) */
#define KRNL_CY_MUL64   6	/* 64-bit integer multiply (the sampler's RNG) */
#define KRNL_CY_MEM     2	/* on-chip array read (BRAM 1-2, URAM 2-3) */
#define KRNL_CY_MAXI_RD 64	/* m_axi: read request to first beat */
#define KRNL_CY_MAXI_WR 32	/* m_axi: last beat of a write burst to its response */
#define KRNL_CY_LOOP    1	/* control of one iteration of a loop that is not pipelined */
#define KRNL_CY_START   8	/* ap_start, argument registers, ap_done */

/* ---- a call's estimate ----------------------------------------------------- */

/* What the argument registers do not say.  A zeroed context is valid: every
 * row at position 0 in slot 0, no expert selected, greedy sampling. */
struct krnl_cycle_ctx {
	uint32_t pos[KRNL_MAX_BATCH];	/* attn_decode: row r's position p; it attends to
					 * p + 1 entries (p from the cache, the new one) */
	uint32_t blk[KRNL_MAX_BATCH];	/* conv1d / deltanet / attn: row r's state handle
					 * (only the alignment of its blocks matters; attn
					 * takes page i of a row to be page blk[r]) */
	uint32_t blk_out[KRNL_MAX_BATCH]; /* conv1d / deltanet: the handle row r writes
					 * its state to, + 1; 0: blk[r] (in place) */
	uint32_t experts_selected;	/* moe_router, expert_ffn: experts with >= 1 row */
	uint32_t expert_rows;		/* expert_ffn: rows summed over them (rows x top_k) */
	uint32_t sample_k;		/* sampler: candidates kept per row (0 or 1: greedy) */
	uint32_t sample_inserts;	/* sampler: insertions into the candidate list per
					 * row; 0: k (1 + ln(v / k)), logits in random order */
};

struct krnl_cycle_est {
	uint64_t cycles;			/* one compute unit, at KRNL_CYCLE_HZ */
	uint64_t beats[2];			/* HBM beats [0] read, [1] written, all ports */
	uint64_t port_beats[KRNL_MAX_ARGS][2];	/* by argument register (krnl_abi.h index) */
};

/* Fills *out (zeroed first).  Returns 0, or -1 for a call the kernel would
 * not take (batch over KRNL_MAX_BATCH, bad dt, zero divisor). */
typedef int (*krnl_cycle_fn)(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
			     struct krnl_cycle_est *out);

struct krnl_cycle_model {
	uint32_t id;			/* enum krnl_id, = index in the table */
	const char *name;		/* as krnl_names[id] */
	krnl_cycle_fn est;
	uint32_t nargs;			/* argument registers (XX_NARGS) */
	uint32_t nports;		/* the first nports of them are m_axi ports */
	const char *const *port;	/* their names, as the C parameters */
	uint32_t clock_hz;		/* KRNL_CYCLE_HZ */
	uint32_t beat_bytes;		/* KRNL_CYCLE_BEAT_BYTES */
	const char *formula;		/* the dominant terms in one line */
};

extern const struct krnl_cycle_model krnl_cycle_models[KRNL_COUNT];

/* krnl_cycle_models[k->id].est, with a NULL ctx read as a zeroed one;
 * -1 for an unknown id as well. */
int krnl_cycles_estimate(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
			 struct krnl_cycle_est *out);

/* Seconds of cycles at KRNL_CYCLE_HZ. */
double krnl_cycles_seconds(uint64_t cycles);

/* Bytes per second one port moves at one beat per cycle (19.2 GB/s). */
double krnl_cycles_port_bw(void);

#endif /* !__SYNTHESIS__ */
#endif
