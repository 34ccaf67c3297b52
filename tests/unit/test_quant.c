/* test_quant.c — format specs, the --quant plan, and the card-row encoder.
 *
 * Every format is encoded from seeded random rows (widths that are and are
 * not multiples of the group and of the beat) and decoded twice: by the
 * host's reference decoder and by the kernels' own (krnl_wrow_load over
 * krnl_unpack), which must agree to the bit.  Errors are bounded per format,
 * padding must be zero, nothing may be written past the row, and a flipped
 * byte must be seen: the comparison can fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rng.h"

#include "host/model/quant.h"
/* The kernels' header carries #pragma HLS and loop labels gcc does not use. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunknown-pragmas"
#pragma GCC diagnostic ignored "-Wunused-label"
#include "krnl_mem.h"
#pragma GCC diagnostic pop

#define GUARD 64		/* sentinel bytes after each encoded row */
#define SENTINEL 0xa5

static const uint32_t widths[] = { 1, 16, 33, 64, 100, 128, 130, 1000, 2048 };
#define NWIDTHS (sizeof(widths) / sizeof(widths[0]))

/* ---- seeded random numbers (splitmix64) --------------------------------- */

static struct rng g_seed = { 0x5eed0001ull };

static uint64_t rnd(void)
{
	return rng_next(&g_seed);
}

static double unit(void)
{
	return rng_unit(&g_seed);
}

/* Weight-like values: mostly Gaussian of scale sd, now and then an outlier,
 * now and then an exact zero. */
static float weight(double sd)
{
	double u1 = unit() + 1e-12, u2 = unit(), g;

	g = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2) * sd;
	if (rnd() % 97 == 0)
		g *= 8.0;
	if (rnd() % 89 == 0)
		g = 0.0;
	return (float)g;
}

static void fill_row(float *x, uint32_t cols, double sd)
{
	for (uint32_t c = 0; c < cols; c++)
		x[c] = weight(sd);
}

/* ---- the formats under test --------------------------------------------- */

