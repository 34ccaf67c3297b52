/* test_wfmt.c — the weight kernels in every card format, and the traffic meter.
 *
 * For each format (f32, bf16, f16, int8 and int4 with groups 32/64/128) a
 * random matrix is encoded row by row by the host's encoder (host/model/quant.c),
 * decoded again by the host's scalar decoder, and the kernels (C-sim) must
 * match a double-precision product with the decoded weights: the kernel's
 * dequantization in registers is checked against a plain scalar reference,
 * and the encoder/decoder pair against the original values.  Shapes include
 * widths that are not multiples of a beat or a group.
 *
 * The meter test runs gemv under a krnl_meter and checks the beats counted
 * per port are exactly the bursts the kernel should move, then makes the
 * kernel's port read one more word and sees the counter move by one beat.
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

#include "krnl_mem.h"
#include "krnl_gemv.h"
#include "krnl_lm_head_argmax.h"
#include "krnl_embed_gather.h"
#include "krnl_expert_ffn.h"
#include "model/quant.h"

static struct rng rs = { 0x243f6a8885a308d3ull };

/* uniform in (-a, a) */
static float frand(double a)
{
	return (float)((2 * rng_unit(&rs) - 1) * a);
}

/* 64-byte aligned, whole beats, poisoned with NaN so a stray read shows. */
static void *beats(uint64_t bytes)
{
	uint64_t n = (bytes + 63) / 64 * 64 + 64;
	uint32_t *p = aligned_alloc(64, n);

	assert_non_null(p);
	for (uint64_t i = 0; i < n / 4; i++)
		p[i] = 0x7fc00001u;
	return p;
}

static const char *const fmts[] = {
	"f32", "bf16", "f16", "int8:32", "int8:64", "int8:128", "int4:32", "int4:64", "int4:128",
};
#define NFMT (sizeof(fmts) / sizeof(fmts[0]))

/* A [rows][cols] matrix: card bytes and the decoded values. */
struct mat {
	uint32_t dt, rows, cols;
	uint8_t *card;
	float *dec;
};

static void mat_make(struct mat *m, uint32_t dt, uint32_t rows, uint32_t cols, double amp)
{
	uint64_t rb = nc_quant_row_bytes(dt, cols);
	float *src = malloc(sizeof(float) * cols);

	m->dt = dt;
	m->rows = rows;
	m->cols = cols;
	m->card = beats(rows * rb);
	m->dec = malloc(sizeof(float) * rows * cols);
	for (uint32_t r = 0; r < rows; r++) {
		for (uint32_t c = 0; c < cols; c++)
			src[c] = frand(amp);
		nc_quant_encode_row(dt, src, cols, m->card + r * rb);
		nc_quant_decode_row(dt, m->card + r * rb, cols, m->dec + (uint64_t)r * cols);
		/* the decoder gives back what was encoded, to the format's precision */
		for (uint32_t c = 0; c < cols; c++)
			assert_true(fabsf(m->dec[(uint64_t)r * cols + c] - src[c]) <= amp * 0.2);
	}
	free(src);
}

static void mat_free(struct mat *m)
{
	free(m->card);
	free(m->dec);
}

static double rel_l2(const float *got, const double *want, size_t n)
{
	double e = 0, w = 0;

	for (size_t i = 0; i < n; i++) {
		e += (got[i] - want[i]) * (got[i] - want[i]);
		w += want[i] * want[i];
	}
	return w > 0 ? sqrt(e / w) : sqrt(e);
}

/* ---- gemv ----------------------------------------------------------------- */

