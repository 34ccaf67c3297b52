/* shim_emu.c — the emulated card: HBM banks in host memory, kernels run as
 * their HLS C-simulation code.
 *
 * Each kernel call is decoded from its argument registers (krnl_abi.h); every
 * buffer argument is bounds-checked against card memory and registered as a
 * port of the kernel's traffic meter (krnl_mem.h).  The kernels' own memory
 * accessor counts every beat they move per port and per bank, so the HBM
 * bytes per token we steer by are measured, not modelled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "shim_card.h"
#include "krnl_common.h"
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

struct emu {
	uint8_t *hbm;
	uint64_t size;		/* end of the highest bank */
	struct fw_ctrl ctrl;	/* host-visible control block (a BAR in real life) */
	struct krnl_meter meter0;	/* bank table of this card, no ports */
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
	/* Weights stream through it: 2 MiB pages spare the TLB a miss every 4 KiB
	 * (a hint; without transparent huge pages it changes nothing). */
	(void)madvise(e->hbm, e->size, MADV_HUGEPAGE);
	if (b->n_banks > KRNL_METER_BANKS) {
		snprintf(err, errlen, "board has %u banks, the meter counts %u", b->n_banks,
			 KRNL_METER_BANKS);
		munmap(e->hbm, e->size);
		free(e);
		return -1;
	}
	for (uint32_t i = 0; i < b->n_banks; i++) {
		e->meter0.bank_lo[i] = (uintptr_t)(e->hbm + b->banks[i].base);
		e->meter0.bank_hi[i] = (uintptr_t)(e->hbm + b->banks[i].base + b->banks[i].size);
	}
	e->meter0.n_banks = b->n_banks;
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

/* The ports of one kernel call: each pointer argument, range-checked and
 * registered with the meter that the kernel's accessor counts into. */
struct port {
	struct shim_card *c;
	const struct krnl_call *k;
	struct krnl_meter m;
	int bad;
};

/* The host pointer of pointer argument arg, whose port spans bytes. */
static void *port(struct port *p, int arg, uint64_t bytes)
{
	uint64_t addr = p->k->arg[arg];
	void *ptr = mem(p->c, addr, bytes);

	if (!ptr || addr % KRNL_BEAT_BYTES || arg >= KRNL_METER_PORTS) {
		p->bad = 1;
		return NULL;
	}
	/* a port is its buffer rounded out to whole beats */
	p->m.port[arg].lo = (uintptr_t)ptr;
	p->m.port[arg].hi = (uintptr_t)ptr + (bytes + KRNL_BEAT_BYTES - 1) / KRNL_BEAT_BYTES *
						KRNL_BEAT_BYTES;
	p->m.port[arg].port = (uint16_t)arg;
	if ((uint32_t)arg >= p->m.n_ports)
		p->m.n_ports = (uint32_t)arg + 1;
	return ptr;
}

/* Bytes of rows of width elements (f32) at a stride. */
static uint64_t rows_bytes(uint32_t rows, uint32_t stride, uint32_t width)
{
	return rows ? ((uint64_t)(rows - 1) * stride + width) * 4 : 0;
}

#define A(i) (k->arg[i])
#define U(i) ((uint32_t)k->arg[i])
#define FL(i) krnl_u2f(k->arg[i])
#define DT_OK(dt) krnl_dt_valid(dt)

static int run_embed(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(EMB_ROWS), dim = U(EMB_DIM), dt = U(EMB_DT);
	int32_t *ids = port(p, EMB_IDS, rows * 4ull);
	uint64_t top = 0;

	if (p->bad || rows > KRNL_MAX_BATCH || dim > KRNL_MAX_HIDDEN || !DT_OK(dt))
		return -1;
	/* the table port reaches the highest row asked for */
	for (uint32_t r = 0; r < rows; r++) {
		if (ids[r] < 0)
			return -1;
		if ((uint64_t)ids[r] + 1 > top)
			top = (uint64_t)ids[r] + 1;
	}
	port(p, EMB_TABLE, krnl_matrix_bytes(dt, top, dim));
	port(p, EMB_OUT, (uint64_t)rows * dim * 4);
	if (p->bad)
		return -1;
	krnl_embed_gather(mem(p->c, A(EMB_IDS), 0), mem(p->c, A(EMB_TABLE), 0),
			  mem(p->c, A(EMB_OUT), 0), rows, dim, dt);
	return 0;
}

