/* test_cycles.c — the kernels' cycle model (hls_kernels/krnl_cycles.h).
 *
 * - The table has an entry for every kernel id, named as krnl_names[], with
 *   its argument count, the 300 MHz clock and 64-byte beats.
 * - The beats it predicts per port are exactly what the C-sim meter counts
 *   (krnl_mem.h) when the kernel runs on the same call: gemv in f32, bf16,
 *   int8 and int4 (weights from the host encoder, strides off the beat, with
 *   and without accumulation), rmsnorm, rmsnorm_gated, embed_gather,
 *   conv1d_step, deltanet_step, attn_decode (head dims on and off the beat),
 *   moe_router and expert_ffn fed by the router's own lists, lm_head_argmax
 *   and sampler.  The cycles are at least the beats of the busiest port.
 * - A wrong prediction is caught: one beat more on one port, or the model
 *   asked about a call one output beat larger than the one that ran.
 * - Cycles grow with every size: batch rows, widths, context, experts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <cmocka.h>

#include "rng.h"

#include "krnl_cycles.h"
#include "krnl_state.h"
#include "krnl_mem.h"
#include "krnl_embed_gather.h"
#include "krnl_rmsnorm.h"
#include "krnl_rmsnorm_gated.h"
#include "krnl_gemv.h"
#include "krnl_conv1d_step.h"
#include "krnl_deltanet_step.h"
#include "krnl_attn_decode.h"
#include "krnl_moe_router.h"
#include "krnl_expert_ffn.h"
#include "krnl_lm_head_argmax.h"
#include "krnl_sampler.h"
#include "model/quant.h"

#define EPS 1e-6f

static struct rng rs = { 0x9b05688c2b3e6c1full };

/* uniform in (-a, a) */
static float frand(double a)
{
	return (float)((2 * rng_unit(&rs) - 1) * a);
}

/* Buffers of the run, freed together. */
static void *bufs[64];
static int nbufs;

/* 64-byte aligned, whole beats plus one, filled with small random floats. */
static void *beats(uint64_t bytes)
{
	uint64_t n = (bytes + 63) / 64 * 64 + 64;
	float *p = aligned_alloc(64, n);

	assert_non_null(p);
	assert_true(nbufs < 64);
	for (uint64_t i = 0; i < n / 4; i++)
		p[i] = frand(1.0);
	bufs[nbufs++] = p;
	return p;
}

static void free_all(void)
{
	while (nbufs)
		free(bufs[--nbufs]);
}

/* A [rows][cols] weight matrix in format dt, encoded by the host. */
static void *matrix(uint32_t dt, uint32_t rows, uint32_t cols)
{
	uint64_t rb = nc_quant_row_bytes(dt, cols);
	uint8_t *m = beats(rows * rb);
	float *src = malloc(sizeof(float) * cols);

	for (uint32_t r = 0; r < rows; r++) {
		for (uint32_t c = 0; c < cols; c++)
			src[c] = frand(0.5);
		nc_quant_encode_row(dt, src, cols, m + r * rb);
	}
	free(src);
	return m;
}

static uint32_t fmt(const char *spec)
{
	uint32_t dt;

	assert_int_equal(nc_fmt_parse(spec, &dt), 0);
	return dt;
}

/* ---- one call, run under the meter and estimated ---------------------------- */

struct run {
	struct krnl_call k;
	struct krnl_meter m;
};

static struct run *run_new(uint32_t id)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->k.id = id;
	return r;
}

/* Pointer argument i is p, its port bytes long (rounded out to beats). */
static void *port(struct run *r, int i, void *p, uint64_t bytes)
{
	r->m.port[i].lo = (uintptr_t)p;
	r->m.port[i].hi = (uintptr_t)p + (bytes + 63) / 64 * 64;
	r->m.port[i].port = (uint16_t)i;
	if ((uint32_t)i >= r->m.n_ports)
		r->m.n_ports = (uint32_t)i + 1;
	r->k.arg[i] = (uintptr_t)p;
	return p;
}

#define P(i) ((void *)(uintptr_t)k->arg[i])
#define U(i) ((uint32_t)k->arg[i])
#define F(i) krnl_u2f(k->arg[i])

