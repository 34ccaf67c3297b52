/* fw_step.c — one token step of a batch, layer by layer.
 *
 * Reads top to bottom like the forward pass in QWEN3NEXT.md: each line is one
 * kernel run on the whole batch.  Activations stay in HBM scratch between
 * kernels; the firmware writes only the small per-row arrays (ids, slots,
 * positions, logits rows) and reads back only the chosen tokens.
 */
#include "fw.h"
#include "krnl_common.h"
#include "krnl_sampler.h"
#include "krnl_state.h"
#include <math.h>

#define F(x) krnl_f2u(x)

static int run(struct fw *fw, uint32_t id, const uint64_t *args, uint32_t nargs)
{
	struct krnl_call c = { .id = id };

	for (uint32_t i = 0; i < nargs && i < KRNL_MAX_ARGS; i++)
		c.arg[i] = args[i];
	return fw->hal.run(fw->hal.ctx, &c) ? -FW_EHAL : 0;
}

#define RUN(id, ...) do { \
	const uint64_t a_[] = { __VA_ARGS__ }; \
	int rc_ = run(fw, id, a_, sizeof(a_) / sizeof(a_[0])); \
	if (rc_) \
		return rc_; \
} while (0)

/* y (+)= W x over the batch. */
static int gemv(struct fw *fw, uint64_t x, uint64_t w, uint64_t y, uint32_t n,
		uint32_t in, uint32_t out, uint32_t xs, uint32_t ys, uint32_t dt,
		uint32_t acc)
{
	RUN(KRNL_GEMV, x, w, y, n, in, out, xs, ys, dt, acc);
	return 0;
}

static int linear_attn(struct fw *fw, const struct fw_layer *L, uint32_t n)
{
	const struct fw_model_cfg *c = &fw->cfg;
	const struct fw_scratch *s = &fw->s;
	uint32_t h = c->hidden, nv = c->lin_nv, dv = c->lin_dv, ch = fw->lin_ch;
	int rc;

	/* proj row: [conv channels q|k|v (ch) | z (nv*dv)] thanks to FW_X_QKVZ */
	rc = gemv(fw, s->xn, L->qkvz, s->proj, n, h, ch + nv * dv, h, s->proj_w, c->dt_attn, 0);
	if (!rc)
		rc = gemv(fw, s->xn, L->ba, s->ba, n, h, 2 * nv, h, 2 * nv, c->dt_attn, 0);
	if (rc)
		return rc;
	RUN(KRNL_CONV1D_STEP, s->proj, L->conv, L->conv_state, s->blocks, n, ch,
	    c->conv_k, s->proj_w, fw->pool.nblk);
	RUN(KRNL_DELTANET_STEP, s->proj, s->ba, L->alog, L->dtb, L->dn_state,
	    s->blocks, s->o, n, c->lin_nk, nv, c->lin_dk, dv, s->proj_w, fw->pool.nblk);
	RUN(KRNL_RMSNORM_GATED, s->o, s->proj + (uint64_t)ch * 4, L->lnorm, s->o,
	    n, nv, dv, s->proj_w, F(c->rms_eps));
	return gemv(fw, s->o, L->lout, s->x, n, nv * dv, h, nv * dv, h, c->dt_attn, 1);
}

