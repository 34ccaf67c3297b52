/* krnl_cycles.c — the cycle model of every kernel (krnl_cycles.h).
 *
 * Each function below walks the loops of its kernel's source in order, with
 * the source's loop labels in the comments.  The rules (krnl_cycles.h):
 *   pipelined loop           trip x II + depth  (pipe(), pipe_ii())
 *   loop around loops        its body once per iteration, + KRNL_CY_LOOP
 *   krnl_rd_f32 / _wr_f32    one beat per cycle over the beats the span
 *                            covers, + the m_axi latency (rd(), wr())
 * Beats are counted per port exactly as the kernel moves them.  Not a kernel:
 * never synthesized (hls_kernels/hls.mk leaves it out of v++ and hls-lint;
 * the glob of tests/sh/hls_lint.sh sees only C-sim code: #ifndef __SYNTHESIS__).
 */
#ifndef __SYNTHESIS__
#include <math.h>
#include <string.h>
#include "krnl_cycles.h"
#include "krnl_state.h"
#include "krnl_mem.h"
#include "krnl_sampler.h"

/* ---- composite depths, from the latencies of krnl_cycles.h ---------------- */
#define CY_SIGMOID  (KRNL_CY_FEXP + KRNL_CY_FADD + KRNL_CY_FDIV)	/* 1 / (1 + e^-x) */
#define CY_SILU     (CY_SIGMOID + KRNL_CY_FMUL)
#define CY_SOFTPLUS (KRNL_CY_FCMP + KRNL_CY_FEXP + KRNL_CY_FLOG)	/* log1pf(expf(x)) */
#define CY_TREE8    (3 * KRNL_CY_FADD)		/* 8 partial sums as a tree */
#define CY_TREE16   (4 * KRNL_CY_FADD)		/* 16 lanes as a tree */
#define CY_RED8     (KRNL_ACC_LANES * KRNL_CY_FADD)	/* for a: s += part[a] (carried) */
#define CY_INVRMS   (KRNL_CY_FDIV + KRNL_CY_FADD + KRNL_CY_FSQRT + KRNL_CY_FDIV)
#define CY_RD       (KRNL_CY_MAXI_RD + KRNL_CY_MEM)	/* depth of a read-burst loop */
#define CY_WR       (KRNL_CY_MEM + KRNL_CY_MAXI_WR)	/* depth of a write-burst loop */

/* On-chip sizes of the kernels, as their sources define them. */
#define RMG_CHUNK     4096	/* krnl_rmsnorm_gated.c */
#define CONV_CHUNK    256	/* krnl_conv1d_step.c */
#define ATT_MAX_GROUP 16	/* krnl_attn_decode.c */
#define SMP_CHUNK     1024	/* krnl_sampler.c */
#define DN_MAX_DIM    256	/* krnl_deltanet_step.c: DN_MAX_DK, DN_MAX_DV */

#define U(i) ((uint32_t)k->arg[i])

static uint64_t pipe(uint64_t trip, uint64_t depth)
{
	return trip ? trip + depth : 0;
}

static uint64_t pipe_ii(uint64_t trip, uint64_t ii, uint64_t depth)
{
	return trip ? trip * ii + depth : 0;
}

/* Beats covering 32-bit elements [off, off + n). */
static uint64_t span(uint64_t off, uint64_t n)
{
	if (!n)
		return 0;
	return (off + n + KRNL_F32_PER_BEAT - 1) / KRNL_F32_PER_BEAT - off / KRNL_F32_PER_BEAT;
}

/* krnl_rd_f32 / krnl_rd_i32 of n elements at element off of port p. */
static uint64_t rd(struct krnl_cycle_est *o, int p, uint64_t off, uint64_t n)
{
	uint64_t b = span(off, n);

	o->port_beats[p][0] += b;
	return pipe(b, CY_RD);
}

/* krnl_wr_f32 / krnl_wr_i32 likewise. */
static uint64_t wr(struct krnl_cycle_est *o, int p, uint64_t off, uint64_t n)
{
	uint64_t b = span(off, n);

	o->port_beats[p][1] += b;
	return pipe(b, CY_WR);
}

/* The handle row r writes its GDN state to. */
static uint32_t blk_out(const struct krnl_cycle_ctx *ctx, uint32_t r)
{
	return ctx->blk_out[r] ? ctx->blk_out[r] - 1 : ctx->blk[r];
}

/* Depth of krnl_unpack: bf16 / f32 are wiring, f16 a multiply by 2^112 and a
 * select (inf / NaN), the integers convert and scale. */
static uint64_t unpack_depth(uint32_t fmt)
{
	if (krnl_fmt_quant(fmt))
		return KRNL_CY_CVT + KRNL_CY_FMUL;
	return fmt == KRNL_FMT_F16 ? KRNL_CY_FMUL + 1 : 0;
}

/* Adds that fold a beat's epb products onto 16 lanes (krnl_dot_beats). */
static uint64_t fold_levels(uint32_t epb)
{
	uint64_t n = 0;

	while (epb > KRNL_F32_PER_BEAT) {
		epb >>= 1;
		n++;
	}
	return n;
}

/* `times` calls of krnl_wrow_dot over a row of cols elements for nr batch
 * rows: the scales, acc[r][8][16] cleared, krnl_dot_beats (the rows are
 * unrolled inside the beat loop: one weight beat feeds all of them in one
 * cycle), then per row the 8 partial sums and the 16 lanes as trees. */
