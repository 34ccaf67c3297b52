/* shim_emu.c — the emulated card: HBM banks in host memory, kernels run as
 * their HLS C-simulation code.
 *
 * Each kernel call is decoded from its argument registers (krnl_abi.h); every
 * buffer argument is bounds-checked against card memory and its traffic is
 * counted per bank and per kernel the way an AXI monitor on each m_axi port
 * would see it, so HBM bytes per token are measured, not estimated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "shim_card.h"
#include "krnl_common.h"
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

struct emu {
	uint8_t *hbm;
	uint64_t size;		/* end of the highest bank */
	struct fw_ctrl ctrl;	/* host-visible control block (a BAR in real life) */
};

static struct emu *EMU(struct shim_card *c)
{
	return c->priv;
}

static void *mem(struct shim_card *c, uint64_t addr, uint64_t n)
{
	struct emu *e = EMU(c);

	if (addr > e->size || n > e->size - addr)
		return NULL;
	return e->hbm + addr;
}

static int emu_open(struct shim_card *c, const char *arg, char *err, size_t errlen)
{
	struct emu *e = calloc(1, sizeof(*e));
	const struct fw_board *b = &c->board;

	if (!e || b->n_banks == 0) {
		snprintf(err, errlen, e ? "board has no memory banks" : "out of memory");
		free(e);
		return -1;
	}
	e->size = b->banks[b->n_banks - 1].base + b->banks[b->n_banks - 1].size;
	/* Untouched pages cost nothing: the card can be as large as the DT says. */
	e->hbm = mmap(NULL, e->size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (e->hbm == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %llu MiB of emulated card memory",
			 (unsigned long long)(e->size >> 20));
		free(e);
		return -1;
	}
	c->priv = e;
	c->ctrl = &e->ctrl;
	return 0;
}

static void emu_close(struct shim_card *c)
{
	struct emu *e = EMU(c);

	if (!e)
		return;
	munmap(e->hbm, e->size);
	free(e);
	c->priv = NULL;
}

static int emu_read(struct shim_card *c, uint64_t addr, void *dst, uint64_t n)
{
	void *p = mem(c, addr, n);

	if (!p)
		return -1;
	memcpy(dst, p, n);
	return 0;
}

static int emu_write(struct shim_card *c, uint64_t addr, const void *src, uint64_t n)
{
	void *p = mem(c, addr, n);

	if (!p)
		return -1;
	memcpy(p, src, n);
	return 0;
}

static int emu_fill(struct shim_card *c, uint64_t addr, uint8_t v, uint64_t n)
{
	void *p = mem(c, addr, n);

	if (!p)
		return -1;
	memset(p, v, n);
	return 0;
}

/* A port access of kernel k: check the range, count it, give the pointer. */
struct port {
	struct shim_card *c;
	int k;
	int bad;
};

static void *port(struct port *p, uint64_t addr, uint64_t n, int rd, int wr)
{
	void *ptr = mem(p->c, addr, n);

	if (!ptr) {
		p->bad = 1;
		return NULL;
	}
	if (rd)
		shim_account(p->c, p->k, addr, n, 0);
	if (wr)
		shim_account(p->c, p->k, addr, n, 1);
	return ptr;
}

#define A(i) (k->arg[i])
#define U(i) ((uint32_t)k->arg[i])
#define FL(i) krnl_u2f(k->arg[i])
#define ES(dt) ((dt) == KRNL_DT_BF16 ? 2u : 4u)
#define RD 1, 0
#define WR 0, 1
#define RW 1, 1

static int run_embed(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(EMB_ROWS), dim = U(EMB_DIM), dt = U(EMB_DT);
	int32_t *ids = port(p, A(EMB_IDS), rows * 4ull, RD);
	float *out = port(p, A(EMB_OUT), (uint64_t)rows * dim * 4, WR);

	if (p->bad || rows > KRNL_MAX_BATCH || dim > KRNL_MAX_HIDDEN)
		return -1;
	/* the table is read one row per token; check and count each row */
	for (uint32_t r = 0; r < rows; r++) {
		if (ids[r] < 0)
			return -1;
		port(p, A(EMB_TABLE) + (uint64_t)ids[r] * dim * ES(dt), (uint64_t)dim * ES(dt), RD);
	}
	if (p->bad)
		return -1;
	krnl_embed_gather(ids, mem(p->c, A(EMB_TABLE), 0), out, rows, dim, dt);
	return 0;
}