static int full_attn(struct fw *fw, const struct fw_layer *L, uint32_t n)
{
	const struct fw_model_cfg *c = &fw->cfg;
	const struct fw_scratch *s = &fw->s;
	uint32_t h = c->hidden, nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim;
	int rc;

	/* proj row: [queries (nh*hd) | gates (nh*hd)] thanks to FW_X_QGATE */
	rc = gemv(fw, s->xn, L->q, s->proj, n, h, 2 * nh * hd, h, 2 * nh * hd, c->dt_attn, 0);
	if (!rc)
		rc = gemv(fw, s->xn, L->k, s->kv_k, n, h, nkv * hd, h, nkv * hd, c->dt_attn, 0);
	if (!rc)
		rc = gemv(fw, s->xn, L->v, s->kv_v, n, h, nkv * hd, h, nkv * hd, c->dt_attn, 0);
	if (rc)
		return rc;
	RUN(KRNL_ATTN_DECODE, s->proj, s->kv_k, s->kv_v, L->qn, L->kn, L->kcache,
	    L->vcache, s->blocks, s->pos, s->rope, s->bt, s->o, 0, n, nh, nkv, hd, c->rope_dim,
	    F(c->rms_eps), fw->pool.tabw, fw->pool.npages, fw->pool.nblk, c->dt_kv,
	    krnl_attn_split(KRNL_ATTN_WHOLE, 0, 0));
	return gemv(fw, s->o, L->o, s->x, n, nh * hd, h, nh * hd, h, c->dt_attn, 1);
}

static int moe(struct fw *fw, const struct fw_layer *L, uint32_t n)
{
	const struct fw_model_cfg *c = &fw->cfg;
	const struct fw_scratch *s = &fw->s;
	uint32_t h = c->hidden, E = c->n_experts;
	int rc;

	rc = gemv(fw, s->xn, L->router, s->rlogits, n, h, E, h, E, c->dt_router, 0);
	if (rc)
		return rc;
	RUN(KRNL_MOE_ROUTER, s->rlogits, s->count, s->list, s->listw, n, E,
	    c->top_k, c->norm_topk);
	RUN(KRNL_EXPERT_FFN, s->xn, L->experts, s->count, s->list, s->listw,
	    L->shared, L->sgate, s->x, n, h, c->moe_inter, E, c->shared_inter,
	    c->dt_expert, c->dt_shared);
	return 0;
}

/* Rotary angles of each row's position, computed here in double: p * theta^(-2i/rd)
 * loses digits in f32 at long context, and the kernels use no double.
 * Row r: cos[0..rd/2) then sin[0..rd/2) at element r * rd. */
static void rope_rows(const struct fw_model_cfg *c, const struct fw_row *rows, uint32_t n,
		      float *out)
{
	uint32_t half = c->rope_dim / 2;

	for (uint32_t r = 0; r < n; r++) {
		for (uint32_t i = 0; i < half; i++) {
			double inv_f = pow((double)c->rope_theta, -2.0 * i / (double)c->rope_dim);
			double ang = (double)rows[r].pos * inv_f;

			out[r * c->rope_dim + i] = (float)cos(ang);
			out[r * c->rope_dim + half + i] = (float)sin(ang);
		}
	}
}

/* Per-row arrays the kernels index by row: token, slot, position, its rotary
 * angles; and for the rows [h0, h1) that go through the lm_head, from index
 * 0: where the logits row goes (a sampler row, or the score ring) and how to
 * sample it. */
static int put_rows(struct fw *fw, const struct fw_row *rows, uint32_t n, uint32_t h0,
		    uint32_t h1)
{
	int32_t ids[KRNL_MAX_BATCH], bl[2 * KRNL_MAX_BATCH], pos[KRNL_MAX_BATCH];
	int32_t dst[KRNL_MAX_BATCH];
	struct krnl_sample_params sp[KRNL_MAX_BATCH];
	const struct fw_scratch *s = &fw->s;
	int rc = 0;

	for (uint32_t r = 0; r < n; r++) {
		ids[r] = rows[r].token;
		bl[r] = (int32_t)fw->seq[rows[r].seq].blk;
		bl[n + r] = rows[r].out >= 0 ? rows[r].out : bl[r];
		pos[r] = rows[r].pos;
	}
	for (uint32_t r = h0; r < h1; r++) {
		const struct fw_seq *sl_ = &fw->seq[rows[r].seq];
		uint32_t i = r - h0;

		dst[i] = rows[r].dst >= 0 ? KRNL_MAX_BATCH + rows[r].dst : (int32_t)i;
		sp[i] = (struct krnl_sample_params){
			.temperature = sl_->temperature, .top_p = sl_->top_p,
			.top_k = sl_->top_k, .seed_lo = (uint32_t)sl_->seed,
			.seed_hi = (uint32_t)(sl_->seed >> 32), .counter = (uint32_t)rows[r].pos,
			.src_row = (uint32_t)dst[i],
		};
	}
	if (h1 > h0) {
		rc |= fw->hal.write(fw->hal.ctx, s->params, sp, (h1 - h0) * sizeof(sp[0]));
		rc |= fw->hal.write(fw->hal.ctx, s->dst, dst, (h1 - h0) * 4);
	}
	rc |= fw->hal.write(fw->hal.ctx, s->ids, ids, n * 4);
	rc |= fw->hal.write(fw->hal.ctx, s->blocks, bl, 2 * n * 4);
	rc |= fw->hal.write(fw->hal.ctx, s->pos, pos, n * 4);
	if (fw->cfg.rope_dim) {
		rope_rows(&fw->cfg, rows, n, fw->rope);
		rc |= fw->hal.write(fw->hal.ctx, s->rope, fw->rope,
				    (uint64_t)n * fw->cfg.rope_dim * 4);
	}
	return rc ? -FW_EHAL : 0;
}

