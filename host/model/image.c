/* image.c — checkpoint tensors to card layout.
 *
 * Every placement is a run of segments: whole rows of one checkpoint tensor.
 * The regroupings the kernels want (FW_X_*) are just a different order of
 * segments, so converting and copying is one loop for all of them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/image.h"

#define MAX_SEGS 4096
#define STAGE_BYTES (4u << 20)

struct seg {
	char name[128];
	uint64_t row0, rows;	/* rows of the source tensor */
	uint64_t cols;
	int ndim;		/* expected source shape */
	uint64_t shape[3];
};

struct plan {
	struct seg *s;
	uint32_t n;
	int overflow;
};

static void add(struct plan *p, const char *name, uint64_t row0, uint64_t rows,
		uint64_t cols, int ndim, uint64_t d0, uint64_t d1, uint64_t d2)
{
	struct seg *s;

	if (p->n >= MAX_SEGS) {
		p->overflow = 1;
		return;
	}
	s = &p->s[p->n++];
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->row0 = row0;
	s->rows = rows;
	s->cols = cols;
	s->ndim = ndim;
	s->shape[0] = d0;
	s->shape[1] = d1;
	s->shape[2] = d2;
}

/* A whole 2-D tensor [rows][cols]. */
static void whole2(struct plan *p, const char *name, uint64_t rows, uint64_t cols)
{
	add(p, name, 0, rows, cols, 2, rows, cols, 0);
}

/* A 1-D tensor [n] as one row. */
static void whole1(struct plan *p, const char *name, uint64_t n)
{
	add(p, name, 0, 1, n, 1, n, 0, 0);
}

static void plan_place(struct plan *p, const struct fw_model_cfg *c, const struct fw_place *pl)
{
	char nm[128], pre[40];
	uint64_t h = c->hidden, nk = c->lin_nk, nv = c->lin_nv, dk = c->lin_dk, dv = c->lin_dv;
	uint64_t r = nv / nk, nh = c->n_heads, hd = c->head_dim;

	snprintf(pre, sizeof(pre), "model.layers.%u.", pl->layer);
#define N(fmt) (snprintf(nm, sizeof(nm), "%s" fmt, pre), nm)
	switch (pl->kind) {
	case FW_T_EMBED: whole2(p, "model.embed_tokens.weight", c->vocab, h); break;
	case FW_T_FINAL_NORM: whole1(p, "model.norm.weight", h); break;
	case FW_T_LM_HEAD: whole2(p, "lm_head.weight", c->vocab, h); break;
	case FW_T_IN_NORM: whole1(p, N("input_layernorm.weight"), h); break;
	case FW_T_POST_NORM: whole1(p, N("post_attention_layernorm.weight"), h); break;
	case FW_T_LIN_QKVZ: {
		uint64_t G = 2 * dk + 2 * r * dv, R = nk * G;
		const char *n = N("linear_attn.in_proj_qkvz.weight");
		for (uint64_t g = 0; g < nk; g++)	/* q of every group */
			add(p, n, g * G, dk, h, 2, R, h, 0);
		for (uint64_t g = 0; g < nk; g++)	/* then k */
			add(p, n, g * G + dk, dk, h, 2, R, h, 0);
		for (uint64_t g = 0; g < nk; g++)	/* then v */
			add(p, n, g * G + 2 * dk, r * dv, h, 2, R, h, 0);
		for (uint64_t g = 0; g < nk; g++)	/* then z */
			add(p, n, g * G + 2 * dk + r * dv, r * dv, h, 2, R, h, 0);
		break;
	}
	case FW_T_LIN_BA: {
		const char *n = N("linear_attn.in_proj_ba.weight");
		for (uint64_t g = 0; g < nk; g++)
			add(p, n, g * 2 * r, r, h, 2, 2 * nv, h, 0);
		for (uint64_t g = 0; g < nk; g++)
			add(p, n, g * 2 * r + r, r, h, 2, 2 * nv, h, 0);
		break;
	}
	case FW_T_LIN_CONV: {
		uint64_t C = 2 * nk * dk + nv * dv;
		add(p, N("linear_attn.conv1d.weight"), 0, C, c->conv_k, 3, C, 1, c->conv_k);
		break;
	}
	case FW_T_LIN_ALOG: whole1(p, N("linear_attn.A_log"), nv); break;
	case FW_T_LIN_DTB: whole1(p, N("linear_attn.dt_bias"), nv); break;
	case FW_T_LIN_NORM: whole1(p, N("linear_attn.norm.weight"), dv); break;
	case FW_T_LIN_OUT: whole2(p, N("linear_attn.out_proj.weight"), h, nv * dv); break;
	case FW_T_ATT_Q: {
		const char *n = N("self_attn.q_proj.weight");
		for (uint64_t i = 0; i < nh; i++)
			add(p, n, i * 2 * hd, hd, h, 2, 2 * nh * hd, h, 0);
		for (uint64_t i = 0; i < nh; i++)
			add(p, n, i * 2 * hd + hd, hd, h, 2, 2 * nh * hd, h, 0);
		break;
	}
	case FW_T_ATT_K: whole2(p, N("self_attn.k_proj.weight"), c->n_kv_heads * hd, h); break;
	case FW_T_ATT_V: whole2(p, N("self_attn.v_proj.weight"), c->n_kv_heads * hd, h); break;
	case FW_T_ATT_O: whole2(p, N("self_attn.o_proj.weight"), h, nh * hd); break;
	case FW_T_ATT_QN: whole1(p, N("self_attn.q_norm.weight"), hd); break;
	case FW_T_ATT_KN: whole1(p, N("self_attn.k_norm.weight"), hd); break;
	case FW_T_ROUTER: whole2(p, N("mlp.gate.weight"), c->n_experts, h); break;
	case FW_T_EXPERTS:
		for (uint32_t e = 0; e < c->n_experts; e++) {
			char b[80];
			snprintf(b, sizeof(b), "%smlp.experts.%u.", pre, e);
			snprintf(nm, sizeof(nm), "%sgate_proj.weight", b);
			whole2(p, nm, c->moe_inter, h);
			snprintf(nm, sizeof(nm), "%sup_proj.weight", b);
			whole2(p, nm, c->moe_inter, h);
			snprintf(nm, sizeof(nm), "%sdown_proj.weight", b);
			whole2(p, nm, h, c->moe_inter);
		}
		break;
	case FW_T_SHARED:
		whole2(p, N("mlp.shared_expert.gate_proj.weight"), c->shared_inter, h);
		whole2(p, N("mlp.shared_expert.up_proj.weight"), c->shared_inter, h);
		whole2(p, N("mlp.shared_expert.down_proj.weight"), h, c->shared_inter);
		break;
	case FW_T_SHARED_GATE:
		add(p, N("mlp.shared_expert_gate.weight"), 0, 1, h, 2, 1, h, 0);
		break;
	default:
		p->overflow = 1;
	}
#undef N
}