static double run_gemv(uint32_t dt, uint32_t rows, uint32_t in, uint32_t out, int acc)
{
	struct mat w;
	uint32_t xs = in + 3, ys = out + 5;	/* strides off the beat on purpose */
	float *x = beats((uint64_t)rows * xs * 4), *y = beats((uint64_t)rows * ys * 4);
	double *ref = calloc((size_t)rows * out, sizeof(double));
	float *got = malloc(sizeof(float) * rows * out);
	double err;

	mat_make(&w, dt, out, in, 0.5);
	for (uint32_t r = 0; r < rows; r++) {
		for (uint32_t i = 0; i < in; i++)
			x[r * xs + i] = frand(1.0);
		for (uint32_t o = 0; o < out; o++) {
			double s = acc ? (y[r * ys + o] = frand(1.0)) : 0;
			for (uint32_t i = 0; i < in; i++)
				s += (double)w.dec[(uint64_t)o * in + i] * x[r * xs + i];
			ref[r * out + o] = s;
		}
	}
	krnl_gemv((void *)x, (void *)w.card, (void *)y, rows, in, out, xs, ys, dt, acc);
	for (uint32_t r = 0; r < rows; r++)
		for (uint32_t o = 0; o < out; o++)
			got[r * out + o] = y[r * ys + o];
	/* the padding between rows of y is never written */
	for (uint32_t r = 0; r + 1 < rows; r++)
		assert_true(isnan(y[r * ys + out]));
	err = rel_l2(got, ref, (size_t)rows * out);
	mat_free(&w);
	free(x);
	free(y);
	free(ref);
	free(got);
	return err;
}

static void test_gemv_formats(void **state)
{
	static const uint32_t shape[][3] = {	/* rows, in, out */
		{ 1, 64, 17 }, { 3, 100, 40 }, { 16, 256, 33 }, { 2, 1000, 16 }, { 5, 128, 1 },
	};

	(void)state;
	for (size_t f = 0; f < NFMT; f++) {
		uint32_t dt;
		double worst = 0;

		assert_int_equal(nc_fmt_parse(fmts[f], &dt), 0);
		for (size_t s = 0; s < sizeof(shape) / sizeof(shape[0]); s++)
			for (int acc = 0; acc < 2; acc++) {
				double e = run_gemv(dt, shape[s][0], shape[s][1], shape[s][2], acc);
				worst = e > worst ? e : worst;
			}
		fprintf(stderr, "gemv %-8s worst rel-L2 %.2e\n", fmts[f], worst);
		assert_true(worst < 2e-6);
	}
}

/* A wrong scale must be seen: the comparison can fail. */
static void test_gemv_perturbed(void **state)
{
	uint32_t dt, in = 128, out = 4;
	struct mat w;
	float *x = beats(in * 4), *y = beats(out * 4);
	double ref[4] = { 0 };

	(void)state;
	nc_fmt_parse("int4:64", &dt);
	mat_make(&w, dt, out, in, 0.5);
	for (uint32_t i = 0; i < in; i++)
		x[i] = frand(1.0);
	for (uint32_t o = 0; o < out; o++)
		for (uint32_t i = 0; i < in; i++)
			ref[o] += (double)w.dec[o * in + i] * x[i];
	((float *)w.card)[1] *= 1.5f;	/* row 0, second group's scale */
	krnl_gemv((void *)x, (void *)w.card, (void *)y, 1, in, out, in, out, dt, 0);
	assert_true(rel_l2(y, ref, out) > 1e-3);
	mat_free(&w);
	free(x);
	free(y);
}

/* ---- lm_head, embedding ---------------------------------------------------- */