/* The decoder layers over the rows in s->x. */
static int layer(struct fw *fw, uint32_t l, uint32_t n)
{
	const struct fw_model_cfg *c = &fw->cfg;
	const struct fw_scratch *s = &fw->s;
	const struct fw_layer *L = &fw->layer[l];
	int rc;

	RUN(KRNL_RMSNORM, s->x, L->in_norm, s->xn, n, c->hidden, F(c->rms_eps), F(1.0f));
	rc = c->layer_attn[l] ? full_attn(fw, L, n) : linear_attn(fw, L, n);
	if (rc)
		return rc;
	RUN(KRNL_RMSNORM, s->x, L->post_norm, s->xn, n, c->hidden, F(c->rms_eps), F(1.0f));
	return moe(fw, L, n);
}

/* The MTP head over every row, after the main model picked: row r's input is
 * its final hidden state (normed by model.norm) and the token after it, x =
 * fc(norm_e(embed(next)) | norm_h(h)), then the head's decoder layer (its own
 * KV pages, same positions); rows [m0, m1) go through mtp.norm and the shared
 * lm_head, greedy (drafts), their logits to row dst where the sequence asked
 * for the head's logits. */
static int mtp(struct fw *fw, const struct fw_row *rows, uint32_t n, struct fw_pick *pick)
{
	const struct fw_model_cfg *c = &fw->cfg;
	const struct fw_scratch *s = &fw->s;
	uint32_t h = c->hidden, m0 = n, m1 = 0;
	int32_t ids[KRNL_MAX_BATCH], dst[KRNL_MAX_BATCH], am[KRNL_MAX_BATCH];
	int rc;

	for (uint32_t r = 0; r < n; r++) {
		int32_t t = rows[r].next >= 0 ? rows[r].next : pick[r].token;

		ids[r] = t >= 0 && (uint32_t)t < c->vocab ? t : 0;
		if (rows[r].mhead) {
			m0 = r < m0 ? r : m0;
			m1 = r + 1;
		}
	}
	if (m1 > m0 && h % KRNL_F32_PER_BEAT)
		m0 = 0;
	for (uint32_t r = m0; r < m1; r++)
		dst[r - m0] = rows[r].dst >= 0 && (fw->seq[rows[r].seq].flags & FW_SUB_MTP) ?
			      KRNL_MAX_BATCH + rows[r].dst : (int32_t)(r - m0);
	if (fw->hal.write(fw->hal.ctx, s->ids, ids, n * 4) ||
	    (m1 > m0 && fw->hal.write(fw->hal.ctx, s->dst, dst, (m1 - m0) * 4)))
		return -FW_EHAL;
	RUN(KRNL_RMSNORM, s->x, fw->final_norm, s->mh, n, h, F(c->rms_eps), F(1.0f));
	RUN(KRNL_EMBED_GATHER, s->ids, fw->embed, s->x, n, h, c->dt_head);
	RUN(KRNL_RMSNORM, s->x, fw->mtp_norm_e, s->xn, n, h, F(c->rms_eps), F(1.0f));
	RUN(KRNL_RMSNORM, s->mh, fw->mtp_norm_h, s->mh, n, h, F(c->rms_eps), F(1.0f));
	rc = gemv(fw, s->xn, fw->mtp_fc_e, s->x, n, h, h, h, h, c->dt_attn, 0);
	if (!rc)
		rc = gemv(fw, s->mh, fw->mtp_fc_h, s->x, n, h, h, h, h, c->dt_attn, 1);
	if (!rc)
		rc = layer(fw, c->n_layers, n);
	if (rc || m1 <= m0)
		return rc;
	RUN(KRNL_LM_HEAD_ARGMAX, s->x + (uint64_t)m0 * h * 4, fw->mtp_norm, fw->lm_head,
	    s->logits, s->dst, s->argmax, m1 - m0, h, c->vocab, F(c->rms_eps), c->dt_head,
	    c->vocab);
	if (fw->hal.read(fw->hal.ctx, s->argmax, am, (m1 - m0) * 4))
		return -FW_EHAL;
	for (uint32_t r = m0; r < m1; r++)
		pick[r].draft = rows[r].mhead ? am[r - m0] : -1;
	return 0;
}

