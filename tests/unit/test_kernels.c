/* test_kernels.c — every HLS kernel (C-sim) against its double reference.
 *
 * In the spirit of ggml's test-backend-ops: one table of cases per kernel
 * (shapes from batch 1 to KRNL_MAX_BATCH, realistic seeded random inputs),
 * each compared with the scalar reference of tests/kernel_ref.h by relative
 * L2 error under a per-case tolerance.  Every buffer the kernels see sits
 * between guard words that must come back untouched, and the guard pattern
 * is a NaN, so a kernel reading outside its inputs poisons its output.
 * Stateful kernels run several consecutive steps with batches mapped onto
 * shuffled state slots; the batched kernels are also checked to give
 * bit-identical rows whether a row runs in a batch or alone.  Each table ends
 * with a run on a deliberately perturbed input that must be reported.
 *
 * Kernels see card memory as 512-bit beats (krnl_mem.h): every buffer handed
 * to a kernel is 64-byte aligned and sized to whole beats (the guard words
 * follow its last element, inside its last beat where it is not full), and
 * weight matrices are in the row layout of krnl_types.h.  The meter test
 * checks that the accessor counts exactly the beats each kernel should move.
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

#include "krnl_common.h"
#include "krnl_mem.h"
#include "krnl_types.h"
#include "krnl_embed_gather.h"
#include "krnl_rmsnorm.h"
#include "krnl_rmsnorm_gated.h"
#include "krnl_gemv.h"
#include "krnl_conv1d_step.h"
#include "krnl_deltanet_step.h"
#include "krnl_attn_decode.h"
#include "krnl_state.h"
#include "krnl_moe_router.h"
#include "krnl_expert_ffn.h"
#include "krnl_lm_head_argmax.h"
#include "krnl_sampler.h"
#include "krnl_abi.h"
#include "kernel_ref.h"
#include "rng.h"

/* A test buffer as a kernel port. */
#define KW(p) ((krnl_word *)(void *)(p))

#define TOL_F32   1e-5		/* relative L2, f32 kernel vs double reference */
#define WHOLE     krnl_attn_split(KRNL_ATTN_WHOLE, 0, 0)
#define TOL_BF16  1e-3		/* the same where values are stored as bf16 (a
				   value at a rounding boundary may go either way) */
#define EPS_NORM  1e-6f		/* rms_norm_eps */

static int g_quiet;		/* perturbation runs: failures are expected */
static double g_worst;		/* largest relative error seen in a case */

#define say(...) do { if (!g_quiet) fprintf(stderr, __VA_ARGS__); } while (0)

/* ---- seeded random numbers: tests/rng.h ---------------------------------- */

static void fill(struct rng *g, float *p, size_t n, double lo, double hi)
{
	for (size_t i = 0; i < n; i++)
		p[i] = rng_range(g, lo, hi);
}

/* The first nr of a random permutation of 0..n-1. */
static void pick_slots(struct rng *g, int32_t *slots, int nr, int n)
{
	int32_t *perm = malloc(sizeof(*perm) * (size_t)n);

	for (int i = 0; i < n; i++)
		perm[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = rng_below(g, i + 1);
		int32_t t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	memcpy(slots, perm, sizeof(*slots) * (size_t)nr);
	free(perm);
}

/* GDN handles of nr rows: distinct, each row writing its state back in place
 * (blocks[nr + r] = blocks[r]). */
static void pick_handles(struct rng *g, int32_t *blocks, int nr, int n)
{
	pick_slots(g, blocks, nr, n);
	memcpy(blocks + nr, blocks, sizeof(*blocks) * (size_t)nr);
}

/* Rows in step t of a stateful case: usually the full batch, every third
 * step a random smaller one. */
static int step_rows(struct rng *g, int t, int rows)
{
	if (t % 3 == 2 && rows > 1)
		return 1 + rng_below(g, rows);
	return rows;
}

/* ---- guarded buffers ----------------------------------------------------- */

#define GUARD_WORDS 16		/* one beat before each buffer */
#define GUARD_WORD  0xffa5a5a5u	/* a NaN as f32, an odd int as i32 */
#define ARENA_MAX   64
#define BEAT_WORDS  (KRNL_BEAT_BYTES / 4)

struct gblock {
	uint32_t *base;
	size_t words;		/* asked for */
	size_t tail;		/* guard words after them, to the end of the block */
	const char *name;
};

struct arena {
	struct gblock b[ARENA_MAX];
	int n;
};

static void fill_pattern(void *p, size_t words)
{
	uint32_t *w = p;

	for (size_t i = 0; i < words; i++)
		w[i] = GUARD_WORD;
}

/* A buffer of at least `bytes`, 64-byte aligned, filled with the guard
 * pattern: a beat of guard words before it, and after its last word guard
 * words up to the end of its last beat plus one more beat. */
static void *gnew(struct arena *a, const char *name, size_t bytes)
{
	size_t words = (bytes + 3) / 4;
	size_t padded = (words + BEAT_WORDS - 1) / BEAT_WORDS * BEAT_WORDS;
	size_t total = GUARD_WORDS + padded + GUARD_WORDS;
	struct gblock *b = &a->b[a->n++];

	assert_true(a->n <= ARENA_MAX);
	b->base = aligned_alloc(KRNL_BEAT_BYTES, sizeof(*b->base) * total);
	assert_non_null(b->base);
	b->words = words;
	b->tail = total - GUARD_WORDS - words;
	b->name = name;
	fill_pattern(b->base, total);
	return b->base + GUARD_WORDS;
}

static int arena_check(struct arena *a, const char *ctx)
{
	int bad = 0;

	for (int i = 0; i < a->n; i++) {
		const struct gblock *b = &a->b[i];
		const uint32_t *after = b->base + GUARD_WORDS + b->words;

		for (int j = 0; j < GUARD_WORDS; j++) {
			if (b->base[j] != GUARD_WORD) {
				say("%s: guard word %d before %s overwritten: 0x%08x\n",
				    ctx, GUARD_WORDS - j, b->name, b->base[j]);
				bad = 1;
				break;
			}
		}
		for (size_t j = 0; j < b->tail; j++) {
			if (after[j] != GUARD_WORD) {
				say("%s: guard word %zu after %s overwritten: 0x%08x\n",
				    ctx, j, b->name, after[j]);
				bad = 1;
				break;
			}
		}
	}
	return bad;
}

static void arena_free(struct arena *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->b[i].base);
	a->n = 0;
}

/* ---- comparisons ---------------------------------------------------------- */

/* got: rows x width floats at row stride gstride; want: dense rows x width.
 * Fails on a non-finite value or a relative L2 error above tol, printing the
 * first element off by more than tol (relative to itself or to the rms). */
static int cmp_rel(const char *ctx, const char *what, const float *got,
		   size_t gstride, const double *want, size_t rows, size_t width,
		   double tol)
{
	double num = 0.0, den = 0.0;
	int finite = 1;

	for (size_t r = 0; r < rows; r++) {
		for (size_t i = 0; i < width; i++) {
			double g = got[r * gstride + i], w = want[r * width + i];

			finite &= isfinite(g) != 0;
			num += (g - w) * (g - w);
			den += w * w;
		}
	}
	double err = den > 0.0 ? sqrt(num / den) : sqrt(num);

	if (finite && err <= tol) {
		if (!g_quiet && err > g_worst)
			g_worst = err;
		return 0;
	}
	double rms = rows > 0 && width > 0 ? sqrt(den / (double)(rows * width)) : 0.0;

	say("%s: %s: relative L2 error %.3e > tol %.1e over %zu x %zu\n", ctx,
	    what, err, tol, rows, width);
	for (size_t r = 0; r < rows; r++) {
		for (size_t i = 0; i < width; i++) {
			double g = got[r * gstride + i], w = want[r * width + i];

			if (fabs(g - w) <= tol * fmax(fabs(w), rms))
				continue;
			say("%s: %s: first mismatch at [%zu][%zu] (flat %zu): got %.9g want %.9g\n",
			    ctx, what, r, i, r * width + i, g, w);
			return 1;
		}
	}
	return 1;
}

/* Bit-exact comparison of n 32-bit words (floats or ints). */
static int cmp_bits(const char *ctx, const char *what, const void *got,
		    const void *want, size_t n)
{
	const uint32_t *g = got, *w = want;

	for (size_t i = 0; i < n; i++) {
		if (g[i] == w[i])
			continue;
		say("%s: %s: first bit difference at %zu: got 0x%08x (%.9g, %d) want 0x%08x (%.9g, %d)\n",
		    ctx, what, i, g[i], ref_bits_f32(g[i]), (int32_t)g[i], w[i],
		    ref_bits_f32(w[i]), (int32_t)w[i]);
		return 1;
	}
	return 0;
}

/* The gaps of a strided buffer (columns width..stride-1) still hold the
 * guard pattern. */
static int check_gaps(const char *ctx, const char *what, const float *p,
		      size_t rows, size_t width, size_t stride)
{
	for (size_t r = 0; r < rows; r++) {
		for (size_t i = width; i < stride; i++) {
			uint32_t u = ref_f32_bits(p[r * stride + i]);

			if (u == GUARD_WORD)
				continue;
			say("%s: %s: gap [%zu][%zu] written: 0x%08x\n", ctx, what, r, i, u);
			return 1;
		}
	}
	return 0;
}

/* ---- weights ------------------------------------------------------------- */

#define DT_F32  KRNL_DT(KRNL_FMT_F32, 0)
#define DT_BF16 KRNL_DT(KRNL_FMT_BF16, 0)

/* Bytes of a [rows][cols] matrix in the row layout. */
static size_t wbytes(uint32_t dt, size_t rows, int cols)
{
	return (size_t)krnl_matrix_bytes(dt, rows, (uint32_t)cols);
}

/* The HBM image of the [rows][cols] matrix wf in format dt at wp: each row on
 * its own beats, zero-padded to a whole beat.  With bf16, wf is rounded in
 * place so the reference sees exactly what the kernel reads. */
static void pack_rows(float *wf, krnl_word *wp, size_t rows, int cols, uint32_t dt)
{
	uint32_t rb = krnl_row_beats(dt, (uint32_t)cols);

	memset(wp, 0, wbytes(dt, rows, cols));
	for (size_t r = 0; r < rows; r++) {
		float *src = wf + r * cols;
		krnl_word *row = wp + r * rb;

		for (int i = 0; i < cols; i++) {
			if (KRNL_DT_FMT(dt) == KRNL_FMT_BF16) {
				uint16_t h = ref_f32_to_bf16(src[i]);

				memcpy((uint8_t *)row + 2 * (size_t)i, &h, 2);	/* little-endian */
				src[i] = ref_bf16_to_f32(h);
			} else {
				memcpy((uint8_t *)row + 4 * (size_t)i, &src[i], 4);
			}
		}
	}
}

/* A [rows][cols] weight matrix: dense floats for the reference, its image for
 * the kernel. */
static void make_w(struct arena *a, struct rng *g, const char *name, size_t rows, int cols,
		   double lo, double hi, uint32_t dt, float **wf, krnl_word **wp)
{
	*wf = gnew(a, name, sizeof(**wf) * rows * cols);
	*wp = gnew(a, name, wbytes(dt, rows, cols));
	fill(g, *wf, rows * cols, lo, hi);
	pack_rows(*wf, *wp, rows, cols, dt);
}

/* ---- the table driver ---------------------------------------------------- */

typedef int (*case_fn)(const void *c, int perturb);

/* Every case of a table must pass; then the first case, run with one input
 * perturbed after the reference was computed, must fail. */
static void run_table(const char *kernel, const void *cases, size_t n,
		      size_t size, case_fn run)
{
	int fails = 0;

	for (size_t i = 0; i < n; i++) {
		const void *c = (const char *)cases + i * size;
		const char *name = *(const char *const *)c;

		g_worst = 0.0;
		int f = run(c, 0);
		printf("  %-20s %-46s max rel err %.2e  %s\n", kernel, name, g_worst,
		       f ? "FAIL" : "ok");
		fails += f != 0;
	}
	g_quiet = 1;
	int pf = run(cases, 1);
	g_quiet = 0;
	if (!pf) {
		fprintf(stderr, "%s: a perturbed input went unnoticed: the check is blind\n",
			kernel);
		fails++;
	}
	assert_int_equal(fails, 0);
}

/* ======================================================================== */
/* embed_gather                                                             */

struct emb_case {
	const char *name;
	int rows, dim, vocab;
	uint32_t dt;
	uint64_t seed;
};

static const struct emb_case emb_cases[] = {
	{ "b1 dim64 v100 f32", 1, 64, 100, DT_F32, 11 },
	{ "b16 dim256 v1000 bf16", 16, 256, 1000, DT_BF16, 12 },
	{ "b7 dim2048 v50 f32", 7, 2048, 50, DT_F32, 13 },
	{ "b16 dim8192 v20 bf16", 16, 8192, 20, DT_BF16, 14 },
	{ "b3 dim8192 v5 f32", 3, 8192, 5, DT_F32, 15 },
	{ "b5 dim40 (rows not whole beats) v30 bf16", 5, 40, 30, DT_BF16, 16 },
	{ "b4 dim24 v9 f32", 4, 24, 9, DT_F32, 17 },
};

static int run_emb(const void *vc, int perturb)
{
	const struct emb_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	size_t n = (size_t)c->rows * c->dim;
	float *tf, *out;
	krnl_word *tp;
	int32_t *ids;
	double *want;
	int fails = 0;
	char ctx[192];

	snprintf(ctx, sizeof(ctx), "embed_gather %s", c->name);
	make_w(&a, &g, "table", (size_t)c->vocab, c->dim, -0.05, 0.05, c->dt, &tf, &tp);
	ids = gnew(&a, "ids", sizeof(*ids) * c->rows);
	out = gnew(&a, "out", sizeof(*out) * n);
	want = gnew(&a, "want", sizeof(*want) * n);
	for (int r = 0; r < c->rows; r++)
		ids[r] = rng_below(&g, c->vocab);
	ids[0] = c->vocab - 1;				/* last row of the table */
	if (c->rows > 1)
		ids[1] = 0;
	if (c->rows > 2)
		ids[2] = ids[0];			/* a repeated token */

	ref_embed_gather(want, ids, tf, c->rows, c->dim);
	if (perturb)
		ids[0] = (ids[0] + 1) % c->vocab;
	krnl_embed_gather(KW(ids), tp, KW(out), (uint32_t)c->rows, (uint32_t)c->dim, c->dt);

	fails += cmp_rel(ctx, "out (exact)", out, c->dim, want, c->rows, c->dim, 0.0);
	fails += arena_check(&a, ctx);
	arena_free(&a);
	return fails;
}