static void test_lm_head_formats(void **state)
{
	uint32_t rows = 3, h = 96, v = 50;

	(void)state;
	for (size_t f = 0; f < NFMT; f++) {
		uint32_t dt;
		struct mat w;
		float *x = beats(rows * h * 4), *nw = beats(h * 4);
		float *lg = beats(4ull * v * 4);
		int32_t *dst = beats(rows * 4), *am = beats(rows * 4);
		double *ref = calloc((size_t)rows * v, sizeof(double));
		float got[3 * 50];

		nc_fmt_parse(fmts[f], &dt);
		mat_make(&w, dt, v, h, 0.3);
		for (uint32_t i = 0; i < h; i++)
			nw[i] = frand(0.2);
		for (uint32_t r = 0; r < rows; r++) {
			double ss = 0;
			float xn[96];

			dst[r] = (int32_t)(rows - r);	/* rows 3, 2, 1 of the logits buffer */
			for (uint32_t i = 0; i < h; i++) {
				x[r * h + i] = frand(2.0);
				ss += (double)x[r * h + i] * x[r * h + i];
			}
			double inv = 1.0 / sqrt(ss / h + 1e-6);
			for (uint32_t i = 0; i < h; i++)
				xn[i] = (float)(x[r * h + i] * inv * (1.0 + nw[i]));
			for (uint32_t o = 0; o < v; o++)
				for (uint32_t i = 0; i < h; i++)
					ref[r * v + o] += (double)w.dec[o * h + i] * xn[i];
		}
		krnl_lm_head_argmax((void *)x, (void *)nw, (void *)w.card, (void *)lg, (void *)dst,
				    (void *)am, rows, h, v, 1e-6f, dt, v);
		for (uint32_t r = 0; r < rows; r++) {
			int32_t best = 0;
			for (uint32_t o = 0; o < v; o++) {
				got[r * v + o] = lg[(uint64_t)dst[r] * v + o];
				if (ref[r * v + o] > ref[r * v + best])
					best = (int32_t)o;
			}
			assert_int_equal(am[r], best);
		}
		assert_true(isnan(lg[0]));	/* row 0 of the logits buffer untouched */
		assert_true(rel_l2(got, ref, (size_t)rows * v) < 2e-6);
		mat_free(&w);
		free(x);
		free(nw);
		free(lg);
		free(dst);
		free(am);
		free(ref);
	}
}

static void test_embed_formats(void **state)
{
	uint32_t rows = 4, dim = 200, vocab = 9;

	(void)state;
	for (size_t f = 0; f < NFMT; f++) {
		uint32_t dt;
		struct mat t;
		int32_t *ids = beats(rows * 4);
		float *out = beats(rows * dim * 4);

		nc_fmt_parse(fmts[f], &dt);
		mat_make(&t, dt, vocab, dim, 1.0);
		for (uint32_t r = 0; r < rows; r++)
			ids[r] = (int32_t)((r * 5 + 3) % vocab);
		krnl_embed_gather((void *)ids, (void *)t.card, (void *)out, rows, dim, dt);
		for (uint32_t r = 0; r < rows; r++)
			assert_memory_equal(out + r * dim, t.dec + (uint64_t)ids[r] * dim, dim * 4);
		mat_free(&t);
		free(ids);
		free(out);
	}
}

/* ---- experts --------------------------------------------------------------- */

/* An expert block [gate | up | down] from three matrices. */
static uint8_t *expert_block(uint32_t dt, uint32_t h, uint32_t ni, struct mat m[3])
{
	uint8_t *blk = beats(krnl_expert_bytes(dt, h, ni));

	mat_make(&m[0], dt, ni, h, 0.3);
	mat_make(&m[1], dt, ni, h, 0.3);
	mat_make(&m[2], dt, h, ni, 0.3);
	memcpy(blk, m[0].card, krnl_matrix_bytes(dt, ni, h));
	memcpy(blk + krnl_matrix_bytes(dt, ni, h), m[1].card, krnl_matrix_bytes(dt, ni, h));
	memcpy(blk + 2 * krnl_matrix_bytes(dt, ni, h), m[2].card, krnl_matrix_bytes(dt, h, ni));
	return blk;
}

