/* quant.c — format specs, the --quant plan, and one row in the card's layout.
 *
 * The layout is krnl_types.h's; the decoder the encoder must invert is
 * krnl_unpack() in krnl_mem.h.  Everything here is scalar and plain: the
 * quantizer runs once per checkpoint, the decoder is the reference.
 */
#include "host/model/quant.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/model/safetensors.h"
#include "host/model/st_write.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "quant.c writes the card's little-endian rows with memcpy"
#endif

/* Clipping ratios the search tries, largest first: 1.0 is plain RTN, so the
 * search can only lower a group's error. */
static const float clip_alpha[] = { 1.0f, 0.95f, 0.9f, 0.85f, 0.8f, 0.75f };
#define N_ALPHA (sizeof(clip_alpha) / sizeof(clip_alpha[0]))

const char *nc_quant_strerror(int err)
{
	static const char *const msg[] = {
		[0] = "success",
		[NC_QERR_FORMAT] = "unknown weight format",
		[NC_QERR_GROUP] = "group must be 32, 64 or 128 (integer formats only)",
		[NC_QERR_PLAN] = "malformed --quant spec",
		[NC_QERR_META] = "malformed nextcard.format metadata",
	};

	if (err < 0)
		err = -err;
	if ((size_t)err >= sizeof(msg) / sizeof(msg[0]))
		return "unknown error";
	return msg[err];
}

/* ---- format specs -------------------------------------------------------- */

int nc_fmt_parse(const char *spec, uint32_t *dt)
{
	const char *colon;
	size_t n;
	uint32_t f, g = 0;

	if (!spec)
		return -NC_QERR_FORMAT;
	colon = strchr(spec, ':');
	n = colon ? (size_t)(colon - spec) : strlen(spec);
	for (f = 0; f < KRNL_FMT_COUNT; f++)
		if (strlen(krnl_fmt_name(f)) == n && !strncmp(spec, krnl_fmt_name(f), n))
			break;
	if (f == KRNL_FMT_COUNT)
		return -NC_QERR_FORMAT;
	if (colon) {
		if (!krnl_fmt_quant(f))
			return -NC_QERR_GROUP;
		if (!strcmp(colon + 1, "32"))
			g = 32;
		else if (!strcmp(colon + 1, "64"))
			g = 64;
		else if (!strcmp(colon + 1, "128"))
			g = 128;
		else
			return -NC_QERR_GROUP;
	} else if (krnl_fmt_quant(f)) {
		g = NC_QUANT_DEFAULT_GROUP;
	}
	*dt = KRNL_DT(f, g);
	return 0;
}

char *nc_fmt_spec(uint32_t dt, char *buf, size_t len)
{
	uint32_t f = KRNL_DT_FMT(dt);

	if (krnl_fmt_quant(f))
		snprintf(buf, len, "%s:%u", krnl_fmt_name(f), KRNL_DT_GROUP(dt));
	else
		snprintf(buf, len, "%s", krnl_fmt_name(f));
	return buf;
}

char *nc_quant_meta_format(uint32_t dt, uint32_t cols, char *buf, size_t len)
{
	char s[32];

	snprintf(buf, len, "%s:%u", nc_fmt_spec(dt, s, sizeof(s)), cols);
	return buf;
}

int nc_quant_meta_parse(const char *v, uint32_t *dt, uint32_t *cols)
{
	const char *c = v ? strrchr(v, ':') : NULL;
	char spec[32], *end;
	unsigned long n;
	uint32_t d;

	if (!c || (size_t)(c - v) >= sizeof(spec) || c[1] < '1' || c[1] > '9')
		return -NC_QERR_META;
	errno = 0;
	n = strtoul(c + 1, &end, 10);
	if (errno || *end || n > UINT32_MAX)
		return -NC_QERR_META;
	memcpy(spec, v, (size_t)(c - v));
	spec[c - v] = 0;
	if (nc_fmt_parse(spec, &d))
		return -NC_QERR_META;
	/* the group is spelled out: "int4:64" alone is not "int4" of 64 columns */
	if (krnl_fmt_quant(KRNL_DT_FMT(d)) && !strchr(spec, ':'))
		return -NC_QERR_META;
	*dt = d;
	*cols = (uint32_t)n;
	return 0;
}

/* ---- the plan ------------------------------------------------------------ */

const char *nc_tclass_name(enum nc_tclass c)
{
	static const char *const n[NC_TC_COUNT] = {
		[NC_TC_EXPERT] = "experts",
		[NC_TC_ATTN] = "attn",
		[NC_TC_SHARED] = "shared",
		[NC_TC_HEAD] = "head",
	};

	return (unsigned)c < NC_TC_COUNT ? n[c] : "?";
}

static int plan_fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int plan_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -NC_QERR_PLAN;
}

static int fmt_fail(char *err, size_t errlen, const char *item, int rc)
{
	if (rc == -NC_QERR_GROUP)
		return plan_fail(err, errlen,
				 "'%s': the group must be 32, 64 or 128, and only int8/int4 take one",
				 item);
	return plan_fail(err, errlen,
			 "'%s': unknown format (f32, bf16, f16, int8[:G], int4[:G], int4-all[:G])",
			 item);
}