static int run_rmsnorm(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(RMS_ROWS), dim = U(RMS_DIM);
	uint64_t n = (uint64_t)rows * dim * 4;
	float *x = port(p, A(RMS_X), n, RD);
	float *w = port(p, A(RMS_W), dim * 4ull, RD);
	float *y = port(p, A(RMS_Y), n, WR);

	if (p->bad || dim > KRNL_MAX_HIDDEN || rows > KRNL_MAX_BATCH * KRNL_MAX_HEADS)
		return -1;
	krnl_rmsnorm(x, w, y, rows, dim, FL(RMS_EPS), FL(RMS_WOFF));
	return 0;
}

static int run_rmsnorm_gated(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(RMG_ROWS), heads = U(RMG_HEADS), dim = U(RMG_DIM);
	uint32_t zs = U(RMG_ZSTRIDE);
	uint64_t n = (uint64_t)rows * heads * dim * 4;
	float *x = port(p, A(RMG_X), n, RD);
	float *w = port(p, A(RMG_W), dim * 4ull, RD);
	float *y = port(p, A(RMG_Y), n, WR);
	float *z = rows ? port(p, A(RMG_Z), ((uint64_t)(rows - 1) * zs + heads * dim) * 4, 0, 0) : NULL;

	if (p->bad || !z || rows > KRNL_MAX_BATCH || heads > KRNL_MAX_HEADS ||
	    dim > KRNL_MAX_HEAD_DIM || zs < heads * dim)
		return -1;
	for (uint32_t r = 0; r < rows; r++)
		shim_account(p->c, p->k, A(RMG_Z) + (uint64_t)r * zs * 4, heads * dim * 4ull, 0);
	krnl_rmsnorm_gated(x, z, w, y, rows, heads, dim, zs, FL(RMG_EPS));
	return 0;
}

/* A strided batch of rows: bounds of the whole span, traffic of the rows. */
static void *rows_port(struct port *p, uint64_t addr, uint32_t rows, uint32_t stride,
		       uint32_t width, int rd, int wr)
{
	void *ptr;

	if (rows == 0 || stride < width) {
		p->bad = 1;
		return NULL;
	}
	ptr = port(p, addr, ((uint64_t)(rows - 1) * stride + width) * 4, 0, 0);
	for (uint32_t r = 0; ptr && r < rows; r++) {
		if (rd)
			shim_account(p->c, p->k, addr + (uint64_t)r * stride * 4, width * 4ull, 0);
		if (wr)
			shim_account(p->c, p->k, addr + (uint64_t)r * stride * 4, width * 4ull, 1);
	}
	return ptr;
}

static int run_gemv(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(GEMV_ROWS), in = U(GEMV_IN), out = U(GEMV_OUT), dt = U(GEMV_DT);
	uint32_t acc = U(GEMV_ACC);
	float *x = rows_port(p, A(GEMV_X), rows, U(GEMV_XSTRIDE), in, RD);
	uint16_t *w = port(p, A(GEMV_W), (uint64_t)out * in * ES(dt), RD);
	float *y = rows_port(p, A(GEMV_Y), rows, U(GEMV_YSTRIDE), out, acc != 0, 1);

	if (p->bad || rows > KRNL_MAX_BATCH || in > KRNL_MAX_HIDDEN || out > KRNL_MAX_OUT)
		return -1;
	krnl_gemv(x, w, y, rows, in, out, U(GEMV_XSTRIDE), U(GEMV_YSTRIDE), dt, acc);
	return 0;
}

static int32_t *slots_of(struct port *p, uint64_t addr, uint32_t rows)
{
	int32_t *s = port(p, addr, rows * 4ull, RD);

	for (uint32_t r = 0; s && r < rows; r++)
		if (s[r] < 0 || s[r] >= FW_MAX_SLOTS)
			p->bad = 1;
	return s;
}