static uint64_t wrow_dot(struct krnl_cycle_est *o, int p, uint32_t dt, uint32_t cols,
			 uint32_t nr, uint64_t times)
{
	uint32_t fmt = KRNL_DT_FMT(dt), epb = krnl_fmt_epb(fmt);
	uint64_t sb = krnl_scale_beats(dt, cols), nb = (cols + epb - 1) / epb;
	uint64_t cy = 0;

	if (krnl_fmt_quant(fmt)) {
		cy += pipe(sb, CY_RD);		/* krnl_wrow_scales: scales */
		cy += pipe(KRNL_MAX_EPB / KRNL_MIN_GROUP, KRNL_CY_MEM); /* padded tail = 0 */
	}
	cy += pipe(nr, KRNL_CY_MEM);		/* acc[r] = 0 */
	/* beats: read, unpack, epb products per row, fold to 16 lanes, add into
	 * acc[r][b % 8][lane] */
	cy += pipe(nb, CY_RD + unpack_depth(fmt) + KRNL_CY_FMUL +
		       fold_levels(epb) * KRNL_CY_FADD + KRNL_CY_FADD);
	cy += pipe(nr, CY_TREE8 + CY_TREE16 + KRNL_CY_MEM);	/* out[r] */
	o->port_beats[p][0] += times * (sb + nb);
	return times * cy;
}

/* krnl_wrow_load of a row of cols elements. */
static uint64_t wrow_load(struct krnl_cycle_est *o, int p, uint32_t dt, uint32_t cols)
{
	uint32_t fmt = KRNL_DT_FMT(dt), epb = krnl_fmt_epb(fmt);
	uint64_t sb = krnl_scale_beats(dt, cols), nb = (cols + epb - 1) / epb;
	uint64_t cy = 0;

	if (krnl_fmt_quant(fmt))
		cy += pipe(sb, CY_RD) + pipe(KRNL_MAX_EPB / KRNL_MIN_GROUP, KRNL_CY_MEM);
	cy += pipe(nb, CY_RD + unpack_depth(fmt) + KRNL_CY_MEM);
	o->port_beats[p][0] += sb + nb;
	return cy;
}

/* sum of squares over n lanes as KRNL_ACC_LANES partial sums, then 1/rms */
static uint64_t sumsq(uint64_t n)
{
	return KRNL_CY_LOOP + pipe(n, KRNL_CY_MEM + KRNL_CY_FMUL + KRNL_CY_FADD) + CY_RED8;
}

static void finish(struct krnl_cycle_est *o, uint64_t cy)
{
	o->cycles = cy;
	for (int p = 0; p < KRNL_MAX_ARGS; p++) {
		o->beats[0] += o->port_beats[p][0];
		o->beats[1] += o->port_beats[p][1];
	}
}

/* ---- krnl_embed_gather ----------------------------------------------------- */
static int cy_embed(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		    struct krnl_cycle_est *o)
{
	uint32_t rows = U(EMB_ROWS), dim = U(EMB_DIM), dt = U(EMB_DT);
	uint64_t cy = KRNL_CY_START;

	(void)ctx;
	if (rows > KRNL_MAX_BATCH || !krnl_dt_valid(dt))
		return -1;
	cy += rd(o, EMB_IDS, 0, rows);
	for (uint32_t r = 0; r < rows; r++)	/* row */
		cy += wrow_load(o, EMB_TABLE, dt, dim) + wr(o, EMB_OUT, (uint64_t)r * dim, dim) +
		      KRNL_CY_LOOP;
	finish(o, cy);
	return 0;
}

/* ---- krnl_rmsnorm ---------------------------------------------------------- */
static int cy_rmsnorm(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		      struct krnl_cycle_est *o)
{
	uint32_t rows = U(RMS_ROWS), dim = U(RMS_DIM);
	uint64_t cy = KRNL_CY_START;

	(void)ctx;
	cy += rd(o, RMS_W, 0, dim);
	cy += pipe(dim, KRNL_CY_MEM + KRNL_CY_FADD + KRNL_CY_MEM);	/* weight: += woff */
	for (uint32_t r = 0; r < rows; r++) {	/* row */
		cy += rd(o, RMS_X, (uint64_t)r * dim, dim);
		cy += sumsq(dim) + CY_INVRMS;	/* sumsq */
		cy += pipe(dim, KRNL_CY_MEM + 2 * KRNL_CY_FMUL + KRNL_CY_MEM);	/* scale */
		cy += wr(o, RMS_Y, (uint64_t)r * dim, dim) + KRNL_CY_LOOP;
	}
	finish(o, cy);
	return 0;
}

/* ---- krnl_rmsnorm_gated ---------------------------------------------------- */
static int cy_rmsnorm_gated(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
			    struct krnl_cycle_est *o)
{
	uint32_t rows = U(RMG_ROWS), heads = U(RMG_HEADS), dim = U(RMG_DIM);
	uint32_t zs = U(RMG_ZSTRIDE);
	uint32_t hpc = dim ? RMG_CHUNK / dim : 1;
	uint64_t width = (uint64_t)heads * dim, cy = KRNL_CY_START;