static int run_rmsnorm(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(RMS_ROWS), dim = U(RMS_DIM);
	uint64_t n = (uint64_t)rows * dim * 4;
	void *x = port(p, RMS_X, n);
	void *w = port(p, RMS_W, dim * 4ull);
	void *y = port(p, RMS_Y, n);

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
	void *x = port(p, RMG_X, n);
	void *z = port(p, RMG_Z, rows_bytes(rows, zs, heads * dim));
	void *w = port(p, RMG_W, dim * 4ull);
	void *y = port(p, RMG_Y, n);

	if (p->bad || !rows || rows > KRNL_MAX_BATCH || heads > KRNL_MAX_HEADS ||
	    dim > KRNL_MAX_HEAD_DIM || zs < heads * dim)
		return -1;
	krnl_rmsnorm_gated(x, z, w, y, rows, heads, dim, zs, FL(RMG_EPS));
	return 0;
}


static int run_gemv(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(GEMV_ROWS), in = U(GEMV_IN), out = U(GEMV_OUT), dt = U(GEMV_DT);
	uint32_t xs = U(GEMV_XSTRIDE), ys = U(GEMV_YSTRIDE);
	void *x = port(p, GEMV_X, rows_bytes(rows, xs, in));
	void *w = port(p, GEMV_W, krnl_matrix_bytes(dt, out, in));
	void *y = port(p, GEMV_Y, rows_bytes(rows, ys, out));

	if (p->bad || !rows || rows > KRNL_MAX_BATCH || in > KRNL_MAX_HIDDEN ||
	    out > KRNL_MAX_OUT || xs < in || ys < out || !DT_OK(dt))
		return -1;
	krnl_gemv(x, w, y, rows, in, out, xs, ys, dt, U(GEMV_ACC));
	return 0;
}


static int run_conv(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(CONV_ROWS), ch = U(CONV_CH), kk = U(CONV_K), xs = U(CONV_XSTRIDE);
	uint64_t per = (uint64_t)ch * (kk - 1) * 4;	/* one slot's state */
	void *sv = port(p, CONV_SLOTS, rows * 4ull);
	const int32_t *slots = sv;
	void *x = port(p, CONV_X, rows_bytes(rows, xs, ch));
	void *w = port(p, CONV_W, (uint64_t)ch * kk * 4);
	void *st = port(p, CONV_STATE, per * FW_MAX_SLOTS);

	if (p->bad || !rows || xs < ch || rows > KRNL_MAX_BATCH || ch > KRNL_MAX_CHAN ||
	    kk < 2 || kk > KRNL_MAX_CONV_K)
		return -1;
	for (uint32_t r = 0; r < rows; r++)
		if (slots[r] < 0 || slots[r] >= FW_MAX_SLOTS)
			return -1;
	krnl_conv1d_step(x, w, st, sv, rows, ch, kk, xs);
	return 0;
}

static int run_deltanet(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(DN_ROWS), nk = U(DN_NK), nv = U(DN_NV), dk = U(DN_DK), dv = U(DN_DV);
	uint32_t xs = U(DN_XSTRIDE);
	uint64_t width = 2ull * nk * dk + (uint64_t)nv * dv;
	uint64_t per = (uint64_t)nv * dk * dv * 4;	/* one slot's state */
	void *qkv = port(p, DN_QKV, rows ? ((uint64_t)(rows - 1) * xs + width) * 4 : 0);
	void *ba = port(p, DN_BA, rows * 2ull * nv * 4);
	void *al = port(p, DN_ALOG, nv * 4ull);
	void *dtb = port(p, DN_DTB, nv * 4ull);
	void *st = port(p, DN_STATE, per * FW_MAX_SLOTS);
	void *sv = port(p, DN_SLOTS, rows * 4ull);
	const int32_t *slots = sv;
	void *out = port(p, DN_OUT, (uint64_t)rows * nv * dv * 4);

	if (p->bad || !rows || xs < width || rows > KRNL_MAX_BATCH || !nk || nv % nk ||
	    nv > KRNL_MAX_HEADS || dk > 256 || dv > 256 || width > KRNL_MAX_CHAN)
		return -1;
	for (uint32_t r = 0; r < rows; r++)
		if (slots[r] < 0 || slots[r] >= FW_MAX_SLOTS)
			return -1;
	krnl_deltanet_step(qkv, ba, al, dtb, st, sv, out, rows, nk, nv, dk, dv, xs);
	return 0;
}