static void test_embed_gather(void **state)
{
	(void)state;
	run_table("embed_gather", emb_cases, sizeof(emb_cases) / sizeof(emb_cases[0]),
		  sizeof(emb_cases[0]), run_emb);
}

/* ======================================================================== */
/* rmsnorm                                                                  */

struct rms_case {
	const char *name;
	int rows, dim;
	float woff;
	int inplace;
	uint64_t seed;
};

static const struct rms_case rms_cases[] = {
	{ "b1 h2048 woff1", 1, 2048, 1.0f, 0, 21 },
	{ "b16 h256 woff1", 16, 256, 1.0f, 0, 22 },
	{ "16x8 heads hd128 woff1 (q_norm)", 128, 128, 1.0f, 0, 23 },
	{ "b5 h4096 woff0", 5, 4096, 0.0f, 0, 24 },
	{ "b3 h8192 woff0 in place", 3, 8192, 0.0f, 1, 25 },
	{ "b16 h64 woff1 in place", 16, 64, 1.0f, 1, 26 },
	{ "b16 h2048 woff0", 16, 2048, 0.0f, 0, 27 },
	{ "b6 h40 (rows share beats) woff1", 6, 40, 1.0f, 0, 28 },
	{ "b5 h24 woff0 in place", 5, 24, 0.0f, 1, 29 },
};

/* Row amplitudes: ordinary, large, and small enough that eps matters. */
static const double row_amp[] = { 1.0, 3.0, 0.01, 1e-3, 30.0, 0.2 };
#define N_AMP (sizeof(row_amp) / sizeof(row_amp[0]))

static int run_rms(const void *vc, int perturb)
{
	const struct rms_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	size_t n = (size_t)c->rows * c->dim;
	float *x, *w, *y;
	double *want;
	int fails = 0;
	char ctx[192];

	snprintf(ctx, sizeof(ctx), "rmsnorm %s", c->name);
	x = gnew(&a, "x", sizeof(*x) * n);
	w = gnew(&a, "w", sizeof(*w) * c->dim);
	y = c->inplace ? x : gnew(&a, "y", sizeof(*y) * n);
	want = gnew(&a, "want", sizeof(*want) * n);
	for (int r = 0; r < c->rows; r++) {
		double amp = row_amp[(size_t)r % N_AMP];

		fill(&g, x + (size_t)r * c->dim, c->dim, -amp, amp);
	}
	if (c->woff != 0.0f)
		fill(&g, w, c->dim, -0.3, 0.5);		/* zero-centred weight */
	else
		fill(&g, w, c->dim, 0.5, 1.5);

	ref_rmsnorm(want, x, w, c->rows, c->dim, EPS_NORM, c->woff);
	if (perturb)
		x[3] += 4.0f;
	krnl_rmsnorm(KW(x), KW(w), KW(y), (uint32_t)c->rows, (uint32_t)c->dim, EPS_NORM, c->woff);

	fails += cmp_rel(ctx, "y", y, c->dim, want, c->rows, c->dim, TOL_F32);
	fails += arena_check(&a, ctx);
	arena_free(&a);
	return fails;
}

static void test_rmsnorm(void **state)
{
	(void)state;
	run_table("rmsnorm", rms_cases, sizeof(rms_cases) / sizeof(rms_cases[0]),
		  sizeof(rms_cases[0]), run_rms);
}

/* ======================================================================== */
/* rmsnorm_gated                                                            */

struct rmg_case {
	const char *name;
	int rows, heads, dim, zstride;
	uint64_t seed;
};

static const struct rmg_case rmg_cases[] = {
	{ "b1 32x128 z strided", 1, 32, 128, 32 * 128 * 3 + 5, 31 },
	{ "b16 4x64 z dense", 16, 4, 64, 4 * 64, 32 },
	{ "b3 16x256 z strided", 3, 16, 256, 16 * 256 + 37, 33 },
	{ "b16 2x512 z strided", 16, 2, 512, 2 * 512 + 512, 34 },
	{ "b7 32x128 z dense", 7, 32, 128, 32 * 128, 35 },
	{ "b16 64x128 (two chunks) z strided", 16, 64, 128, 64 * 128 + 3, 36 },
	{ "b4 20x512 (chunks of 8 heads) z strided", 4, 20, 512, 20 * 512 + 16, 37 },
	{ "b3 5x24 (heads share beats) z strided", 3, 5, 24, 5 * 24 + 7, 38 },
};

static int run_rmg(const void *vc, int perturb)
{
	const struct rmg_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	int width = c->heads * c->dim;
	size_t n = (size_t)c->rows * width;
	float *x, *z, *w, *y;
	double *want;
	int fails = 0;
	char ctx[192];

	snprintf(ctx, sizeof(ctx), "rmsnorm_gated %s", c->name);
	x = gnew(&a, "x", sizeof(*x) * n);
	z = gnew(&a, "z", sizeof(*z) * (size_t)c->rows * c->zstride);
	w = gnew(&a, "w", sizeof(*w) * c->dim);
	y = gnew(&a, "y", sizeof(*y) * n);
	want = gnew(&a, "want", sizeof(*want) * n);
	for (size_t i = 0; i < n / c->dim; i++) {	/* per head amplitudes */
		double amp = row_amp[i % N_AMP];

		fill(&g, x + i * c->dim, c->dim, -amp, amp);
	}
	for (int r = 0; r < c->rows; r++)		/* the gaps stay NaN */
		fill(&g, z + (size_t)r * c->zstride, width, -4.0, 4.0);
	fill(&g, w, c->dim, 0.5, 1.5);

	ref_rmsnorm_gated(want, x, z, w, c->rows, c->heads, c->dim, c->zstride, EPS_NORM);
	if (perturb)
		z[0] += 3.0f;
	krnl_rmsnorm_gated(KW(x), KW(z), KW(w), KW(y), (uint32_t)c->rows, (uint32_t)c->heads,
			   (uint32_t)c->dim, (uint32_t)c->zstride, EPS_NORM);

	fails += cmp_rel(ctx, "y", y, width, want, c->rows, width, TOL_F32);
	fails += arena_check(&a, ctx);
	arena_free(&a);
	return fails;
}

static void test_rmsnorm_gated(void **state)
{
	(void)state;
	run_table("rmsnorm_gated", rmg_cases, sizeof(rmg_cases) / sizeof(rmg_cases[0]),
		  sizeof(rmg_cases[0]), run_rmg);
}

/* ======================================================================== */
/* gemv                                                                     */

struct gemv_case {
	const char *name;
	int rows, in, out, xstride, ystride;
	uint32_t dt, acc;
	uint64_t seed;
};

static const struct gemv_case gemv_cases[] = {
	{ "b1 64->32 f32", 1, 64, 32, 64, 32, DT_F32, 0, 41 },
	{ "b16 256->100 bf16 acc strided", 16, 256, 100, 300, 128, DT_BF16, 1, 42 },
	{ "b16 1024->77 f32 acc", 16, 1024, 77, 1024, 77, DT_F32, 1, 43 },
	{ "b4 2048->300 bf16 strided", 4, 2048, 300, 2100, 310, DT_BF16, 0, 44 },
	{ "b13 8192->16 f32 strided", 13, 8192, 16, 8200, 20, DT_F32, 0, 45 },
	{ "b1 4096->513 bf16 acc y strided", 1, 4096, 513, 4096, 600, DT_BF16, 1, 46 },
	{ "b16 512->1 f32", 16, 512, 1, 512, 1, DT_F32, 0, 47 },
	{ "b9 96->2048 f32 acc strided", 9, 96, 2048, 97, 2050, DT_F32, 1, 48 },
	{ "b16 2048->512 bf16", 16, 2048, 512, 2048, 512, DT_BF16, 0, 49 },
	{ "b3 40->37 f32 (rows not whole beats) acc", 3, 40, 37, 41, 39, DT_F32, 1, 50 },
	{ "b16 72->24 bf16 strided", 16, 72, 24, 72, 24, DT_BF16, 0, 140 },
};

static int run_gemv(const void *vc, int perturb)
{
	const struct gemv_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	size_t ny = (size_t)c->rows * c->ystride;
	double wr = 1.7 / sqrt((double)c->in);		/* weight std 1/sqrt(in) */
	float *x, *x1, *wf, *y, *y0, *y1;
	krnl_word *wp;
	double *want;
	int fails = 0;
	char ctx[192];

	snprintf(ctx, sizeof(ctx), "gemv %s", c->name);
	make_w(&a, &g, "w", (size_t)c->out, c->in, -wr, wr, c->dt, &wf, &wp);
	x = gnew(&a, "x", sizeof(*x) * (size_t)c->rows * c->xstride);
	x1 = gnew(&a, "x (row alone)", sizeof(*x1) * c->in);
	y = gnew(&a, "y", sizeof(*y) * ny);
	y0 = gnew(&a, "y0", sizeof(*y0) * ny);
	y1 = gnew(&a, "y1", sizeof(*y1) * c->out);
	want = gnew(&a, "want", sizeof(*want) * (size_t)c->rows * c->out);
	for (int r = 0; r < c->rows; r++) {
		fill(&g, x + (size_t)r * c->xstride, c->in, -1.0, 1.0);
		if (c->acc)
			fill(&g, y + (size_t)r * c->ystride, c->out, -1.0, 1.0);
		for (int o = 0; o < c->out; o++)
			want[(size_t)r * c->out + o] = c->acc ? y[(size_t)r * c->ystride + o] : 0.0;
	}
	memcpy(y0, y, sizeof(*y) * ny);

	ref_gemv(want, x, wf, c->rows, c->in, c->out, c->xstride, c->acc);
	if (perturb)
		x[0] += 1.0f;
	krnl_gemv(KW(x), wp, KW(y), (uint32_t)c->rows, (uint32_t)c->in, (uint32_t)c->out,
		  (uint32_t)c->xstride, (uint32_t)c->ystride, c->dt, c->acc);

	fails += cmp_rel(ctx, "y", y, c->ystride, want, c->rows, c->out, TOL_F32);
	fails += check_gaps(ctx, "y", y, c->rows, c->out, c->ystride);
	/* batch invariance: each row alone gives the same bits */
	for (int r = 0; r < c->rows && c->rows > 1 && !fails; r++) {
		memcpy(x1, x + (size_t)r * c->xstride, sizeof(*x1) * c->in);
		memcpy(y1, y0 + (size_t)r * c->ystride, sizeof(*y1) * c->out);
		krnl_gemv(KW(x1), wp, KW(y1), 1, (uint32_t)c->in, (uint32_t)c->out,
			  (uint32_t)c->xstride, (uint32_t)c->ystride, c->dt, c->acc);
		char rc[256];
		snprintf(rc, sizeof(rc), "%s row %d alone vs in batch", ctx, r);
		fails += cmp_bits(rc, "y", y1, y + (size_t)r * c->ystride, c->out);
	}
	fails += arena_check(&a, ctx);
	arena_free(&a);
	return fails;
}

static void test_gemv(void **state)
{
	(void)state;
	run_table("gemv", gemv_cases, sizeof(gemv_cases) / sizeof(gemv_cases[0]),
		  sizeof(gemv_cases[0]), run_gemv);
}

/* ======================================================================== */
/* conv1d_step                                                              */

struct conv_case {
	const char *name;
	int rows, ch, k, xstride, nslots, steps;
	uint64_t seed;
};

static const struct conv_case conv_cases[] = {
	{ "b1 ch64 k4 x6 steps", 1, 64, 4, 64, 1, 6, 51 },
	{ "b16 ch256 k4 strided 20 slots x8", 16, 256, 4, 384, 20, 8, 52 },
	{ "b5 ch100 k2 7 slots x6", 5, 100, 2, 100, 7, 6, 53 },
	{ "b9 ch48 k8 strided 12 slots x10", 9, 48, 8, 64, 12, 10, 54 },
	{ "b3 ch1024 k3 strided 4 slots x5", 3, 1024, 3, 1500, 4, 5, 55 },
	{ "b2 ch16384 (KRNL_MAX_CHAN) k4 3 slots x3", 2, 16384, 4, 16384, 3, 3, 57 },
	{ "b16 ch16 k4 16 slots x12", 16, 16, 4, 16, 16, 12, 56 },
	{ "b4 ch700 (3 chunks) k4 strided 6 slots x5", 4, 700, 4, 705, 6, 5, 58 },
	{ "b16 ch8192 k4 (32 chunks) 16 slots x3", 16, 8192, 4, 8192, 16, 3, 59 },
};