static void ref_swiglu(double *y, const float *x, const struct mat m[3], uint32_t h,
		       uint32_t ni, double scale)
{
	double *a = calloc(ni, sizeof(double));

	for (uint32_t i = 0; i < ni; i++) {
		double g = 0, u = 0;
		for (uint32_t c = 0; c < h; c++) {
			g += (double)m[0].dec[i * h + c] * x[c];
			u += (double)m[1].dec[i * h + c] * x[c];
		}
		/* the kernel rounds the activation to f32 before the down projection */
		a[i] = (float)(g / (1 + exp(-g)) * u);
	}
	for (uint32_t o = 0; o < h; o++) {
		double s = 0;
		for (uint32_t i = 0; i < ni; i++)
			s += (double)m[2].dec[o * ni + i] * a[i];
		y[o] += scale * s;
	}
	free(a);
}

static void test_expert_formats(void **state)
{
	enum { NE = 4, H = 72, NI = 40, SI = 56, ROWS = 3 };

	(void)state;
	for (size_t f = 0; f < NFMT; f++) {
		uint32_t dt, sdt;
		struct mat m[NE][3], s[3];
		uint64_t eb;
		uint8_t *w, *blk, *sw;
		float *x = beats(ROWS * H * 4), *y = beats(ROWS * H * 4), *sg = beats(H * 4);
		uint32_t *cnt = beats(NE * 4);
		int32_t *list = beats(NE * KRNL_MAX_BATCH * 4);
		float *lw = beats(NE * KRNL_MAX_BATCH * 4);
		double ref[ROWS * H];

		nc_fmt_parse(fmts[f], &dt);
		nc_fmt_parse(fmts[(f + 4) % NFMT], &sdt);	/* shared in another format */
		eb = krnl_expert_bytes(dt, H, NI);
		w = beats(NE * eb);
		for (int e = 0; e < NE; e++) {
			blk = expert_block(dt, H, NI, m[e]);
			memcpy(w + e * eb, blk, eb);
			free(blk);
		}
		sw = expert_block(sdt, H, SI, s);
		for (int i = 0; i < ROWS * H; i++) {
			x[i] = frand(1.0);
			y[i] = frand(1.0);
			ref[i] = y[i];
		}
		for (int i = 0; i < H; i++)
			sg[i] = frand(0.3);
		/* expert 0: rows 0 and 2; expert 2: row 1; expert 3: rows 2, 0, 1 */
		static const int sel[NE][4] = { { 0, 2, -1 }, { -1 }, { 1, -1 }, { 2, 0, 1, -1 } };
		for (int e = 0; e < NE; e++) {
			cnt[e] = 0;
			for (int j = 0; sel[e][j] >= 0; j++) {
				list[e * KRNL_MAX_BATCH + j] = sel[e][j];
				lw[e * KRNL_MAX_BATCH + j] = (float)rng_unit(&rs);
				cnt[e]++;
			}
		}
		for (int e = 0; e < NE; e++)
			for (uint32_t j = 0; j < cnt[e]; j++) {
				int r = list[e * KRNL_MAX_BATCH + j];
				ref_swiglu(ref + r * H, x + r * H, m[e], H, NI, lw[e * KRNL_MAX_BATCH + j]);
			}
		for (int r = 0; r < ROWS; r++) {
			double g = 0;
			for (int c = 0; c < H; c++)
				g += (double)sg[c] * x[r * H + c];
			ref_swiglu(ref + r * H, x + r * H, s, H, SI, 1 / (1 + exp(-g)));
		}
		krnl_expert_ffn((void *)x, (void *)w, (void *)cnt, (void *)list, (void *)lw, (void *)sw,
				(void *)sg, (void *)y, ROWS, H, NI, NE, SI, dt, sdt);
		double e2 = rel_l2(y, ref, ROWS * H);
		fprintf(stderr, "experts %-8s shared %-8s rel-L2 %.2e\n", fmts[f], fmts[(f + 4) % NFMT], e2);
		assert_true(e2 < 2e-6);
		for (int e = 0; e < NE; e++)
			for (int k = 0; k < 3; k++)
				mat_free(&m[e][k]);
		for (int k = 0; k < 3; k++)
			mat_free(&s[k]);
		free(w);
		free(sw);
		free(x);
		free(y);
		free(sg);
		free(cnt);
		free(list);
		free(lw);
	}
}