static int run_attn(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(AT_ROWS), nh = U(AT_NH), nkv = U(AT_NKV), hd = U(AT_HD);
	uint32_t rd = U(AT_RD), maxctx = U(AT_MAXCTX);
	uint64_t per = (uint64_t)nkv * maxctx * hd * 4;	/* one slot's cache */
	void *qg = port(p, AT_QG, (uint64_t)rows * 2 * nh * hd * 4);
	void *kk = port(p, AT_K, (uint64_t)rows * nkv * hd * 4);
	void *vv = port(p, AT_V, (uint64_t)rows * nkv * hd * 4);
	void *qn = port(p, AT_QNW, hd * 4ull);
	void *kn = port(p, AT_KNW, hd * 4ull);
	void *kc = port(p, AT_KC, per * FW_MAX_SLOTS);
	void *vc = port(p, AT_VC, per * FW_MAX_SLOTS);
	void *sv = port(p, AT_SLOTS, rows * 4ull);
	void *pv = port(p, AT_POS, rows * 4ull);
	const int32_t *slots = sv, *pos = pv;
	void *rope = port(p, AT_ROPE, (uint64_t)rows * rd * 4);
	void *out = port(p, AT_OUT, (uint64_t)rows * nh * hd * 4);

	if (p->bad || rows > KRNL_MAX_BATCH || !nkv || nh % nkv || nh / nkv > 16 ||
	    nh > KRNL_MAX_HEADS || nkv > nh || hd > KRNL_MAX_HEAD_DIM || rd > hd || rd % 2 ||
	    maxctx > KRNL_MAX_CTX)
		return -1;
	for (uint32_t r = 0; r < rows; r++)
		if (slots[r] < 0 || slots[r] >= FW_MAX_SLOTS || pos[r] < 0 ||
		    (uint32_t)pos[r] >= maxctx)
			return -1;
	krnl_attn_decode(qg, kk, vv, qn, kn, kc, vc, sv, pv, rope, out, rows, nh, nkv, hd,
			 rd, FL(AT_EPS), maxctx);
	return 0;
}

static int run_router(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(RT_ROWS), ne = U(RT_NE), topk = U(RT_TOPK);
	void *lg = port(p, RT_LOGITS, (uint64_t)rows * ne * 4);
	void *cnt = port(p, RT_COUNT, ne * 4ull);
	void *list = port(p, RT_LIST, (uint64_t)ne * KRNL_MAX_BATCH * 4);
	void *lw = port(p, RT_LISTW, (uint64_t)ne * KRNL_MAX_BATCH * 4);

	if (p->bad || rows > KRNL_MAX_BATCH || ne > KRNL_MAX_EXPERTS || !topk ||
	    topk > ne || topk > KRNL_MAX_TOPK)
		return -1;
	krnl_moe_router(lg, cnt, list, lw, rows, ne, topk, U(RT_NORM));
	return 0;
}

static int run_experts(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(EF_ROWS), h = U(EF_H), ni = U(EF_I), ne = U(EF_NE), si = U(EF_SI);
	uint32_t dt = U(EF_DT), sdt = U(EF_SDT);
	void *x = port(p, EF_X, (uint64_t)rows * h * 4);
	void *w = port(p, EF_W, ne * krnl_expert_bytes(dt, h, ni));
	uint32_t *cnt = port(p, EF_COUNT, ne * 4ull);
	int32_t *list = port(p, EF_LIST, (uint64_t)ne * KRNL_MAX_BATCH * 4);
	void *lw = port(p, EF_LISTW, (uint64_t)ne * KRNL_MAX_BATCH * 4);
	void *sw = si ? port(p, EF_SW, krnl_expert_bytes(sdt, h, si)) : NULL;
	void *sg = si ? port(p, EF_SGATE, h * 4ull) : NULL;
	void *y = port(p, EF_Y, (uint64_t)rows * h * 4);

	if (p->bad || !rows || rows > KRNL_MAX_BATCH || h > KRNL_MAX_HIDDEN ||
	    ni > KRNL_MAX_INTER || si > KRNL_MAX_INTER || ne > KRNL_MAX_EXPERTS ||
	    !DT_OK(dt) || (si && !DT_OK(sdt)))
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
		}
		atomic_fetch_add_explicit(&p->c->cnt.experts_fetched, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->c->cnt.expert_rows, cnt[e], memory_order_relaxed);
	}
	krnl_expert_ffn(x, w, (void *)cnt, (void *)list, lw, sw, sg, y, rows, h, ni, ne, si,
			dt, sdt);
	return 0;
}