	(void)ctx;
	if (!hpc || dim > KRNL_MAX_HEAD_DIM)
		return -1;
	cy += rd(o, RMG_W, 0, dim);
	for (uint32_t r = 0; r < rows; r++) {		/* row */
		for (uint32_t h0 = 0; h0 < heads; h0 += hpc) {	/* chunk */
			uint32_t nh = heads - h0 < hpc ? heads - h0 : hpc;
			uint64_t xo = (uint64_t)r * width + (uint64_t)h0 * dim;

			cy += rd(o, RMG_X, xo, (uint64_t)nh * dim);
			cy += rd(o, RMG_Z, (uint64_t)r * zs + (uint64_t)h0 * dim, (uint64_t)nh * dim);
			/* head: sumsq, 1/rms, gate = x * inv * w * silu(z) */
			cy += nh * (sumsq(dim) + CY_INVRMS +
				    pipe(dim, KRNL_CY_MEM + CY_SILU + KRNL_CY_FMUL + KRNL_CY_MEM) +
				    KRNL_CY_LOOP);
			cy += wr(o, RMG_Y, xo, (uint64_t)nh * dim) + KRNL_CY_LOOP;
		}
		cy += KRNL_CY_LOOP;
	}
	finish(o, cy);
	return 0;
}

/* ---- krnl_gemv ------------------------------------------------------------- */
static int cy_gemv(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		   struct krnl_cycle_est *o)
{
	uint32_t rows = U(GEMV_ROWS), in = U(GEMV_IN), out = U(GEMV_OUT), dt = U(GEMV_DT);
	uint32_t xs = U(GEMV_XSTRIDE), ys = U(GEMV_YSTRIDE), acc = U(GEMV_ACC);
	uint64_t cy = KRNL_CY_START;

	(void)ctx;
	if (rows > KRNL_MAX_BATCH || !krnl_dt_valid(dt))
		return -1;
	for (uint32_t r = 0; r < rows; r++)	/* load_x, and the zero tail */
		cy += rd(o, GEMV_X, (uint64_t)r * xs, in) + pipe(KRNL_MAX_EPB, KRNL_CY_MEM) +
		      KRNL_CY_LOOP;
	for (uint64_t o0 = 0; o0 < out; o0 += KRNL_F32_PER_BEAT) {	/* out_beat */
		uint32_t nb = out - o0 < KRNL_F32_PER_BEAT ? (uint32_t)(out - o0) : KRNL_F32_PER_BEAT;

		/* out_row: a weight row, then its outputs into yb */
		cy += wrow_dot(o, GEMV_W, dt, in, rows, nb) +
		      nb * (pipe(rows, KRNL_CY_MEM) + KRNL_CY_LOOP);
		for (uint32_t r = 0; r < rows; r++) {	/* store_y */
			uint64_t at = (uint64_t)r * ys + o0;

			if (acc)
				cy += rd(o, GEMV_Y, at, nb) +
				      pipe(nb, KRNL_CY_MEM + KRNL_CY_FADD + KRNL_CY_MEM);
			cy += wr(o, GEMV_Y, at, nb) + KRNL_CY_LOOP;
		}
		cy += KRNL_CY_LOOP;
	}
	finish(o, cy);
	return 0;
}

/* ---- krnl_conv1d_step ------------------------------------------------------ */
static int cy_conv(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		   struct krnl_cycle_est *o)
{
	uint32_t rows = U(CONV_ROWS), ch = U(CONV_CH), kk = U(CONV_K), xs = U(CONV_XSTRIDE);
	uint32_t km = kk - 1;
	uint64_t per = (uint64_t)ch * km, cy = KRNL_CY_START;
	/* chan: taps as a chain of adds, the new input, silu, stored */
	uint64_t chan = KRNL_CY_MEM + KRNL_CY_FMUL + (uint64_t)kk * KRNL_CY_FADD + CY_SILU +
			KRNL_CY_MEM;

	if (rows > KRNL_MAX_BATCH || kk < 2 || kk > KRNL_MAX_CONV_K)
		return -1;
	cy += rd(o, CONV_BLOCKS, 0, 2ull * rows);
	for (uint32_t c0 = 0; c0 < ch; c0 += CONV_CHUNK) {	/* chunk */
		uint32_t n = ch - c0 < CONV_CHUNK ? ch - c0 : CONV_CHUNK;

		cy += rd(o, CONV_W, (uint64_t)c0 * kk, (uint64_t)n * kk);
		for (uint32_t r = 0; r < rows; r++) {	/* row */
			uint64_t so = (uint64_t)ctx->blk[r] * per + (uint64_t)c0 * km;
			uint64_t sw = (uint64_t)blk_out(ctx, r) * per + (uint64_t)c0 * km;
			uint64_t xo = (uint64_t)r * xs + c0;

			cy += rd(o, CONV_X, xo, n) + rd(o, CONV_STATE, so, (uint64_t)n * km);
			cy += pipe(n, chan);
			cy += wr(o, CONV_STATE, sw, (uint64_t)n * km) + wr(o, CONV_X, xo, n);
			cy += KRNL_CY_LOOP;
		}
		cy += KRNL_CY_LOOP;
	}
	finish(o, cy);
	return 0;
}

/* ---- krnl_deltanet_step ---------------------------------------------------- */

/* l2norm(): sumsq, scale / sqrt(ss + eps), scale */
static uint64_t l2norm(uint64_t n)
{
	return sumsq(n) + KRNL_CY_FADD + KRNL_CY_FSQRT + KRNL_CY_FDIV +
	       pipe(n, KRNL_CY_MEM + KRNL_CY_FMUL + KRNL_CY_MEM);
}