/* Run the kernel of call k (its pointer arguments are host pointers). */
static void call(const struct krnl_call *k)
{
	switch (k->id) {
	case KRNL_EMBED_GATHER:
		krnl_embed_gather(P(EMB_IDS), P(EMB_TABLE), P(EMB_OUT), U(EMB_ROWS), U(EMB_DIM),
				  U(EMB_DT));
		break;
	case KRNL_RMSNORM:
		krnl_rmsnorm(P(RMS_X), P(RMS_W), P(RMS_Y), U(RMS_ROWS), U(RMS_DIM), F(RMS_EPS),
			     F(RMS_WOFF));
		break;
	case KRNL_RMSNORM_GATED:
		krnl_rmsnorm_gated(P(RMG_X), P(RMG_Z), P(RMG_W), P(RMG_Y), U(RMG_ROWS),
				   U(RMG_HEADS), U(RMG_DIM), U(RMG_ZSTRIDE), F(RMG_EPS));
		break;
	case KRNL_GEMV:
		krnl_gemv(P(GEMV_X), P(GEMV_W), P(GEMV_Y), U(GEMV_ROWS), U(GEMV_IN), U(GEMV_OUT),
			  U(GEMV_XSTRIDE), U(GEMV_YSTRIDE), U(GEMV_DT), U(GEMV_ACC));
		break;
	case KRNL_CONV1D_STEP:
		krnl_conv1d_step(P(CONV_X), P(CONV_W), P(CONV_STATE), P(CONV_BLOCKS), U(CONV_ROWS),
				 U(CONV_CH), U(CONV_K), U(CONV_XSTRIDE), U(CONV_NBLK));
		break;
	case KRNL_DELTANET_STEP:
		krnl_deltanet_step(P(DN_QKV), P(DN_BA), P(DN_ALOG), P(DN_DTB), P(DN_STATE),
				   P(DN_BLOCKS), P(DN_OUT), U(DN_ROWS), U(DN_NK), U(DN_NV), U(DN_DK),
				   U(DN_DV), U(DN_XSTRIDE), U(DN_NBLK));
		break;
	case KRNL_ATTN_DECODE:
		krnl_attn_decode(P(AT_QG), P(AT_K), P(AT_V), P(AT_QNW), P(AT_KNW), P(AT_KC),
				 P(AT_VC), P(AT_BLOCKS), P(AT_POS), P(AT_ROPE), P(AT_BT), P(AT_OUT),
				 P(AT_PART), U(AT_ROWS), U(AT_NH), U(AT_NKV), U(AT_HD), U(AT_RD),
				 F(AT_EPS), U(AT_TABW), U(AT_NPAGES), U(AT_NBLK), U(AT_KVDT),
				 U(AT_SPLIT));
		break;
	case KRNL_MOE_ROUTER:
		krnl_moe_router(P(RT_LOGITS), P(RT_COUNT), P(RT_LIST), P(RT_LISTW), U(RT_ROWS),
				U(RT_NE), U(RT_TOPK), U(RT_NORM));
		break;
	case KRNL_EXPERT_FFN:
		krnl_expert_ffn(P(EF_X), P(EF_W), P(EF_COUNT), P(EF_LIST), P(EF_LISTW), P(EF_SW),
				P(EF_SGATE), P(EF_Y), U(EF_ROWS), U(EF_H), U(EF_I), U(EF_NE),
				U(EF_SI), U(EF_DT), U(EF_SDT));
		break;
	case KRNL_LM_HEAD_ARGMAX:
		krnl_lm_head_argmax(P(LM_X), P(LM_NW), P(LM_W), P(LM_LOGITS), P(LM_DST),
				    P(LM_ARGMAX), U(LM_ROWS), U(LM_H), U(LM_V), F(LM_EPS), U(LM_DT),
				    U(LM_LS));
		break;
	case KRNL_SAMPLER:
		krnl_sampler(P(SMP_LOGITS), P(SMP_PARAMS), P(SMP_TOKEN), P(SMP_LOGPROB),
			     U(SMP_ROWS), U(SMP_V));
		break;
	default:
		fail();
	}
}

/* Ports where the meter and the estimate differ (printed unless quiet),
 * plus one for any beat outside every port. */
static int differ(const char *what, const struct krnl_meter *m, const struct krnl_cycle_est *e,
		  uint32_t id, int quiet)
{
	const struct krnl_cycle_model *cm = &krnl_cycle_models[id];
	int n = 0;

	for (uint32_t p = 0; p < KRNL_METER_PORTS; p++)
		for (int d = 0; d < 2; d++) {
			uint64_t want = m->port_beats[p][d];
			uint64_t got = p < KRNL_MAX_ARGS ? e->port_beats[p][d] : 0;

			if (want == got)
				continue;
			if (!quiet)
				fprintf(stderr, "%s: port %s: %s %llu beats, the model says %llu\n",
					what, p < cm->nports ? cm->port[p] : "?",
					d ? "written" : "read", (unsigned long long)want,
					(unsigned long long)got);
			n++;
		}
	if (m->stray_beats[0] || m->stray_beats[1]) {
		if (!quiet)
			fprintf(stderr, "%s: %llu beats outside every port\n", what,
				(unsigned long long)(m->stray_beats[0] + m->stray_beats[1]));
		n++;
	}
	return n;
}

/* Run r's call under its meter, estimate it with ctx, compare; the estimate
 * is left in *e.  Returns the differences. */
static int metered(const char *what, struct run *r, const struct krnl_cycle_ctx *ctx,
		   struct krnl_cycle_est *e)
{
	uint64_t busiest = 0, total = 0;
	int n;

	krnl_meter_cur = &r->m;
	call(&r->k);
	krnl_meter_cur = NULL;
	assert_int_equal(krnl_cycles_estimate(&r->k, ctx, e), 0);
	n = differ(what, &r->m, e, r->k.id, 0);
	for (int p = 0; p < KRNL_MAX_ARGS; p++) {
		uint64_t b = e->port_beats[p][0] + e->port_beats[p][1];
		busiest = b > busiest ? b : busiest;
		total += b;
	}
	assert_int_equal(total, e->beats[0] + e->beats[1]);
	/* a port moves at most a beat a cycle */
	assert_true(e->cycles >= busiest);
	printf("  %-30s %10llu cycles %8llu beats (%5.1f%% of cycles on the busiest port)%s\n",
	       what, (unsigned long long)e->cycles, (unsigned long long)total,
	       100.0 * (double)busiest / (double)e->cycles, n ? "  MISMATCH" : "");
	return n;
}

/* ---- the table ---------------------------------------------------------------- */