static int is_float(enum st_dtype d)
{
	return d == ST_F32 || d == ST_BF16 || d == ST_F16 || d == ST_F64;
}

static int check_seg(const struct st_set *st, const struct seg *s,
		     const struct st_tensor **out, char *err, size_t errlen)
{
	const struct st_tensor *t = st_find(st, s->name);

	if (!t) {
		snprintf(err, errlen, "tensor '%s': missing from the checkpoint", s->name);
		return -1;
	}
	if (!is_float(t->dtype)) {
		snprintf(err, errlen, "tensor '%s': dtype %s, want a float type", s->name,
			 st_dtype_name(t->dtype));
		return -1;
	}
	int ok = t->ndim == s->ndim;
	for (int i = 0; ok && i < s->ndim; i++)
		ok = t->shape[i] == s->shape[i];
	if (!ok) {
		char got[64] = "", want[64] = "";
		for (int i = 0; i < t->ndim && i < 4; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%llu",
				 i ? "," : "", (unsigned long long)t->shape[i]);
		for (int i = 0; i < s->ndim; i++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%llu",
				 i ? "," : "", (unsigned long long)s->shape[i]);
		snprintf(err, errlen, "tensor '%s': shape [%s], config wants [%s]",
			 s->name, got, want);
		return -1;
	}
	*out = t;
	return 0;
}