static int run_conv(const void *vc, int perturb)
{
	const struct conv_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	size_t nx = (size_t)c->rows * c->xstride;
	size_t nst = (size_t)c->nslots * c->ch * (c->k - 1);
	float *x, *xin, *w, *st, *hist;
	int32_t *slots;
	double *want;
	int fails = 0;
	char ctx[192];

	assert_true(c->rows <= c->nslots && c->k >= 2);
	x = gnew(&a, "x", sizeof(*x) * nx);
	xin = gnew(&a, "xin", sizeof(*xin) * nx);
	w = gnew(&a, "w", sizeof(*w) * (size_t)c->ch * c->k);
	st = gnew(&a, "state", sizeof(*st) * nst);
	hist = gnew(&a, "hist", sizeof(*hist) * nst);
	slots = gnew(&a, "slots", sizeof(*slots) * 2 * c->rows);
	want = gnew(&a, "want", sizeof(*want) * (size_t)c->rows * c->ch);
	fill(&g, w, (size_t)c->ch * c->k, -0.6, 0.6);
	memset(st, 0, sizeof(*st) * nst);		/* every slot starts a sequence */
	memset(hist, 0, sizeof(*hist) * nst);

	for (int t = 0; t < c->steps && !fails; t++) {
		int nr = step_rows(&g, t, c->rows);

		snprintf(ctx, sizeof(ctx), "conv1d_step %s step %d (%d rows)", c->name, t, nr);
		pick_handles(&g, slots, nr, c->nslots);
		fill_pattern(x, nx);
		for (int r = 0; r < nr; r++)
			fill(&g, x + (size_t)r * c->xstride, c->ch, -2.0, 2.0);
		memcpy(xin, x, sizeof(*x) * nx);
		for (int r = 0; r < nr; r++)
			ref_conv1d_step(want + (size_t)r * c->ch, xin + (size_t)r * c->xstride, w,
					hist + (size_t)slots[r] * c->ch * (c->k - 1), c->ch, c->k);
		if (perturb && t == 0)
			x[0] += 3.0f;
		krnl_conv1d_step(KW(x), KW(w), KW(st), KW(slots), (uint32_t)nr, (uint32_t)c->ch,
				 (uint32_t)c->k, (uint32_t)c->xstride, (uint32_t)c->nslots);

		fails += cmp_rel(ctx, "x out", x, c->xstride, want, nr, c->ch, TOL_F32);
		fails += check_gaps(ctx, "x", x, nr, c->ch, c->xstride);
		fails += cmp_bits(ctx, "rows past the batch", x + (size_t)nr * c->xstride,
				  xin + (size_t)nr * c->xstride, nx - (size_t)nr * c->xstride);
		/* the state is the last k-1 raw inputs of each slot, bit for bit;
		 * slots outside the batch are untouched */
		fails += cmp_bits(ctx, "state", st, hist, nst);
		fails += arena_check(&a, ctx);
	}
	arena_free(&a);
	return fails;
}

static void test_conv1d_step(void **state)
{
	(void)state;
	run_table("conv1d_step", conv_cases, sizeof(conv_cases) / sizeof(conv_cases[0]),
		  sizeof(conv_cases[0]), run_conv);
}

/* ======================================================================== */
/* deltanet_step                                                            */

struct dn_case {
	const char *name;
	int rows, nk, nv, dk, dv, xextra, nslots, steps;
	uint64_t seed;
};

static const struct dn_case dn_cases[] = {
	{ "b1 nk1 nv1 dk16 dv16 x6", 1, 1, 1, 16, 16, 0, 1, 6, 61 },
	{ "b4 nk2 nv4 dk32 dv64 strided 6 slots x6", 4, 2, 4, 32, 64, 64, 6, 6, 62 },
	{ "b16 nk2 nv6 dk64 dv32 strided 20 slots x5", 16, 2, 6, 64, 32, 16, 20, 5, 63 },
	{ "b3 nk4 nv4 dk128 dv128 x4", 3, 4, 4, 128, 128, 0, 3, 4, 64 },
	{ "b2 nk1 nv4 dk256 dv64 strided 5 slots x4", 2, 1, 4, 256, 64, 8, 5, 4, 65 },
	{ "b16 nk1 nv2 dk16 dv8 16 slots x8", 16, 1, 2, 16, 8, 0, 16, 8, 66 },
	{ "b5 nk2 nv8 dk48 dv24 9 slots x7", 5, 2, 8, 48, 24, 3, 9, 7, 67 },
	{ "b2 nk1 nv2 dk256 dv256 (the kernel max)", 2, 1, 2, 256, 256, 0, 3, 3, 68 },
	{ "b4 nk3 nv6 dk20 dv12 (heads share beats) strided 7 slots x6", 4, 3, 6, 20, 12, 5, 7, 6, 69 },
	{ "b16 nk16 nv32 dk128 dv128 (80B-A3B) 16 slots x2", 16, 16, 32, 128, 128, 0, 16, 2, 60 },
};

static int run_dn(const void *vc, int perturb)
{
	const struct dn_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	int width = 2 * c->nk * c->dk + c->nv * c->dv, xstride = width + c->xextra;
	size_t hsz = (size_t)c->nv * c->dk * c->dv;	/* one slot's state */
	size_t nst = (size_t)c->nslots * hsz;
	size_t no = (size_t)c->rows * c->nv * c->dv;
	float *qkv, *ba, *alog, *dtb, *st, *stb, *snap, *out, *outb, *qkv1, *ba1;
	int32_t *slots, *slot1;
	double *S, *want;
	int fails = 0;
	char ctx[192];

	assert_true(c->rows <= c->nslots && c->nv % c->nk == 0);
	qkv = gnew(&a, "qkv", sizeof(*qkv) * (size_t)c->rows * xstride);
	ba = gnew(&a, "ba", sizeof(*ba) * (size_t)c->rows * 2 * c->nv);
	alog = gnew(&a, "a_log", sizeof(*alog) * c->nv);
	dtb = gnew(&a, "dt_bias", sizeof(*dtb) * c->nv);
	st = gnew(&a, "state", sizeof(*st) * nst);
	stb = gnew(&a, "state (rows alone)", sizeof(*stb) * nst);
	snap = gnew(&a, "state snapshot", sizeof(*snap) * nst);
	out = gnew(&a, "out", sizeof(*out) * no);
	outb = gnew(&a, "out (row alone)", sizeof(*outb) * c->nv * c->dv);
	slots = gnew(&a, "slots", sizeof(*slots) * 2 * c->rows);
	qkv1 = gnew(&a, "qkv (row alone)", sizeof(*qkv1) * width);
	ba1 = gnew(&a, "ba (row alone)", sizeof(*ba1) * 2 * c->nv);
	slot1 = gnew(&a, "slot (row alone)", sizeof(*slot1) * 2);
	S = gnew(&a, "ref state", sizeof(*S) * nst);
	want = gnew(&a, "want", sizeof(*want) * no);
	fill(&g, alog, c->nv, -2.0, 2.5);
	fill(&g, dtb, c->nv, -1.0, 1.0);
	memset(st, 0, sizeof(*st) * nst);
	memset(stb, 0, sizeof(*stb) * nst);
	memset(S, 0, sizeof(*S) * nst);

	for (int t = 0; t < c->steps && !fails; t++) {
		int nr = step_rows(&g, t, c->rows);

		snprintf(ctx, sizeof(ctx), "deltanet_step %s step %d (%d rows)", c->name, t, nr);
		pick_handles(&g, slots, nr, c->nslots);
		for (int r = 0; r < nr; r++) {
			fill(&g, qkv + (size_t)r * xstride, width, -1.0, 1.5);
			fill(&g, ba + (size_t)r * 2 * c->nv, 2 * c->nv, -3.0, 3.0);
		}
		for (int r = 0; r < nr; r++)
			ref_deltanet_step(want + (size_t)r * c->nv * c->dv,
					  qkv + (size_t)r * xstride, ba + (size_t)r * 2 * c->nv,
					  alog, dtb, S + (size_t)slots[r] * hsz,
					  c->nk, c->nv, c->dk, c->dv);
		if (perturb && t == 0)
			qkv[2 * c->nk * c->dk] += 2.0f;	/* v of head 0 */
		memcpy(snap, st, sizeof(*st) * nst);
		fill_pattern(out, no);
		krnl_deltanet_step(KW(qkv), KW(ba), KW(alog), KW(dtb), KW(st), KW(slots), KW(out),
				   (uint32_t)nr, (uint32_t)c->nk, (uint32_t)c->nv, (uint32_t)c->dk,
				   (uint32_t)c->dv, (uint32_t)xstride, (uint32_t)c->nslots);

		fails += cmp_rel(ctx, "out", out, (size_t)c->nv * c->dv, want, nr,
				 (size_t)c->nv * c->dv, TOL_F32);
		for (size_t i = (size_t)nr * c->nv * c->dv; i < no; i++) {
			if (ref_f32_bits(out[i]) != GUARD_WORD) {
				say("%s: out written past the batch at %zu\n", ctx, i);
				fails++;
				break;
			}
		}
		for (int s = 0; s < c->nslots; s++) {
			int in_batch = 0;
			char what[64];

			for (int r = 0; r < nr; r++)
				in_batch |= slots[r] == s;
			snprintf(what, sizeof(what), "state of slot %d", s);
			if (in_batch)
				fails += cmp_rel(ctx, what, st + (size_t)s * hsz, hsz,
						 S + (size_t)s * hsz, 1, hsz, TOL_F32);
			else
				fails += cmp_bits(ctx, what, st + (size_t)s * hsz,
						  snap + (size_t)s * hsz, hsz);
		}
		/* batch invariance: the same rows one at a time on a twin state */
		for (int r = 0; r < nr && nr > 1 && !fails; r++) {
			char rc[256];

			snprintf(rc, sizeof(rc), "%s row %d alone vs in batch", ctx, r);
			memcpy(qkv1, qkv + (size_t)r * xstride, sizeof(*qkv1) * width);
			memcpy(ba1, ba + (size_t)r * 2 * c->nv, sizeof(*ba1) * 2 * c->nv);
			slot1[0] = slot1[1] = slots[r];
			krnl_deltanet_step(KW(qkv1), KW(ba1), KW(alog), KW(dtb), KW(stb), KW(slot1),
					   KW(outb), 1, (uint32_t)c->nk, (uint32_t)c->nv,
					   (uint32_t)c->dk, (uint32_t)c->dv, (uint32_t)xstride,
					   (uint32_t)c->nslots);
			fails += cmp_bits(rc, "out", outb, out + (size_t)r * c->nv * c->dv,
					  (size_t)c->nv * c->dv);
		}
		if (nr == 1)
			memcpy(stb, st, sizeof(*st) * nst);
		else if (!fails)
			fails += cmp_bits(ctx, "state, rows alone vs batch", stb, st, nst);
		fails += arena_check(&a, ctx);
	}
	arena_free(&a);
	return fails;
}

static void test_deltanet_step(void **state)
{
	(void)state;
	run_table("deltanet_step", dn_cases, sizeof(dn_cases) / sizeof(dn_cases[0]),
		  sizeof(dn_cases[0]), run_dn);
}

/* ======================================================================== */
/* attn_decode                                                              */

struct at_case {
	const char *name;
	int rows, nh, nkv, hd, rd;
	float theta;
	int maxctx, nslots, steps;
	uint64_t seed;
	int kv_bf16;		/* KV pages in bf16 */
};

static const struct at_case at_cases[] = {
	{ "b1 nh2 nkv1 hd64 rd64 1e4 x40", 1, 2, 1, 64, 64, 1e4f, 48, 1, 40, 71, 0 },
	{ "b4 GQA 8/2 hd128 rd32 1e7 6 slots x24", 4, 8, 2, 128, 32, 1e7f, 40, 6, 24, 72, 0 },
	{ "b16 MHA 4/4 hd32 rd16 1e4 20 slots x14", 16, 4, 4, 32, 16, 1e4f, 24, 20, 14, 73, 0 },
	{ "b2 GQA 2/1 hd256 rd64 1e7 pos 0..299", 2, 2, 1, 256, 64, 1e7f, 320, 2, 300, 74, 0 },
	{ "b1 GQA 4/2 hd64 rd16 1e4 pos 0..199", 1, 4, 2, 64, 16, 1e4f, 200, 1, 200, 75, 0 },
	{ "b16 GQA 16/2 hd64 rd16 1e7 16 slots x6", 16, 16, 2, 64, 16, 1e7f, 8, 16, 6, 76, 0 },
	{ "b3 GQA 16/1 (group 16, the max) hd64 rd32 1e4 x20", 3, 16, 1, 64, 32, 1e4f, 24, 5, 20, 77, 0 },
	{ "b5 GQA 32/2 (group 16) hd128 rd128 1e7 x9", 5, 32, 2, 128, 128, 1e7f, 12, 7, 9, 78, 0 },
	{ "b2 GQA 4/1 hd512 (max) rd64 1e7 x6", 2, 4, 1, 512, 64, 1e7f, 8, 2, 6, 79, 0 },
	{ "b1 GQA 128/8 (max heads) hd64 1e4 x4", 1, 128, 8, 64, 64, 1e4f, 8, 1, 4, 80, 0 },
	{ "b4 GQA 6/2 hd24 (heads share beats) rd8 1e4 x10", 4, 6, 2, 24, 8, 1e4f, 12, 5, 10, 170, 0 },
	{ "b3 GQA 4/2 hd64 rd0 (no rope) x8", 3, 4, 2, 64, 0, 1e4f, 10, 4, 8, 171, 0 },
	{ "b16 GQA 16/2 hd256 rd64 1e7 (80B-A3B) 16 slots x3", 16, 16, 2, 256, 64, 1e7f, 4, 16, 3, 172, 0 },
	{ "bf16 KV b4 GQA 8/2 hd128 rd32 1e7 6 slots x24", 4, 8, 2, 128, 32, 1e7f, 40, 6, 24, 173, 1 },
	{ "bf16 KV b2 GQA 2/1 hd256 rd64 1e7 pos 0..299", 2, 2, 1, 256, 64, 1e7f, 320, 2, 300, 174, 1 },
	{ "bf16 KV b4 GQA 6/2 hd24 (heads share beats) rd8 x10", 4, 6, 2, 24, 8, 1e4f, 12, 5, 10, 175, 1 },
};

/* A run of n cache elements at element at of a page pool, in f32 or bf16. */
static void kv_get(const float *pool, int bf16, size_t at, float *dst, int n)
{
	for (int i = 0; i < n; i++)
		dst[i] = bf16 ? krnl_bf16_f32(((const uint16_t *)(const void *)pool)[at + i])
			      : pool[at + i];
}

static void kv_put(float *pool, int bf16, size_t at, const float *src, int n)
{
	for (int i = 0; i < n; i++) {
		if (bf16)
			((uint16_t *)(void *)pool)[at + i] = krnl_f32_bf16(src[i]);
		else
			pool[at + i] = src[i];
	}
}

/* The rope row of position p, as the firmware writes it: cos then sin of
 * p * theta^(-2i/rd), i < rd/2, computed in double. */