int fw_step(struct fw *fw, const struct fw_row *rows, uint32_t n, struct fw_pick *pick)
{
	const struct fw_model_cfg *c = &fw->cfg;
	const struct fw_scratch *s = &fw->s;
	uint32_t h = c->hidden;
	int rc;

	if (n == 0 || n > KRNL_MAX_BATCH)
		return -FW_EINVAL;
	/* The lm_head and the sampler run on rows [h0, h1), the span of those
	 * that need them; none in a chunk from the middle of a prompt.  h0 moves
	 * the x port by whole rows, so only where a row is whole beats. */
	uint32_t h0 = n, h1 = 0;
	for (uint32_t r = 0; r < n; r++)
		if (rows[r].head) {
			h0 = r < h0 ? r : h0;
			h1 = r + 1;
		}
	if (h1 > h0 && h % KRNL_F32_PER_BEAT)
		h0 = 0;
	rc = put_rows(fw, rows, n, h0, h1);
	if (rc)
		return rc;
	RUN(KRNL_EMBED_GATHER, s->ids, fw->embed, s->x, n, h, c->dt_head);
	for (uint32_t l = 0; l < c->n_layers; l++) {
		rc = layer(fw, l, n);
		if (rc)
			return rc;
	}
	for (uint32_t r = 0; r < n; r++)
		pick[r] = (struct fw_pick){ .token = -1, .draft = -1 };
	if (h1 <= h0)
		return c->mtp ? mtp(fw, rows, n, pick) : 0;
	uint32_t m = h1 - h0;
	RUN(KRNL_LM_HEAD_ARGMAX, s->x + (uint64_t)h0 * h * 4, fw->final_norm, fw->lm_head,
	    s->logits, s->dst, s->argmax, m, h, c->vocab, F(c->rms_eps), c->dt_head, c->vocab);
	RUN(KRNL_SAMPLER, s->logits, s->params, s->token, s->logprob, m, c->vocab);

	int32_t tok[KRNL_MAX_BATCH];
	float lp[KRNL_MAX_BATCH];
	if (fw->hal.read(fw->hal.ctx, s->token, tok, m * 4) ||
	    fw->hal.read(fw->hal.ctx, s->logprob, lp, m * 4))
		return -FW_EHAL;
	for (uint32_t i = 0; i < m; i++) {
		pick[h0 + i].token = tok[i];
		pick[h0 + i].logprob = lp[i];
	}
	return c->mtp ? mtp(fw, rows, n, pick) : 0;
}
