/* fw_place.c — HBM placement of weights, per-slot state and step scratch.
 *
 * A bump allocator per bank.  Control regions (placement table, prompt
 * buffers, logits ring, step scratch) go to bank 0; weights and state are
 * dealt round-robin over the banks so that consecutive kernels stream from
 * different pseudo-channels.  A tensor larger than a bank takes a run of
 * untouched consecutive banks.
 */
#include <stdio.h>
#include "fw.h"
#include "krnl_common.h"
#include "krnl_sampler.h"

#define FW_ALIGN 4096u
#define FW_LOGITS_ROWS 64u

static const char *const tkind_names[FW_T_COUNT] = {
	[FW_T_EMBED] = "embed", [FW_T_FINAL_NORM] = "final_norm",
	[FW_T_LM_HEAD] = "lm_head", [FW_T_IN_NORM] = "input_norm",
	[FW_T_POST_NORM] = "post_attn_norm", [FW_T_LIN_QKVZ] = "in_proj_qkvz",
	[FW_T_LIN_BA] = "in_proj_ba", [FW_T_LIN_CONV] = "conv1d",
	[FW_T_LIN_ALOG] = "A_log", [FW_T_LIN_DTB] = "dt_bias",
	[FW_T_LIN_NORM] = "gated_norm", [FW_T_LIN_OUT] = "out_proj",
	[FW_T_ATT_Q] = "q_proj", [FW_T_ATT_K] = "k_proj", [FW_T_ATT_V] = "v_proj",
	[FW_T_ATT_O] = "o_proj", [FW_T_ATT_QN] = "q_norm", [FW_T_ATT_KN] = "k_norm",
	[FW_T_ROUTER] = "router", [FW_T_EXPERTS] = "experts",
	[FW_T_SHARED] = "shared_expert", [FW_T_SHARED_GATE] = "shared_expert_gate",
};

_Static_assert(sizeof(tkind_names) / sizeof(tkind_names[0]) == FW_T_COUNT,
	       "name every tensor kind");

const char *fw_tkind_name(enum fw_tkind k)
{
	return (unsigned)k < FW_T_COUNT ? tkind_names[k] : "?";
}

static uint64_t align_up(uint64_t v)
{
	return (v + FW_ALIGN - 1) & ~(uint64_t)(FW_ALIGN - 1);
}

static int alloc_span(struct fw *fw, uint64_t bytes, uint64_t *addr, uint16_t *bank)
{
	const struct fw_board *b = &fw->board;

	for (uint32_t s = 0; s < b->n_banks; s++) {
		uint64_t got = 0;
		uint32_t e = s;

		while (e < b->n_banks && got < bytes &&
		       fw->bank_next[e] == b->banks[e].base &&
		       (e == s || b->banks[e].base == b->banks[e - 1].base + b->banks[e - 1].size)) {
			got += b->banks[e].size;
			e++;
		}
		if (got < bytes)
			continue;
		*addr = b->banks[s].base;
		*bank = (uint16_t)s;
		for (uint32_t i = s; i < e; i++) {
			uint64_t end = b->banks[i].base + b->banks[i].size;
			uint64_t want = b->banks[s].base + bytes;
			fw->bank_next[i] = want < end ? align_up(want) : end;
		}
		return 0;
	}
	return -FW_ENOMEM;
}

/* Take bytes from the next bank (round-robin from fw->rr) that has room. */
static int alloc(struct fw *fw, uint64_t bytes, int fixed_bank, uint64_t *addr,
		 uint16_t *bank)
{
	const struct fw_board *b = &fw->board;

	bytes = align_up(bytes ? bytes : 1);
	for (uint32_t i = 0; i < b->n_banks; i++) {
		uint32_t k = fixed_bank >= 0 ? (uint32_t)fixed_bank : (fw->rr + i) % b->n_banks;
		uint64_t end = b->banks[k].base + b->banks[k].size;

		if (fw->bank_next[k] + bytes <= end) {
			*addr = fw->bank_next[k];
			*bank = (uint16_t)k;
			fw->bank_next[k] += bytes;
			if (fixed_bank < 0)
				fw->rr = (k + 1) % b->n_banks;
			return 0;
		}
		if (fixed_bank >= 0)
			break;
	}
	if (fixed_bank < 0)
		return alloc_span(fw, bytes, addr, bank);
	return -FW_ENOMEM;
}

static uint32_t esize(uint32_t dt)
{
	return dt == FW_DT_BF16 ? 2 : 4;
}