static void rope_row(float *dst, int p, int rd, double theta)
{
	for (int i = 0; i < rd / 2; i++) {
		double ang = (double)p * pow(theta, -2.0 * i / rd);

		dst[i] = (float)cos(ang);
		dst[rd / 2 + i] = (float)sin(ang);
	}
}

static int run_at(const void *vc, int perturb)
{
	const struct at_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	int qw = 2 * c->nh * c->hd, kw = c->nkv * c->hd, ow = c->nh * c->hd;
	size_t csz = (size_t)c->nkv * c->maxctx * c->hd;	/* one slot's reference history */
	/* the kernel's cache is a pool of pages; each slot's block table names
	 * its pages in a shuffled order, and a few pages belong to nobody */
	int pps = (int)krnl_kv_pages((uint32_t)c->maxctx), npages = c->nslots * pps + 3;
	size_t nc = (size_t)npages * krnl_kv_page((uint32_t)c->nkv, (uint32_t)c->hd);
	float *qg, *k, *v, *qnw, *knw, *kc, *vc2, *kcb, *vcb, *ksnap, *vsnap;
	float *out, *outb, *knew, *rope, *qg1, *k1, *v1, *rope1;
	int32_t *slots, *pos, *len, *slot1, *pos1, *bt;
	double tol = c->kv_bf16 ? TOL_BF16 : TOL_F32;
	double *kh, *vh, *want, *kwant;
	int fails = 0;
	char ctx[192];

	assert_true(c->rows <= c->nslots && c->steps <= c->maxctx && c->nh % c->nkv == 0);
	qg = gnew(&a, "qg", sizeof(*qg) * (size_t)c->rows * qw);
	k = gnew(&a, "k", sizeof(*k) * (size_t)c->rows * kw);
	v = gnew(&a, "v", sizeof(*v) * (size_t)c->rows * kw);
	qnw = gnew(&a, "q_norm", sizeof(*qnw) * c->hd);
	knw = gnew(&a, "k_norm", sizeof(*knw) * c->hd);
	kc = gnew(&a, "k cache", sizeof(*kc) * nc);
	vc2 = gnew(&a, "v cache", sizeof(*vc2) * nc);
	kcb = gnew(&a, "k cache (rows alone)", sizeof(*kcb) * nc);
	vcb = gnew(&a, "v cache (rows alone)", sizeof(*vcb) * nc);
	ksnap = gnew(&a, "k cache expected", sizeof(*ksnap) * nc);
	vsnap = gnew(&a, "v cache expected", sizeof(*vsnap) * nc);
	out = gnew(&a, "out", sizeof(*out) * (size_t)c->rows * ow);
	outb = gnew(&a, "out (row alone)", sizeof(*outb) * ow);
	knew = gnew(&a, "new k entries", sizeof(*knew) * (size_t)c->rows * kw);
	slots = gnew(&a, "slots", sizeof(*slots) * 2 * c->rows);
	pos = gnew(&a, "pos", sizeof(*pos) * c->rows);
	rope = gnew(&a, "rope", sizeof(*rope) * (size_t)c->rows * c->rd);
	qg1 = gnew(&a, "qg (row alone)", sizeof(*qg1) * qw);
	k1 = gnew(&a, "k (row alone)", sizeof(*k1) * kw);
	v1 = gnew(&a, "v (row alone)", sizeof(*v1) * kw);
	rope1 = gnew(&a, "rope (row alone)", sizeof(*rope1) * c->rd);
	slot1 = gnew(&a, "slot (row alone)", sizeof(*slot1) * 2);
	pos1 = gnew(&a, "pos (row alone)", sizeof(*pos1));
	len = gnew(&a, "len", sizeof(*len) * c->nslots);
	kh = gnew(&a, "ref k history", sizeof(*kh) * nc);
	vh = gnew(&a, "ref v history", sizeof(*vh) * nc);
	want = gnew(&a, "want", sizeof(*want) * (size_t)c->rows * ow);
	kwant = gnew(&a, "want k entries", sizeof(*kwant) * (size_t)c->rows * kw);
	bt = gnew(&a, "block tables", sizeof(*bt) * (size_t)c->nslots * pps);
	for (int i = 0; i < c->nslots * pps; i++)
		bt[i] = i + 3;
	for (int i = c->nslots * pps - 1; i > 0; i--) {
		int j = rng_below(&g, i + 1), t = bt[i];

		bt[i] = bt[j];
		bt[j] = t;
	}
	fill(&g, qnw, c->hd, -0.3, 0.5);
	fill(&g, knw, c->hd, -0.3, 0.5);
	memset(len, 0, sizeof(*len) * c->nslots);
	/* kc, vc start as NaN pattern: reading a position past pos poisons out */
	memcpy(kcb, kc, sizeof(*kc) * nc);
	memcpy(vcb, vc2, sizeof(*vc2) * nc);

	for (int t = 0; t < c->steps && !fails; t++) {
		int nr = step_rows(&g, t, c->rows);

		pick_slots(&g, slots, nr, c->nslots);
		for (int r = 0; r < nr; r++) {
			float *q = qg + (size_t)r * qw;

			pos[r] = len[slots[r]]++;
			fill(&g, q, (size_t)c->nh * c->hd, -2.0, 2.0);		/* query */
			fill(&g, q + (size_t)c->nh * c->hd, (size_t)c->nh * c->hd, -4.0, 4.0);
			fill(&g, k + (size_t)r * kw, kw, -2.0, 2.0);
			fill(&g, v + (size_t)r * kw, kw, -1.0, 1.0);
		}
		snprintf(ctx, sizeof(ctx), "attn_decode %s step %d (%d rows, pos[0] %d)",
			 c->name, t, nr, pos[0]);
		for (int r = 0; r < nr; r++)
			rope_row(rope + (size_t)r * c->rd, pos[r], c->rd, c->theta);
		for (int r = 0; r < nr; r++) {
			size_t sb = (size_t)slots[r] * csz;

			ref_attn_decode(want + (size_t)r * ow, qg + (size_t)r * qw,
					k + (size_t)r * kw, v + (size_t)r * kw, qnw, knw,
					kh + sb, vh + sb, pos[r], c->nh, c->nkv, c->hd,
					c->rd, c->theta, EPS_NORM, c->maxctx, c->kv_bf16);
			for (int h = 0; h < c->nkv; h++)
				memcpy(kwant + (size_t)r * kw + (size_t)h * c->hd,
				       kh + sb + ((size_t)h * c->maxctx + pos[r]) * c->hd,
				       sizeof(*kwant) * c->hd);
		}
		if (perturb && t == 0)
			qg[(size_t)c->nh * c->hd] += 3.0f;	/* gate of head 0 */
		memcpy(ksnap, kc, sizeof(*kc) * nc);
		memcpy(vsnap, vc2, sizeof(*vc2) * nc);
		krnl_attn_decode(KW(qg), KW(k), KW(v), KW(qnw), KW(knw), KW(kc), KW(vc2), KW(slots),
				 KW(pos), KW(rope), KW(bt), KW(out), NULL, (uint32_t)nr, (uint32_t)c->nh,
				 (uint32_t)c->nkv, (uint32_t)c->hd, (uint32_t)c->rd, EPS_NORM,
				 (uint32_t)pps, (uint32_t)npages, (uint32_t)c->nslots,
				 c->kv_bf16 ? KRNL_FMT_BF16 : KRNL_FMT_F32, WHOLE);

		fails += cmp_rel(ctx, "out", out, ow, want, nr, ow, tol);
		/* the new cache entries: normed+roped k, v copied as is; nothing
		 * else in either cache moves */
		for (int r = 0; r < nr; r++) {
			for (int h = 0; h < c->nkv; h++) {
				size_t at = krnl_kv_at((uint32_t)bt[slots[r] * pps + pos[r] /
								 (int)KRNL_KV_PAGE],
						       (uint32_t)h, (uint32_t)pos[r], (uint32_t)c->nkv,
						       (uint32_t)c->hd);

				float *kn1 = knew + (size_t)r * kw + (size_t)h * c->hd;

				kv_get(kc, c->kv_bf16, at, kn1, c->hd);
				kv_put(ksnap, c->kv_bf16, at, kn1, c->hd);
				kv_put(vsnap, c->kv_bf16, at, v + (size_t)r * kw + (size_t)h * c->hd,
				       c->hd);
			}
		}
		fails += cmp_rel(ctx, "k cache entries", knew, kw, kwant, nr, kw, tol);
		fails += cmp_bits(ctx, "k cache", kc, ksnap, nc);
		fails += cmp_bits(ctx, "v cache", vc2, vsnap, nc);
		/* batch invariance: the same rows one at a time on twin caches */
		for (int r = 0; r < nr && nr > 1 && !fails; r++) {
			char rc[256];

			snprintf(rc, sizeof(rc), "%s row %d alone vs in batch", ctx, r);
			memcpy(qg1, qg + (size_t)r * qw, sizeof(*qg1) * qw);
			memcpy(k1, k + (size_t)r * kw, sizeof(*k1) * kw);
			memcpy(v1, v + (size_t)r * kw, sizeof(*v1) * kw);
			memcpy(rope1, rope + (size_t)r * c->rd, sizeof(*rope1) * c->rd);
			slot1[0] = slots[r];
			pos1[0] = pos[r];
			krnl_attn_decode(KW(qg1), KW(k1), KW(v1), KW(qnw), KW(knw), KW(kcb), KW(vcb),
					 KW(slot1), KW(pos1), KW(rope1), KW(bt), KW(outb), NULL, 1,
					 (uint32_t)c->nh, (uint32_t)c->nkv, (uint32_t)c->hd,
					 (uint32_t)c->rd, EPS_NORM, (uint32_t)pps, (uint32_t)npages,
					 (uint32_t)c->nslots, c->kv_bf16 ? KRNL_FMT_BF16 : KRNL_FMT_F32,
					 WHOLE);
			fails += cmp_bits(rc, "out", outb, out + (size_t)r * ow, ow);
		}
		if (nr == 1) {
			memcpy(kcb, kc, sizeof(*kc) * nc);
			memcpy(vcb, vc2, sizeof(*vc2) * nc);
		} else if (!fails) {
			fails += cmp_bits(ctx, "k cache, rows alone vs batch", kcb, kc, nc);
			fails += cmp_bits(ctx, "v cache, rows alone vs batch", vcb, vc2, nc);
		}
		fails += arena_check(&a, ctx);
	}
	arena_free(&a);
	return fails;
}

static void test_attn_decode(void **state)
{
	(void)state;
	run_table("attn_decode", at_cases, sizeof(at_cases) / sizeof(at_cases[0]),
		  sizeof(at_cases[0]), run_at);
}

/* Split-K: rows at 2,100, 1,500 and 700 positions (3, 2 and 1 blocks of
 * KRNL_KV_SPLIT pages) over caches of random entries.  The whole call
 * matches the double reference; partial calls over block ranges, run in
 * any order, then the merge give the same bits and write the same cache. */
static void test_attn_split(void **state)
{
	enum { R = 3, NH = 4, NKV = 2, HD = 64, RD = 16, TABW = 40, NS = 4, MC = TABW * 64 };
	static const int32_t ps[R] = { 2100, 1500, 700 }, hs[R] = { 3, 0, 2 };
	struct arena a = { .n = 0 };
	struct rng g = { 4141 };
	size_t pg = krnl_kv_page(NKV, HD), nc = (size_t)NS * TABW * pg;
	size_t hsz = (size_t)NKV * MC * HD, pw = krnl_attn_part_w(NH, NKV, HD);
	float *qg = gnew(&a, "qg", sizeof(float) * R * 2 * NH * HD);
	float *k = gnew(&a, "k", sizeof(float) * R * NKV * HD);
	float *v = gnew(&a, "v", sizeof(float) * R * NKV * HD);
	float *qn = gnew(&a, "q_norm", sizeof(float) * HD), *kn = gnew(&a, "k_norm", sizeof(float) * HD);
	float *kc = gnew(&a, "k cache", sizeof(float) * nc), *vc = gnew(&a, "v cache", sizeof(float) * nc);
	float *kc2 = gnew(&a, "k cache (split)", sizeof(float) * nc);
	float *vc2 = gnew(&a, "v cache (split)", sizeof(float) * nc);
	float *rope = gnew(&a, "rope", sizeof(float) * R * RD);
	float *out = gnew(&a, "out", sizeof(float) * R * NH * HD);
	float *out2 = gnew(&a, "out (split)", sizeof(float) * R * NH * HD);
	float *part = gnew(&a, "partials", sizeof(float) * R * NKV * krnl_attn_blocks(TABW) * pw);
	int32_t *bt = gnew(&a, "block tables", sizeof(int32_t) * NS * TABW);
	int32_t *sl = gnew(&a, "blocks", sizeof(int32_t) * R), *pp = gnew(&a, "pos", sizeof(int32_t) * R);
	double *kh = gnew(&a, "ref k", sizeof(double) * hsz), *vh = gnew(&a, "ref v", sizeof(double) * hsz);
	double *want = gnew(&a, "want", sizeof(double) * R * NH * HD);
	static const uint32_t order[3][2] = { { 2, 3 }, { 0, 1 }, { 1, 2 } };
	int fails = 0;

	(void)state;
	fill(&g, qg, (size_t)R * 2 * NH * HD, -2.0, 2.0);
	fill(&g, k, (size_t)R * NKV * HD, -2.0, 2.0);
	fill(&g, v, (size_t)R * NKV * HD, -1.0, 1.0);
	fill(&g, qn, HD, -0.3, 0.5);
	fill(&g, kn, HD, -0.3, 0.5);
	fill(&g, kc, nc, -1.0, 1.0);
	fill(&g, vc, nc, -1.0, 1.0);
	for (int i = 0; i < NS * TABW; i++)
		bt[i] = NS * TABW - 1 - i;	/* pages in reverse */
	for (int r = 0; r < R; r++) {
		sl[r] = hs[r];
		pp[r] = ps[r];
		rope_row(rope + (size_t)r * RD, ps[r], RD, 1e4);
	}
	memcpy(kc2, kc, sizeof(float) * nc);
	memcpy(vc2, vc, sizeof(float) * nc);
	krnl_attn_decode(KW(qg), KW(k), KW(v), KW(qn), KW(kn), KW(kc), KW(vc), KW(sl), KW(pp),
			 KW(rope), KW(bt), KW(out), NULL, R, NH, NKV, HD, RD, EPS_NORM, TABW,
			 NS * TABW, NS, KRNL_FMT_F32, WHOLE);
	for (int i = 0; i < 3; i++)
		krnl_attn_decode(KW(qg), KW(k), KW(v), KW(qn), KW(kn), KW(kc2), KW(vc2), KW(sl),
				 KW(pp), KW(rope), KW(bt), KW(out2), KW(part), R, NH, NKV, HD, RD,
				 EPS_NORM, TABW, NS * TABW, NS, KRNL_FMT_F32,
				 krnl_attn_split(KRNL_ATTN_PART, order[i][0], order[i][1]));
	krnl_attn_decode(KW(qg), KW(k), KW(v), KW(qn), KW(kn), KW(kc2), KW(vc2), KW(sl), KW(pp),
			 KW(rope), KW(bt), KW(out2), KW(part), R, NH, NKV, HD, RD, EPS_NORM, TABW,
			 NS * TABW, NS, KRNL_FMT_F32, krnl_attn_split(KRNL_ATTN_MERGE, 0, 0));
	fails += cmp_bits("attn split-K", "out, split vs whole", out2, out, (size_t)R * NH * HD);
	fails += cmp_bits("attn split-K", "k cache, split vs whole", kc2, kc, nc);
	fails += cmp_bits("attn split-K", "v cache, split vs whole", vc2, vc, nc);
	/* the reference, from the same cached entries */
	for (int r = 0; r < R; r++) {
		for (int h = 0; h < NKV; h++)
			for (int t = 0; t < ps[r]; t++) {
				size_t at = krnl_kv_at((uint32_t)bt[hs[r] * TABW + t / 64], (uint32_t)h,
						       (uint32_t)t, NKV, HD);

				for (int i = 0; i < HD; i++) {
					kh[((size_t)h * MC + t) * HD + i] = kc[at + i];
					vh[((size_t)h * MC + t) * HD + i] = vc[at + i];
				}
			}
		ref_attn_decode(want + (size_t)r * NH * HD, qg + (size_t)r * 2 * NH * HD,
				k + (size_t)r * NKV * HD, v + (size_t)r * NKV * HD, qn, kn, kh, vh,
				ps[r], NH, NKV, HD, RD, 1e4, EPS_NORM, MC, 0);
	}
	fails += cmp_rel("attn split-K", "out vs reference", out, (size_t)NH * HD, want, R,
			 (size_t)NH * HD, TOL_F32);
	arena_free(&a);
	assert_int_equal(fails, 0);
}