static void test_table(void **state)
{
	static const uint32_t nargs[KRNL_COUNT] = {
		[KRNL_EMBED_GATHER] = EMB_NARGS, [KRNL_RMSNORM] = RMS_NARGS,
		[KRNL_RMSNORM_GATED] = RMG_NARGS, [KRNL_GEMV] = GEMV_NARGS,
		[KRNL_CONV1D_STEP] = CONV_NARGS, [KRNL_DELTANET_STEP] = DN_NARGS,
		[KRNL_ATTN_DECODE] = AT_NARGS, [KRNL_MOE_ROUTER] = RT_NARGS,
		[KRNL_EXPERT_FFN] = EF_NARGS, [KRNL_LM_HEAD_ARGMAX] = LM_NARGS,
		[KRNL_SAMPLER] = SMP_NARGS,
	};
	static const uint32_t nports[KRNL_COUNT] = {
		[KRNL_EMBED_GATHER] = EMB_ROWS, [KRNL_RMSNORM] = RMS_ROWS,
		[KRNL_RMSNORM_GATED] = RMG_ROWS, [KRNL_GEMV] = GEMV_ROWS,
		[KRNL_CONV1D_STEP] = CONV_ROWS, [KRNL_DELTANET_STEP] = DN_ROWS,
		[KRNL_ATTN_DECODE] = AT_ROWS, [KRNL_MOE_ROUTER] = RT_ROWS,
		[KRNL_EXPERT_FFN] = EF_ROWS, [KRNL_LM_HEAD_ARGMAX] = LM_ROWS,
		[KRNL_SAMPLER] = SMP_ROWS,
	};
	struct krnl_call k = { .id = KRNL_COUNT };
	struct krnl_cycle_est e;

	(void)state;
	for (uint32_t i = 0; i < KRNL_COUNT; i++) {
		const struct krnl_cycle_model *m = &krnl_cycle_models[i];

		assert_int_equal(m->id, i);
		assert_non_null(m->est);
		assert_non_null(m->name);
		assert_string_equal(m->name, krnl_names[i]);
		assert_int_equal(m->nargs, nargs[i]);
		assert_int_equal(m->nports, nports[i]);	/* the pointer args come first */
		for (uint32_t p = 0; p < m->nports; p++)
			assert_non_null(m->port[p]);
		assert_int_equal(m->clock_hz, 300000000u);
		assert_int_equal(m->beat_bytes, 64);
		assert_non_null(m->formula);
	}
	assert_int_equal(krnl_cycles_estimate(&k, NULL, &e), -1);
	assert_true(fabs(krnl_cycles_seconds(300000000ull) - 1.0) < 1e-12);
	assert_true(fabs(krnl_cycles_seconds(3) - 1e-8) < 1e-20);
	assert_true(fabs(krnl_cycles_port_bw() - 19.2e9) < 1.0);
	/* a call the kernel would not take */
	k.id = KRNL_GEMV;
	k.arg[GEMV_ROWS] = KRNL_MAX_BATCH + 1;
	k.arg[GEMV_DT] = KRNL_FMT_F32;
	assert_int_equal(krnl_cycles_estimate(&k, NULL, &e), -1);
}

/* ---- predicted beats = metered beats ------------------------------------------ */

static struct run *gemv_run(uint32_t dt, uint32_t rows, uint32_t in, uint32_t out, int acc)
{
	struct run *r = run_new(KRNL_GEMV);
	uint32_t xs = in + 3, ys = out + 5;	/* strides off the beat on purpose */

	port(r, GEMV_X, beats((uint64_t)rows * xs * 4), ((uint64_t)(rows - 1) * xs + in) * 4);
	port(r, GEMV_W, matrix(dt, out, in), krnl_matrix_bytes(dt, out, in));
	port(r, GEMV_Y, beats((uint64_t)rows * ys * 4), ((uint64_t)(rows - 1) * ys + out) * 4);
	r->k.arg[GEMV_ROWS] = rows;
	r->k.arg[GEMV_IN] = in;
	r->k.arg[GEMV_OUT] = out;
	r->k.arg[GEMV_XSTRIDE] = xs;
	r->k.arg[GEMV_YSTRIDE] = ys;
	r->k.arg[GEMV_DT] = dt;
	r->k.arg[GEMV_ACC] = (uint64_t)acc;
	return r;
}

static void test_beats_gemv(void **state)
{
	static const struct {
		const char *dt;
		uint32_t rows, in, out;
		int acc;
	} c[] = {
		{ "f32", 1, 192, 40, 0 },	{ "f32", 3, 200, 37, 1 },
		{ "bf16", 1, 192, 256, 0 },	{ "bf16", 16, 72, 33, 1 },
		{ "f16", 2, 100, 17, 0 },	{ "int8:32", 4, 192, 48, 1 },
		{ "int4:64", 1, 256, 40, 0 },	{ "int4:32", 3, 200, 40, 1 },
		{ "int4:128", 5, 520, 19, 0 },
	};
	int fails = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char what[96];
		struct krnl_cycle_est e;
		struct run *r = gemv_run(fmt(c[i].dt), c[i].rows, c[i].in, c[i].out, c[i].acc);

		snprintf(what, sizeof(what), "gemv %s %ux%u->%u%s", c[i].dt, c[i].rows, c[i].in,
			 c[i].out, c[i].acc ? " acc" : "");
		fails += metered(what, r, NULL, &e);
		/* the whole matrix once, whatever the batch */
		assert_int_equal(e.port_beats[GEMV_W][0],
				 (uint64_t)c[i].out * krnl_row_beats(fmt(c[i].dt), c[i].in));
		free(r);
		free_all();
	}
	assert_int_equal(fails, 0);
}