/* Place one weight tensor and record it in the table. */
static int place(struct fw *fw, enum fw_tkind kind, uint32_t layer, uint32_t rows,
		 uint32_t cols, uint32_t dt, enum fw_xform x, uint64_t *addr)
{
	struct fw_place *p;
	uint64_t bytes = (uint64_t)rows * cols * esize(dt);
	int rc;

	if (fw->n_places >= FW_MAX_PLACES)
		return -FW_ENOMEM;
	p = &fw->places[fw->n_places];
	rc = alloc(fw, bytes, -1, &p->addr, &p->bank);
	if (rc)
		return rc;
	p->kind = (uint16_t)kind;
	p->dtype = (uint16_t)dt;
	p->xform = (uint16_t)x;
	p->layer = layer;
	p->rows = rows;
	p->cols = cols;
	p->bytes = bytes;
	*addr = p->addr;
	fw->n_places++;
	fw->hal.ctrl->weight_bytes += bytes;
	return 0;
}

static int state(struct fw *fw, uint64_t bytes, uint64_t *addr)
{
	uint16_t bank;
	int rc = alloc(fw, bytes, -1, addr, &bank);

	if (!rc)
		fw->hal.ctrl->state_bytes += align_up(bytes);
	return rc;
}

static int scratch(struct fw *fw, uint64_t bytes, uint64_t *addr)
{
	uint16_t bank;

	return alloc(fw, bytes, 0, addr, &bank);
}

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		snprintf(fw->err, sizeof(fw->err), __VA_ARGS__); \
		return -FW_ECONFIG; \
	} } while (0)

static int check_cfg(struct fw *fw)
{
	const struct fw_model_cfg *c = &fw->cfg;

	CHECK(c->n_layers >= 1 && c->n_layers <= FW_MAX_LAYERS, "num_hidden_layers %u out of range", c->n_layers);
	CHECK(c->hidden >= 1 && c->hidden <= KRNL_MAX_HIDDEN, "hidden_size %u exceeds the kernels' %u", c->hidden, KRNL_MAX_HIDDEN);
	CHECK(c->vocab >= 1 && c->vocab <= KRNL_MAX_VOCAB, "vocab_size %u out of range", c->vocab);
	CHECK(c->lin_nk && c->lin_nv % c->lin_nk == 0, "linear value heads %u not a multiple of key heads %u", c->lin_nv, c->lin_nk);
	CHECK(c->lin_nv <= KRNL_MAX_HEADS && c->lin_dk <= 256 && c->lin_dv <= 256 && c->lin_dk && c->lin_dv,
	      "linear attention heads/dims (%u x %u/%u) exceed the kernel", c->lin_nv, c->lin_dk, c->lin_dv);
	CHECK(c->lin_nv * c->lin_dv <= KRNL_MAX_HIDDEN, "linear value width %u too wide", c->lin_nv * c->lin_dv);
	CHECK(2 * c->lin_nk * c->lin_dk + c->lin_nv * c->lin_dv <= KRNL_MAX_CHAN, "conv channels exceed %u", KRNL_MAX_CHAN);
	CHECK(c->conv_k >= 2 && c->conv_k <= KRNL_MAX_CONV_K, "linear_conv_kernel_dim %u out of 2..%u", c->conv_k, KRNL_MAX_CONV_K);
	CHECK(c->n_kv_heads && c->n_heads % c->n_kv_heads == 0, "attention heads %u not a multiple of kv heads %u", c->n_heads, c->n_kv_heads);
	CHECK(c->n_heads / c->n_kv_heads <= 16, "more than 16 query heads per kv head (%u)", c->n_heads / c->n_kv_heads);
	CHECK(c->n_heads <= KRNL_MAX_HEADS && c->head_dim && c->head_dim <= KRNL_MAX_HEAD_DIM, "attention head_dim %u too large", c->head_dim);
	CHECK(c->n_heads * c->head_dim <= KRNL_MAX_HIDDEN, "attention width %u too wide", c->n_heads * c->head_dim);
	CHECK(c->rope_dim % 2 == 0 && c->rope_dim <= c->head_dim, "rotary dims %u invalid", c->rope_dim);
	CHECK(c->n_experts >= 1 && c->n_experts <= KRNL_MAX_EXPERTS, "num_experts %u exceeds %u", c->n_experts, KRNL_MAX_EXPERTS);
	CHECK(c->top_k >= 1 && c->top_k <= c->n_experts && c->top_k <= KRNL_MAX_TOPK, "num_experts_per_tok %u invalid", c->top_k);
	CHECK(c->moe_inter >= 1 && c->moe_inter <= KRNL_MAX_INTER, "moe_intermediate_size %u exceeds %u", c->moe_inter, KRNL_MAX_INTER);
	CHECK(c->shared_inter <= KRNL_MAX_INTER, "shared_expert_intermediate_size %u exceeds %u", c->shared_inter, KRNL_MAX_INTER);
	CHECK(c->wdtype == FW_DT_F32 || c->wdtype == FW_DT_BF16, "weight dtype %u unknown", c->wdtype);
	return 0;
}