/* ---- the meter -------------------------------------------------------------- */

static void port_span(struct krnl_meter *m, int i, const void *p, uint64_t bytes)
{
	m->port[i].lo = (uintptr_t)p;
	m->port[i].hi = (uintptr_t)p + (bytes + 63) / 64 * 64;
	m->port[i].port = (uint16_t)i;
	if ((uint32_t)i >= m->n_ports)
		m->n_ports = (uint32_t)i + 1;
}

static void test_meter_counts_gemv(void **state)
{
	uint32_t rows = 3, in = 256, out = 40, dt;
	struct mat w;
	float *x = beats(rows * in * 4), *y = beats(rows * out * 4);
	struct krnl_meter *m = calloc(1, sizeof(*m));

	(void)state;
	nc_fmt_parse("int4:64", &dt);
	mat_make(&w, dt, out, in, 0.5);
	for (uint32_t i = 0; i < rows * in; i++)
		x[i] = frand(1.0);
	port_span(m, 0, x, rows * in * 4);
	port_span(m, 1, w.card, krnl_matrix_bytes(dt, out, in));
	/* y rows of 40 floats back to back: row r starts mid-beat for r > 0 */
	port_span(m, 2, y, rows * out * 4);
	krnl_meter_cur = m;
	krnl_gemv((void *)x, (void *)w.card, (void *)y, rows, in, out, in, out, dt, 0);
	krnl_meter_cur = NULL;
	/* x: each row once, 16 beats; W: every row once for the whole batch;
	 * y: per row, ceil over the 3 output beats it spans (strobed edges) */
	assert_int_equal(m->port_beats[0][0], rows * in / 16);
	assert_int_equal(m->port_beats[1][0], (uint64_t)out * krnl_row_beats(dt, in));
	assert_int_equal(m->port_beats[1][1], 0);
	uint64_t ywr = 0;
	for (uint32_t r = 0; r < rows; r++)
		for (uint32_t o0 = 0; o0 < out; o0 += 16) {
			uint64_t a = r * out + o0, b = a + (out - o0 < 16 ? out - o0 : 16);
			ywr += (b + 15) / 16 - a / 16;
		}
	assert_int_equal(m->port_beats[2][1], ywr);
	assert_int_equal(m->port_beats[2][0], 0);
	assert_int_equal(m->stray_beats[0] + m->stray_beats[1], 0);

	/* one more word read through the port moves its counter by one beat */
	uint64_t before = m->port_beats[1][0];
	krnl_meter_cur = m;
	(void)krnl_rd((const krnl_word *)(const void *)w.card, 5);
	krnl_meter_cur = NULL;
	assert_int_equal(m->port_beats[1][0], before + 1);

	/* and a read outside every port is a stray beat, not a silent one */
	krnl_meter_cur = m;
	(void)krnl_rd((const krnl_word *)(const void *)w.card, krnl_matrix_bytes(dt, out, in) / 64);
	krnl_meter_cur = NULL;
	assert_int_equal(m->stray_beats[0], 1);
	mat_free(&w);
	free(x);
	free(y);
	free(m);
}

#ifdef KRNL_X86_VEC
/* Both datapaths on the same beats, each specialized for its format as the
 * kernels' call sites specialize them. */
#define DOT_BOTH(F, E) do { \
	krnl_dot_beats_hls(w, wb, nb, F, E, sc, gsh, x, xs, nr, ah); \
	krnl_dot_beats_x86(w, wb, nb, F, E, sc, gsh, x, xs, nr, fresh, av); \
} while (0)