/* ======================================================================== */
/* moe_router                                                               */

struct rt_case {
	const char *name;
	int rows, ne, topk;
	uint32_t norm;
	uint64_t seed;
};

static const struct rt_case rt_cases[] = {
	{ "b1 ne8 top2 norm", 1, 8, 2, 1, 81 },
	{ "b16 ne64 top8 norm", 16, 64, 8, 1, 82 },
	{ "b16 ne64 top8 raw", 16, 64, 8, 0, 83 },
	{ "b5 ne512 top10 norm", 5, 512, 10, 1, 84 },
	{ "b16 ne16 top16 (all) norm", 16, 16, 16, 1, 85 },
	{ "b3 ne1024 top32 raw", 3, 1024, 32, 0, 86 },
	{ "b16 ne512 top10 norm", 16, 512, 10, 1, 87 },
	{ "b2 ne4 top1 raw", 2, 4, 1, 0, 88 },
	{ "b7 ne20 (logit rows share beats) top3 norm", 7, 20, 3, 1, 89 },
};

/* Router logits on a 1/8 grid (many exact ties; distinct values far apart
 * compared with float rounding).  Row 0: topk+1 experts share the top value,
 * so the tie straddles the cut; row 1: all experts tie. */
static void router_logits(struct rng *g, float *l, int rows, int ne, int topk)
{
	for (size_t i = 0; i < (size_t)rows * ne; i++)
		l[i] = (float)(floor(rng_range(g, -4.0, 4.0) * 8.0) / 8.0);
	if (topk < ne) {
		int32_t *pick = malloc(sizeof(*pick) * (size_t)(topk + 1));

		pick_slots(g, pick, topk + 1, ne);
		for (int j = 0; j <= topk; j++)
			l[pick[j]] = 4.5f;
		free(pick);
	}
	if (rows > 1)
		for (int e = 0; e < ne; e++)
			l[ne + e] = 0.5f;
}

static int run_rt(const void *vc, int perturb)
{
	const struct rt_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	size_t nl = (size_t)c->ne * KRNL_MAX_BATCH;
	float *logits, *gotw;
	uint32_t *count, *rcount;
	int32_t *list, *rlist;
	float *listw;
	double *rlistw, *wantw;
	int fails = 0, n = 0;
	char ctx[192];

	snprintf(ctx, sizeof(ctx), "moe_router %s", c->name);
	logits = gnew(&a, "logits", sizeof(*logits) * (size_t)c->rows * c->ne);
	count = gnew(&a, "count", sizeof(*count) * c->ne);
	list = gnew(&a, "list", sizeof(*list) * nl);
	listw = gnew(&a, "listw", sizeof(*listw) * nl);
	rcount = gnew(&a, "ref count", sizeof(*rcount) * c->ne);
	rlist = gnew(&a, "ref list", sizeof(*rlist) * nl);
	rlistw = gnew(&a, "ref listw", sizeof(*rlistw) * nl);
	gotw = gnew(&a, "got weights", sizeof(*gotw) * nl);
	wantw = gnew(&a, "want weights", sizeof(*wantw) * nl);
	router_logits(&g, logits, c->rows, c->ne, c->topk);

	ref_moe_router(rcount, rlist, rlistw, logits, c->rows, c->ne, c->topk,
		       (int)c->norm, KRNL_MAX_BATCH);
	if (perturb) {			/* row 0's weakest expert becomes the top */
		int lo = 0;

		for (int e = 1; e < c->ne; e++)
			lo = logits[e] < logits[lo] ? e : lo;
		logits[lo] = 6.0f;
	}
	krnl_moe_router(KW(logits), KW(count), KW(list), KW(listw), (uint32_t)c->rows,
			(uint32_t)c->ne, (uint32_t)c->topk, c->norm);

	fails += cmp_bits(ctx, "count", count, rcount, c->ne);
	for (int e = 0; e < c->ne && !fails; e++) {
		char what[64];

		snprintf(what, sizeof(what), "list of expert %d", e);
		fails += cmp_bits(ctx, what, list + (size_t)e * KRNL_MAX_BATCH,
				  rlist + (size_t)e * KRNL_MAX_BATCH, count[e]);
		for (uint32_t j = 0; j < count[e]; j++) {
			gotw[n] = listw[(size_t)e * KRNL_MAX_BATCH + j];
			wantw[n++] = rlistw[(size_t)e * KRNL_MAX_BATCH + j];
		}
	}
	if (!fails)
		fails += cmp_rel(ctx, "weights (expert-major)", gotw, n, wantw, 1, n, TOL_F32);
	/* whole rows (one beat) for the chosen experts, the tail -1 / 0; the
	 * rows of the others untouched */
	for (int e = 0; e < c->ne && !fails; e++) {
		const uint32_t *le = (const uint32_t *)list + (size_t)e * KRNL_MAX_BATCH;
		const uint32_t *we = (const uint32_t *)listw + (size_t)e * KRNL_MAX_BATCH;

		for (uint32_t j = count[e]; j < KRNL_MAX_BATCH; j++) {
			uint32_t wl = count[e] ? 0xffffffffu : GUARD_WORD;
			uint32_t ww = count[e] ? 0u : GUARD_WORD;

			if (le[j] != wl || we[j] != ww) {
				say("%s: expert %d (count %u): list tail [%u] = 0x%08x / 0x%08x, want 0x%08x / 0x%08x\n",
				    ctx, e, count[e], j, le[j], we[j], wl, ww);
				fails++;
				break;
			}
		}
	}
	fails += arena_check(&a, ctx);
	arena_free(&a);
	return fails;
}

static void test_moe_router(void **state)
{
	(void)state;
	run_table("moe_router", rt_cases, sizeof(rt_cases) / sizeof(rt_cases[0]),
		  sizeof(rt_cases[0]), run_rt);
}

/* ======================================================================== */
/* expert_ffn                                                               */

struct ef_case {
	const char *name;
	int rows, h, ni, ne, topk, si;
	uint32_t dt, sdt;
	uint64_t seed;
};

static const struct ef_case ef_cases[] = {
	{ "b1 h64 ni32 ne8 top2 f32", 1, 64, 32, 8, 2, 0, DT_F32, DT_F32, 91 },
	{ "b1 h64 ni32 ne8 top2 +shared48 f32", 1, 64, 32, 8, 2, 48, DT_F32, DT_F32, 92 },
	{ "b16 h128 ni64 ne16 top4 +shared96 bf16", 16, 128, 64, 16, 4, 96, DT_BF16, DT_BF16, 93 },
	{ "b16 h256 ni48 ne32 top8 bf16", 16, 256, 48, 32, 8, 0, DT_BF16, DT_BF16, 94 },
	{ "b5 h96 ni40 ne8 top8(all) +shared64 f32", 5, 96, 40, 8, 8, 64, DT_F32, DT_F32, 95 },
	{ "b7 h512 ni64 ne32 top10 +shared128 bf16", 7, 512, 64, 32, 10, 128, DT_BF16, DT_BF16, 96 },
	{ "b16 h64 ni16 ne64 top1 f32", 16, 64, 16, 64, 1, 0, DT_F32, DT_F32, 97 },
	{ "b16 h128 ni32 ne16 top2 +shared64 f32", 16, 128, 32, 16, 2, 64, DT_F32, DT_F32, 98 },
	{ "b6 h96 ni40 ne8 top2 bf16 +shared72 f32", 6, 96, 40, 8, 2, 72, DT_BF16, DT_F32, 99 },
	{ "b4 h72 ni24 ne6 top2 f32 +shared40 bf16", 4, 72, 24, 6, 2, 40, DT_F32, DT_BF16, 90 },
};

/* Routing from the reference router, as the kernel receives it. */
static void route(const float *logits, int rows, int ne, int topk, uint32_t *count,
		  int32_t *list, float *listw, double *tmpw)
{
	ref_moe_router(count, list, tmpw, logits, rows, ne, topk, 1, KRNL_MAX_BATCH);
	for (size_t i = 0; i < (size_t)ne * KRNL_MAX_BATCH; i++)
		listw[i] = (float)tmpw[i];
}

/* Beats of one expert block [gate (ni x h) | up (ni x h) | down (h x ni)]. */
static size_t expert_beats(uint32_t dt, int h, int ni)
{
	return 2 * (size_t)ni * krnl_row_beats(dt, (uint32_t)h) +
	       (size_t)h * krnl_row_beats(dt, (uint32_t)ni);
}

/* One expert's dense weights wf (3*ni*h: gate, up, down) as its block at wp. */
static void pack_expert(float *wf, krnl_word *wp, int h, int ni, uint32_t dt)
{
	size_t gu = (size_t)ni * krnl_row_beats(dt, (uint32_t)h);

	pack_rows(wf, wp, (size_t)ni, h, dt);
	pack_rows(wf + (size_t)ni * h, wp + gu, (size_t)ni, h, dt);
	pack_rows(wf + 2 * (size_t)ni * h, wp + 2 * gu, (size_t)h, ni, dt);
}