static int run_conv(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(CONV_ROWS), ch = U(CONV_CH), kk = U(CONV_K);
	int32_t *slots = slots_of(p, A(CONV_SLOTS), rows);
	float *x = rows_port(p, A(CONV_X), rows, U(CONV_XSTRIDE), ch, RW);
	float *w = port(p, A(CONV_W), (uint64_t)ch * kk * 4, RD);
	uint64_t per = (uint64_t)ch * (kk - 1) * 4;
	float *st = port(p, A(CONV_STATE), per * FW_MAX_SLOTS, 0, 0);

	if (p->bad || rows > KRNL_MAX_BATCH || ch > KRNL_MAX_CHAN || kk < 2 ||
	    kk > KRNL_MAX_CONV_K)
		return -1;
	for (uint32_t r = 0; r < rows; r++)
		port(p, A(CONV_STATE) + slots[r] * per, per, RW);
	krnl_conv1d_step(x, w, st, slots, rows, ch, kk, U(CONV_XSTRIDE));
	return 0;
}

static int run_deltanet(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(DN_ROWS), nk = U(DN_NK), nv = U(DN_NV), dk = U(DN_DK), dv = U(DN_DV);
	int32_t *slots = slots_of(p, A(DN_SLOTS), rows);
	float *qkv = rows_port(p, A(DN_QKV), rows, U(DN_XSTRIDE), 2 * nk * dk + nv * dv, RD);
	float *ba = port(p, A(DN_BA), rows * 2ull * nv * 4, RD);
	float *al = port(p, A(DN_ALOG), nv * 4ull, RD);
	float *dtb = port(p, A(DN_DTB), nv * 4ull, RD);
	uint64_t per = (uint64_t)nv * dk * dv * 4;
	float *st = port(p, A(DN_STATE), per * FW_MAX_SLOTS, 0, 0);
	float *out = port(p, A(DN_OUT), (uint64_t)rows * nv * dv * 4, WR);

	if (p->bad || rows > KRNL_MAX_BATCH || !nk || nv % nk || nv > KRNL_MAX_HEADS ||
	    dk > 256 || dv > 256)
		return -1;
	for (uint32_t r = 0; r < rows; r++)
		port(p, A(DN_STATE) + slots[r] * per, per, RW);
	krnl_deltanet_step(qkv, ba, al, dtb, st, slots, out, rows, nk, nv, dk, dv,
			   U(DN_XSTRIDE));
	return 0;
}

static int run_attn(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(AT_ROWS), nh = U(AT_NH), nkv = U(AT_NKV), hd = U(AT_HD);
	uint32_t maxctx = U(AT_MAXCTX);
	int32_t *slots = slots_of(p, A(AT_SLOTS), rows);
	int32_t *pos = port(p, A(AT_POS), rows * 4ull, RD);
	float *qg = port(p, A(AT_QG), (uint64_t)rows * 2 * nh * hd * 4, RD);
	float *kk = port(p, A(AT_K), (uint64_t)rows * nkv * hd * 4, RD);
	float *vv = port(p, A(AT_V), (uint64_t)rows * nkv * hd * 4, RD);
	float *qn = port(p, A(AT_QNW), hd * 4ull, RD);
	float *kn = port(p, A(AT_KNW), hd * 4ull, RD);
	uint64_t per = (uint64_t)nkv * maxctx * hd * 4;
	float *kc = port(p, A(AT_KC), per * FW_MAX_SLOTS, 0, 0);
	float *vc = port(p, A(AT_VC), per * FW_MAX_SLOTS, 0, 0);
	float *out = port(p, A(AT_OUT), (uint64_t)rows * nh * hd * 4, WR);

	if (p->bad || rows > KRNL_MAX_BATCH || !nkv || nh % nkv || nh / nkv > 16 ||
	    hd > KRNL_MAX_HEAD_DIM || U(AT_RD) > hd || U(AT_RD) % 2)
		return -1;
	for (uint32_t r = 0; r < rows; r++) {
		if (pos[r] < 0 || (uint32_t)pos[r] >= maxctx)
			return -1;
		for (uint32_t h = 0; h < nkv; h++) {
			uint64_t base = slots[r] * per + ((uint64_t)h * maxctx) * hd * 4;
			uint64_t upto = ((uint64_t)pos[r] + 1) * hd * 4;
			uint64_t at = base + (uint64_t)pos[r] * hd * 4;
			/* the new key/value written, then the whole prefix read */
			shim_account(p->c, p->k, A(AT_KC) + at, hd * 4ull, 1);
			shim_account(p->c, p->k, A(AT_VC) + at, hd * 4ull, 1);
			shim_account(p->c, p->k, A(AT_KC) + base, upto, 0);
			shim_account(p->c, p->k, A(AT_VC) + base, upto, 0);
		}
	}
	krnl_attn_decode(qg, kk, vv, qn, kn, kc, vc, slots, pos, out, rows, nh, nkv, hd,
			 U(AT_RD), FL(AT_THETA), FL(AT_EPS), maxctx);
	return 0;
}