static void test_beats_norms(void **state)
{
	struct krnl_cycle_est e;
	struct run *r;
	int fails = 0;

	(void)state;
	/* rmsnorm: rows of 200 floats back to back, so rows start mid-beat */
	{
		uint32_t rows = 3, dim = 200;

		r = run_new(KRNL_RMSNORM);
		port(r, RMS_X, beats(rows * dim * 4), rows * dim * 4);
		port(r, RMS_W, beats(dim * 4), dim * 4);
		port(r, RMS_Y, beats(rows * dim * 4), rows * dim * 4);
		r->k.arg[RMS_ROWS] = rows;
		r->k.arg[RMS_DIM] = dim;
		r->k.arg[RMS_EPS] = krnl_f2u(EPS);
		r->k.arg[RMS_WOFF] = krnl_f2u(1.0f);
		fails += metered("rmsnorm 3x200", r, NULL, &e);
		free(r);
		free_all();
	}
	{
		uint32_t rows = 16, dim = 2048;

		r = run_new(KRNL_RMSNORM);
		port(r, RMS_X, beats(rows * dim * 4), rows * dim * 4);
		port(r, RMS_W, beats(dim * 4), dim * 4);
		port(r, RMS_Y, beats(rows * dim * 4), rows * dim * 4);
		r->k.arg[RMS_ROWS] = rows;
		r->k.arg[RMS_DIM] = dim;
		r->k.arg[RMS_EPS] = krnl_f2u(EPS);
		fails += metered("rmsnorm 16x2048", r, NULL, &e);
		free(r);
		free_all();
	}
	/* rmsnorm_gated: heads of 48 (fortune-13m), z inside a wider row; and
	 * heads of 128 over more than one chunk */
	for (int i = 0; i < 2; i++) {
		uint32_t rows = i ? 2 : 3, heads = i ? 40 : 5, dim = i ? 128 : 48;
		uint32_t zs = heads * dim + 19;
		char what[64];

		r = run_new(KRNL_RMSNORM_GATED);
		port(r, RMG_X, beats(rows * heads * dim * 4), rows * heads * dim * 4);
		port(r, RMG_Z, beats(rows * zs * 4), ((rows - 1) * zs + heads * dim) * 4);
		port(r, RMG_W, beats(dim * 4), dim * 4);
		port(r, RMG_Y, beats(rows * heads * dim * 4), rows * heads * dim * 4);
		r->k.arg[RMG_ROWS] = rows;
		r->k.arg[RMG_HEADS] = heads;
		r->k.arg[RMG_DIM] = dim;
		r->k.arg[RMG_ZSTRIDE] = zs;
		r->k.arg[RMG_EPS] = krnl_f2u(EPS);
		snprintf(what, sizeof(what), "rmsnorm_gated %ux%ux%u", rows, heads, dim);
		fails += metered(what, r, NULL, &e);
		free(r);
		free_all();
	}
	assert_int_equal(fails, 0);
}

static void test_beats_embed_conv(void **state)
{
	struct krnl_cycle_est e;
	struct run *r;
	int fails = 0;

	(void)state;
	/* embed_gather: int4 rows (scales first), out rows of 72 mid-beat */
	{
		uint32_t rows = 3, dim = 72, vocab = 50, dt = fmt("int4:32");
		int32_t *ids;

		r = run_new(KRNL_EMBED_GATHER);
		ids = port(r, EMB_IDS, beats(rows * 4), rows * 4);
		ids[0] = 49;
		ids[1] = 0;
		ids[2] = 17;
		port(r, EMB_TABLE, matrix(dt, vocab, dim), krnl_matrix_bytes(dt, vocab, dim));
		port(r, EMB_OUT, beats(rows * dim * 4), rows * dim * 4);
		r->k.arg[EMB_ROWS] = rows;
		r->k.arg[EMB_DIM] = dim;
		r->k.arg[EMB_DT] = dt;
		fails += metered("embed_gather int4 3x72", r, NULL, &e);
		free(r);
		free_all();
	}
	/* conv1d_step: two chunks of channels, state slots out of order */
	{
		uint32_t rows = 3, ch = 300, kk = 4, xs = 320, ns = 5;
		uint64_t per = (uint64_t)ch * (kk - 1);
		/* row 2 writes its state to a spare handle (a speculative row) */
		struct krnl_cycle_ctx ctx = { .blk = { 4, 0, 2 }, .blk_out = { 0, 0, 1 + 3 } };
		int32_t *sl;

		r = run_new(KRNL_CONV1D_STEP);
		port(r, CONV_X, beats(rows * xs * 4), ((rows - 1) * xs + ch) * 4);
		port(r, CONV_W, beats(ch * kk * 4), ch * kk * 4);
		port(r, CONV_STATE, beats(ns * per * 4), ns * per * 4);
		sl = port(r, CONV_BLOCKS, beats(rows * 8), rows * 8);
		for (uint32_t i = 0; i < rows; i++) {
			sl[i] = (int32_t)ctx.blk[i];
			sl[rows + i] = (int32_t)(ctx.blk_out[i] ? ctx.blk_out[i] - 1 : ctx.blk[i]);
		}
		r->k.arg[CONV_ROWS] = rows;
		r->k.arg[CONV_CH] = ch;
		r->k.arg[CONV_K] = kk;
		r->k.arg[CONV_XSTRIDE] = xs;
		r->k.arg[CONV_NBLK] = ns;
		fails += metered("conv1d_step 3x300 k4", r, &ctx, &e);
		free(r);
		free_all();
	}
	assert_int_equal(fails, 0);
}

