/* image.c — checkpoint tensors to card layout.
 *
 * Every placement is a run of segments: whole rows of one checkpoint tensor.
 * The regroupings the kernels want (FW_X_*) are just a different order of
 * segments, so converting and copying is one loop for all of them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/image.h"
#include "model/quant.h"
#include "krnl_state.h"

#define MAX_SEGS 4096
#define STAGE_BYTES (4u << 20)

struct seg {
	char name[128];
	uint64_t row0, rows;	/* rows of the source tensor */
	uint64_t cols;		/* columns taken ... */
	uint64_t col0;		/* ... from this one on (0: whole rows) */
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
	s->col0 = 0;
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

/* Columns [col0, col0 + cols) of every row of a 2-D tensor [rows][width]. */
static void cols2(struct plan *p, const char *name, uint64_t rows, uint64_t width,
		  uint64_t col0, uint64_t cols)
{
	add(p, name, 0, rows, cols, 2, rows, width, 0);
	if (!p->overflow)
		p->s[p->n - 1].col0 = col0;
}

static void plan_place(struct plan *p, const struct fw_model_cfg *c, const struct fw_place *pl)
{
	char nm[128], pre[40];
	uint64_t h = c->hidden, nk = c->lin_nk, nv = c->lin_nv, dk = c->lin_dk, dv = c->lin_dv;
	uint64_t r = nv / nk, nh = c->n_heads, hd = c->head_dim;

	if (c->mtp && pl->layer == c->n_layers)	/* the MTP head's decoder layer */
		snprintf(pre, sizeof(pre), "mtp.layers.0.");
	else
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
	case FW_T_MTP_FC_E: cols2(p, "mtp.fc.weight", h, 2 * h, 0, h); break;
	case FW_T_MTP_FC_H: cols2(p, "mtp.fc.weight", h, 2 * h, h, h); break;
	case FW_T_MTP_NORM_E: whole1(p, "mtp.pre_fc_norm_embedding.weight", h); break;
	case FW_T_MTP_NORM_H: whole1(p, "mtp.pre_fc_norm_hidden.weight", h); break;
	case FW_T_MTP_NORM: whole1(p, "mtp.norm.weight", h); break;
	default:
		p->overflow = 1;
	}
#undef N
}

static int is_float(enum st_dtype d)
{
	return d == ST_F32 || d == ST_BF16 || d == ST_F16 || d == ST_F64 ||
	       d == ST_F8_E4M3 || d == ST_F8_E5M2;
}

/* The card format of a pre-quantized tensor (`nextcard quantize`): its
 * "nextcard.format.<name>" metadata.  0 if t is not one. */
static int prequant(const struct st_set *st, const struct st_tensor *t, uint32_t *dt,
		    uint32_t *cols)
{
	char key[200];
	const char *v;

	if (t->dtype != ST_U8)
		return 0;
	snprintf(key, sizeof(key), NC_QUANT_META_PREFIX "%s", t->name);
	v = st_meta(st, key);
	return v && nc_quant_meta_parse(v, dt, cols) == 0;
}

int nc_image_prequant(const struct st_set *st, const char *name, uint32_t *dt)
{
	const struct st_tensor *t = st_find(st, name);
	uint32_t cols;

	return t && prequant(st, t, dt, &cols);
}

static int check_seg(const struct st_set *st, const struct seg *s, uint32_t want_dt,
		     const struct st_tensor **out, char *err, size_t errlen)
{
	const struct st_tensor *t = st_find(st, s->name);
	uint32_t pdt = 0, pcols = 0;
	int pq;

	if (!t) {
		snprintf(err, errlen, "tensor '%s': missing from the checkpoint", s->name);
		return -1;
	}
	pq = prequant(st, t, &pdt, &pcols);
	if (!pq && !is_float(t->dtype)) {
		snprintf(err, errlen, "tensor '%s': dtype %s, want a float type%s", s->name,
			 st_dtype_name(t->dtype),
			 t->dtype == ST_U8 ? " (or pre-quantized with nextcard.format metadata)" : "");
		return -1;
	}
	if (pq) {
		char a[32], b[32];

		if (pdt != want_dt) {
			snprintf(err, errlen, "tensor '%s': pre-quantized as %s, the card wants %s",
				 s->name, nc_fmt_spec(pdt, a, sizeof(a)),
				 nc_fmt_spec(want_dt, b, sizeof(b)));
			return -1;
		}
		/* stored as [rows][row bytes] of the card layout: whole rows only */
		if (s->col0 || s->cols != s->shape[s->ndim - 1] || t->ndim != 2 ||
		    pcols != s->shape[s->ndim - 1] || t->shape[0] != s->shape[0] ||
		    t->shape[1] != nc_quant_row_bytes(pdt, pcols)) {
			snprintf(err, errlen, "tensor '%s': pre-quantized shape does not match"
				 " the config", s->name);
			return -1;
		}
		*out = t;
		return 0;
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
	uint64_t total = 0, elems = 0;
	int mat = fw_tkind_matrix((enum fw_tkind)pl->kind);

	p->n = 0;
	p->overflow = 0;
	plan_place(p, cfg, pl);
	if (p->overflow) {
		snprintf(err, errlen, "layer %u %s: cannot plan this placement",
			 pl->layer, fw_tkind_name(pl->kind));
		return -1;
	}
	for (uint32_t i = 0; i < p->n; i++) {
		if (mat)
			total += p->s[i].rows * nc_quant_row_bytes(pl->dtype, (uint32_t)p->s[i].cols);
		elems += p->s[i].rows * p->s[i].cols;
	}
	if (!mat)
		total = krnl_vec_bytes(elems);
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
			rc = check_seg(st, &p.s[j], pl[i].dtype, &t, err, errlen);
	}
	free(p.s);
	return rc;
}