static int cy_deltanet(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		       struct krnl_cycle_est *o)
{
	uint32_t rows = U(DN_ROWS), nk = U(DN_NK), nv = U(DN_NV), dk = U(DN_DK), dv = U(DN_DV);
	uint32_t xs = U(DN_XSTRIDE);
	uint64_t width = 2ull * nk * dk + (uint64_t)nv * dv, tile = (uint64_t)dk * dv;
	uint64_t cy = KRNL_CY_START, head = 0;

	if (rows > KRNL_MAX_BATCH || !nk || nv % nk || dk > DN_MAX_DIM || dv > DN_MAX_DIM)
		return -1;
	cy += rd(o, DN_BLOCKS, 0, 2ull * rows) + rd(o, DN_ALOG, 0, nv) + rd(o, DN_DTB, 0, nv);
	cy += rd(o, DN_BA, 0, (uint64_t)rows * 2 * nv);
	/* one head, but for its state tile's beats (counted below) */
	head += pipe(dk, KRNL_CY_MEM + KRNL_CY_MEM);		/* q, k from the row */
	head += KRNL_CY_FSQRT + KRNL_CY_FDIV + l2norm(dk);	/* q / sqrt(dk) */
	head += l2norm(dk);					/* k */
	/* g = -exp(a_log) * softplus(b + dt_bias), decay = exp(g); beta beside it */
	head += KRNL_CY_FADD + CY_SOFTPLUS + KRNL_CY_FMUL + KRNL_CY_FEXP;
	head += pipe(dv, KRNL_CY_MEM);				/* u = o = 0 */
	/* decay: dk x (dv lanes: s *= decay; u += s k) */
	head += dk * (pipe(dv, KRNL_CY_MEM + 2 * KRNL_CY_FMUL + KRNL_CY_FADD + KRNL_CY_MEM) +
		      KRNL_CY_LOOP);
	head += pipe(dv, KRNL_CY_MEM + KRNL_CY_FADD + KRNL_CY_FMUL + KRNL_CY_MEM); /* u = b(v-u) */
	/* update: dk x (dv lanes: s += k u; o += s q) */
	head += dk * (pipe(dv, KRNL_CY_MEM + 2 * (KRNL_CY_FMUL + KRNL_CY_FADD) + KRNL_CY_MEM) +
		      KRNL_CY_LOOP);
	head += KRNL_CY_LOOP;
	for (uint32_t r = 0; r < rows; r++) {	/* row */
		uint64_t st = (uint64_t)ctx->blk[r] * nv * tile;
		uint64_t sto = (uint64_t)blk_out(ctx, r) * nv * tile;

		cy += rd(o, DN_QKV, (uint64_t)r * xs, width);
		for (uint32_t j = 0; j < nv; j++) {	/* head: its state tile in, out */
			uint64_t sh = st + (uint64_t)j * tile;

			cy += head + rd(o, DN_STATE, sh, tile) +
			      wr(o, DN_STATE, sto + (uint64_t)j * tile, tile);
		}
		cy += wr(o, DN_OUT, (uint64_t)r * nv * dv, (uint64_t)nv * dv) + KRNL_CY_LOOP;
	}
	finish(o, cy);
	return 0;
}

/* ---- krnl_attn_decode ------------------------------------------------------ */

/* dot(): n lanes as KRNL_ACC_LANES partial sums */
static uint64_t dot(uint64_t n)
{
	return sumsq(n);
}

/* norm_rope(): rmsnorm * (1 + w), then the rotation */
static uint64_t norm_rope(uint64_t hd)
{
	return dot(hd) + CY_INVRMS + pipe(hd, KRNL_CY_MEM + 2 * KRNL_CY_FMUL + KRNL_CY_MEM) +
	       pipe(hd, KRNL_CY_MEM + KRNL_CY_FMUL + KRNL_CY_FADD + KRNL_CY_MEM);
}

static int cy_attn(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		   struct krnl_cycle_est *o)
{
	uint32_t rows = U(AT_ROWS), nh = U(AT_NH), nkv = U(AT_NKV), hd = U(AT_HD);
	uint32_t rdim = U(AT_RD), tabw = U(AT_TABW), split = U(AT_SPLIT);
	uint32_t mode = split & 3u, b_lo = split >> 2 & 0x7fffu, b_hi = split >> 17;
	/* KV spans in 32-bit words: bf16 elements come two to a word */
	uint32_t kw = U(AT_KVDT) == KRNL_FMT_BF16 ? 2 : 1;
	uint32_t group, gw, pw, nbw = krnl_attn_blocks(tabw);
	uint64_t cy = KRNL_CY_START;

	if (rows > KRNL_MAX_BATCH || !nkv || nh % nkv || nh / nkv > ATT_MAX_GROUP ||
	    hd > KRNL_MAX_HEAD_DIM || (kw > 1 && hd % 2) || mode > KRNL_ATTN_MERGE)
		return -1;
	group = nh / nkv;
	gw = group * hd;
	pw = krnl_attn_part_w(nh, nkv, hd);
	cy += rd(o, AT_BLOCKS, 0, rows) + rd(o, AT_POS, 0, rows);
	if (mode != KRNL_ATTN_MERGE) {
		cy += rd(o, AT_QNW, 0, hd) + rd(o, AT_KNW, 0, hd);
		cy += pipe(hd, KRNL_CY_MEM + KRNL_CY_FADD + KRNL_CY_MEM);	/* 1 + w */
	}
	/* fold() of a segment of n positions, per head: n scores (a dot each)
	 * and their max, n exponentials then their sum, the block's acc rescaled
	 * once, then n weighted rows of v added lane by lane */
#define FOLD(n) (group * (KRNL_CY_FEXP + KRNL_CY_FMUL + \
			  (n) * (dot(hd) + KRNL_CY_FMUL + KRNL_CY_FCMP + KRNL_CY_LOOP) + \
			  pipe((n), KRNL_CY_MEM + KRNL_CY_FADD + KRNL_CY_FEXP + KRNL_CY_MEM) + \
			  sumsq(n) + \
			  pipe(hd, KRNL_CY_MEM + KRNL_CY_FMUL + KRNL_CY_MEM) + \
			  (n) * (pipe(hd, KRNL_CY_MEM + KRNL_CY_FMUL + KRNL_CY_FADD + KRNL_CY_MEM) + \
				 KRNL_CY_LOOP) + KRNL_CY_LOOP))
	/* merge() of a block partial into the total: two exponentials per head,
	 * the accumulators scaled and added lane by lane */