static const char *const specs[] = {
	"f32", "bf16", "f16", "int8:32", "int8:64", "int8:128", "int4:32", "int4:64", "int4:128",
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

static uint32_t dt_of(const char *spec)
{
	uint32_t dt = 0;

	assert_int_equal(nc_fmt_parse(spec, &dt), 0);
	assert_true(krnl_dt_valid(dt));
	return dt;
}

/* Row bytes worked out here from krnl_types.h's comment, not its functions. */
static uint64_t expect_row_bytes(uint32_t dt, uint32_t cols)
{
	uint32_t f = KRNL_DT_FMT(dt), g = KRNL_DT_GROUP(dt);

	switch (f) {
	case KRNL_FMT_F32:
		return (cols * 4 + 63) / 64 * 64;
	case KRNL_FMT_BF16:
	case KRNL_FMT_F16:
		return (cols * 2 + 63) / 64 * 64;
	case KRNL_FMT_INT8:
		return ((cols + g - 1) / g * 4 + 63) / 64 * 64 + (cols + 63) / 64 * 64;
	default:
		return ((cols + g - 1) / g * 4 + 63) / 64 * 64 + ((cols + 1) / 2 + 63) / 64 * 64;
	}
}

/* An encoded row in a 64-byte aligned buffer, sentinels behind it. */
struct row {
	uint32_t dt, cols;
	uint64_t bytes;
	uint8_t *buf;
	float *src, *dec, *kdec;
};

static void row_init(struct row *r, uint32_t dt, uint32_t cols)
{
	uint32_t epb = krnl_fmt_epb(KRNL_DT_FMT(dt));
	size_t padded = (size_t)(cols + epb - 1) / epb * epb;

	r->dt = dt;
	r->cols = cols;
	r->bytes = nc_quant_row_bytes(dt, cols);
	r->buf = aligned_alloc(64, (size_t)r->bytes + GUARD);
	r->src = calloc(cols, sizeof(float));
	r->dec = calloc(cols, sizeof(float));
	r->kdec = calloc(padded, sizeof(float));	/* krnl_wrow_load writes whole beats */
	assert_non_null(r->buf);
	assert_non_null(r->src);
	assert_non_null(r->dec);
	assert_non_null(r->kdec);
}

static void row_free(struct row *r)
{
	free(r->buf);
	free(r->src);
	free(r->dec);
	free(r->kdec);
}

/* Encode over garbage (0xff) so unwritten padding shows, sentinels after. */
static void row_encode(struct row *r, enum nc_round round)
{
	memset(r->buf, 0xff, r->bytes);
	memset(r->buf + r->bytes, SENTINEL, GUARD);
	nc_quant_encode_row_ex(r->dt, r->src, r->cols, r->buf, round);
	for (uint32_t i = 0; i < GUARD; i++)
		if (r->buf[r->bytes + i] != SENTINEL)
			fail_msg("%s cols %u: byte %u past the row written",
				 krnl_fmt_name(KRNL_DT_FMT(r->dt)), r->cols, i);
}

static void row_decode(struct row *r)
{
	nc_quant_decode_row(r->dt, r->buf, r->cols, r->dec);
	krnl_wrow_load((const krnl_word *)(const void *)r->buf, 0, r->dt, r->cols, r->kdec);
}

static float scale_of(const struct row *r, uint32_t k)
{
	float s;

	memcpy(&s, r->buf + 4 * (size_t)k, 4);
	return s;
}

/* Bytes that must be zero: past the values of a float row; past the group
 * scales and past the values of an integer row (and an odd int4 row's last
 * high nibble). */
static void check_padding(const struct row *r)
{
	uint32_t f = KRNL_DT_FMT(r->dt), g = KRNL_DT_GROUP(r->dt), cols = r->cols;
	uint64_t sb = (uint64_t)krnl_scale_beats(r->dt, cols) * 64, i, used;

	if (!krnl_fmt_quant(f)) {
		used = (uint64_t)cols * (f == KRNL_FMT_F32 ? 4 : 2);
		for (i = used; i < r->bytes; i++)
			if (r->buf[i])
				fail_msg("%s cols %u: padding byte %llu is 0x%02x",
					 krnl_fmt_name(f), cols, (unsigned long long)i, r->buf[i]);
		return;
	}
	for (i = (cols + g - 1) / g * 4; i < sb; i++)
		if (r->buf[i])
			fail_msg("%s:%u cols %u: scale padding byte %llu is 0x%02x",
				 krnl_fmt_name(f), g, cols, (unsigned long long)i, r->buf[i]);
	used = f == KRNL_FMT_INT8 ? cols : (cols + 1) / 2;
	for (i = sb + used; i < r->bytes; i++)
		if (r->buf[i])
			fail_msg("%s:%u cols %u: value padding byte %llu is 0x%02x",
				 krnl_fmt_name(f), g, cols, (unsigned long long)i, r->buf[i]);
	if (f == KRNL_FMT_INT4 && (cols & 1))
		assert_int_equal(r->buf[sb + cols / 2] >> 4, 0);
}

/* The kernels' decoder and the host's give the same floats, bit for bit. */
static void check_kernel_agrees(const struct row *r)
{
	for (uint32_t c = 0; c < r->cols; c++)
		if (memcmp(&r->dec[c], &r->kdec[c], 4))
			fail_msg("%s cols %u: element %u: host decodes %.9g, kernel %.9g",
				 krnl_fmt_name(KRNL_DT_FMT(r->dt)), r->cols, c, (double)r->dec[c],
				 (double)r->kdec[c]);
}

/* One dot product through krnl_wrow_dot against the decoded row in double. */
static void check_kernel_dot(const struct row *r)
{
	uint32_t epb = krnl_fmt_epb(KRNL_DT_FMT(r->dt));
	size_t padded = (size_t)(r->cols + epb - 1) / epb * epb;
	float *x = calloc(padded, sizeof(float)), out = 0.0f;
	double want = 0.0, mag = 0.0;

	assert_non_null(x);
	for (uint32_t c = 0; c < r->cols; c++) {
		x[c] = (float)(unit() * 2.0 - 1.0);
		want += (double)x[c] * r->dec[c];
		mag += fabs((double)x[c] * r->dec[c]);
	}
	krnl_wrow_dot((const krnl_word *)(const void *)r->buf, 0, r->dt, r->cols, x, 0, 1, &out);
	if (fabs(out - want) > 1e-5 * mag + 1e-30)
		fail_msg("%s cols %u: krnl_wrow_dot %.9g, decoded row gives %.9g",
			 krnl_fmt_name(KRNL_DT_FMT(r->dt)), r->cols, (double)out, want);
	free(x);
}

/* Per-format error bounds of decode(encode(x)). */
static void check_error(const struct row *r, enum nc_round round)
{
	uint32_t f = KRNL_DT_FMT(r->dt), g = KRNL_DT_GROUP(r->dt);
	int32_t qmax = f == KRNL_FMT_INT8 ? 127 : 7;

	for (uint32_t c = 0; c < r->cols; c++) {
		double x = r->src[c], e = fabs((double)r->dec[c] - x), bound;

		switch (f) {
		case KRNL_FMT_F32:
			bound = 0.0;
			break;
		case KRNL_FMT_BF16:
			bound = fabs(x) * 0x1p-8;
			break;
		case KRNL_FMT_F16:	/* half an ulp; subnormal ulp is 2^-24 */
			bound = fmax(fabs(x) * 0x1p-11, 0x1p-25);
			break;
		default: {
			float s = scale_of(r, c / g);
			double in = (double)qmax * s;

			/* inside the clipped range: half a step; outside it: the clip;
			 * plus the f32 rounding of x / scale and of q * scale */
			double slack = s * qmax * 0x1p-20;

			bound = s / 2.0 + slack + 1e-30;
			if (round == NC_ROUND_CLIP && fabs(x) > in)
				bound = fmax(bound, fabs(x) - in + slack);
			break;
		}
		}
		if (!(e <= bound))
			fail_msg("%s:%u cols %u: element %u: %.9g decodes to %.9g (error %.3g > %.3g)",
				 krnl_fmt_name(f), g, r->cols, c, x, (double)r->dec[c], e, bound);
	}
}

/* Integer scales: 0 for a group of zeros, else within the clip search's range. */
static void check_scales(const struct row *r, enum nc_round round)
{
	uint32_t f = KRNL_DT_FMT(r->dt), g = KRNL_DT_GROUP(r->dt);
	int32_t qmax = f == KRNL_FMT_INT8 ? 127 : 7;

	if (!krnl_fmt_quant(f))
		return;
	for (uint32_t k = 0; k < (r->cols + g - 1) / g; k++) {
		float amax = 0.0f, s = scale_of(r, k);

		for (uint32_t c = k * g; c < r->cols && c < (k + 1) * g; c++)
			amax = fmaxf(amax, fabsf(r->src[c]));
		if (amax == 0.0f) {
			assert_true(s == 0.0f);
			continue;
		}
		assert_true(s <= amax / qmax * (1.0f + 1e-6f));
		if (round == NC_ROUND_RTN)
			assert_true(s == amax / (float)qmax);
		else
			assert_true(s >= 0.75f * amax / qmax * (1.0f - 1e-6f));
	}
}

static void roundtrip(uint32_t dt, uint32_t cols, enum nc_round round, double sd)
{
	struct row r;

	row_init(&r, dt, cols);
	assert_int_equal(r.bytes, expect_row_bytes(dt, cols));
	assert_int_equal(r.bytes, (uint64_t)krnl_row_beats(dt, cols) * KRNL_BEAT_BYTES);
	assert_int_equal(krnl_matrix_bytes(dt, 3, cols), 3 * r.bytes);
	fill_row(r.src, cols, sd);
	/* one whole group of zeros where the row has room for it */
	if (cols >= 256)
		memset(r.src + 128, 0, 128 * sizeof(float));
	row_encode(&r, round);
	row_decode(&r);
	check_padding(&r);
	check_kernel_agrees(&r);
	check_kernel_dot(&r);
	check_error(&r, round);
	check_scales(&r, round);
	row_free(&r);
}

static void test_roundtrip(void **state)
{
	static const double sds[] = { 0.02, 1.0, 3e-4 };

	for (size_t i = 0; i < NSPECS; i++)
		for (size_t w = 0; w < NWIDTHS; w++)
			for (size_t s = 0; s < sizeof(sds) / sizeof(sds[0]); s++) {
				roundtrip(dt_of(specs[i]), widths[w], NC_ROUND_CLIP, sds[s]);
				roundtrip(dt_of(specs[i]), widths[w], NC_ROUND_RTN, sds[s]);
			}
}

/* A row of zeros: zero bytes throughout (scales 0 included). */
static void test_zero_row(void **state)
{
	for (size_t i = 0; i < NSPECS; i++) {
		struct row r;

		row_init(&r, dt_of(specs[i]), 1000);
		row_encode(&r, NC_ROUND_CLIP);
		for (uint64_t b = 0; b < r.bytes; b++)
			assert_int_equal(r.buf[b], 0);
		row_decode(&r);
		for (uint32_t c = 0; c < r.cols; c++)
			assert_true(r.dec[c] == 0.0f && r.kdec[c] == 0.0f);
		row_free(&r);
	}
}

/* f16: every finite half encodes to itself, every midpoint to the even
 * neighbour, past 65520 to inf; bf16 midpoints likewise. */
static void test_half_rounding(void **state)
{
	uint32_t dt16 = dt_of("f16"), dtb = dt_of("bf16");
	uint8_t b[64];
	float x;
	uint16_t h, got;

	for (uint32_t i = 0; i < 0x10000; i++) {
		h = (uint16_t)i;
		if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
			continue;	/* NaN */
		x = krnl_f16_f32(h);
		nc_quant_encode_row(dt16, &x, 1, b);
		memcpy(&got, b, 2);
		assert_int_equal(got, h);
		if ((h & 0x7fff) >= 0x7bff)
			continue;	/* no finite upper neighbour */
		x = (krnl_f16_f32(h) + krnl_f16_f32((uint16_t)(h + 1))) / 2.0f;
		nc_quant_encode_row(dt16, &x, 1, b);
		memcpy(&got, b, 2);
		assert_int_equal(got, (h & 1) ? h + 1 : h);
	}
	x = 65519.0f;
	nc_quant_encode_row(dt16, &x, 1, b);
	memcpy(&got, b, 2);
	assert_int_equal(got, 0x7bff);
	x = -65520.0f;
	nc_quant_encode_row(dt16, &x, 1, b);
	memcpy(&got, b, 2);
	assert_int_equal(got, 0xfc00);
	for (uint32_t i = 0; i < 0x7f7f; i += 7) {
		h = (uint16_t)i;
		x = krnl_bf16_f32(h) + (krnl_bf16_f32((uint16_t)(h + 1)) - krnl_bf16_f32(h)) / 2.0f;
		nc_quant_encode_row(dtb, &x, 1, b);
		memcpy(&got, b, 2);
		assert_int_equal(got, (h & 1) ? h + 1 : h);
	}
}

/* The clip search never does worse than RTN on a group, and on heavy-tailed
 * groups it does better somewhere. */
static void test_clip_vs_rtn(void **state)
{
	static const int32_t qmaxes[] = { 7, 127 };
	static const uint32_t groups[] = { 32, 64, 128 };
	float x[KRNL_MAX_GROUP];
	double e_rtn, e_clip, sum_rtn = 0.0, sum_clip = 0.0;
	int better = 0;

	for (int t = 0; t < 3000; t++) {
		int32_t qmax = qmaxes[t % 2];
		uint32_t n = groups[t % 3] - (uint32_t)(t % 5 == 0 ? rnd() % 31 : 0);

		for (uint32_t i = 0; i < n; i++)
			x[i] = weight(0.05);
		nc_quant_group_scale(x, n, qmax, NC_ROUND_RTN, &e_rtn);
		nc_quant_group_scale(x, n, qmax, NC_ROUND_CLIP, &e_clip);
		if (!(e_clip <= e_rtn))
			fail_msg("group %d (n %u, qmax %d): clip error %.9g > rtn %.9g", t, n, qmax,
				 e_clip, e_rtn);
		better += e_clip < e_rtn;
		sum_rtn += e_rtn;
		sum_clip += e_clip;
	}
	assert_true(better > 100);
	print_message("clip search: lower error on %d of 3000 groups, total %.4g vs rtn %.4g\n",
		      better, sum_clip, sum_rtn);
	/* whole rows: the decoded error adds up the same way */
	for (size_t i = 3; i < NSPECS; i++) {
		struct row r;
		double er = 0.0, ec = 0.0;

		row_init(&r, dt_of(specs[i]), 1000);
		fill_row(r.src, r.cols, 0.02);
		row_encode(&r, NC_ROUND_RTN);
		row_decode(&r);
		for (uint32_t c = 0; c < r.cols; c++)
			er += ((double)r.dec[c] - r.src[c]) * ((double)r.dec[c] - r.src[c]);
		row_encode(&r, NC_ROUND_CLIP);
		row_decode(&r);
		for (uint32_t c = 0; c < r.cols; c++)
			ec += ((double)r.dec[c] - r.src[c]) * ((double)r.dec[c] - r.src[c]);
		assert_true(ec <= er);
		row_free(&r);
	}
}

/* Flipping one byte of an encoded row changes what it decodes to: in the
 * values of every format, and in a scale of the integer ones. */
static void test_perturbation(void **state)
{
	for (size_t i = 0; i < NSPECS; i++) {
		uint32_t dt = dt_of(specs[i]);
		uint64_t sb = (uint64_t)krnl_scale_beats(dt, 100) * 64;
		uint64_t at[2] = { sb + 5, 0 };
		struct row r;
		float *ref;

		row_init(&r, dt, 100);
		ref = calloc(100, sizeof(float));
		assert_non_null(ref);
		for (uint32_t c = 0; c < 100; c++)
			r.src[c] = (float)(c % 13) - 6.5f;
		row_encode(&r, NC_ROUND_CLIP);
		row_decode(&r);
		memcpy(ref, r.dec, 100 * sizeof(float));
		for (int k = 0; k < (krnl_fmt_quant(KRNL_DT_FMT(dt)) ? 2 : 1); k++) {
			r.buf[at[k]] ^= 0x10;
			row_decode(&r);
			assert_true(memcmp(ref, r.dec, 100 * sizeof(float)) != 0);
			assert_true(memcmp(ref, r.kdec, 100 * sizeof(float)) != 0);
			r.buf[at[k]] ^= 0x10;
		}
		row_decode(&r);
		assert_memory_equal(ref, r.dec, 100 * sizeof(float));
		free(ref);
		row_free(&r);
	}
}

static void test_fmt_parse(void **state)
{
	static const struct {
		const char *spec;
		uint32_t dt;
	} ok[] = {
		{ "f32", KRNL_DT(KRNL_FMT_F32, 0) },
		{ "bf16", KRNL_DT(KRNL_FMT_BF16, 0) },
		{ "f16", KRNL_DT(KRNL_FMT_F16, 0) },
		{ "int8", KRNL_DT(KRNL_FMT_INT8, 64) },
		{ "int8:32", KRNL_DT(KRNL_FMT_INT8, 32) },
		{ "int8:128", KRNL_DT(KRNL_FMT_INT8, 128) },
		{ "int4", KRNL_DT(KRNL_FMT_INT4, 64) },
		{ "int4:32", KRNL_DT(KRNL_FMT_INT4, 32) },
		{ "int4:64", KRNL_DT(KRNL_FMT_INT4, 64) },
	};
	static const struct {
		const char *spec;
		int rc;
	} bad[] = {
		{ "", -NC_QERR_FORMAT },	{ "int5", -NC_QERR_FORMAT },
		{ "INT8", -NC_QERR_FORMAT },	{ "int", -NC_QERR_FORMAT },
		{ "int8x", -NC_QERR_FORMAT },	{ ":64", -NC_QERR_FORMAT },
		{ "int8:48", -NC_QERR_GROUP },	{ "int8:", -NC_QERR_GROUP },
		{ "int4:064", -NC_QERR_GROUP },	{ "int4:64:", -NC_QERR_GROUP },
		{ "bf16:64", -NC_QERR_GROUP },	{ "f32:32", -NC_QERR_GROUP },
		{ "int4:256", -NC_QERR_GROUP },
	};
	char buf[32];
	uint32_t dt;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		dt = 0xdead;
		assert_int_equal(nc_fmt_parse(ok[i].spec, &dt), 0);
		assert_int_equal(dt, ok[i].dt);
		assert_true(krnl_dt_valid(dt));
		assert_int_equal(nc_fmt_parse(nc_fmt_spec(dt, buf, sizeof(buf)), &dt), 0);
		assert_int_equal(dt, ok[i].dt);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dt = 0xdead;
		assert_int_equal(nc_fmt_parse(bad[i].spec, &dt), bad[i].rc);
		assert_int_equal(dt, 0xdead);
		assert_true(strlen(nc_quant_strerror(bad[i].rc)) > 5);
	}
	assert_int_equal(nc_fmt_parse(NULL, &dt), -NC_QERR_FORMAT);
	assert_string_equal(nc_fmt_spec(KRNL_DT(KRNL_FMT_INT4, 128), buf, sizeof(buf)),
			    "int4:128");
}