struct stage {
	uint8_t *buf;
	uint64_t used, addr;	/* card address of buf[0] */
	nc_dma_fn dma;
	void *ctx;
	enum nc_round round;
};

static int flush(struct stage *sg)
{
	int rc = sg->used ? sg->dma(sg->ctx, sg->addr, sg->buf, sg->used) : 0;

	sg->addr += sg->used;
	sg->used = 0;
	return rc;
}

/* Rows of t into the stage in card format, flushing as it fills: matrices row
 * by row in the layout of krnl_types.h (pre-quantized rows as they are),
 * vectors as plain f32. */
static int copy_rows(struct stage *sg, const struct st_set *st, const struct st_tensor *t,
		     const struct seg *s, uint32_t dt, int mat, float *row)
{
	uint32_t pdt, pcols;
	int pq = prequant(st, t, &pdt, &pcols);
	uint64_t rb = mat ? nc_quant_row_bytes(dt, (uint32_t)s->cols) : s->cols * 4;
	uint64_t width = s->shape[s->ndim - 1];	/* the source row */
	int raw = mat && !pq && ((dt == KRNL_FMT_BF16 && t->dtype == ST_BF16) ||
				 (dt == KRNL_FMT_F16 && t->dtype == ST_F16) ||
				 (dt == KRNL_FMT_F32 && t->dtype == ST_F32));

	for (uint64_t r = 0; r < s->rows; r++) {
		if (sg->used + rb > STAGE_BYTES && flush(sg))
			return -1;
		uint8_t *o = sg->buf + sg->used;
		if (pq) {
			memcpy(o, (const uint8_t *)t->data + (s->row0 + r) * rb, rb);
		} else if (raw) {
			/* the card keeps the checkpoint's own type: copy, pad the beat */
			uint64_t nb = s->cols * st_dtype_size(t->dtype);

			memcpy(o, (const uint8_t *)t->data +
				  ((s->row0 + r) * width + s->col0) * st_dtype_size(t->dtype), nb);
			memset(o + nb, 0, rb - nb);
		} else {
			if (st_read_f32_fp8(st, t, (s->row0 + r) * width + s->col0, s->cols, row, 0))
				return -1;
			if (mat)
				nc_quant_encode_row_ex(dt, row, (uint32_t)s->cols, o, sg->round);
			else
				memcpy(o, row, rb);
		}
		sg->used += rb;
	}
	return 0;
}