static void test_beats_deltanet_attn(void **state)
{
	struct krnl_cycle_est e;
	struct run *r;
	int fails = 0;

	(void)state;
	/* deltanet_step: fortune-13m's heads (2 / 4 of 48) */
	{
		uint32_t rows = 2, nk = 2, nv = 4, dk = 48, dv = 48, ns = 3;
		uint32_t w = 2 * nk * dk + nv * dv, xs = w + 2 * nv * dv + 5;
		uint64_t per = (uint64_t)nv * dk * dv;
		struct krnl_cycle_ctx ctx = { .blk = { 2, 1 } };
		int32_t *sl;

		r = run_new(KRNL_DELTANET_STEP);
		port(r, DN_QKV, beats(rows * xs * 4), ((rows - 1) * xs + w) * 4);
		port(r, DN_BA, beats(rows * 2 * nv * 4), rows * 2 * nv * 4);
		port(r, DN_ALOG, beats(nv * 4), nv * 4);
		port(r, DN_DTB, beats(nv * 4), nv * 4);
		port(r, DN_STATE, beats(ns * per * 4), ns * per * 4);
		sl = port(r, DN_BLOCKS, beats(rows * 8), rows * 8);
		port(r, DN_OUT, beats(rows * nv * dv * 4), rows * nv * dv * 4);
		for (uint32_t i = 0; i < rows; i++)
			sl[i] = sl[rows + i] = (int32_t)ctx.blk[i];
		r->k.arg[DN_ROWS] = rows;
		r->k.arg[DN_NK] = nk;
		r->k.arg[DN_NV] = nv;
		r->k.arg[DN_DK] = dk;
		r->k.arg[DN_DV] = dv;
		r->k.arg[DN_XSTRIDE] = xs;
		r->k.arg[DN_NBLK] = ns;
		fails += metered("deltanet_step 2x(2/4 x 48)", r, &ctx, &e);
		free(r);
		free_all();
	}
	/* attn_decode: head dims on the beat (64) and off it (40), KV f32 and bf16 */
	for (int i = 0; i < 4; i++) {
		uint32_t rows = 3, nh = 4, nkv = 2, hd = i % 2 ? 40 : 64, rd = 16, tabw = 2, ns = 4;
		uint32_t kvdt = i >= 2 ? KRNL_FMT_BF16 : KRNL_FMT_F32, es = krnl_kv_es(kvdt);
		uint64_t per = krnl_kv_page(nkv, hd);	/* handle b's pages are all page b */
		struct krnl_cycle_ctx ctx = { .pos = { 11, 0, 23 }, .blk = { 3, 0, 1 } };
		int32_t *sl, *ps, *bt;
		float *rope;
		char what[64];

		r = run_new(KRNL_ATTN_DECODE);
		port(r, AT_QG, beats(rows * 2 * nh * hd * 4), rows * 2 * nh * hd * 4);
		port(r, AT_K, beats(rows * nkv * hd * 4), rows * nkv * hd * 4);
		port(r, AT_V, beats(rows * nkv * hd * 4), rows * nkv * hd * 4);
		port(r, AT_QNW, beats(hd * 4), hd * 4);
		port(r, AT_KNW, beats(hd * 4), hd * 4);
		port(r, AT_KC, beats(ns * per * es), ns * per * es);
		port(r, AT_VC, beats(ns * per * es), ns * per * es);
		sl = port(r, AT_BLOCKS, beats(rows * 4), rows * 4);
		ps = port(r, AT_POS, beats(rows * 4), rows * 4);
		rope = port(r, AT_ROPE, beats(rows * rd * 4), rows * rd * 4);
		bt = port(r, AT_BT, beats(ns * tabw * 4), ns * tabw * 4);
		for (uint32_t b = 0; b < ns * tabw; b++)
			bt[b] = (int32_t)(b / tabw);
		port(r, AT_OUT, beats(rows * nh * hd * 4), rows * nh * hd * 4);
		for (uint32_t j = 0; j < rows; j++) {
			sl[j] = (int32_t)ctx.blk[j];
			ps[j] = (int32_t)ctx.pos[j];
			for (uint32_t q = 0; q < rd / 2; q++) {
				double a = ps[j] * pow(1e4, -2.0 * q / rd);
				rope[j * rd + q] = (float)cos(a);
				rope[j * rd + rd / 2 + q] = (float)sin(a);
			}
		}
		r->k.arg[AT_ROWS] = rows;
		r->k.arg[AT_NH] = nh;
		r->k.arg[AT_NKV] = nkv;
		r->k.arg[AT_HD] = hd;
		r->k.arg[AT_RD] = rd;
		r->k.arg[AT_EPS] = krnl_f2u(EPS);
		r->k.arg[AT_TABW] = tabw;
		r->k.arg[AT_NPAGES] = ns;
		r->k.arg[AT_NBLK] = ns;
		r->k.arg[AT_KVDT] = kvdt;
		snprintf(what, sizeof(what), "attn_decode hd %u KV %s pos 11,0,23", hd,
			 krnl_fmt_name(kvdt));
		fails += metered(what, r, &ctx, &e);
		free(r);
		free_all();
	}
	assert_int_equal(fails, 0);
}