static int plan_entry(struct plan *p, const struct fw_model_cfg *cfg,
		      const struct fw_place *pl, char *err, size_t errlen)
{
	uint64_t total = 0, esz = pl->dtype == FW_DT_BF16 ? 2 : 4;

	p->n = 0;
	p->overflow = 0;
	plan_place(p, cfg, pl);
	if (p->overflow) {
		snprintf(err, errlen, "layer %u %s: cannot plan this placement",
			 pl->layer, fw_tkind_name(pl->kind));
		return -1;
	}
	for (uint32_t i = 0; i < p->n; i++)
		total += p->s[i].rows * p->s[i].cols * esz;
	if (total != pl->bytes) {
		snprintf(err, errlen, "layer %u %s: card wants %llu bytes, checkpoint gives %llu",
			 pl->layer, fw_tkind_name(pl->kind), (unsigned long long)pl->bytes,
			 (unsigned long long)total);
		return -1;
	}
	return 0;
}

int nc_image_check(const struct st_set *st, const struct fw_model_cfg *cfg,
		   const struct fw_place *pl, uint32_t n, char *err, size_t errlen)
{
	struct plan p = { .s = malloc(MAX_SEGS * sizeof(struct seg)) };
	const struct st_tensor *t;
	int rc = 0;

	if (!p.s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (uint32_t i = 0; !rc && i < n; i++) {
		rc = plan_entry(&p, cfg, &pl[i], err, errlen);
		for (uint32_t j = 0; !rc && j < p.n; j++)
			rc = check_seg(st, &p.s[j], &t, err, errlen);
	}
	free(p.s);
	return rc;
}

struct stage {
	uint8_t *buf;
	uint64_t used, addr;	/* card address of buf[0] */
	nc_dma_fn dma;
	void *ctx;
};

static int flush(struct stage *sg)
{
	int rc = sg->used ? sg->dma(sg->ctx, sg->addr, sg->buf, sg->used) : 0;

	sg->addr += sg->used;
	sg->used = 0;
	return rc;
}

/* Convert rows of t into the stage in card format, flushing as it fills. */
static int copy_rows(struct stage *sg, const struct st_tensor *t, const struct seg *s,
		     uint32_t dtype, float *row)
{
	uint64_t esz = dtype == FW_DT_BF16 ? 2 : 4, rb = s->cols * esz;

	for (uint64_t r = 0; r < s->rows; r++) {
		if (sg->used + rb > STAGE_BYTES && flush(sg))
			return -1;
		if (st_read_f32(t, (s->row0 + r) * s->cols, s->cols, row))
			return -1;
		uint8_t *o = sg->buf + sg->used;
		if (dtype == FW_DT_BF16) {
			for (uint64_t i = 0; i < s->cols; i++) {
				uint16_t b = st_f32_to_bf16(row[i]);
				memcpy(o + 2 * i, &b, 2);
			}
		} else {
			memcpy(o, row, rb);
		}
		sg->used += rb;
	}
	return 0;
}

int nc_image_fill(const struct st_set *st, const struct fw_model_cfg *cfg,
		  const struct fw_place *pl, uint32_t n, nc_dma_fn dma, void *ctx,
		  char *err, size_t errlen)
{
	struct plan p = { .s = malloc(MAX_SEGS * sizeof(struct seg)) };
	struct stage sg = { .buf = malloc(STAGE_BYTES), .dma = dma, .ctx = ctx };
	float *row = malloc((size_t)STAGE_BYTES);
	const struct st_tensor *t;
	int rc = 0;

	if (!p.s || !sg.buf || !row) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	for (uint32_t i = 0; !rc && i < n; i++) {
		rc = plan_entry(&p, cfg, &pl[i], err, errlen);
		sg.addr = pl[i].addr;
		sg.used = 0;
		for (uint32_t j = 0; !rc && j < p.n; j++) {
			rc = check_seg(st, &p.s[j], &t, err, errlen);
			if (!rc && p.s[j].cols * 4 > STAGE_BYTES) {
				snprintf(err, errlen, "tensor '%s': rows too wide", p.s[j].name);
				rc = -1;
			}
			if (!rc && copy_rows(&sg, t, &p.s[j], pl[i].dtype, row)) {
				snprintf(err, errlen, "tensor '%s': copy to card failed", p.s[j].name);
				rc = -1;
			}
		}
		if (!rc && flush(&sg)) {
			snprintf(err, errlen, "layer %u %s: DMA to card failed", pl[i].layer,
				 fw_tkind_name(pl[i].kind));
			rc = -1;
		}
	}
	free(row);
	free(sg.buf);
	free(p.s);
	return rc;
}