int nc_image_fill(const struct st_set *st, const struct fw_model_cfg *cfg,
		  const struct fw_place *pl, uint32_t n, const struct nc_image_opts *o,
		  nc_dma_fn dma, void *ctx, char *err, size_t errlen)
{
	uint64_t total = 0, done = 0;
	enum nc_round cfg_round = o ? (enum nc_round)o->round : NC_ROUND_CLIP;

	struct plan p = { .s = malloc(MAX_SEGS * sizeof(struct seg)) };
	struct stage sg = { .buf = malloc(STAGE_BYTES), .dma = dma, .ctx = ctx,
			    .round = cfg_round };
	float *row = malloc((size_t)STAGE_BYTES);
	const struct st_tensor *t;
	int rc = 0;

	if (!p.s || !sg.buf || !row) {
		snprintf(err, errlen, "out of memory");
		rc = -1;
	}
	for (uint32_t i = 0; i < n; i++)
		total += pl[i].bytes;
	for (uint32_t i = 0; !rc && i < n; i++) {
		rc = plan_entry(&p, cfg, &pl[i], err, errlen);
		sg.addr = pl[i].addr;
		sg.used = 0;
		for (uint32_t j = 0; !rc && j < p.n; j++) {
			rc = check_seg(st, &p.s[j], pl[i].dtype, &t, err, errlen);
			if (!rc && p.s[j].cols * 4 > STAGE_BYTES) {
				snprintf(err, errlen, "tensor '%s': rows too wide", p.s[j].name);
				rc = -1;
			}
			if (!rc && copy_rows(&sg, st, t, &p.s[j], pl[i].dtype,
					     fw_tkind_matrix((enum fw_tkind)pl[i].kind), row)) {
				snprintf(err, errlen, "tensor '%s': copy to card failed", p.s[j].name);
				rc = -1;
			}
		}
		done += pl[i].bytes;
		if (o && o->progress)
			o->progress(o->pctx, done, total);
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

/* Weights of decoder layer l read by a step whose rows route to k distinct
 * experts there (the dense matrices and vectors once, k experts). */
double nc_layer_bytes(const struct fw_model_cfg *c, uint32_t l, double k)
{
	uint32_t H = c->hidden;
	double sum;

	if (c->layer_attn[l]) {
		uint32_t q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
		sum = krnl_matrix_bytes(c->dt_attn, 2ull * q + 2ull * kv, H) +
		      krnl_matrix_bytes(c->dt_attn, H, q) + 2.0 * krnl_vec_bytes(c->head_dim);
	} else {
		uint32_t ch = 2 * c->lin_nk * c->lin_dk + c->lin_nv * c->lin_dv;
		uint32_t vw = c->lin_nv * c->lin_dv;
		sum = krnl_matrix_bytes(c->dt_attn, (uint64_t)ch + vw, H) +
		      krnl_matrix_bytes(c->dt_attn, 2ull * c->lin_nv, H) +
		      krnl_matrix_bytes(c->dt_attn, H, vw) +
		      krnl_vec_bytes((uint64_t)ch * c->conv_k) +
		      2.0 * krnl_vec_bytes(c->lin_nv) + krnl_vec_bytes(c->lin_dv);
	}
	sum += krnl_matrix_bytes(c->dt_router, c->n_experts, H);
	sum += k * krnl_expert_bytes(c->dt_expert, H, c->moe_inter);
	if (c->shared_inter)
		sum += krnl_expert_bytes(c->dt_shared, H, c->shared_inter) + krnl_vec_bytes(H);
	return sum + 2.0 * krnl_vec_bytes(H);				/* norms */
}

/* Weights read per token with k experts per layer and e embedding rows. */
static double weights_with(const struct fw_model_cfg *c, double k, double e)
{
	double sum = 0;

	for (uint32_t l = 0; l < c->n_layers; l++)
		sum += nc_layer_bytes(c, l, k);
	return sum + e * krnl_matrix_bytes(c->dt_head, 1, c->hidden) + krnl_vec_bytes(c->hidden) +
	       krnl_matrix_bytes(c->dt_head, c->vocab, c->hidden);
}

double nc_active_floor(const struct fw_model_cfg *c)
{
	return weights_with(c, c->top_k, 1);
}

double nc_weight_bytes(const struct fw_model_cfg *c)
{
	return weights_with(c, c->n_experts, c->vocab);
}

double nc_distinct_experts(const struct fw_model_cfg *c, double rows)
{
	double E = c->n_experts, miss = 1.0 - (double)c->top_k / E;

	return E * (1.0 - pow(miss, rows));
}

double nc_step_floor(const struct fw_model_cfg *c, uint32_t rows, uint32_t drafts)
{
	double r = (double)rows * (1 + drafts), sum = 0;
	double k = nc_distinct_experts(c, r);

	for (uint32_t l = 0; l < c->n_layers; l++)
		sum += nc_layer_bytes(c, l, k);
	sum += r * krnl_matrix_bytes(c->dt_head, 1, c->hidden) + krnl_vec_bytes(c->hidden) +
	       krnl_matrix_bytes(c->dt_head, c->vocab, c->hidden);
	if (drafts) {
		/* the MTP head: its layer (gated attention), fc's two halves, three
		 * norms, r embedding rows, and the lm_head once more */
		struct fw_model_cfg m = *c;

		m.layer_attn[c->n_layers] = 1;
		sum += nc_layer_bytes(&m, c->n_layers, k) +
		       2.0 * krnl_matrix_bytes(c->dt_attn, c->hidden, c->hidden) +
		       3.0 * krnl_vec_bytes(c->hidden) +
		       r * krnl_matrix_bytes(c->dt_head, 1, c->hidden) +
		       krnl_matrix_bytes(c->dt_head, c->vocab, c->hidden);
	}
	return sum;
}

double nc_state_floor(const struct fw_model_cfg *c, uint32_t pos)
{
	double sum = 0;

	for (uint32_t l = 0; l < c->n_layers; l++) {
		if (c->layer_attn[l]) {
			sum += 2.0 * c->n_kv_heads * c->head_dim * krnl_kv_es(c->dt_kv) * (pos + 1.0);
		} else {
			double ch = 2.0 * c->lin_nk * c->lin_dk + c->lin_nv * c->lin_dv;
			sum += ch * (c->conv_k - 1) * 4.0 +
			       4.0 * c->lin_nv * c->lin_dk * c->lin_dv;
		}
	}
	return sum;
}