#define MERGE (group * (2 * KRNL_CY_FEXP + KRNL_CY_FCMP + KRNL_CY_FMUL + KRNL_CY_FADD + \
			pipe(hd, KRNL_CY_MEM + 2 * KRNL_CY_FMUL + KRNL_CY_FADD + KRNL_CY_MEM) + \
			KRNL_CY_LOOP))
	/* gate(): out = acc / l * sigmoid(gate) */
#define GATE (group * (KRNL_CY_FDIV + \
		       pipe(hd, KRNL_CY_MEM + CY_SIGMOID + KRNL_CY_FMUL + KRNL_CY_MEM) + KRNL_CY_LOOP))
	for (uint32_t r = 0; r < rows; r++) {	/* row */
		uint64_t p = ctx->pos[r];
		uint32_t pg = ctx->blk[r];
		uint64_t tab = (uint64_t)pg * tabw;
		uint64_t qrow = (uint64_t)r * 2 * nh * hd;
		uint32_t nb = krnl_attn_blocks((uint32_t)(p / KRNL_KV_PAGE + 1));
		uint32_t lo = mode == KRNL_ATTN_PART ? b_lo : 0;
		uint32_t hi = mode == KRNL_ATTN_PART && b_hi < nb ? b_hi : nb;
		int mine = nb - 1 >= lo && nb - 1 < hi;

		if (mode != KRNL_ATTN_MERGE) {
			cy += rd(o, AT_ROPE, (uint64_t)r * rdim, rdim);
			if (mine)
				cy += rd(o, AT_BT, tab + p / KRNL_KV_PAGE, 1);	/* page of p */
		}
		for (uint32_t g = 0; g < nkv; g++) {	/* kv_head */
			uint64_t po = ((uint64_t)r * nkv + g) * nbw * pw;

			cy += 2 * pipe(group, KRNL_CY_MEM) + pipe(gw, KRNL_CY_MEM);	/* total = 0 */
			if (mode != KRNL_ATTN_PART)
				cy += rd(o, AT_QG, qrow + (uint64_t)nh * hd + (uint64_t)g * gw, gw);
			if (mode == KRNL_ATTN_MERGE) {
				for (uint32_t bi = 0; bi < nb; bi++)
					cy += rd(o, AT_PART, po + (uint64_t)bi * pw, 2 * group + gw) +
					      MERGE + KRNL_CY_LOOP;
				cy += GATE + wr(o, AT_OUT, ((uint64_t)r * nh + (uint64_t)g * group) * hd,
						gw) + KRNL_CY_LOOP;
				continue;
			}
			if (mine) {
				uint64_t at = krnl_kv_at(pg, g, (uint32_t)p, nkv, hd);
				uint64_t kvo = ((uint64_t)r * nkv + g) * hd;

				cy += rd(o, AT_K, kvo, hd) + rd(o, AT_V, kvo, hd) + norm_rope(hd);
				cy += wr(o, AT_KC, at / kw, hd / kw) + wr(o, AT_VC, at / kw, hd / kw);
				if (kw > 1)	/* rounding the new entry as stored */
					cy += pipe(hd, KRNL_CY_MEM + 2 * KRNL_CY_FADD + KRNL_CY_MEM);
			}
			cy += rd(o, AT_QG, qrow + (uint64_t)g * gw, gw);
			cy += group * (norm_rope(hd) + KRNL_CY_LOOP);
			for (uint32_t bi = lo; bi < hi; bi++) {	/* block */
				uint64_t t1 = (uint64_t)(bi + 1) * KRNL_KV_SPLIT * KRNL_KV_PAGE;

				cy += 2 * pipe(group, KRNL_CY_MEM) + pipe(gw, KRNL_CY_MEM);
				/* page: a block-table word, a burst of keys, one of values */
				for (uint64_t t0 = (uint64_t)bi * KRNL_KV_SPLIT * KRNL_KV_PAGE;
				     t0 < p && t0 < t1; t0 += KRNL_KV_PAGE) {
					uint64_t n = p - t0 < KRNL_KV_PAGE ? p - t0 : KRNL_KV_PAGE;
					uint64_t c0 = krnl_kv_at(pg, g, (uint32_t)t0, nkv, hd);

					cy += rd(o, AT_BT, tab + t0 / KRNL_KV_PAGE, 1);
					cy += rd(o, AT_KC, c0 / kw, n * hd / kw) +
					      rd(o, AT_VC, c0 / kw, n * hd / kw);
					cy += FOLD(n) + KRNL_CY_LOOP;
				}
				if (bi == nb - 1)
					cy += FOLD(1);
				if (mode == KRNL_ATTN_PART)
					cy += wr(o, AT_PART, po + (uint64_t)bi * pw, 2 * group + gw);
				else
					cy += MERGE;
				cy += KRNL_CY_LOOP;
			}
			if (mode == KRNL_ATTN_WHOLE)
				cy += GATE + wr(o, AT_OUT, ((uint64_t)r * nh + (uint64_t)g * group) * hd,
						gw);
			cy += KRNL_CY_LOOP;
		}
		cy += KRNL_CY_LOOP;
	}