/* The router picks, then the experts run on its lists: both metered. */
static void test_beats_router_experts(void **state)
{
	static const char *const dts[][2] = { { "bf16", "bf16" }, { "int4:64", "int8:32" } };
	int fails = 0;

	(void)state;
	for (size_t f = 0; f < sizeof(dts) / sizeof(dts[0]); f++) {
		uint32_t rows = 3, ne = 32, topk = 4, h = 72, ni = 40, si = 56;
		uint32_t dt = fmt(dts[f][0]), sdt = fmt(dts[f][1]);
		struct krnl_cycle_ctx ctx = { 0 };
		struct krnl_cycle_est e;
		uint32_t *cnt;
		void *list, *lw;
		uint8_t *w;
		uint64_t eb = krnl_expert_bytes(dt, h, ni);
		char what[64];
		struct run *r = run_new(KRNL_MOE_ROUTER);

		port(r, RT_LOGITS, beats(rows * ne * 4), rows * ne * 4);
		cnt = port(r, RT_COUNT, beats(ne * 4), ne * 4);
		list = port(r, RT_LIST, beats(ne * KRNL_MAX_BATCH * 4), ne * KRNL_MAX_BATCH * 4);
		lw = port(r, RT_LISTW, beats(ne * KRNL_MAX_BATCH * 4), ne * KRNL_MAX_BATCH * 4);
		r->k.arg[RT_ROWS] = rows;
		r->k.arg[RT_NE] = ne;
		r->k.arg[RT_TOPK] = topk;
		r->k.arg[RT_NORM] = 1;
		/* what the router will choose: run it once unmetered to learn */
		call(&r->k);
		for (uint32_t i = 0; i < ne; i++) {
			ctx.experts_selected += cnt[i] > 0;
			ctx.expert_rows += cnt[i];
		}
		assert_int_equal(ctx.expert_rows, rows * topk);
		fails += metered("moe_router 3 rows 32 top-4", r, &ctx, &e);
		free(r);

		r = run_new(KRNL_EXPERT_FFN);
		port(r, EF_X, beats(rows * h * 4), rows * h * 4);
		w = port(r, EF_W, beats(ne * eb), ne * eb);
		for (uint32_t i = 0; i < ne; i++) {	/* expert i: gate | up | down */
			uint8_t *g = matrix(dt, ni, h), *u = matrix(dt, ni, h), *d = matrix(dt, h, ni);

			memcpy(w + i * eb, g, krnl_matrix_bytes(dt, ni, h));
			memcpy(w + i * eb + krnl_matrix_bytes(dt, ni, h), u, krnl_matrix_bytes(dt, ni, h));
			memcpy(w + i * eb + 2 * krnl_matrix_bytes(dt, ni, h), d,
			       krnl_matrix_bytes(dt, h, ni));
			free(bufs[--nbufs]);
			free(bufs[--nbufs]);
			free(bufs[--nbufs]);
		}
		port(r, EF_COUNT, cnt, ne * 4);
		port(r, EF_LIST, list, ne * KRNL_MAX_BATCH * 4);
		port(r, EF_LISTW, lw, ne * KRNL_MAX_BATCH * 4);
		{
			uint8_t *g = matrix(sdt, si, h), *u = matrix(sdt, si, h), *d = matrix(sdt, h, si);
			uint8_t *s = beats(krnl_expert_bytes(sdt, h, si));

			memcpy(s, g, krnl_matrix_bytes(sdt, si, h));
			memcpy(s + krnl_matrix_bytes(sdt, si, h), u, krnl_matrix_bytes(sdt, si, h));
			memcpy(s + 2 * krnl_matrix_bytes(sdt, si, h), d, krnl_matrix_bytes(sdt, h, si));
			port(r, EF_SW, s, krnl_expert_bytes(sdt, h, si));
		}
		port(r, EF_SGATE, beats(h * 4), h * 4);
		port(r, EF_Y, beats(rows * h * 4), rows * h * 4);
		r->k.arg[EF_ROWS] = rows;
		r->k.arg[EF_H] = h;
		r->k.arg[EF_I] = ni;
		r->k.arg[EF_NE] = ne;
		r->k.arg[EF_SI] = si;
		r->k.arg[EF_DT] = dt;
		r->k.arg[EF_SDT] = sdt;
		snprintf(what, sizeof(what), "expert_ffn %s, %u experts", dts[f][0],
			 ctx.experts_selected);
		fails += metered(what, r, &ctx, &e);
		/* each selected expert's weights once */
		assert_int_equal(e.port_beats[EF_W][0], ctx.experts_selected * eb / 64);
		free(r);
		free_all();
	}
	assert_int_equal(fails, 0);
}

static void test_beats_head_sampler(void **state)
{
	struct krnl_cycle_est e;
	struct run *r;
	int fails = 0;

	(void)state;
	/* lm_head_argmax: a vocabulary that is no whole number of beats */
	{
		uint32_t rows = 2, h = 72, v = 100, dt = fmt("bf16");
		int32_t *dst;

		r = run_new(KRNL_LM_HEAD_ARGMAX);
		port(r, LM_X, beats(rows * h * 4), rows * h * 4);
		port(r, LM_NW, beats(h * 4), h * 4);
		port(r, LM_W, matrix(dt, v, h), krnl_matrix_bytes(dt, v, h));
		port(r, LM_LOGITS, beats(rows * v * 4), rows * v * 4);
		dst = port(r, LM_DST, beats(rows * 4), rows * 4);
		port(r, LM_ARGMAX, beats(rows * 4), rows * 4);
		for (uint32_t i = 0; i < rows; i++)
			dst[i] = (int32_t)i;
		r->k.arg[LM_ROWS] = rows;
		r->k.arg[LM_H] = h;
		r->k.arg[LM_V] = v;
		r->k.arg[LM_EPS] = krnl_f2u(EPS);
		r->k.arg[LM_DT] = dt;
		fails += metered("lm_head_argmax bf16 2x72->100", r, NULL, &e);
		free(r);
		free_all();
	}
	/* sampler: two chunks, rows that start mid-beat; greedy and top-k */
	for (int i = 0; i < 2; i++) {
		uint32_t rows = 3, v = 1500;
		struct krnl_sample_params *sp;
		struct krnl_cycle_ctx ctx = { .sample_k = i ? 40 : 1 };
		char what[64];

		r = run_new(KRNL_SAMPLER);
		port(r, SMP_LOGITS, beats(rows * v * 4), rows * v * 4);
		sp = port(r, SMP_PARAMS, beats(rows * sizeof(*sp)), rows * sizeof(*sp));
		port(r, SMP_TOKEN, beats(rows * 4), rows * 4);
		port(r, SMP_LOGPROB, beats(rows * 4), rows * 4);
		for (uint32_t j = 0; j < rows; j++)
			sp[j] = (struct krnl_sample_params){ .temperature = i ? 0.8f : 0.0f,
							     .top_p = 1.0f, .top_k = i ? 40 : 0,
							     .seed_lo = 7, .counter = j, .src_row = j };
		r->k.arg[SMP_ROWS] = rows;
		r->k.arg[SMP_V] = v;
		snprintf(what, sizeof(what), "sampler %s 3x1500", i ? "top-40" : "greedy");
		fails += metered(what, r, &ctx, &e);
		free(r);
		free_all();
	}
	assert_int_equal(fails, 0);
}