static void test_meta(void **state)
{
	static const char *const bad[] = {
		"int4:64", "int4:64:", "int4:64:0", "int4:64:012", "int4:64:12x", "int5:64:12",
		"int4:48:12", ":12", "12", "", "int4:64:99999999999",
	};
	uint32_t dt, cols;
	char buf[48];

	nc_quant_meta_format(KRNL_DT(KRNL_FMT_INT4, 64), 2048, buf, sizeof(buf));
	assert_string_equal(buf, "int4:64:2048");
	assert_int_equal(nc_quant_meta_parse("int4:64:2048", &dt, &cols), 0);
	assert_int_equal(dt, KRNL_DT(KRNL_FMT_INT4, 64));
	assert_int_equal(cols, 2048);
	assert_int_equal(nc_quant_meta_parse("int8:128:100", &dt, &cols), 0);
	assert_int_equal(dt, KRNL_DT(KRNL_FMT_INT8, 128));
	assert_int_equal(cols, 100);
	assert_int_equal(nc_quant_meta_parse("bf16:7", &dt, &cols), 0);
	assert_int_equal(dt, KRNL_DT(KRNL_FMT_BF16, 0));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (nc_quant_meta_parse(bad[i], &dt, &cols) != -NC_QERR_META)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(nc_quant_meta_parse(NULL, &dt, &cols), -NC_QERR_META);
}