#undef FOLD
#undef MERGE
#undef GATE
	finish(o, cy);
	return 0;
}

/* ---- krnl_moe_router ------------------------------------------------------- */
static int cy_router(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		     struct krnl_cycle_est *o)
{
	uint32_t rows = U(RT_ROWS), ne = U(RT_NE), topk = U(RT_TOPK);
	uint64_t sel = ctx->experts_selected, cy = KRNL_CY_START;

	if (rows > KRNL_MAX_BATCH || ne > KRNL_MAX_EXPERTS || topk > KRNL_MAX_TOPK)
		return -1;
	cy += pipe(ne, KRNL_CY_MEM);		/* clear: a list row per cycle */
	for (uint32_t r = 0; r < rows; r++) {	/* row */
		cy += rd(o, RT_LOGITS, (uint64_t)r * ne, ne);
		cy += pipe_ii(ne, KRNL_CY_FCMP, KRNL_CY_MEM + KRNL_CY_FCMP);	/* max (carried) */
		cy += KRNL_CY_LOOP + pipe(ne, KRNL_CY_MEM + KRNL_CY_FADD + KRNL_CY_FEXP +
					      KRNL_CY_FADD + KRNL_CY_MEM) + CY_RED8;	/* exp */
		/* pick: top-k by repeated max over all experts */
		cy += topk * (pipe_ii(ne, KRNL_CY_FCMP, KRNL_CY_MEM + KRNL_CY_FCMP) +
			      KRNL_CY_FDIV + KRNL_CY_FADD + KRNL_CY_MEM + KRNL_CY_LOOP);
		/* group: count and list of each pick (a memory carried read-modify-write) */
		cy += pipe_ii(topk, KRNL_CY_MEM + 1, KRNL_CY_FDIV + KRNL_CY_MEM);
		cy += KRNL_CY_LOOP;
	}
	cy += wr(o, RT_COUNT, 0, ne);
	/* store: every expert looked at, a list row and its weights per selected one */
	cy += ne * (KRNL_CY_MEM + KRNL_CY_LOOP);
	for (uint64_t e = 0; e < sel; e++)
		cy += wr(o, RT_LIST, e * KRNL_MAX_BATCH, KRNL_MAX_BATCH) +
		      wr(o, RT_LISTW, e * KRNL_MAX_BATCH, KRNL_MAX_BATCH);
	finish(o, cy);
	return 0;
}

/* ---- krnl_expert_ffn ------------------------------------------------------- */

/* swiglu() of one expert for n rows; its weight beats go to port p. */
static uint64_t swiglu(struct krnl_cycle_est *o, int p, uint32_t h, uint32_t ni, uint32_t dt,
		       uint32_t n)
{
	uint64_t cy = 0;

	/* gather: the expert's rows of x, element by element */
	cy += n * (pipe(h + KRNL_MAX_EPB, KRNL_CY_MEM + KRNL_CY_MEM) + KRNL_CY_LOOP);
	/* inter: gate and up rows, act = silu(g) u */
	cy += wrow_dot(o, p, dt, h, n, 2ull * ni);
	cy += ni * (pipe(n, CY_SILU + KRNL_CY_FMUL + KRNL_CY_MEM) + KRNL_CY_LOOP);
	cy += n * (pipe(KRNL_MAX_EPB, KRNL_CY_MEM) + KRNL_CY_LOOP);	/* act tail = 0 */
	/* down: a row per output, y += scale d */
	cy += wrow_dot(o, p, dt, ni, n, h);
	cy += (uint64_t)h * (pipe(n, KRNL_CY_MEM + KRNL_CY_FMUL + KRNL_CY_FADD + KRNL_CY_MEM) +
			     KRNL_CY_LOOP);
	return cy;
}

static int cy_experts(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		      struct krnl_cycle_est *o)
{
	uint32_t rows = U(EF_ROWS), h = U(EF_H), ni = U(EF_I), ne = U(EF_NE), si = U(EF_SI);
	uint32_t dt = U(EF_DT), sdt = U(EF_SDT);
	uint64_t sel = ctx->experts_selected, er = ctx->expert_rows, cy = KRNL_CY_START;

	if (rows > KRNL_MAX_BATCH || ne > KRNL_MAX_EXPERTS || !krnl_dt_valid(dt) ||
	    (si && !krnl_dt_valid(sdt)) || sel > ne || er > sel * rows || er < sel)
		return -1;
	for (uint32_t r = 0; r < rows; r++)	/* load: x with its zero tail, y */
		cy += rd(o, EF_X, (uint64_t)r * h, h) + pipe(KRNL_MAX_EPB, KRNL_CY_MEM) +
		      rd(o, EF_Y, (uint64_t)r * h, h) + KRNL_CY_LOOP;
	cy += rd(o, EF_COUNT, 0, ne);
	/* expert: every expert looked at; a selected one reads its list row and
	 * list weights (one beat each) and runs swiglu() for its rows.  Only how many
	 * experts and rows in all matter (krnl_cycle_ctx), not which. */
	cy += ne * (KRNL_CY_MEM + KRNL_CY_LOOP);
	for (uint64_t e = 0; e < sel; e++) {
		cy += rd(o, EF_LIST, e * KRNL_MAX_BATCH, 1) + rd(o, EF_LISTW, e * KRNL_MAX_BATCH, 1);
		cy += swiglu(o, EF_W, h, ni, dt, 1);
	}
	if (er > sel) {	/* swiglu(n) is linear in n >= 1: each further row adds the same */
		struct krnl_cycle_est scratch;

		memset(&scratch, 0, sizeof(scratch));
		cy += (er - sel) * (swiglu(&scratch, EF_W, h, ni, dt, 2) -
				    swiglu(&scratch, EF_W, h, ni, dt, 1));
	}
	if (si) {
		cy += rd(o, EF_SGATE, 0, h);
		/* shared_gate: a dot product per row, sigmoid */
		cy += rows * (sumsq(h) + CY_SIGMOID + KRNL_CY_LOOP);
		cy += swiglu(o, EF_SW, h, si, sdt, rows);
	}
	for (uint32_t r = 0; r < rows; r++)	/* store */
		cy += wr(o, EF_Y, (uint64_t)r * h, h) + KRNL_CY_LOOP;
	finish(o, cy);
	return 0;
}