static void dot_both(const krnl_word *w, uint64_t wb, uint32_t nb, uint32_t fmt,
		     const float *sc, uint32_t gsh, const float *x, uint32_t xs, uint32_t nr,
		     int fresh,
		     float ah[][KRNL_ACC_LANES][KRNL_F32_PER_BEAT],
		     float av[][KRNL_ACC_LANES][KRNL_F32_PER_BEAT])
{
	KRNL_BY_FMT(fmt, DOT_BOTH);
}
#endif

/* The emulated card's dot products on a CPU with vector units
 * (krnl_mem_x86.h) must be the HLS loop's, bit for bit, in every format, for
 * one row and for batches, for row lengths that do and do not fill the eight
 * partial sums. */
static void test_dot_paths_bitwise(void **state)
{
	(void)state;
#ifdef KRNL_X86_VEC
	static float acc_h[KRNL_MAX_BATCH][KRNL_ACC_LANES][KRNL_F32_PER_BEAT];
	static float acc_v[KRNL_MAX_BATCH][KRNL_ACC_LANES][KRNL_F32_PER_BEAT];
	const uint32_t nrs[] = { 1, 2, 5, KRNL_MAX_BATCH };
	const uint32_t colss[] = { 16, 200, 1000, 1024, 2048 + 96 };
	uint64_t checked = 0;

	for (uint32_t f = 0; f < NFMT; f++) {
		uint32_t dt;

		assert_int_equal(nc_fmt_parse(fmts[f], &dt), 0);
		uint32_t fmt = KRNL_DT_FMT(dt), epb = krnl_fmt_epb(fmt), gsh = krnl_group_shift(dt);

		for (uint32_t ci = 0; ci < sizeof(colss) / sizeof(colss[0]); ci++) {
			uint32_t cols = colss[ci], nb = (cols + epb - 1) / epb;
			uint32_t xs = cols + KRNL_MAX_EPB;
			struct mat m;
			float *x = calloc((size_t)KRNL_MAX_BATCH * xs, sizeof(float));
			float sc[KRNL_MAX_SCALES];

			mat_make(&m, dt, 3, cols, 0.5);
			for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++)
				for (uint32_t c = 0; c < cols; c++)
					x[(size_t)r * xs + c] = frand(2.0);
			for (uint32_t row = 0; row < m.rows; row++) {
				const krnl_word *w = (const krnl_word *)(const void *)m.card;
				uint64_t wb = row * (nc_quant_row_bytes(dt, cols) / KRNL_BEAT_BYTES);

				wb += krnl_wrow_scales(w, wb, dt, cols, sc);
				for (uint32_t ni = 0; ni < sizeof(nrs) / sizeof(nrs[0]); ni++) {
					uint32_t nr = nrs[ni];

					/* both start from the same nonzero partial sums */
					for (uint32_t i = 0; i < KRNL_MAX_BATCH * KRNL_ACC_LANES * KRNL_F32_PER_BEAT; i++)
						(&acc_h[0][0][0])[i] = (&acc_v[0][0][0])[i] = frand(1.0);
					dot_both(w, wb, nb, fmt, sc, gsh, x, xs, nr, 0, acc_h, acc_v);
					if (memcmp(acc_h, acc_v, sizeof(acc_h)) != 0)
						fail_msg("%s cols %u rows %u: vector path differs from the HLS loop",
							 fmts[f], cols, nr);
					/* and from zero, the vector path not reading the sums */
					for (uint32_t i = 0; i < KRNL_MAX_BATCH * KRNL_ACC_LANES * KRNL_F32_PER_BEAT; i++) {
						(&acc_h[0][0][0])[i] = 0.0f;
						(&acc_v[0][0][0])[i] = i < nr * KRNL_ACC_LANES * KRNL_F32_PER_BEAT ?
								       NAN : 0.0f;
					}
					dot_both(w, wb, nb, fmt, sc, gsh, x, xs, nr, 1, acc_h, acc_v);
					if (memcmp(acc_h, acc_v, sizeof(acc_h)) != 0)
						fail_msg("%s cols %u rows %u: vector path from zero differs",
							 fmts[f], cols, nr);
					checked++;
				}
			}
			mat_free(&m);
			free(x);
		}
	}
	assert_true(checked == NFMT * 5 * 3 * 4);