static int run_lm_head(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(LM_ROWS), h = U(LM_H), v = U(LM_V), dt = U(LM_DT);
	void *x = port(p, LM_X, (uint64_t)rows * h * 4);
	void *nw = port(p, LM_NW, h * 4ull);
	void *w = port(p, LM_W, krnl_matrix_bytes(dt, v, h));
	int32_t *dst = port(p, LM_DST, rows * 4ull);
	void *am = port(p, LM_ARGMAX, rows * 4ull);
	uint64_t top = 0;

	if (p->bad || !rows || rows > KRNL_MAX_BATCH || h > KRNL_MAX_HIDDEN ||
	    v > KRNL_MAX_VOCAB || !DT_OK(dt))
		return -1;
	/* the logits port reaches the highest row written (dst < 0: none) */
	for (uint32_t r = 0; r < rows; r++)
		if (dst[r] >= 0 && (uint64_t)dst[r] + 1 > top)
			top = (uint64_t)dst[r] + 1;
	void *lg = port(p, LM_LOGITS, top ? top * v * 4 : 4);
	if (p->bad)
		return -1;
	krnl_lm_head_argmax(x, nw, w, lg, (void *)dst, am, rows, h, v, FL(LM_EPS), dt);
	return 0;
}

static int run_sampler(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(SMP_ROWS), v = U(SMP_V);
	void *pp = port(p, SMP_PARAMS, rows * (uint64_t)sizeof(struct krnl_sample_params));
	const struct krnl_sample_params *sp = pp;
	void *tok = port(p, SMP_TOKEN, rows * 4ull);
	void *lp = port(p, SMP_LOGPROB, rows * 4ull);
	uint64_t top = 0;

	if (p->bad || rows > KRNL_MAX_BATCH || v == 0 || v > KRNL_MAX_VOCAB)
		return -1;
	/* the logits port reaches the highest row sampled */
	for (uint32_t r = 0; r < rows; r++)
		if ((uint64_t)sp[r].src_row + 1 > top)
			top = (uint64_t)sp[r].src_row + 1;
	void *lg = port(p, SMP_LOGITS, top * v * 4);
	if (p->bad)
		return -1;
	krnl_sampler(lg, pp, tok, lp, rows, v);
	return 0;
}

static int dispatch(struct port *p, const struct krnl_call *k)
{
	switch (k->id) {
	case KRNL_EMBED_GATHER:	return run_embed(p, k);
	case KRNL_RMSNORM:	return run_rmsnorm(p, k);
	case KRNL_RMSNORM_GATED: return run_rmsnorm_gated(p, k);
	case KRNL_GEMV:		return run_gemv(p, k);
	case KRNL_CONV1D_STEP:	return run_conv(p, k);
	case KRNL_DELTANET_STEP: return run_deltanet(p, k);
	case KRNL_ATTN_DECODE:	return run_attn(p, k);
	case KRNL_MOE_ROUTER:	return run_router(p, k);
	case KRNL_EXPERT_FFN:	return run_experts(p, k);
	case KRNL_LM_HEAD_ARGMAX: return run_lm_head(p, k);
	case KRNL_SAMPLER:	return run_sampler(p, k);
	default:		return -1;
	}
}

/* Run one kernel under its meter, then fold what it moved into the card's
 * counters.  A beat outside every port is a kernel bug: the run fails. */
static int emu_run(struct shim_card *c, const struct krnl_call *k)
{
	struct emu *e = EMU(c);
	struct port *p = malloc(sizeof(*p));
	struct shim_counters *n = &c->cnt;
	uint64_t rd = 0, wr = 0, ewb = 0;
	int rc;

	if (!p)
		return -1;
	memcpy(&p->m, &e->meter0, sizeof(p->m));
	p->c = c;
	p->k = k;
	p->bad = 0;
	krnl_meter_cur = &p->m;
	rc = dispatch(p, k);
	krnl_meter_cur = NULL;
	if (rc == 0 && (p->m.stray_beats[0] || p->m.stray_beats[1]))
		rc = -1;
	for (uint32_t b = 0; b < p->m.n_banks; b++) {
		uint64_t br = p->m.bank_beats[b][0] * KRNL_BEAT_BYTES;
		uint64_t bw = p->m.bank_beats[b][1] * KRNL_BEAT_BYTES;
		if (br)
			atomic_fetch_add_explicit(&n->bank_rd[b], br, memory_order_relaxed);
		if (bw)
			atomic_fetch_add_explicit(&n->bank_wr[b], bw, memory_order_relaxed);
		rd += br;
		wr += bw;
	}
	if (k->id == KRNL_EXPERT_FFN)
		ewb = p->m.port_beats[EF_W][0] * KRNL_BEAT_BYTES;
	free(p);
	if (k->id < KRNL_COUNT) {
		atomic_fetch_add_explicit(&n->krnl_rd[k->id], rd, memory_order_relaxed);
		atomic_fetch_add_explicit(&n->krnl_wr[k->id], wr, memory_order_relaxed);
		atomic_fetch_add_explicit(&n->expert_weight_bytes, ewb, memory_order_relaxed);
	}
	return rc;
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