static int place_layer(struct fw *fw, uint32_t l)
{
	const struct fw_model_cfg *c = &fw->cfg;
	struct fw_layer *L = &fw->layer[l];
	uint32_t h = c->hidden, dt = c->wdtype, S = FW_MAX_SLOTS;
	int rc = 0;

	rc |= place(fw, FW_T_IN_NORM, l, 1, h, FW_DT_F32, FW_X_NONE, &L->in_norm);
	if (!c->layer_attn[l]) {
		uint32_t nk = c->lin_nk, nv = c->lin_nv, dk = c->lin_dk, dv = c->lin_dv;
		uint32_t ch = 2 * nk * dk + nv * dv;

		rc |= place(fw, FW_T_LIN_QKVZ, l, ch + nv * dv, h, dt, FW_X_QKVZ, &L->qkvz);
		rc |= place(fw, FW_T_LIN_BA, l, 2 * nv, h, dt, FW_X_BA, &L->ba);
		rc |= place(fw, FW_T_LIN_CONV, l, ch, c->conv_k, FW_DT_F32, FW_X_NONE, &L->conv);
		rc |= place(fw, FW_T_LIN_ALOG, l, 1, nv, FW_DT_F32, FW_X_NONE, &L->alog);
		rc |= place(fw, FW_T_LIN_DTB, l, 1, nv, FW_DT_F32, FW_X_NONE, &L->dtb);
		rc |= place(fw, FW_T_LIN_NORM, l, 1, dv, FW_DT_F32, FW_X_NONE, &L->lnorm);
		rc |= place(fw, FW_T_LIN_OUT, l, h, nv * dv, dt, FW_X_NONE, &L->lout);
		rc |= state(fw, (uint64_t)S * ch * (c->conv_k - 1) * 4, &L->conv_state);
		rc |= state(fw, (uint64_t)S * nv * dk * dv * 4, &L->dn_state);
	} else {
		uint32_t nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim;

		rc |= place(fw, FW_T_ATT_Q, l, 2 * nh * hd, h, dt, FW_X_QGATE, &L->q);
		rc |= place(fw, FW_T_ATT_K, l, nkv * hd, h, dt, FW_X_NONE, &L->k);
		rc |= place(fw, FW_T_ATT_V, l, nkv * hd, h, dt, FW_X_NONE, &L->v);
		rc |= place(fw, FW_T_ATT_O, l, h, nh * hd, dt, FW_X_NONE, &L->o);
		rc |= place(fw, FW_T_ATT_QN, l, 1, hd, FW_DT_F32, FW_X_NONE, &L->qn);
		rc |= place(fw, FW_T_ATT_KN, l, 1, hd, FW_DT_F32, FW_X_NONE, &L->kn);
		rc |= state(fw, (uint64_t)S * nkv * fw->ctx * hd * 4, &L->kcache);
		rc |= state(fw, (uint64_t)S * nkv * fw->ctx * hd * 4, &L->vcache);
	}
	rc |= place(fw, FW_T_POST_NORM, l, 1, h, FW_DT_F32, FW_X_NONE, &L->post_norm);
	rc |= place(fw, FW_T_ROUTER, l, c->n_experts, h, dt, FW_X_NONE, &L->router);
	rc |= place(fw, FW_T_EXPERTS, l, c->n_experts * 3 * c->moe_inter, h, dt, FW_X_EXPERTS, &L->experts);
	if (c->shared_inter) {
		rc |= place(fw, FW_T_SHARED, l, 3 * c->shared_inter, h, dt, FW_X_SHARED, &L->shared);
		rc |= place(fw, FW_T_SHARED_GATE, l, 1, h, FW_DT_F32, FW_X_NONE, &L->sgate);
	}
	return rc ? -FW_ENOMEM : 0;
}