static int run_ef(const void *vc, int perturb)
{
	const struct ef_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	size_t nx = (size_t)c->rows * c->h, nl = (size_t)c->ne * KRNL_MAX_BATCH;
	size_t ew = (size_t)3 * c->ni * c->h;		/* one expert's weights */
	size_t eb = expert_beats(c->dt, c->h, c->ni);	/* and its block */
	float *x, *x1, *logits, *wf, *swf, *sgate, *y, *y0, *y1, *listw, *dy;
	krnl_word *wp, *swp;
	uint32_t *count;
	int32_t *list;
	double *want, *tmpw;
	int fails = 0;
	char ctx[192];

	snprintf(ctx, sizeof(ctx), "expert_ffn %s", c->name);
	wf = gnew(&a, "experts", sizeof(*wf) * ew * c->ne);
	wp = gnew(&a, "experts (hbm)", eb * c->ne * KRNL_BEAT_BYTES);
	for (int e = 0; e < c->ne; e++) {		/* gate, up: 1/sqrt(h); down: 1/sqrt(ni) */
		float *we = wf + (size_t)e * ew;
		double gu = 1.7 / sqrt((double)c->h), dn = 1.7 / sqrt((double)c->ni);

		fill(&g, we, (size_t)2 * c->ni * c->h, -gu, gu);
		fill(&g, we + (size_t)2 * c->ni * c->h, (size_t)c->ni * c->h, -dn, dn);
		pack_expert(we, wp + (size_t)e * eb, c->h, c->ni, c->dt);
	}
	if (c->si) {
		size_t sn = (size_t)3 * c->si * c->h;
		double gu = 1.7 / sqrt((double)c->h), dn = 1.7 / sqrt((double)c->si);

		swf = gnew(&a, "shared", sizeof(*swf) * sn);
		swp = gnew(&a, "shared (hbm)",
			   expert_beats(c->sdt, c->h, c->si) * KRNL_BEAT_BYTES);
		fill(&g, swf, (size_t)2 * c->si * c->h, -gu, gu);
		fill(&g, swf + (size_t)2 * c->si * c->h, (size_t)c->si * c->h, -dn, dn);
		pack_expert(swf, swp, c->h, c->si, c->sdt);
		sgate = gnew(&a, "shared gate", sizeof(*sgate) * c->h);
		fill(&g, sgate, c->h, -gu, gu);
	} else {			/* no shared expert: NaN stand-ins, never read */
		swf = NULL;
		swp = gnew(&a, "shared (absent)", 64);
		sgate = gnew(&a, "shared gate (absent)", 64);
	}
	x = gnew(&a, "x", sizeof(*x) * nx);
	x1 = gnew(&a, "x (row alone)", sizeof(*x1) * c->h);
	logits = gnew(&a, "router logits", sizeof(*logits) * (size_t)c->rows * c->ne);
	y = gnew(&a, "y", sizeof(*y) * nx);
	y0 = gnew(&a, "y0", sizeof(*y0) * nx);
	y1 = gnew(&a, "y (row alone)", sizeof(*y1) * c->h);
	count = gnew(&a, "count", sizeof(*count) * c->ne);
	list = gnew(&a, "list", sizeof(*list) * nl);
	listw = gnew(&a, "listw", sizeof(*listw) * nl);
	tmpw = gnew(&a, "listw (double)", sizeof(*tmpw) * nl);
	want = gnew(&a, "want", sizeof(*want) * nx);
	dy = gnew(&a, "got delta", sizeof(*dy) * nx);
	fill(&g, x, nx, -2.0, 2.0);
	fill(&g, y, nx, -1.0, 1.0);			/* the residual stream */
	memcpy(y0, y, sizeof(*y) * nx);
	router_logits(&g, logits, c->rows, c->ne, c->topk);
	route(logits, c->rows, c->ne, c->topk, count, list, listw, tmpw);
	/* experts no row chose are NaN in HBM: using them poisons y */
	for (int e = 0; e < c->ne; e++)
		if (count[e] == 0)
			fill_pattern(wp + (size_t)e * eb, eb * BEAT_WORDS);

	memset(want, 0, sizeof(*want) * nx);
	ref_expert_ffn(want, x, wf, count, list, listw, swf, sgate, c->rows, c->h,
		       c->ni, c->ne, c->si, KRNL_MAX_BATCH);
	if (perturb)
		x[0] += 2.0f;
	krnl_expert_ffn(KW(x), wp, KW(count), KW(list), KW(listw), swp, KW(sgate), KW(y),
			(uint32_t)c->rows, (uint32_t)c->h, (uint32_t)c->ni, (uint32_t)c->ne,
			(uint32_t)c->si, c->dt, c->sdt);

	/* compare what was added, so the residual cannot hide an error */
	for (size_t i = 0; i < nx; i++)
		dy[i] = (float)((double)y[i] - y0[i]);	/* exact in double */
	fails += cmp_rel(ctx, "y - y0", dy, c->h, want, c->rows, c->h, TOL_F32);
	/* batch invariance: each row routed and run alone gives the same bits */
	for (int r = 0; r < c->rows && c->rows > 1 && !fails; r++) {
		char rc[256];

		snprintf(rc, sizeof(rc), "%s row %d alone vs in batch", ctx, r);
		route(logits + (size_t)r * c->ne, 1, c->ne, c->topk, count, list, listw, tmpw);
		memcpy(x1, x + (size_t)r * c->h, sizeof(*x1) * c->h);
		memcpy(y1, y0 + (size_t)r * c->h, sizeof(*y1) * c->h);
		krnl_expert_ffn(KW(x1), wp, KW(count), KW(list), KW(listw), swp, KW(sgate),
				KW(y1), 1, (uint32_t)c->h, (uint32_t)c->ni, (uint32_t)c->ne,
				(uint32_t)c->si, c->dt, c->sdt);
		fails += cmp_bits(rc, "y", y1, y + (size_t)r * c->h, c->h);
	}
	fails += arena_check(&a, ctx);
	arena_free(&a);
	return fails;
}

static void test_expert_ffn(void **state)
{
	(void)state;
	run_table("expert_ffn", ef_cases, sizeof(ef_cases) / sizeof(ef_cases[0]),
		  sizeof(ef_cases[0]), run_ef);
}

/* ======================================================================== */
/* lm_head_argmax                                                           */

enum { DST_ROW, DST_NONE, DST_MIXED };

struct lm_case {
	const char *name;
	int rows, h, v;
	uint32_t dt;
	int dst;
	uint64_t seed;
	int neg;		/* one row, every logit below zero */
};

static const struct lm_case lm_cases[] = {
	{ "b1 h64 v100 f32 dst=row", 1, 64, 100, DT_F32, DST_ROW, 101, 0 },
	{ "b1 h64 v100 f32 dst=-1", 1, 64, 100, DT_F32, DST_NONE, 102, 0 },
	{ "b16 h256 v1000 bf16 dst mixed", 16, 256, 1000, DT_BF16, DST_MIXED, 103, 0 },
	{ "b5 h1024 v517 f32 dst=row", 5, 1024, 517, DT_F32, DST_ROW, 104, 0 },
	{ "b16 h2048 v300 bf16 dst mixed", 16, 2048, 300, DT_BF16, DST_MIXED, 105, 0 },
	{ "b16 h128 v4096 f32 dst=-1", 16, 128, 4096, DT_F32, DST_NONE, 106, 0 },
	{ "b2 h64 v1 f32 dst=row", 2, 64, 1, DT_F32, DST_ROW, 107, 0 },
	{ "b16 h64 v40 bf16 dst=row", 16, 64, 40, DT_BF16, DST_ROW, 108, 0 },
	{ "b1 h256 v300 f32 all logits < 0", 1, 256, 300, DT_F32, DST_ROW, 109, 1 },
	{ "b1 h512 v64 bf16 all logits < 0 dst=-1", 1, 512, 64, DT_BF16, DST_NONE, 110, 1 },
	{ "b3 h40 v37 (rows not whole beats) f32 dst=row", 3, 40, 37, DT_F32, DST_ROW, 111, 0 },
	{ "b4 h48 v29 bf16 dst mixed", 4, 48, 29, DT_BF16, DST_MIXED, 112, 0 },
};

static int run_lm(const void *vc, int perturb)
{
	const struct lm_case *c = vc;
	struct arena a = { .n = 0 };
	struct rng g = { c->seed };
	size_t nx = (size_t)c->rows * c->h, nv = (size_t)c->rows * c->v;
	double wr = 1.7 / sqrt((double)c->h);
	float *x, *nw, *wf, *logits, *got;
	krnl_word *wp;
	int32_t *dst, *amax, *ramax, *perm, *tie;
	double *want, *xn;
	int fails = 0, ndst = 0;
	char ctx[192];

	snprintf(ctx, sizeof(ctx), "lm_head_argmax %s", c->name);
	x = gnew(&a, "x", sizeof(*x) * nx);
	nw = gnew(&a, "norm w", sizeof(*nw) * c->h);
	wf = gnew(&a, "lm_head", sizeof(*wf) * (size_t)c->v * c->h);
	wp = gnew(&a, "lm_head (hbm)", wbytes(c->dt, (size_t)c->v, c->h));
	logits = gnew(&a, "logits", sizeof(*logits) * nv);
	got = gnew(&a, "logits gathered", sizeof(*got) * nv);
	dst = gnew(&a, "dst", sizeof(*dst) * c->rows);
	amax = gnew(&a, "argmax", sizeof(*amax) * c->rows);
	ramax = gnew(&a, "ref argmax", sizeof(*ramax) * c->rows);
	perm = gnew(&a, "vocab perm", sizeof(*perm) * c->v);
	tie = gnew(&a, "tie pairs", sizeof(*tie) * 2 * c->rows);
	want = gnew(&a, "want", sizeof(*want) * nv);
	xn = gnew(&a, "normed x", sizeof(*xn) * c->h);
	fill(&g, x, nx, -2.0, 2.0);
	fill(&g, nw, c->h, -0.3, 0.5);
	fill(&g, wf, (size_t)c->v * c->h, -wr, wr);

	/* Plant an exact tie for the top logit in most rows: two vocab rows equal
	 * to a multiple of the row's normed x, well above the random logits. */
	pick_slots(&g, perm, c->v, c->v);
	for (int r = 0; r < c->rows; r++) {
		tie[2 * r] = tie[2 * r + 1] = -1;
		if (r % 3 == 2 || 2 * r + 1 >= c->v)
			continue;
		double nrm = 0.0;

		ref_rmsnorm(xn, x + (size_t)r * c->h, nw, 1, c->h, EPS_NORM, 1.0);
		for (int i = 0; i < c->h; i++)
			nrm += xn[i] * xn[i];
		nrm = sqrt(nrm);
		double top = 8.0;
		if (c->neg) {		/* every row well below zero, the pair least so */
			for (int o = 0; o < c->v; o++)
				for (int i = 0; i < c->h; i++)
					wf[(size_t)o * c->h + i] +=
						(float)(-6.0 / sqrt((double)c->h) * xn[i] / nrm);
			perm[0] = c->v - 1;
			perm[1] = c->v / 2;
			top = -1.0;
		}
		for (int j = 0; j < 2; j++) {
			int o = perm[2 * r + j];

			tie[2 * r + j] = o;
			for (int i = 0; i < c->h; i++)
				wf[(size_t)o * c->h + i] =
					(float)(top / sqrt((double)c->h) * xn[i] / nrm);
		}
	}
	pack_rows(wf, wp, (size_t)c->v, c->h, c->dt);
	for (int r = 0; r < c->rows; r++) {
		if (c->dst == DST_ROW)
			dst[r] = r;
		else if (c->dst == DST_NONE || r % 2)
			dst[r] = -1;
		else
			dst[r] = (c->rows - 1) / 2 - r / 2;	/* packed, reversed */
		ndst += dst[r] >= 0;
	}

	ref_lm_head_argmax(want, ramax, x, nw, wf, c->rows, c->h, c->v, EPS_NORM);
	if (perturb)
		x[0] += 3.0f;
	krnl_lm_head_argmax(KW(x), KW(nw), wp, KW(logits), KW(dst), KW(amax), (uint32_t)c->rows,
			    (uint32_t)c->h, (uint32_t)c->v, EPS_NORM, c->dt, (uint32_t)c->v);

	int n = 0;
	double *wantg = gnew(&a, "want gathered", sizeof(*wantg) * nv);
	for (int r = 0; r < c->rows; r++) {
		if (dst[r] < 0)
			continue;
		memcpy(got + (size_t)n * c->v, logits + (size_t)dst[r] * c->v,
		       sizeof(*got) * c->v);
		memcpy(wantg + (size_t)n * c->v, want + (size_t)r * c->v,
		       sizeof(*wantg) * c->v);
		n++;
	}
	fails += cmp_rel(ctx, "logits", got, c->v, wantg, n, c->v, TOL_F32);
	for (size_t i = (size_t)ndst * c->v; i < nv; i++) {
		if (ref_f32_bits(logits[i]) != GUARD_WORD) {
			say("%s: logits written past the %d dst rows, at %zu\n", ctx, ndst, i);
			fails++;
			break;
		}
	}
	for (int r = 0; r < c->rows; r++) {
		const double *lr = want + (size_t)r * c->v;
		int k = amax[r], e = ramax[r];
		double scale = fabs(lr[e]) + 1e-30;

		if (c->neg && lr[e] >= 0.0) {
			say("%s: row %d: set-up: a logit is not negative (%g)\n", ctx, r, lr[e]);
			fails++;
		}
		if (tie[2 * r] >= 0) {
			int lo = tie[2 * r] < tie[2 * r + 1] ? tie[2 * r] : tie[2 * r + 1];

			if (e != lo) {
				say("%s: row %d: planted tie %d/%d is not the reference top (%d)\n",
				    ctx, r, tie[2 * r], tie[2 * r + 1], e);
				fails++;
			}
		}
		if (k < 0 || k >= c->v) {
			say("%s: row %d: argmax %d out of range\n", ctx, r, k);
			fails++;
			continue;
		}
		/* a different pick is only fine for a genuine near-tie (not an
		 * exact one, where the lower index must win) */
		if (k != e && !(lr[k] != lr[e] && lr[e] - lr[k] <= TOL_F32 * scale)) {
			say("%s: row %d: argmax got %d (logit %.9g) want %d (logit %.9g)\n",
			    ctx, r, k, lr[k], e, lr[e]);
			fails++;
		}
		/* and it is the first maximum of the logits the kernel wrote */
		if (dst[r] >= 0) {
			const float *kr = logits + (size_t)dst[r] * c->v;
			int f = 0;

			for (int o = 1; o < c->v; o++)
				f = kr[o] > kr[f] ? o : f;
			if (f != k) {
				say("%s: row %d: argmax %d but its own logits peak first at %d (%.9g vs %.9g)\n",
				    ctx, r, k, f, kr[k], kr[f]);
				fails++;
			}
		}
	}
	fails += arena_check(&a, ctx);
	arena_free(&a);
	return fails;
}

static void test_lm_head_argmax(void **state)
{
	(void)state;
	run_table("lm_head_argmax", lm_cases, sizeof(lm_cases) / sizeof(lm_cases[0]),
		  sizeof(lm_cases[0]), run_lm);
}

/* ======================================================================== */
/* the traffic meter (krnl_mem.h): exact beat counts per port               */

/* Register buffer p of bytes as port i (by the kernel's krnl_abi.h index, as
 * the emulated card does), rounded out to whole beats. */
static void mport(struct krnl_meter *m, int i, const void *p, size_t bytes)
{
	m->port[i].lo = (uintptr_t)p;
	m->port[i].hi = (uintptr_t)p + (bytes + KRNL_BEAT_BYTES - 1) / KRNL_BEAT_BYTES *
					      KRNL_BEAT_BYTES;
	m->port[i].port = (uint16_t)i;
	if ((uint32_t)i >= m->n_ports)
		m->n_ports = (uint32_t)i + 1;
}

static void mstart(struct krnl_meter *m)
{
	memset(m, 0, sizeof(*m));
	m->n_banks = 0;
}

/* Port i moved exactly rd beats in and wr beats out. */
static int mwant(const char *ctx, const char *name, const struct krnl_meter *m, int i,
		 uint64_t rd, uint64_t wr)
{
	if (m->port_beats[i][0] == rd && m->port_beats[i][1] == wr)
		return 0;
	fprintf(stderr, "%s: port %s: %llu beats read, %llu written; want %llu, %llu\n", ctx,
		name, (unsigned long long)m->port_beats[i][0],
		(unsigned long long)m->port_beats[i][1], (unsigned long long)rd,
		(unsigned long long)wr);
	return 1;
}