/* ---- krnl_lm_head_argmax --------------------------------------------------- */
static int cy_lm_head(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		      struct krnl_cycle_est *o)
{
	uint32_t rows = U(LM_ROWS), h = U(LM_H), v = U(LM_V), dt = U(LM_DT), ls = U(LM_LS);
	uint64_t cy = KRNL_CY_START;

	(void)ctx;
	if (rows > KRNL_MAX_BATCH || !krnl_dt_valid(dt))
		return -1;
	cy += rd(o, LM_NW, 0, h) + rd(o, LM_DST, 0, rows);
	for (uint32_t r = 0; r < rows; r++)	/* norm: x, rmsnorm * (1 + w), zero tail */
		cy += rd(o, LM_X, (uint64_t)r * h, h) + sumsq(h) + CY_INVRMS +
		      pipe(h, KRNL_CY_MEM + KRNL_CY_FADD + 2 * KRNL_CY_FMUL + KRNL_CY_MEM) +
		      pipe(KRNL_MAX_EPB, KRNL_CY_MEM) + KRNL_CY_LOOP;
	for (uint64_t o0 = 0; o0 < v; o0 += KRNL_F32_PER_BEAT) {	/* vocab_beat */
		uint32_t nb = v - o0 < KRNL_F32_PER_BEAT ? (uint32_t)(v - o0) : KRNL_F32_PER_BEAT;

		/* vocab_row: a weight row, the logits and the running argmax */
		cy += wrow_dot(o, LM_W, dt, h, rows, nb) +
		      nb * (pipe(rows, KRNL_CY_FCMP + KRNL_CY_MEM) + KRNL_CY_LOOP);
		/* store_logits: row r's logits at row dst[r] = r (the firmware's
		 * own rows; the score ring's rows give the same beats when v is a
		 * whole number of beats) */
		for (uint32_t r = 0; r < rows; r++)
			cy += wr(o, LM_LOGITS, (uint64_t)r * ls + o0, nb) + KRNL_CY_LOOP;
		cy += KRNL_CY_LOOP;
	}
	cy += wr(o, LM_ARGMAX, 0, rows);
	finish(o, cy);
	return 0;
}

/* ---- krnl_sampler ---------------------------------------------------------- */
static int cy_sampler(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
		      struct krnl_cycle_est *o)
{
	uint32_t rows = U(SMP_ROWS), v = U(SMP_V);
	uint64_t kk = ctx->sample_k > 1 ? ctx->sample_k : 1, ins = ctx->sample_inserts;
	uint64_t cy = KRNL_CY_START, row = 0;

	if (rows > KRNL_MAX_BATCH || !v)
		return -1;
	if (kk > KRNL_SAMPLE_CAND)
		kk = KRNL_SAMPLE_CAND;
	if (kk > v)
		kk = v;
	if (!ins)	/* a random order: element i enters the top k with odds k / i */
		ins = (uint64_t)((double)kk * (1.0 + log((double)v / (double)kk)) + 0.5);
	cy += rd(o, SMP_PARAMS, 0, (uint64_t)rows * KRNL_SAMPLE_WORDS);
	/* one row but for its logits: 1 / T, then per element a compare with the
	 * max and with the smallest kept candidate (not pipelined: the insertion
	 * inside has a data-dependent trip count), per insertion a shift of about
	 * k / 2 candidates */
	row += KRNL_CY_FDIV;
	row += (uint64_t)v * (KRNL_CY_MEM + 2 * KRNL_CY_FCMP + KRNL_CY_LOOP);	/* scan */
	row += ins * ((kk / 2) * (KRNL_CY_MEM + KRNL_CY_FCMP + KRNL_CY_LOOP) + KRNL_CY_MEM);
	row += KRNL_CY_FLOG;					/* log z */
	if (kk > 1) {	/* mass and draw: m = k candidates (top_p off), a carried sum */
		row += 2 * pipe_ii(kk, KRNL_CY_FADD, KRNL_CY_FEXP + KRNL_CY_FDIV + KRNL_CY_FADD);
		row += 4 * KRNL_CY_MUL64 + KRNL_CY_CVT + KRNL_CY_FMUL;	/* uniform01 */
	}
	row += KRNL_CY_LOOP;
	for (uint32_t r = 0; r < rows; r++) {	/* row: logits row src_row = r */
		cy += row;
		for (uint64_t i0 = 0; i0 < v; i0 += SMP_CHUNK) {	/* chunk */
			uint64_t nc = v - i0 < SMP_CHUNK ? v - i0 : SMP_CHUNK;

			cy += rd(o, SMP_LOGITS, (uint64_t)r * v + i0, nc);
			/* norm: sum exp((x - max) / T) as partial sums; rescale z */
			cy += KRNL_CY_LOOP + pipe(nc, KRNL_CY_MEM + KRNL_CY_FADD + KRNL_CY_FMUL +
						      KRNL_CY_FEXP + KRNL_CY_FADD) + CY_RED8;
			cy += KRNL_CY_FADD + KRNL_CY_FMUL + KRNL_CY_FEXP + KRNL_CY_FMUL + KRNL_CY_FADD;
			cy += KRNL_CY_LOOP;
		}
	}
	cy += wr(o, SMP_TOKEN, 0, rows) + wr(o, SMP_LOGPROB, 0, rows);
	finish(o, cy);
	return 0;
}