static void expect_plan(const char *spec, const char *const want[NC_TC_COUNT],
			enum nc_round round)
{
	struct nc_quant_plan p;
	char err[128], buf[32];

	if (nc_quant_plan_parse(spec, &p, err, sizeof(err)))
		fail_msg("'%s' refused: %s", spec, err);
	for (int c = 0; c < NC_TC_COUNT; c++) {
		if (!want[c]) {
			if (p.set[c])
				fail_msg("'%s': %s set", spec, nc_tclass_name(c));
			continue;
		}
		if (!p.set[c] || strcmp(nc_fmt_spec(p.dt[c], buf, sizeof(buf)), want[c]))
			fail_msg("'%s': %s is %s, want %s", spec, nc_tclass_name(c),
				 p.set[c] ? buf : "unset", want[c]);
	}
	assert_int_equal(p.round, round);
}

static void test_plan(void **state)
{
	static const char *const bad[] = {
		"", "int5", "int8:48", "int4-all:96", "int4-al", "experts=int4,experts=int8",
		"foo=int8", "experts=", "=int8", "experts=int4,int8", ",int8", "int8,", "int8,,rtn",
		"rtn", "rtn,clip", "int8,int4", "experts=int4:48", "head=bf16:64", "int4 ",
	};
	struct nc_quant_plan p;
	char err[128];

	expect_plan("int8", (const char *[]){ "int8:64", "int8:64", "int8:64", "int8:64" },
		    NC_ROUND_CLIP);
	expect_plan("int8:128", (const char *[]){ "int8:128", "int8:128", "int8:128", "int8:128" },
		    NC_ROUND_CLIP);
	expect_plan("int4", (const char *[]){ "int4:64", "int8:64", "int8:64", "int8:64" },
		    NC_ROUND_CLIP);
	expect_plan("int4:32", (const char *[]){ "int4:32", "int8:32", "int8:32", "int8:32" },
		    NC_ROUND_CLIP);
	expect_plan("int4-all", (const char *[]){ "int4:64", "int4:64", "int4:64", "int4:64" },
		    NC_ROUND_CLIP);
	expect_plan("int4-all:128,rtn",
		    (const char *[]){ "int4:128", "int4:128", "int4:128", "int4:128" },
		    NC_ROUND_RTN);
	expect_plan("experts=int4:64,attn=int8,shared=bf16,head=bf16",
		    (const char *[]){ "int4:64", "int8:64", "bf16", "bf16" }, NC_ROUND_CLIP);
	expect_plan("experts=int4", (const char *[]){ "int4:64", NULL, NULL, NULL }, NC_ROUND_CLIP);
	expect_plan("rtn,head=int8:32", (const char *[]){ NULL, NULL, NULL, "int8:32" },
		    NC_ROUND_RTN);
	expect_plan("int4,head=bf16,clip",
		    (const char *[]){ "int4:64", "int8:64", "int8:64", "bf16" }, NC_ROUND_CLIP);
	expect_plan("bf16", (const char *[]){ "bf16", "bf16", "bf16", "bf16" }, NC_ROUND_CLIP);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (nc_quant_plan_parse(bad[i], &p, err, sizeof(err)) != -NC_QERR_PLAN)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(strlen(err) > 5 && !strchr(err, '\n'));
	}
	assert_int_equal(nc_quant_plan_parse(NULL, &p, NULL, 0), -NC_QERR_PLAN);
	assert_string_equal(nc_tclass_name(NC_TC_SHARED), "shared");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fmt_parse),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_plan),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_zero_row),
		cmocka_unit_test(test_half_rounding),
		cmocka_unit_test(test_clip_vs_rtn),
		cmocka_unit_test(test_perturbation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