/* A whole-model preset: int4[:G], int4-all[:G] or any single format. */
static int plan_preset(const char *item, struct nc_quant_plan *p, char *err, size_t errlen)
{
	char spec[32];
	uint32_t dt, i8;
	int all = 0, rc;
	int c;

	if (strlen(item) >= sizeof(spec))
		return fmt_fail(err, errlen, item, -NC_QERR_FORMAT);
	snprintf(spec, sizeof(spec), "%s", item);
	if (!strncmp(spec, "int4-all", 8) && (spec[8] == 0 || spec[8] == ':')) {
		memmove(spec + 4, spec + 8, strlen(spec + 8) + 1);
		all = 1;
	}
	rc = nc_fmt_parse(spec, &dt);
	if (rc)
		return fmt_fail(err, errlen, item, rc);
	i8 = krnl_fmt_quant(KRNL_DT_FMT(dt)) ? KRNL_DT(KRNL_FMT_INT8, KRNL_DT_GROUP(dt))
					     : dt;
	for (c = 0; c < NC_TC_COUNT; c++) {
		p->set[c] = 1;
		p->dt[c] = dt;
		/* int4 where it costs little (the experts), int8 elsewhere */
		if (KRNL_DT_FMT(dt) == KRNL_FMT_INT4 && !all && c != NC_TC_EXPERT)
			p->dt[c] = i8;
	}
	return 0;
}

static int plan_class(const char *item, const char *eq, struct nc_quant_plan *p,
		      int *explicit, char *err, size_t errlen)
{
	size_t n = (size_t)(eq - item);
	uint32_t dt;
	int c, rc;

	for (c = 0; c < NC_TC_COUNT; c++)
		if (strlen(nc_tclass_name(c)) == n && !strncmp(item, nc_tclass_name(c), n))
			break;
	if (c == NC_TC_COUNT)
		return plan_fail(err, errlen,
				 "'%s': unknown class (experts, attn, shared, head)", item);
	if (explicit[c])
		return plan_fail(err, errlen, "'%s': class %s given twice", item,
				 nc_tclass_name(c));
	rc = nc_fmt_parse(eq + 1, &dt);
	if (rc)
		return fmt_fail(err, errlen, item, rc);
	explicit[c] = 1;
	p->set[c] = 1;
	p->dt[c] = dt;
	return 0;
}

int nc_quant_plan_parse(const char *s, struct nc_quant_plan *p, char *err, size_t errlen)
{
	int explicit[NC_TC_COUNT] = { 0 }, nround = 0, nitems = 0, any = 0;
	char buf[256], *item, *save = NULL;
	const char *eq;
	int rc, c;

	memset(p, 0, sizeof(*p));
	if (err && errlen)
		err[0] = 0;
	if (!s || !*s)
		return plan_fail(err, errlen, "empty --quant spec");
	if (strlen(s) >= sizeof(buf))
		return plan_fail(err, errlen, "--quant spec longer than %zu bytes",
				 sizeof(buf) - 1);
	if (s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,"))
		return plan_fail(err, errlen, "'%s': empty item", s);
	snprintf(buf, sizeof(buf), "%s", s);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		nitems++;
		eq = strchr(item, '=');
		if (!strcmp(item, "rtn") || !strcmp(item, "clip")) {
			if (nround++)
				return plan_fail(err, errlen, "rounding given twice");
			p->round = item[0] == 'r' ? NC_ROUND_RTN : NC_ROUND_CLIP;
			continue;
		}
		if (eq) {
			rc = plan_class(item, eq, p, explicit, err, errlen);
		} else if (nitems - nround != 1) {
			/* a preset first, then overrides: "int4,head=bf16" */
			return plan_fail(err, errlen,
					 "'%s': a whole-model format must be the first item", item);
		} else {
			rc = plan_preset(item, p, err, errlen);
		}
		if (rc)
			return rc;
	}
	for (c = 0; c < NC_TC_COUNT; c++)
		any |= p->set[c];
	if (!any)
		return plan_fail(err, errlen, "'%s': no format given", s);
	return 0;
}

/* ---- integer formats ----------------------------------------------------- */

static int32_t qmax_of(uint32_t fmt)
{
	return fmt == KRNL_FMT_INT8 ? 127 : 7;
}

/* Round to nearest even for |v| <= 2^22, without libm (no SSE4.1 round). */
static inline float rne(float v)
{
	return (v + 0x1.8p23f) - 0x1.8p23f;
}

/* q = round(x / scale) clamped to [-qmax, qmax], through inv = 1 / scale
 * (0 for a zero scale); a NaN lands on -qmax. */
static inline int32_t quant1(float x, float inv, float qmax)
{
	float v = x * inv;

	v = v > -qmax ? v : -qmax;
	v = v < qmax ? v : qmax;
	return (int32_t)rne(v);
}

static float inv_of(float scale)
{
	return scale != 0.0f ? 1.0f / scale : 0.0f;
}