/* ---- the table ------------------------------------------------------------- */

static const char *const p_emb[] = { "ids", "table", "out" };
static const char *const p_rms[] = { "x", "w", "y" };
static const char *const p_rmg[] = { "x", "z", "w", "y" };
static const char *const p_gemv[] = { "x", "w", "y" };
static const char *const p_conv[] = { "x", "w", "state", "blocks" };
static const char *const p_dn[] = { "qkv", "ba", "a_log", "dt_bias", "state", "blocks", "out" };
static const char *const p_at[] = { "qg", "k", "v", "qnw", "knw", "kc", "vc", "blocks", "pos",
				    "rope", "bt", "out", "part" };
static const char *const p_rt[] = { "logits", "count", "list", "listw" };
static const char *const p_ef[] = { "x", "w", "count", "list", "listw", "sw", "sgate", "y" };
static const char *const p_lm[] = { "x", "nw", "w", "logits", "dst", "argmax" };
static const char *const p_smp[] = { "logits", "params", "token", "logprob" };

#define NP(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))
#define M(ID, NAME, FN, NARGS, PORTS, F) \
	[ID] = { .id = ID, .name = NAME, .est = FN, .nargs = NARGS, .nports = NP(PORTS), \
		 .port = PORTS, .clock_hz = KRNL_CYCLE_HZ, .beat_bytes = KRNL_CYCLE_BEAT_BYTES, \
		 .formula = F }

const struct krnl_cycle_model krnl_cycle_models[KRNL_COUNT] = {
	M(KRNL_EMBED_GATHER, "krnl_embed_gather", cy_embed, EMB_NARGS, p_emb,
	  "rows x (row_beats(dt,dim) + dim/16 + 2 bursts)"),
	M(KRNL_RMSNORM, "krnl_rmsnorm", cy_rmsnorm, RMS_NARGS, p_rms,
	  "dim + rows x (2 dim + 2 dim/16 + depths): one element per cycle"),
	M(KRNL_RMSNORM_GATED, "krnl_rmsnorm_gated", cy_rmsnorm_gated, RMG_NARGS, p_rmg,
	  "rows x heads x (2 dim + depths) + 3 bursts of heads*dim/16 per chunk"),
	M(KRNL_GEMV, "krnl_gemv", cy_gemv, GEMV_NARGS, p_gemv,
	  "out x (row_beats(dt,in) + dot depth [+ scale burst]) + rows x out/16 y bursts"),
	M(KRNL_CONV1D_STEP, "krnl_conv1d_step", cy_conv, CONV_NARGS, p_conv,
	  "ch/256 x rows x (256 + 4 bursts + depth): one channel per cycle"),
	M(KRNL_DELTANET_STEP, "krnl_deltanet_step", cy_deltanet, DN_NARGS, p_dn,
	  "rows x nv x (2 dk (dv + depth) + 2 dk*dv/16 state beats + norms)"),
	M(KRNL_ATTN_DECODE, "krnl_attn_decode", cy_attn, AT_NARGS, p_at,
	  "rows x nkv x (pos+1) x (2 hd/16 + group x 2 (hd + depth)) + a table word per page"),
	M(KRNL_MOE_ROUTER, "krnl_moe_router", cy_router, RT_NARGS, p_rt,
	  "rows x (topk + 2) x ne + ne + 2 x selected beats"),
	M(KRNL_EXPERT_FFN, "krnl_expert_ffn", cy_experts, EF_NARGS, p_ef,
	  "selected x (2 ni (row_beats(dt,h) + depth) + h (row_beats(dt,ni) + depth)) + shared"),
	M(KRNL_LM_HEAD_ARGMAX, "krnl_lm_head_argmax", cy_lm_head, LM_NARGS, p_lm,
	  "v x (row_beats(dt,h) + dot depth) + rows x v/16 logits beats"),
	M(KRNL_SAMPLER, "krnl_sampler", cy_sampler, SMP_NARGS, p_smp,
	  "rows x (v x (scan ~4 + norm 1) + inserts x k/2)"),
};

int krnl_cycles_estimate(const struct krnl_call *k, const struct krnl_cycle_ctx *ctx,
			 struct krnl_cycle_est *out)
{
	static const struct krnl_cycle_ctx zero;

	memset(out, 0, sizeof(*out));
	if (!k || k->id >= KRNL_COUNT || !krnl_cycle_models[k->id].est)
		return -1;
	return krnl_cycle_models[k->id].est(k, ctx ? ctx : &zero, out);
}

double krnl_cycles_seconds(uint64_t cycles)
{
	return (double)cycles / (double)KRNL_CYCLE_HZ;
}

double krnl_cycles_port_bw(void)
{
	return (double)KRNL_CYCLE_HZ * KRNL_CYCLE_BEAT_BYTES;
}
#endif /* !__SYNTHESIS__ */