/* ---- a wrong prediction is caught ---------------------------------------------- */

static void test_perturbed(void **state)
{
	struct krnl_cycle_est e, e2;
	struct run *r = gemv_run(fmt("int4:64"), 3, 256, 40, 0);

	(void)state;
	assert_int_equal(metered("gemv int4 (reference)", r, NULL, &e), 0);
	/* one beat more on one port */
	e2 = e;
	e2.port_beats[GEMV_W][0]++;
	assert_int_equal(differ("perturbed: +1 weight beat", &r->m, &e2, KRNL_GEMV, 1), 1);
	e2 = e;
	e2.port_beats[GEMV_Y][1]--;
	assert_int_equal(differ("perturbed: -1 y beat", &r->m, &e2, KRNL_GEMV, 1), 1);
	/* a read counted as a write */
	e2 = e;
	e2.port_beats[GEMV_X][1] = e2.port_beats[GEMV_X][0];
	e2.port_beats[GEMV_X][0] = 0;
	assert_int_equal(differ("perturbed: x written", &r->m, &e2, KRNL_GEMV, 1), 2);
	/* the model asked about another call: 16 more outputs, another format */
	r->k.arg[GEMV_OUT] = 56;
	assert_int_equal(krnl_cycles_estimate(&r->k, NULL, &e2), 0);
	assert_true(differ("perturbed: out + 16", &r->m, &e2, KRNL_GEMV, 1) >= 2);
	r->k.arg[GEMV_OUT] = 40;
	r->k.arg[GEMV_DT] = fmt("int8:64");
	assert_int_equal(krnl_cycles_estimate(&r->k, NULL, &e2), 0);
	assert_int_equal(differ("perturbed: int8", &r->m, &e2, KRNL_GEMV, 1), 1);
	/* a stray beat is a difference even when the ports agree */
	r->m.stray_beats[0] = 1;
	assert_int_equal(differ("perturbed: stray", &r->m, &e, KRNL_GEMV, 1), 1);
	free(r);
	free_all();
}

/* ---- cycles grow with sizes ----------------------------------------------------- */

static uint64_t cycles(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx)
{
	struct krnl_cycle_est e;

	assert_int_equal(krnl_cycles_estimate(k, ctx, &e), 0);
	return e.cycles;
}

/* cycles of k with argument i = a < b; must grow */
static void grows(struct krnl_call k, const struct krnl_cycle_ctx *ctx, int i, uint64_t a,
		  uint64_t b)
{
	uint64_t ca, cb;

	k.arg[i] = a;
	ca = cycles(&k, ctx);
	k.arg[i] = b;
	cb = cycles(&k, ctx);
	if (cb <= ca)
		fprintf(stderr, "%s: arg %d %llu -> %llu: cycles %llu -> %llu\n",
			krnl_names[k.id], i, (unsigned long long)a, (unsigned long long)b,
			(unsigned long long)ca, (unsigned long long)cb);
	assert_true(cb > ca);
}