static int run_router(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(RT_ROWS), ne = U(RT_NE), topk = U(RT_TOPK);
	float *lg = port(p, A(RT_LOGITS), (uint64_t)rows * ne * 4, RD);
	uint32_t *cnt = port(p, A(RT_COUNT), ne * 4ull, WR);
	int32_t *list = port(p, A(RT_LIST), (uint64_t)ne * KRNL_MAX_BATCH * 4, 0, 0);
	float *lw = port(p, A(RT_LISTW), (uint64_t)ne * KRNL_MAX_BATCH * 4, 0, 0);

	if (p->bad || rows > KRNL_MAX_BATCH || ne > KRNL_MAX_EXPERTS || !topk ||
	    topk > ne || topk > KRNL_MAX_TOPK)
		return -1;
	/* list entries written: one (row, weight) per selection */
	shim_account(p->c, p->k, A(RT_LIST), rows * topk * 4ull, 1);
	shim_account(p->c, p->k, A(RT_LISTW), rows * topk * 4ull, 1);
	krnl_moe_router(lg, cnt, list, lw, rows, ne, topk, U(RT_NORM));
	return 0;
}

static int run_experts(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(EF_ROWS), h = U(EF_H), ni = U(EF_I), ne = U(EF_NE), si = U(EF_SI);
	uint32_t dt = U(EF_DT);
	uint64_t eb = 3ull * ni * h * ES(dt);
	float *x = port(p, A(EF_X), (uint64_t)rows * h * 4, RD);
	uint16_t *w = port(p, A(EF_W), eb * ne, 0, 0);
	uint32_t *cnt = port(p, A(EF_COUNT), ne * 4ull, RD);
	int32_t *list = port(p, A(EF_LIST), (uint64_t)ne * KRNL_MAX_BATCH * 4, 0, 0);
	float *lw = port(p, A(EF_LISTW), (uint64_t)ne * KRNL_MAX_BATCH * 4, 0, 0);
	uint16_t *sw = si ? port(p, A(EF_SW), 3ull * si * h * ES(dt), RD) : NULL;
	float *sg = si ? port(p, A(EF_SGATE), h * 4ull, RD) : NULL;
	float *y = port(p, A(EF_Y), (uint64_t)rows * h * 4, 0, 0);

	if (p->bad || rows > KRNL_MAX_BATCH || h > KRNL_MAX_HIDDEN || ni > KRNL_MAX_INTER ||
	    si > KRNL_MAX_INTER || ne > KRNL_MAX_EXPERTS)
		return -1;
	for (uint32_t e = 0; e < ne; e++) {
		if (cnt[e] == 0)
			continue;
		if (cnt[e] > rows)
			return -1;
		for (uint32_t j = 0; j < cnt[e]; j++) {
			int32_t r = list[(uint64_t)e * KRNL_MAX_BATCH + j];
			if (r < 0 || (uint32_t)r >= rows)
				return -1;
			/* each routed row: its list entry read, its y row updated */
			shim_account(p->c, p->k, A(EF_LIST) + ((uint64_t)e * KRNL_MAX_BATCH + j) * 4, 4, 0);
			shim_account(p->c, p->k, A(EF_LISTW) + ((uint64_t)e * KRNL_MAX_BATCH + j) * 4, 4, 0);
			shim_account(p->c, p->k, A(EF_Y) + (uint64_t)r * h * 4, h * 4ull, 1);
			shim_account(p->c, p->k, A(EF_Y) + (uint64_t)r * h * 4, h * 4ull, 0);
		}
		/* the expert's weights, once for all its rows */
		shim_account(p->c, p->k, A(EF_W) + e * eb, eb, 0);
		atomic_fetch_add_explicit(&p->c->cnt.experts_fetched, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->c->cnt.expert_weight_bytes, eb, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->c->cnt.expert_rows, cnt[e], memory_order_relaxed);
	}
	if (si) {
		shim_account(p->c, p->k, A(EF_Y), (uint64_t)rows * h * 4, 0);
		shim_account(p->c, p->k, A(EF_Y), (uint64_t)rows * h * 4, 1);
	}
	krnl_expert_ffn(x, w, cnt, list, lw, sw, sg, y, rows, h, ni, ne, si, dt);
	return 0;
}