#else
	skip();	/* built without the CPU's vector path: the HLS loop is all there is */
#endif
}

/* A block of weight rows (krnl_wrows_dot: on a CPU, batch rows two at a time
 * over the block; krnl_wrows_dot2 for two blocks) gives each row's
 * krnl_wrow_dot bit for bit, for batches
 * that take either order, and meters each row once. */
static void test_wrows_block(void **state)
{
	static const uint32_t nrs[] = { 1, 2, 3, 7, KRNL_MAX_BATCH };
	uint32_t cols = 200, xs = cols + KRNL_MAX_EPB;
	float *x = calloc((size_t)KRNL_MAX_BATCH * xs, sizeof(float));

	(void)state;
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++)
		for (uint32_t c = 0; c < cols; c++)
			x[(size_t)r * xs + c] = frand(2.0);
	for (uint32_t f = 0; f < NFMT; f++) {
		uint32_t dt;
		struct mat m;

		assert_int_equal(nc_fmt_parse(fmts[f], &dt), 0);
		mat_make(&m, dt, 13, cols, 0.5);
		const krnl_word *w = (const krnl_word *)(const void *)m.card;
		uint64_t rb = krnl_row_beats(dt, cols);

		for (uint32_t i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++) {
			float blk[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH], one[KRNL_MAX_BATCH];
			struct krnl_meter *mt = calloc(1, sizeof(*mt));

			port_span(mt, 1, m.card, 13 * rb * KRNL_BEAT_BYTES);
			krnl_meter_cur = mt;
			krnl_wrows_dot(w, 0, rb, 13, dt, cols, x, xs, nrs[i], blk);
			krnl_meter_cur = NULL;
			assert_int_equal(mt->port_beats[1][0], 13 * rb);
			for (uint32_t j = 0; j < 13; j++) {
				krnl_wrow_dot(w, j * rb, dt, cols, x, xs, nrs[i], one);
				if (memcmp(one, blk[j], nrs[i] * sizeof(float)))
					fail_msg("%s: row %u of a block, batch %u, differs", fmts[f], j,
						 nrs[i]);
			}
			/* two blocks side by side (gate and up): rows 0..5 and 7..12 */
			float a2[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH], b2[KRNL_F32_PER_BEAT][KRNL_MAX_BATCH];
			memset(mt, 0, sizeof(*mt));
			port_span(mt, 1, m.card, 13 * rb * KRNL_BEAT_BYTES);
			krnl_meter_cur = mt;
			krnl_wrows_dot2(w, 0, 7 * rb, rb, 6, dt, cols, x, xs, nrs[i], a2, b2);
			krnl_meter_cur = NULL;
			assert_int_equal(mt->port_beats[1][0], 12 * rb);
			for (uint32_t j = 0; j < 6; j++)
				if (memcmp(a2[j], blk[j], nrs[i] * sizeof(float)) ||
				    memcmp(b2[j], blk[7 + j], nrs[i] * sizeof(float)))
					fail_msg("%s: row %u of two blocks, batch %u, differs", fmts[f], j,
						 nrs[i]);
			free(mt);
		}
		mat_free(&m);
	}
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dot_paths_bitwise),
		cmocka_unit_test(test_wrows_block),
		cmocka_unit_test(test_gemv_formats),
		cmocka_unit_test(test_gemv_perturbed),
		cmocka_unit_test(test_lm_head_formats),
		cmocka_unit_test(test_embed_formats),
		cmocka_unit_test(test_expert_formats),
		cmocka_unit_test(test_meter_counts_gemv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