static int mnostray(const char *ctx, const struct krnl_meter *m)
{
	if (!m->stray_beats[0] && !m->stray_beats[1])
		return 0;
	fprintf(stderr, "%s: %llu beats read, %llu written outside every port\n", ctx,
		(unsigned long long)m->stray_beats[0], (unsigned long long)m->stray_beats[1]);
	return 1;
}

#define BEATS(nf) (((uint64_t)(nf) + BEAT_WORDS - 1) / BEAT_WORDS)	/* of nf floats */

static void test_meter(void **state)
{
	struct arena a = { .n = 0 };
	struct rng g = { 7 };
	struct krnl_meter m;
	int fails = 0;

	(void)state;
	/* ---- rmsnorm: x read once, w once, y written once ---- */
	{
		enum { R = 16, D = 2048 };
		float *x = gnew(&a, "x", sizeof(float) * R * D);
		float *w = gnew(&a, "w", sizeof(float) * D);
		float *y = gnew(&a, "y", sizeof(float) * R * D);
		float *other = gnew(&a, "not a port", 64);
		const char *ctx = "meter rmsnorm";

		fill(&g, x, (size_t)R * D, -1.0, 1.0);
		fill(&g, w, D, -0.3, 0.5);
		mstart(&m);
		mport(&m, RMS_X, x, sizeof(float) * R * D);
		mport(&m, RMS_W, w, sizeof(float) * D);
		mport(&m, RMS_Y, y, sizeof(float) * R * D);
		krnl_meter_cur = &m;
		krnl_rmsnorm(KW(x), KW(w), KW(y), R, D, EPS_NORM, 1.0f);
		krnl_meter_cur = NULL;
		fails += mwant(ctx, "x", &m, RMS_X, (uint64_t)R * D / 16, 0);
		fails += mwant(ctx, "w", &m, RMS_W, D / 16, 0);
		fails += mwant(ctx, "y", &m, RMS_Y, 0, (uint64_t)R * D / 16);
		fails += mnostray(ctx, &m);
		printf("  %-20s x %llu w %llu y %llu beats, stray %llu\n", "meter rmsnorm",
		       (unsigned long long)m.port_beats[RMS_X][0],
		       (unsigned long long)m.port_beats[RMS_W][0],
		       (unsigned long long)m.port_beats[RMS_Y][1],
		       (unsigned long long)(m.stray_beats[0] + m.stray_beats[1]));

		/* one more word read by a kernel moves its port by exactly one beat */
		krnl_meter_cur = &m;
		krnl_word extra = krnl_rd(KW(x), 5);
		krnl_meter_cur = NULL;
		(void)extra;
		fails += mwant("meter: one extra read", "x", &m, RMS_X, (uint64_t)R * D / 16 + 1, 0);
		krnl_meter_cur = &m;
		krnl_wr_f32(KW(y), 3, w, 1);		/* one strobed lane: one beat */
		krnl_meter_cur = NULL;
		fails += mwant("meter: one extra write", "y", &m, RMS_Y, 0, (uint64_t)R * D / 16 + 1);
		krnl_meter_cur = &m;
		extra = krnl_rd(KW(other), 0);		/* no port: stray */
		krnl_meter_cur = NULL;
		if (m.stray_beats[0] != 1 || m.stray_beats[1] != 0) {
			fprintf(stderr, "meter: a read outside the ports: stray %llu/%llu, want 1/0\n",
				(unsigned long long)m.stray_beats[0],
				(unsigned long long)m.stray_beats[1]);
			fails++;
		}
		/* without a meter nothing is counted */
		krnl_rmsnorm(KW(x), KW(w), KW(y), R, D, EPS_NORM, 1.0f);
		fails += mwant("meter: detached", "x", &m, RMS_X, (uint64_t)R * D / 16 + 1, 0);
		arena_free(&a);
	}
	/* ---- conv1d_step: taps once; per row x and its state read once, written once ---- */
	{
		enum { R = 5, CH = 512, K = 4, XS = 528, NS = 8 };
		size_t per = (size_t)CH * (K - 1);
		float *x = gnew(&a, "x", sizeof(float) * R * XS);
		float *w = gnew(&a, "w", sizeof(float) * CH * K);
		float *st = gnew(&a, "state", sizeof(float) * NS * per);
		int32_t *sl = gnew(&a, "slots", sizeof(int32_t) * 2 * R);
		const char *ctx = "meter conv1d_step";

		for (int r = 0; r < R; r++)
			fill(&g, x + (size_t)r * XS, CH, -1.0, 1.0);
		fill(&g, w, (size_t)CH * K, -0.5, 0.5);
		fill(&g, st, NS * per, -1.0, 1.0);
		pick_handles(&g, sl, R, NS);
		mstart(&m);
		mport(&m, CONV_X, x, sizeof(float) * ((R - 1) * XS + CH));
		mport(&m, CONV_W, w, sizeof(float) * CH * K);
		mport(&m, CONV_STATE, st, sizeof(float) * NS * per);
		mport(&m, CONV_BLOCKS, sl, sizeof(int32_t) * 2 * R);
		krnl_meter_cur = &m;
		krnl_conv1d_step(KW(x), KW(w), KW(st), KW(sl), R, CH, K, XS, NS);
		krnl_meter_cur = NULL;
		fails += mwant(ctx, "x", &m, CONV_X, (uint64_t)R * CH / 16, (uint64_t)R * CH / 16);
		fails += mwant(ctx, "w", &m, CONV_W, (uint64_t)CH * K / 16, 0);
		fails += mwant(ctx, "state", &m, CONV_STATE, R * per / 16, R * per / 16);
		fails += mwant(ctx, "blocks", &m, CONV_BLOCKS, 1, 0);
		fails += mnostray(ctx, &m);
		arena_free(&a);
	}
	/* ---- deltanet_step: each state tile read once and written once ---- */
	{
		enum { R = 3, NK = 2, NV = 4, DK = 64, DV = 64, NS = 5 };
		enum { W = 2 * NK * DK + NV * DV, XS = W + 16 };
		size_t per = (size_t)NV * DK * DV;
		float *qkv = gnew(&a, "qkv", sizeof(float) * R * XS);
		float *ba = gnew(&a, "ba", sizeof(float) * R * 2 * NV);
		float *al = gnew(&a, "a_log", sizeof(float) * NV);
		float *dtb = gnew(&a, "dt_bias", sizeof(float) * NV);
		float *st = gnew(&a, "state", sizeof(float) * NS * per);
		int32_t *sl = gnew(&a, "slots", sizeof(int32_t) * 2 * R);
		float *out = gnew(&a, "out", sizeof(float) * R * NV * DV);
		const char *ctx = "meter deltanet_step";

		for (int r = 0; r < R; r++)
			fill(&g, qkv + (size_t)r * XS, W, -1.0, 1.0);
		fill(&g, ba, R * 2 * NV, -2.0, 2.0);
		fill(&g, al, NV, -1.0, 1.0);
		fill(&g, dtb, NV, -1.0, 1.0);
		fill(&g, st, NS * per, -0.1, 0.1);
		pick_handles(&g, sl, R, NS);
		mstart(&m);
		mport(&m, DN_QKV, qkv, sizeof(float) * ((R - 1) * XS + W));
		mport(&m, DN_BA, ba, sizeof(float) * R * 2 * NV);
		mport(&m, DN_ALOG, al, sizeof(float) * NV);
		mport(&m, DN_DTB, dtb, sizeof(float) * NV);
		mport(&m, DN_STATE, st, sizeof(float) * NS * per);
		mport(&m, DN_BLOCKS, sl, sizeof(int32_t) * 2 * R);
		mport(&m, DN_OUT, out, sizeof(float) * R * NV * DV);
		krnl_meter_cur = &m;
		krnl_deltanet_step(KW(qkv), KW(ba), KW(al), KW(dtb), KW(st), KW(sl), KW(out), R, NK,
				   NV, DK, DV, XS, NS);
		krnl_meter_cur = NULL;
		fails += mwant(ctx, "qkv", &m, DN_QKV, (uint64_t)R * W / 16, 0);
		fails += mwant(ctx, "ba", &m, DN_BA, BEATS(R * 2 * NV), 0);
		fails += mwant(ctx, "a_log", &m, DN_ALOG, BEATS(NV), 0);
		fails += mwant(ctx, "dt_bias", &m, DN_DTB, BEATS(NV), 0);
		fails += mwant(ctx, "state", &m, DN_STATE, R * per / 16, R * per / 16);
		fails += mwant(ctx, "blocks", &m, DN_BLOCKS, 1, 0);
		fails += mwant(ctx, "out", &m, DN_OUT, 0, (uint64_t)R * NV * DV / 16);
		fails += mnostray(ctx, &m);
		arena_free(&a);
	}
	/* ---- attn_decode: each kv head's prefix read once for its whole group ---- */
	{
		enum { R = 2, NH = 8, NKV = 2, HD = 64, RD = 32, TABW = 2, NS = 3 };
		size_t per = (size_t)TABW * krnl_kv_page(NKV, HD);	/* pages of one handle */
		float *qg = gnew(&a, "qg", sizeof(float) * R * 2 * NH * HD);
		float *k = gnew(&a, "k", sizeof(float) * R * NKV * HD);
		float *v = gnew(&a, "v", sizeof(float) * R * NKV * HD);
		float *qn = gnew(&a, "q_norm", sizeof(float) * HD);
		float *kn = gnew(&a, "k_norm", sizeof(float) * HD);
		float *kc = gnew(&a, "k cache", sizeof(float) * NS * per);
		float *vc = gnew(&a, "v cache", sizeof(float) * NS * per);
		int32_t *sl = gnew(&a, "slots", sizeof(int32_t) * R);
		int32_t *ps = gnew(&a, "pos", sizeof(int32_t) * R);
		int32_t *bt = gnew(&a, "block tables", sizeof(int32_t) * NS * TABW);
		float *rope = gnew(&a, "rope", sizeof(float) * R * RD);
		float *out = gnew(&a, "out", sizeof(float) * R * NH * HD);
		const char *ctx = "meter attn_decode";

		fill(&g, qg, (size_t)R * 2 * NH * HD, -1.0, 1.0);
		fill(&g, k, (size_t)R * NKV * HD, -1.0, 1.0);
		fill(&g, v, (size_t)R * NKV * HD, -1.0, 1.0);
		fill(&g, qn, HD, -0.3, 0.3);
		fill(&g, kn, HD, -0.3, 0.3);
		fill(&g, kc, NS * per, -1.0, 1.0);
		fill(&g, vc, NS * per, -1.0, 1.0);
		sl[0] = 2;
		sl[1] = 0;
		ps[0] = 70;	/* its second page */
		ps[1] = 4;
		for (int i = 0; i < NS * TABW; i++)
			bt[i] = NS * TABW - 1 - i;
		for (int r = 0; r < R; r++)
			rope_row(rope + (size_t)r * RD, ps[r], RD, 1e4);
		mstart(&m);
		mport(&m, AT_QG, qg, sizeof(float) * R * 2 * NH * HD);
		mport(&m, AT_K, k, sizeof(float) * R * NKV * HD);
		mport(&m, AT_V, v, sizeof(float) * R * NKV * HD);
		mport(&m, AT_QNW, qn, sizeof(float) * HD);
		mport(&m, AT_KNW, kn, sizeof(float) * HD);
		mport(&m, AT_KC, kc, sizeof(float) * NS * per);
		mport(&m, AT_VC, vc, sizeof(float) * NS * per);
		mport(&m, AT_BLOCKS, sl, sizeof(int32_t) * R);
		mport(&m, AT_BT, bt, sizeof(int32_t) * NS * TABW);
		mport(&m, AT_POS, ps, sizeof(int32_t) * R);
		mport(&m, AT_ROPE, rope, sizeof(float) * R * RD);
		mport(&m, AT_OUT, out, sizeof(float) * R * NH * HD);
		krnl_meter_cur = &m;
		krnl_attn_decode(KW(qg), KW(k), KW(v), KW(qn), KW(kn), KW(kc), KW(vc), KW(sl),
				 KW(ps), KW(rope), KW(bt), KW(out), NULL, R, NH, NKV, HD, RD, EPS_NORM, TABW,
				 NS * TABW, NS, KRNL_FMT_F32, WHOLE);
		krnl_meter_cur = NULL;
		/* prefix 0..pos-1 of every kv head, once; the new entry only written */
		uint64_t pre = (uint64_t)(ps[0] + ps[1]) * NKV * HD / 16;
		fails += mwant(ctx, "qg", &m, AT_QG, (uint64_t)R * 2 * NH * HD / 16, 0);
		fails += mwant(ctx, "k", &m, AT_K, (uint64_t)R * NKV * HD / 16, 0);
		fails += mwant(ctx, "v", &m, AT_V, (uint64_t)R * NKV * HD / 16, 0);
		fails += mwant(ctx, "q_norm", &m, AT_QNW, HD / 16, 0);
		fails += mwant(ctx, "k_norm", &m, AT_KNW, HD / 16, 0);
		fails += mwant(ctx, "k cache", &m, AT_KC, pre, (uint64_t)R * NKV * HD / 16);
		fails += mwant(ctx, "v cache", &m, AT_VC, pre, (uint64_t)R * NKV * HD / 16);
		fails += mwant(ctx, "blocks", &m, AT_BLOCKS, 1, 0);
		/* a table word for the new entry's page, and one per page of the
		 * prefix per kv head: 1 + 2*2 and 1 + 2*1 */
		fails += mwant(ctx, "bt", &m, AT_BT, 8, 0);
		fails += mwant(ctx, "pos", &m, AT_POS, 1, 0);
		fails += mwant(ctx, "rope", &m, AT_ROPE, (uint64_t)R * RD / 16, 0);
		fails += mwant(ctx, "out", &m, AT_OUT, 0, (uint64_t)R * NH * HD / 16);
		fails += mnostray(ctx, &m);
		printf("  %-20s k cache %llu beats read (prefixes %d + %d, %d kv heads), %llu written\n",
		       "meter attn_decode", (unsigned long long)m.port_beats[AT_KC][0], ps[0], ps[1],
		       NKV, (unsigned long long)m.port_beats[AT_KC][1]);
		arena_free(&a);
	}
	/* ---- moe_router: count once, one beat per chosen expert's list row ---- */
	{
		enum { R = 3, NE = 64, TOPK = 4 };
		float *lg = gnew(&a, "logits", sizeof(float) * R * NE);
		uint32_t *cnt = gnew(&a, "count", sizeof(uint32_t) * NE);
		int32_t *list = gnew(&a, "list", sizeof(int32_t) * NE * KRNL_MAX_BATCH);
		float *lw = gnew(&a, "listw", sizeof(float) * NE * KRNL_MAX_BATCH);
		const char *ctx = "meter moe_router";
		uint64_t used = 0;

		fill(&g, lg, (size_t)R * NE, -3.0, 3.0);
		mstart(&m);
		mport(&m, RT_LOGITS, lg, sizeof(float) * R * NE);
		mport(&m, RT_COUNT, cnt, sizeof(uint32_t) * NE);
		mport(&m, RT_LIST, list, sizeof(int32_t) * NE * KRNL_MAX_BATCH);
		mport(&m, RT_LISTW, lw, sizeof(float) * NE * KRNL_MAX_BATCH);
		krnl_meter_cur = &m;
		krnl_moe_router(KW(lg), KW(cnt), KW(list), KW(lw), R, NE, TOPK, 1);
		krnl_meter_cur = NULL;
		for (int e = 0; e < NE; e++)
			used += cnt[e] > 0;
		fails += mwant(ctx, "logits", &m, RT_LOGITS, (uint64_t)R * NE / 16, 0);
		fails += mwant(ctx, "count", &m, RT_COUNT, 0, NE / 16);
		fails += mwant(ctx, "list", &m, RT_LIST, 0, used);
		fails += mwant(ctx, "listw", &m, RT_LISTW, 0, used);
		fails += mnostray(ctx, &m);
		arena_free(&a);
	}
	/* ---- sampler: each logits row read once, params in one burst ---- */
	{
		enum { R = 3, V = 1024 };
		float *lg = gnew(&a, "logits", sizeof(float) * R * V);
		struct krnl_sample_params *sp = gnew(&a, "params", sizeof(*sp) * R);
		int32_t *tok = gnew(&a, "token", sizeof(int32_t) * R);
		float *lp = gnew(&a, "logprob", sizeof(float) * R);
		const char *ctx = "meter sampler";

		fill(&g, lg, (size_t)R * V, -5.0, 5.0);
		for (int r = 0; r < R; r++)
			sp[r] = (struct krnl_sample_params){ .temperature = r ? 0.8f : 0.0f,
							     .top_p = 0.9f, .top_k = 40,
							     .seed_lo = 1, .counter = (uint32_t)r,
							     .src_row = (uint32_t)(R - 1 - r) };
		mstart(&m);
		mport(&m, SMP_LOGITS, lg, sizeof(float) * R * V);
		mport(&m, SMP_PARAMS, sp, sizeof(*sp) * R);
		mport(&m, SMP_TOKEN, tok, sizeof(int32_t) * R);
		mport(&m, SMP_LOGPROB, lp, sizeof(float) * R);
		krnl_meter_cur = &m;
		krnl_sampler(KW(lg), KW(sp), KW(tok), KW(lp), R, V);
		krnl_meter_cur = NULL;
		fails += mwant(ctx, "logits", &m, SMP_LOGITS, (uint64_t)R * V / 16, 0);
		fails += mwant(ctx, "params", &m, SMP_PARAMS, BEATS(R * sizeof(*sp) / 4), 0);
		fails += mwant(ctx, "token", &m, SMP_TOKEN, 0, 1);
		fails += mwant(ctx, "logprob", &m, SMP_LOGPROB, 0, 1);
		fails += mnostray(ctx, &m);
		arena_free(&a);
	}
	assert_int_equal(fails, 0);
}