static double group_sqerr(const float *x, uint32_t n, float scale, int32_t qmax)
{
	float inv = inv_of(scale), fq = (float)qmax;
	double e = 0.0, d;
	uint32_t i;

	for (i = 0; i < n; i++) {
		d = (double)((float)quant1(x[i], inv, fq) * scale) - (double)x[i];
		e += d * d;
	}
	return e;
}

float nc_quant_group_scale(const float *x, uint32_t n, int32_t qmax, enum nc_round r,
			   double *sqerr)
{
	float amax = 0.0f, best = 0.0f, s;
	double e, best_e = 0.0;
	uint32_t i, a, na = r == NC_ROUND_RTN ? 1 : (uint32_t)N_ALPHA;

	for (i = 0; i < n; i++)
		if (fabsf(x[i]) > amax)
			amax = fabsf(x[i]);
	if (amax == 0.0f) {
		if (sqerr)
			*sqerr = 0.0;
		return 0.0f;
	}
	for (a = 0; a < na; a++) {
		s = clip_alpha[a] * amax / (float)qmax;
		e = group_sqerr(x, n, s, qmax);
		if (a == 0 || e < best_e) {
			best_e = e;
			best = s;
		}
	}
	if (sqerr)
		*sqerr = best_e;
	return best;
}

static void put_f32(uint8_t *p, float f)
{
	memcpy(p, &f, 4);
}

static float get_f32(const uint8_t *p)
{
	float f;

	memcpy(&f, p, 4);
	return f;
}

/* Scales at the head of the row (sb beats), then the values. */
static void encode_int(uint32_t dt, const float *src, uint32_t cols, uint8_t *dst,
		       enum nc_round round)
{
	uint32_t fmt = KRNL_DT_FMT(dt), g = KRNL_DT_GROUP(dt);
	uint32_t ng = (cols + g - 1) / g, c, k, n;
	uint8_t *val = dst + (uint64_t)krnl_scale_beats(dt, cols) * KRNL_BEAT_BYTES;
	int32_t qmax = qmax_of(fmt), q;
	float s, inv;

	for (k = 0; k < ng; k++) {
		n = cols - k * g < g ? cols - k * g : g;
		s = nc_quant_group_scale(src + k * g, n, qmax, round, NULL);
		inv = inv_of(s);
		put_f32(dst + 4 * k, s);
		for (c = k * g; c < k * g + n; c++) {
			q = quant1(src[c], inv, (float)qmax);
			if (fmt == KRNL_FMT_INT8)
				val[c] = (uint8_t)(int8_t)q;
			else
				val[c / 2] |= (uint8_t)((q & 0xf) << (4 * (c & 1)));
		}
	}
}

void nc_quant_encode_row_ex(uint32_t dt, const float *src, uint32_t cols, uint8_t *dst,
			    enum nc_round round)
{
	uint32_t fmt = KRNL_DT_FMT(dt), c;
	uint16_t h;

	memset(dst, 0, nc_quant_row_bytes(dt, cols));
	switch (fmt) {
	case KRNL_FMT_F32:
		memcpy(dst, src, (size_t)cols * 4);
		break;
	case KRNL_FMT_BF16:
	case KRNL_FMT_F16:
		for (c = 0; c < cols; c++) {
			h = fmt == KRNL_FMT_BF16 ? st_f32_to_bf16(src[c]) : st_f32_to_f16(src[c]);
			memcpy(dst + 2 * (size_t)c, &h, 2);
		}
		break;
	default:
		encode_int(dt, src, cols, dst, round);
		break;
	}
}

void nc_quant_encode_row(uint32_t dt, const float *src, uint32_t cols, uint8_t *dst)
{
	nc_quant_encode_row_ex(dt, src, cols, dst, NC_ROUND_CLIP);
}

void nc_quant_decode_row(uint32_t dt, const uint8_t *src, uint32_t cols, float *dst)
{
	uint32_t fmt = KRNL_DT_FMT(dt), g = KRNL_DT_GROUP(dt), c;
	const uint8_t *val = src + (uint64_t)krnl_scale_beats(dt, cols) * KRNL_BEAT_BYTES;
	uint16_t h;
	int32_t q;

	for (c = 0; c < cols; c++) {
		switch (fmt) {
		case KRNL_FMT_F32:
			dst[c] = get_f32(src + 4 * (size_t)c);
			break;
		case KRNL_FMT_BF16:
			memcpy(&h, src + 2 * (size_t)c, 2);
			dst[c] = st_bf16_to_f32(h);
			break;
		case KRNL_FMT_F16:
			memcpy(&h, src + 2 * (size_t)c, 2);
			dst[c] = st_f16_to_f32(h);
			break;
		case KRNL_FMT_INT8:
			dst[c] = (float)(int8_t)val[c] * get_f32(src + 4 * (size_t)(c / g));
			break;
		default:
			q = (val[c / 2] >> (4 * (c & 1))) & 0xf;
			if (q & 8)
				q -= 16;
			dst[c] = (float)q * get_f32(src + 4 * (size_t)(c / g));
			break;
		}
	}
}