static int run_lm_head(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(LM_ROWS), h = U(LM_H), v = U(LM_V), dt = U(LM_DT);
	float *x = port(p, A(LM_X), (uint64_t)rows * h * 4, RD);
	float *nw = port(p, A(LM_NW), h * 4ull, RD);
	uint16_t *w = port(p, A(LM_W), (uint64_t)v * h * ES(dt), RD);
	int32_t *dst = port(p, A(LM_DST), rows * 4ull, RD);
	int32_t *am = port(p, A(LM_ARGMAX), rows * 4ull, WR);

	if (p->bad || rows > KRNL_MAX_BATCH || h > KRNL_MAX_HIDDEN || v > KRNL_MAX_VOCAB)
		return -1;
	for (uint32_t r = 0; r < rows; r++)
		if (dst[r] >= 0)
			port(p, A(LM_LOGITS) + (uint64_t)dst[r] * v * 4, v * 4ull, WR);
	if (p->bad)
		return -1;
	krnl_lm_head_argmax(x, nw, w, mem(p->c, A(LM_LOGITS), 0), dst, am, rows, h, v,
			    FL(LM_EPS), dt);
	return 0;
}

static int run_sampler(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(SMP_ROWS), v = U(SMP_V);
	struct krnl_sample_params *sp = port(p, A(SMP_PARAMS), rows * sizeof(*sp), RD);
	int32_t *tok = port(p, A(SMP_TOKEN), rows * 4ull, WR);
	float *lp = port(p, A(SMP_LOGPROB), rows * 4ull, WR);

	if (p->bad || rows > KRNL_MAX_BATCH || v == 0 || v > KRNL_MAX_VOCAB)
		return -1;
	/* one logits row per sampled row: read twice (top-k scan, normaliser) */
	for (uint32_t r = 0; r < rows; r++) {
		port(p, A(SMP_LOGITS) + (uint64_t)sp[r].src_row * v * 4, v * 4ull, RD);
		port(p, A(SMP_LOGITS) + (uint64_t)sp[r].src_row * v * 4, v * 4ull, RD);
	}
	if (p->bad)
		return -1;
	krnl_sampler(mem(p->c, A(SMP_LOGITS), 0), sp, tok, lp, rows, v);
	return 0;
}

static int emu_run(struct shim_card *c, const struct krnl_call *k)
{
	struct port p = { .c = c, .k = (int)k->id };

	switch (k->id) {
	case KRNL_EMBED_GATHER:	return run_embed(&p, k);
	case KRNL_RMSNORM:	return run_rmsnorm(&p, k);
	case KRNL_RMSNORM_GATED: return run_rmsnorm_gated(&p, k);
	case KRNL_GEMV:		return run_gemv(&p, k);
	case KRNL_CONV1D_STEP:	return run_conv(&p, k);
	case KRNL_DELTANET_STEP: return run_deltanet(&p, k);
	case KRNL_ATTN_DECODE:	return run_attn(&p, k);
	case KRNL_MOE_ROUTER:	return run_router(&p, k);
	case KRNL_EXPERT_FFN:	return run_experts(&p, k);
	case KRNL_LM_HEAD_ARGMAX: return run_lm_head(&p, k);
	case KRNL_SAMPLER:	return run_sampler(&p, k);
	default:		return -1;
	}
}

const struct shim_backend shim_emu_backend = {
	.name = "emu",
	.open = emu_open,
	.close = emu_close,
	.run = emu_run,
	.read = emu_read,
	.write = emu_write,
	.fill = emu_fill,
};