/* ======================================================================== */
/* the harness itself                                                       */

static void test_harness_selftest(void **state)
{
	struct arena a = { .n = 0 };
	double want[8];
	float got[8];

	(void)state;
	/* bf16 round to nearest even */
	assert_int_equal(ref_f32_to_bf16(1.0f), 0x3f80);
	assert_int_equal(ref_f32_to_bf16(-1.5f), 0xbfc0);
	assert_int_equal(ref_f32_to_bf16(ref_bits_f32(0x3f808000u)), 0x3f80);	/* tie, even down */
	assert_int_equal(ref_f32_to_bf16(ref_bits_f32(0x3f818000u)), 0x3f82);	/* tie, even up */
	assert_int_equal(ref_f32_to_bf16(ref_bits_f32(0x3f808001u)), 0x3f81);
	assert_int_equal(ref_f32_to_bf16(ref_bits_f32(0x3f807fffu)), 0x3f80);
	assert_int_equal(ref_f32_to_bf16(INFINITY), 0x7f80);
	assert_int_equal(ref_f32_to_bf16(ref_bits_f32(0x7f7fffffu)), 0x7f80);	/* overflows to inf */
	assert_true(isnan(ref_bf16_to_f32(ref_f32_to_bf16(NAN))));
	assert_true(ref_bf16_round(3.0f) == 3.0f);

	g_quiet = 1;
	for (int i = 0; i < 8; i++) {
		want[i] = 0.25 * (i + 1);
		got[i] = (float)want[i];
	}
	assert_int_equal(cmp_rel("self", "same", got, 8, want, 1, 8, TOL_F32), 0);
	got[5] *= 1.0f + 1e-4f;
	assert_int_equal(cmp_rel("self", "one off", got, 8, want, 1, 8, TOL_F32), 1);
	got[5] = NAN;
	assert_int_equal(cmp_rel("self", "nan", got, 8, want, 1, 8, 1.0), 1);
	got[5] = (float)want[5];
	assert_int_equal(cmp_rel("self", "exact", got, 8, want, 1, 8, 0.0), 0);
	got[7] = nextafterf(got[7], 10.0f);
	assert_int_equal(cmp_rel("self", "exact", got, 8, want, 1, 8, 0.0), 1);
	assert_int_equal(cmp_bits("self", "bits", got, got, 8), 0);

	float *p = gnew(&a, "probe", sizeof(*p) * 10);
	float *q = gnew(&a, "probe2", sizeof(*q) * 3);
	assert_int_equal((uintptr_t)p % KRNL_BEAT_BYTES, 0);	/* ports start on a beat */
	assert_int_equal((uintptr_t)q % KRNL_BEAT_BYTES, 0);
	assert_int_equal(arena_check(&a, "self"), 0);
	p[15] = 0.0f;				/* the rest of the last beat is guarded too */
	assert_int_equal(arena_check(&a, "self"), 1);
	p[15] = ref_bits_f32(GUARD_WORD);
	p[16 + GUARD_WORDS - 1] = 0.0f;		/* and the beat after it */
	assert_int_equal(arena_check(&a, "self"), 1);
	p[16 + GUARD_WORDS - 1] = ref_bits_f32(GUARD_WORD);
	assert_int_equal(cmp_bits("self", "bits", p, q, 3), 0);	/* both pattern */
	p[10] = 0.0f;						/* one past the end */
	assert_int_equal(arena_check(&a, "self"), 1);
	p[10] = ref_bits_f32(GUARD_WORD);
	q[-1] = 1.0f;						/* one before */
	assert_int_equal(arena_check(&a, "self"), 1);
	q[-1] = ref_bits_f32(GUARD_WORD);
	assert_int_equal(arena_check(&a, "self"), 0);
	assert_int_equal(check_gaps("self", "gaps", p, 2, 3, 5), 0);
	p[8] = 1.0f;
	assert_int_equal(check_gaps("self", "gaps", p, 2, 3, 5), 1);
	assert_int_equal(cmp_bits("self", "bits", p, q, 3), 0);
	p[1] = 2.0f;
	assert_int_equal(cmp_bits("self", "bits", p, q, 3), 1);
	g_quiet = 0;
	assert_true(isnan(p[0]));		/* the pattern poisons reads */
	arena_free(&a);
}

/* Speculative rows: a sequence's second row (a draft token) reads the state
 * its first row wrote and writes to a spare handle, so the state after the
 * first row survives for a rejected draft.  Rows: A->A, A->B (spare), C->C;
 * handle 1 is not in the step.  Checked against the scalar reference run
 * row by row on copies. */
static void test_gdn_spec_rows(void **state)
{
	enum { CH = 100, K = 4, NK = 2, NV = 4, DK = 32, DV = 16, NS = 4, R = 3 };
	enum { W = 2 * NK * DK + NV * DV };
	const int32_t hin[R] = { 2, 2, 3 }, hout[R] = { 2, 0, 3 };
	size_t cper = (size_t)CH * (K - 1), dper = (size_t)NV * DK * DV;
	struct arena a = { .n = 0 };
	struct rng g = { 91 };
	int fails = 0;

	(void)state;
	/* ---- conv1d ---- */
	float *x = gnew(&a, "x", sizeof(float) * R * CH);
	float *xin = gnew(&a, "xin", sizeof(float) * R * CH);
	float *w = gnew(&a, "w", sizeof(float) * CH * K);
	float *st = gnew(&a, "conv state", sizeof(float) * NS * cper);
	float *hist = gnew(&a, "conv hist", sizeof(float) * NS * cper);
	int32_t *bl = gnew(&a, "blocks", sizeof(int32_t) * 2 * R);
	double *want = gnew(&a, "want", sizeof(double) * R * CH);

	fill(&g, x, (size_t)R * CH, -2.0, 2.0);
	fill(&g, w, (size_t)CH * K, -0.6, 0.6);
	fill(&g, st, NS * cper, -1.0, 1.0);
	memcpy(xin, x, sizeof(float) * R * CH);
	memcpy(hist, st, sizeof(float) * NS * cper);
	memcpy(bl, hin, sizeof(hin));
	memcpy(bl + R, hout, sizeof(hout));
	for (int r = 0; r < R; r++) {
		if (hout[r] != hin[r])	/* the spare starts from what row r reads */
			memcpy(hist + hout[r] * cper, hist + hin[r] * cper, sizeof(float) * cper);
		ref_conv1d_step(want + (size_t)r * CH, xin + (size_t)r * CH, w,
				hist + hout[r] * cper, CH, K);
	}
	krnl_conv1d_step(KW(x), KW(w), KW(st), KW(bl), R, CH, K, CH, NS);
	fails += cmp_rel("conv spec rows", "x out", x, CH, want, R, CH, TOL_F32);
	/* A holds the state after its first row only, B after both, 1 untouched */
	fails += cmp_bits("conv spec rows", "states", st, hist, NS * cper);
	fails += arena_check(&a, "conv spec rows");

	/* ---- deltanet ---- */
	float *qkv = gnew(&a, "qkv", sizeof(float) * R * W);
	float *ba = gnew(&a, "ba", sizeof(float) * R * 2 * NV);
	float *al = gnew(&a, "a_log", sizeof(float) * NV);
	float *dtb = gnew(&a, "dt_bias", sizeof(float) * NV);
	float *ds = gnew(&a, "dn state", sizeof(float) * NS * dper);
	float *ds0 = gnew(&a, "dn state before", sizeof(float) * NS * dper);
	float *out = gnew(&a, "out", sizeof(float) * R * NV * DV);
	double *S = gnew(&a, "S", sizeof(double) * NS * dper);
	double *dwant = gnew(&a, "dn want", sizeof(double) * R * NV * DV);

	fill(&g, qkv, (size_t)R * W, -1.0, 1.5);
	fill(&g, ba, (size_t)R * 2 * NV, -3.0, 3.0);
	fill(&g, al, NV, -2.0, 2.5);
	fill(&g, dtb, NV, -1.0, 1.0);
	fill(&g, ds, NS * dper, -0.2, 0.2);
	memcpy(ds0, ds, sizeof(float) * NS * dper);
	for (size_t i = 0; i < NS * dper; i++)
		S[i] = ds[i];
	for (int r = 0; r < R; r++) {
		if (hout[r] != hin[r])
			memcpy(S + hout[r] * dper, S + hin[r] * dper, sizeof(double) * dper);
		ref_deltanet_step(dwant + (size_t)r * NV * DV, qkv + (size_t)r * W,
				  ba + (size_t)r * 2 * NV, al, dtb, S + hout[r] * dper, NK, NV, DK, DV);
	}
	krnl_deltanet_step(KW(qkv), KW(ba), KW(al), KW(dtb), KW(ds), KW(bl), KW(out), R, NK, NV,
			   DK, DV, W, NS);
	fails += cmp_rel("deltanet spec rows", "out", out, (size_t)NV * DV, dwant, R,
			 (size_t)NV * DV, TOL_F32);
	for (int h = 0; h < NS; h++) {
		char what[48];

		snprintf(what, sizeof(what), "state of handle %d", h);
		if (h == 1)
			fails += cmp_bits("deltanet spec rows", what, ds + h * dper, ds0 + h * dper, dper);
		else
			fails += cmp_rel("deltanet spec rows", what, ds + h * dper, dper, S + h * dper,
					 1, dper, TOL_F32);
	}
	fails += arena_check(&a, "deltanet spec rows");
	arena_free(&a);
	assert_int_equal(fails, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_harness_selftest),
		cmocka_unit_test(test_embed_gather),
		cmocka_unit_test(test_rmsnorm),
		cmocka_unit_test(test_rmsnorm_gated),
		cmocka_unit_test(test_gemv),
		cmocka_unit_test(test_conv1d_step),
		cmocka_unit_test(test_deltanet_step),
		cmocka_unit_test(test_gdn_spec_rows),
		cmocka_unit_test(test_attn_decode),
		cmocka_unit_test(test_attn_split),
		cmocka_unit_test(test_moe_router),
		cmocka_unit_test(test_expert_ffn),
		cmocka_unit_test(test_lm_head_argmax),
		cmocka_unit_test(test_meter),
	};

	return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