static void test_monotonic(void **state)
{
	struct krnl_cycle_ctx ctx = { .experts_selected = 4, .expert_rows = 4, .sample_k = 1 };
	struct krnl_call k;

	(void)state;
	k = (struct krnl_call){ .id = KRNL_GEMV };
	k.arg[GEMV_ROWS] = 1;
	k.arg[GEMV_IN] = 2048;
	k.arg[GEMV_OUT] = 512;
	k.arg[GEMV_XSTRIDE] = 4096;
	k.arg[GEMV_YSTRIDE] = 4096;
	k.arg[GEMV_DT] = fmt("bf16");
	grows(k, NULL, GEMV_ROWS, 1, 2);
	grows(k, NULL, GEMV_ROWS, 2, 16);
	grows(k, NULL, GEMV_IN, 1024, 2048);
	grows(k, NULL, GEMV_OUT, 512, 513);
	grows(k, NULL, GEMV_ACC, 0, 1);
	/* f32 rows are twice the beats of bf16 ones.  (int4 rows are a quarter
	 * of bf16's beats but not fewer cycles: their scales are a burst of
	 * their own, a second m_axi latency per row; docs/performance.md) */
	grows(k, NULL, GEMV_DT, fmt("bf16"), fmt("f32"));

	k = (struct krnl_call){ .id = KRNL_EMBED_GATHER };
	k.arg[EMB_ROWS] = 1;
	k.arg[EMB_DIM] = 2048;
	k.arg[EMB_DT] = fmt("bf16");
	grows(k, NULL, EMB_ROWS, 1, 2);
	grows(k, NULL, EMB_DIM, 192, 2048);

	k = (struct krnl_call){ .id = KRNL_RMSNORM };
	k.arg[RMS_ROWS] = 1;
	k.arg[RMS_DIM] = 2048;
	grows(k, NULL, RMS_ROWS, 1, 2);
	grows(k, NULL, RMS_DIM, 192, 2048);

	k = (struct krnl_call){ .id = KRNL_RMSNORM_GATED };
	k.arg[RMG_ROWS] = 1;
	k.arg[RMG_HEADS] = 32;
	k.arg[RMG_DIM] = 128;
	k.arg[RMG_ZSTRIDE] = 8192;
	grows(k, NULL, RMG_ROWS, 1, 2);
	grows(k, NULL, RMG_HEADS, 4, 32);
	grows(k, NULL, RMG_DIM, 48, 128);

	k = (struct krnl_call){ .id = KRNL_CONV1D_STEP };
	k.arg[CONV_ROWS] = 1;
	k.arg[CONV_CH] = 8192;
	k.arg[CONV_K] = 4;
	k.arg[CONV_XSTRIDE] = 12288;
	grows(k, NULL, CONV_ROWS, 1, 2);
	grows(k, NULL, CONV_CH, 384, 8192);
	grows(k, NULL, CONV_K, 2, 4);

	k = (struct krnl_call){ .id = KRNL_DELTANET_STEP };
	k.arg[DN_ROWS] = 1;
	k.arg[DN_NK] = 16;
	k.arg[DN_NV] = 32;
	k.arg[DN_DK] = 128;
	k.arg[DN_DV] = 128;
	k.arg[DN_XSTRIDE] = 12288;
	grows(k, NULL, DN_ROWS, 1, 2);
	grows(k, NULL, DN_NV, 16, 32);
	grows(k, NULL, DN_DK, 64, 128);
	grows(k, NULL, DN_DV, 64, 128);

	k = (struct krnl_call){ .id = KRNL_ATTN_DECODE };
	k.arg[AT_ROWS] = 1;
	k.arg[AT_NH] = 16;
	k.arg[AT_NKV] = 2;
	k.arg[AT_HD] = 256;
	k.arg[AT_RD] = 64;
	k.arg[AT_TABW] = 64;
	{
		struct krnl_cycle_ctx c0 = { 0 }, c1 = { .pos = { 100 } }, c2 = { .pos = { 1000 } };
		struct krnl_cycle_ctx c2r = { .pos = { 1000, 1000 } };

		assert_true(cycles(&k, &c1) > cycles(&k, &c0));
		assert_true(cycles(&k, &c2) > cycles(&k, &c1));
		grows(k, &c2r, AT_ROWS, 1, 2);
		grows(k, &c1, AT_NKV, 1, 2);	/* 16 heads in groups of 16, then of 8 */
		grows(k, &c1, AT_NH, 8, 16);
		grows(k, &c1, AT_HD, 128, 256);
	}

	k = (struct krnl_call){ .id = KRNL_MOE_ROUTER };
	k.arg[RT_ROWS] = 1;
	k.arg[RT_NE] = 512;
	k.arg[RT_TOPK] = 10;
	grows(k, &ctx, RT_ROWS, 1, 2);
	grows(k, &ctx, RT_NE, 64, 512);
	grows(k, &ctx, RT_TOPK, 4, 10);
	{
		struct krnl_cycle_ctx more = ctx;

		more.experts_selected = 10;
		assert_true(cycles(&k, &more) > cycles(&k, &ctx));
	}

	k = (struct krnl_call){ .id = KRNL_EXPERT_FFN };
	k.arg[EF_ROWS] = 2;
	k.arg[EF_H] = 2048;
	k.arg[EF_I] = 512;
	k.arg[EF_NE] = 512;
	k.arg[EF_DT] = fmt("int4:64");
	k.arg[EF_SDT] = fmt("bf16");
	grows(k, &ctx, EF_SI, 0, 512);
	grows(k, &ctx, EF_I, 256, 512);
	grows(k, &ctx, EF_H, 1024, 2048);
	grows(k, &ctx, EF_DT, fmt("bf16"), fmt("f32"));
	{
		struct krnl_cycle_ctx more = ctx, rows = ctx;

		more.experts_selected = 10;
		more.expert_rows = 10;
		rows.expert_rows = 8;	/* the same 4 experts, chosen by 2 rows each */
		assert_true(cycles(&k, &more) > cycles(&k, &ctx));
		assert_true(cycles(&k, &rows) > cycles(&k, &ctx));
		/* fewer distinct experts for the same rows: fewer cycles (batching) */
		assert_true(cycles(&k, &rows) < cycles(&k, &(struct krnl_cycle_ctx){
							.experts_selected = 8, .expert_rows = 8 }));
		/* expert rows that no selected expert can hold */
		rows.expert_rows = 3;
		struct krnl_cycle_est e;
		assert_int_equal(krnl_cycles_estimate(&k, &rows, &e), -1);
	}

	k = (struct krnl_call){ .id = KRNL_LM_HEAD_ARGMAX };
	k.arg[LM_ROWS] = 1;
	k.arg[LM_H] = 2048;
	k.arg[LM_V] = 4096;
	k.arg[LM_DT] = fmt("bf16");
	grows(k, NULL, LM_ROWS, 1, 2);
	grows(k, NULL, LM_V, 4096, 151936);
	grows(k, NULL, LM_H, 192, 2048);

	k = (struct krnl_call){ .id = KRNL_SAMPLER };
	k.arg[SMP_ROWS] = 1;
	k.arg[SMP_V] = 4096;
	grows(k, &ctx, SMP_ROWS, 1, 2);
	grows(k, &ctx, SMP_V, 4096, 151936);
	{
		struct krnl_cycle_ctx topk = ctx;

		topk.sample_k = 40;
		assert_true(cycles(&k, &topk) > cycles(&k, &ctx));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_beats_gemv),
		cmocka_unit_test(test_beats_norms),
		cmocka_unit_test(test_beats_embed_conv),
		cmocka_unit_test(test_beats_deltanet_attn),
		cmocka_unit_test(test_beats_router_experts),
		cmocka_unit_test(test_beats_head_sampler),
		cmocka_unit_test(test_perturbed),
		cmocka_unit_test(test_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