static int place_scratch(struct fw *fw)
{
	const struct fw_model_cfg *c = &fw->cfg;
	struct fw_scratch *s = &fw->s;
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint64_t B = FW_MAX_SLOTS, f = 4;
	uint32_t lin_w = 2 * c->lin_nk * c->lin_dk + 2 * c->lin_nv * c->lin_dv;
	uint32_t att_w = 2 * c->n_heads * c->head_dim;
	int rc = 0;

	s->proj_w = lin_w > att_w ? lin_w : att_w;
	s->o_w = c->lin_nv * c->lin_dv > c->n_heads * c->head_dim ?
		 c->lin_nv * c->lin_dv : c->n_heads * c->head_dim;

	rc |= scratch(fw, (uint64_t)FW_MAX_PLACES * sizeof(struct fw_place), &ctrl->layout_addr);
	ctrl->prompt_cap = fw->ctx;
	for (uint32_t i = 0; i < FW_MAX_SLOTS; i++)
		rc |= scratch(fw, (uint64_t)fw->ctx * 4, &ctrl->prompt_addr[i]);
	/* logits: one row per batch row for the sampler, then the score ring */
	ctrl->logits_rows = FW_LOGITS_ROWS;
	rc |= scratch(fw, (B + FW_LOGITS_ROWS) * c->vocab * f, &s->logits);
	ctrl->logits_addr = s->logits + B * c->vocab * f;
	rc |= scratch(fw, B * sizeof(struct krnl_sample_params), &s->params);
	rc |= scratch(fw, B * 4, &s->token);
	rc |= scratch(fw, B * 4, &s->logprob);
	rc |= scratch(fw, B * c->hidden * f, &s->x);
	rc |= scratch(fw, B * c->hidden * f, &s->xn);
	rc |= scratch(fw, B * s->proj_w * f, &s->proj);
	rc |= scratch(fw, B * 2 * c->lin_nv * f, &s->ba);
	rc |= scratch(fw, B * c->n_kv_heads * c->head_dim * f, &s->kv_k);
	rc |= scratch(fw, B * c->n_kv_heads * c->head_dim * f, &s->kv_v);
	rc |= scratch(fw, B * s->o_w * f, &s->o);
	rc |= scratch(fw, B * c->n_experts * f, &s->rlogits);
	rc |= scratch(fw, (uint64_t)c->n_experts * 4, &s->count);
	rc |= scratch(fw, (uint64_t)c->n_experts * KRNL_MAX_BATCH * 4, &s->list);
	rc |= scratch(fw, (uint64_t)c->n_experts * KRNL_MAX_BATCH * 4, &s->listw);
	rc |= scratch(fw, B * 4, &s->ids);
	rc |= scratch(fw, B * 4, &s->slots);
	rc |= scratch(fw, B * 4, &s->pos);
	rc |= scratch(fw, B * 4, &s->dst);
	rc |= scratch(fw, B * 4, &s->argmax);
	return rc ? -FW_ENOMEM : 0;
}

int fw_place_model(struct fw *fw)
{
	const struct fw_model_cfg *c = &fw->cfg;
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	int rc;

	rc = check_cfg(fw);
	if (rc)
		return rc;
	fw->ctx = c->max_ctx;
	if (ctrl->ctx_limit && ctrl->ctx_limit < fw->ctx)
		fw->ctx = ctrl->ctx_limit;
	if (fw->ctx == 0 || fw->ctx > KRNL_MAX_CTX) {
		snprintf(fw->err, sizeof(fw->err), "context %u out of range", fw->ctx);
		return -FW_ECONFIG;
	}
	fw->lin_ch = 2 * c->lin_nk * c->lin_dk + c->lin_nv * c->lin_dv;
	for (uint32_t i = 0; i < fw->board.n_banks; i++)
		fw->bank_next[i] = fw->board.banks[i].base;
	fw->n_places = 0;
	fw->rr = 1 % fw->board.n_banks;
	ctrl->weight_bytes = ctrl->state_bytes = 0;

	rc = place_scratch(fw);
	if (!rc)
		rc = place(fw, FW_T_EMBED, 0, c->vocab, c->hidden, c->wdtype, FW_X_NONE, &fw->embed);
	for (uint32_t l = 0; !rc && l < c->n_layers; l++)
		rc = place_layer(fw, l);
	if (!rc)
		rc = place(fw, FW_T_FINAL_NORM, 0, 1, c->hidden, FW_DT_F32, FW_X_NONE, &fw->final_norm);
	if (!rc)
		rc = place(fw, FW_T_LM_HEAD, 0, c->vocab, c->hidden, c->wdtype, FW_X_NONE, &fw->lm_head);
	if (rc) {
		snprintf(fw->err, sizeof(fw->err),
			 "model does not fit the card's %u banks (%llu MiB placed so far)",
			 fw->board.n_banks, (unsigned long long)(ctrl->weight_bytes >> 20));
		return rc;
	}
	ctrl->hbm_used = 0;
	for (uint32_t i = 0; i < fw->board.n_banks; i++)
		ctrl->hbm_used += fw->bank_next[i] - fw->board.banks[i].base;
	ctrl->layout_count = fw->n_places;
	ctrl->n_slots = FW_MAX_SLOTS;
	ctrl->ctx = fw->ctx;
	return fw->hal.write(fw->hal.ctx, ctrl->layout_addr, fw->places,
			     (uint64_t)fw->n_places * sizeof(struct fw_place)) ? -FW_EHAL : 0;
}
