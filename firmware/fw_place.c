/* fw_place.c — HBM placement of weights, step scratch and the state pool.
 *
 * Every buffer goes where the kernel ports that touch it can reach: the board
 * DTB lists, per compute unit, the bank range of each port, and a buffer's
 * allowed banks are the intersection, over its users (kernel, argument), of
 * the banks any compute unit of that kernel reaches with that argument.
 * Kernels the board gives no compute unit do not constrain.  Within the
 * allowed banks a bump allocator per bank deals buffers round-robin, so
 * consecutive kernels stream from different pseudo-channels; a tensor larger
 * than a bank takes a run of untouched consecutive allowed banks.
 */
#include <stdio.h>
#include <string.h>
#include "fw.h"
#include "krnl_common.h"
#include "krnl_sampler.h"
#include "krnl_state.h"

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
	[FW_T_MTP_FC_E] = "mtp_fc_embed", [FW_T_MTP_FC_H] = "mtp_fc_hidden",
	[FW_T_MTP_NORM_E] = "mtp_norm_embed", [FW_T_MTP_NORM_H] = "mtp_norm_hidden",
	[FW_T_MTP_NORM] = "mtp_norm",
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

/* Which buffer is used by which kernel arguments. */
struct use {
	const char *kernel, *arg;
};

#define USES(...) ((const struct use[]){ __VA_ARGS__, { NULL, NULL } })
#define HOST_ONLY USES({ NULL, NULL })

static uint64_t all_banks(const struct fw_board *b)
{
	return b->n_banks >= 64 ? ~0ull : (1ull << b->n_banks) - 1;
}

/* Banks every user of a buffer can reach. */
static uint64_t reach(const struct fw *fw, const struct use *u)
{
	const struct fw_board *b = &fw->board;
	uint64_t m = all_banks(b);

	for (; u->kernel; u++) {
		uint64_t km = 0;
		int present = 0;

		for (uint32_t c = 0; c < b->n_cus; c++) {
			const struct fw_cu *cu = &b->cus[c];

			if (strcmp(cu->kernel, u->kernel))
				continue;
			present = 1;
			for (uint32_t p = 0; p < cu->n_ports; p++) {
				const struct fw_port *pt = &cu->ports[p];

				if (strcmp(pt->arg, u->arg))
					continue;
				for (uint32_t k = pt->bank_lo; k <= pt->bank_hi && k < 64; k++)
					km |= 1ull << k;
			}
		}
		if (present)
			m &= km;
	}
	return m;
}

/* Banks `want` reaches on the compute units of `kernel` whose `given` port
 * reaches bank b: two buffers of one call must sit where one CU sees both. */
static uint64_t companion(const struct fw *fw, const char *kernel, const char *given,
			  uint32_t b, const char *want)
{
	const struct fw_board *bd = &fw->board;
	uint64_t m = 0;
	int present = 0;

	for (uint32_t c = 0; c < bd->n_cus; c++) {
		const struct fw_cu *cu = &bd->cus[c];
		uint64_t g = 0, w = 0;

		if (strcmp(cu->kernel, kernel))
			continue;
		present = 1;
		for (uint32_t p = 0; p < cu->n_ports; p++) {
			const struct fw_port *pt = &cu->ports[p];
			for (uint32_t k = pt->bank_lo; k <= pt->bank_hi && k < 64; k++) {
				if (!strcmp(pt->arg, given))
					g |= 1ull << k;
				if (!strcmp(pt->arg, want))
					w |= 1ull << k;
			}
		}
		if (g >> b & 1)
			m |= w;
	}
	return present ? m : ~0ull;
}

static int alloc_span(struct fw *fw, uint64_t bytes, uint64_t mask, uint64_t *addr,
		      uint16_t *bank)
{
	const struct fw_board *b = &fw->board;

	for (uint32_t s = 0; s < b->n_banks; s++) {
		uint64_t got = 0;
		uint32_t e = s;

		while (e < b->n_banks && got < bytes && (mask >> e & 1) &&
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

/* Take bytes from the least-filled allowed bank with room, so buffers of one
 * kind spread over the pseudo-channels their ports reach. */
static int alloc(struct fw *fw, uint64_t bytes, const struct use *users, uint64_t *addr,
		 uint16_t *bank)
{
	const struct fw_board *b = &fw->board;
	uint64_t mask = reach(fw, users) & fw->pin, best_used = UINT64_MAX;
	int best = -1;

	if (mask == 0) {
		snprintf(fw->err, sizeof(fw->err), "no bank is reachable by %s.%s and the "
			 "other ports that share its buffer", users->kernel, users->arg);
		return -FW_ENOMEM;
	}
	bytes = align_up(bytes ? bytes : 1);
	for (uint32_t k = 0; k < b->n_banks; k++) {
		uint64_t used = fw->bank_next[k] - b->banks[k].base;

		if ((mask >> k & 1) && fw->bank_next[k] + bytes <= b->banks[k].base + b->banks[k].size &&
		    used < best_used) {
			best = (int)k;
			best_used = used;
		}
	}
	if (best < 0)
		return alloc_span(fw, bytes, mask, addr, bank);
	*addr = fw->bank_next[best];
	*bank = (uint16_t)best;
	fw->bank_next[best] += bytes;
	return 0;
}

int fw_tkind_matrix(enum fw_tkind k)
{
	switch (k) {
	case FW_T_EMBED: case FW_T_LM_HEAD: case FW_T_LIN_QKVZ: case FW_T_LIN_BA:
	case FW_T_LIN_OUT: case FW_T_ATT_Q: case FW_T_ATT_K: case FW_T_ATT_V:
	case FW_T_ATT_O: case FW_T_ROUTER: case FW_T_EXPERTS: case FW_T_SHARED:
	case FW_T_MTP_FC_E: case FW_T_MTP_FC_H:
		return 1;
	default:
		return 0;
	}
}

uint64_t fw_tensor_bytes(enum fw_tkind k, uint64_t rows, uint32_t cols, uint32_t dt,
			 uint32_t inter)
{
	if (!fw_tkind_matrix(k))
		return krnl_vec_bytes(rows * cols);
	if (k == FW_T_EXPERTS || k == FW_T_SHARED)
		return inter ? rows / (3ull * inter) * krnl_expert_bytes(dt, cols, inter) : 0;
	return krnl_matrix_bytes(dt, rows, cols);
}

/* Place one weight tensor and record it in the table. */
/* The kernel argument that reads each weight tensor (one user, then the end). */
static const struct use tensor_users[FW_T_COUNT][2] = {
	[FW_T_EMBED] = { { "krnl_embed_gather", "table" } },
	[FW_T_FINAL_NORM] = { { "krnl_lm_head_argmax", "nw" } },
	[FW_T_LM_HEAD] = { { "krnl_lm_head_argmax", "w" } },
	[FW_T_IN_NORM] = { { "krnl_rmsnorm", "w" } },
	[FW_T_POST_NORM] = { { "krnl_rmsnorm", "w" } },
	[FW_T_LIN_QKVZ] = { { "krnl_gemv", "w" } },
	[FW_T_LIN_BA] = { { "krnl_gemv", "w" } },
	[FW_T_LIN_CONV] = { { "krnl_conv1d_step", "w" } },
	[FW_T_LIN_ALOG] = { { "krnl_deltanet_step", "a_log" } },
	[FW_T_LIN_DTB] = { { "krnl_deltanet_step", "dt_bias" } },
	[FW_T_LIN_NORM] = { { "krnl_rmsnorm_gated", "w" } },
	[FW_T_LIN_OUT] = { { "krnl_gemv", "w" } },
	[FW_T_ATT_Q] = { { "krnl_gemv", "w" } },
	[FW_T_ATT_K] = { { "krnl_gemv", "w" } },
	[FW_T_ATT_V] = { { "krnl_gemv", "w" } },
	[FW_T_ATT_O] = { { "krnl_gemv", "w" } },
	[FW_T_ATT_QN] = { { "krnl_attn_decode", "qnw" } },
	[FW_T_ATT_KN] = { { "krnl_attn_decode", "knw" } },
	[FW_T_ROUTER] = { { "krnl_gemv", "w" } },
	[FW_T_EXPERTS] = { { "krnl_expert_ffn", "w" } },
	[FW_T_SHARED] = { { "krnl_expert_ffn", "sw" } },
	[FW_T_SHARED_GATE] = { { "krnl_expert_ffn", "sgate" } },
	[FW_T_MTP_FC_E] = { { "krnl_gemv", "w" } },
	[FW_T_MTP_FC_H] = { { "krnl_gemv", "w" } },
	[FW_T_MTP_NORM_E] = { { "krnl_rmsnorm", "w" } },
	[FW_T_MTP_NORM_H] = { { "krnl_rmsnorm", "w" } },
	[FW_T_MTP_NORM] = { { "krnl_lm_head_argmax", "nw" } },
};

static int place(struct fw *fw, enum fw_tkind kind, uint32_t layer, uint32_t rows,
		 uint32_t cols, uint32_t dt, enum fw_xform x, uint64_t *addr)
{
	struct fw_place *p;
	uint32_t inter = kind == FW_T_SHARED ? fw->cfg.shared_inter : fw->cfg.moe_inter;
	uint64_t bytes = fw_tensor_bytes(kind, rows, cols, dt, inter);
	int rc;

	if (fw->n_places >= FW_MAX_PLACES)
		return -FW_ENOMEM;
	p = &fw->places[fw->n_places];
	rc = alloc(fw, bytes, tensor_users[kind], &p->addr, &p->bank);
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

static int scratch(struct fw *fw, uint64_t bytes, const struct use *users, uint64_t *addr)
{
	uint16_t bank;

	return alloc(fw, bytes, users, addr, &bank);
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
	CHECK(c->mtp <= 1 && fw_layers(c) <= FW_MAX_LAYERS && (!c->mtp || c->layer_attn[c->n_layers]),
	      "MTP head (%u layers) not placeable after %u layers", c->mtp, c->n_layers);
	CHECK(c->hidden >= 1 && c->hidden <= KRNL_MAX_HIDDEN, "hidden_size %u exceeds the kernels' %u", c->hidden, KRNL_MAX_HIDDEN);
	CHECK(c->vocab >= 1 && c->vocab <= KRNL_MAX_VOCAB, "vocab_size %u out of range", c->vocab);
	CHECK(c->lin_nk && c->lin_nv % c->lin_nk == 0, "linear value heads %u not a multiple of key heads %u", c->lin_nv, c->lin_nk);
	CHECK(c->lin_nv <= KRNL_MAX_HEADS && c->lin_dk <= 256 && c->lin_dv <= 256 && c->lin_dk && c->lin_dv,
	      "linear attention heads/dims (%u x %u/%u) exceed the kernel", c->lin_nv, c->lin_dk, c->lin_dv);
	CHECK(c->lin_nv * c->lin_dv <= KRNL_MAX_HIDDEN, "linear value width %u too wide", c->lin_nv * c->lin_dv);
	CHECK(2 * c->lin_nk * c->lin_dk + c->lin_nv * c->lin_dv <= KRNL_MAX_CHAN, "conv channels exceed %u", KRNL_MAX_CHAN);
	CHECK((2 * c->lin_nk * c->lin_dk) % 16 == 0 && (c->lin_nv * c->lin_dv) % 16 == 0,
	      "linear attention widths %u/%u not multiples of 16 (z starts on a 64-byte beat)",
	      2 * c->lin_nk * c->lin_dk, c->lin_nv * c->lin_dv);
	CHECK(c->conv_k >= 2 && c->conv_k <= KRNL_MAX_CONV_K, "linear_conv_kernel_dim %u out of 2..%u", c->conv_k, KRNL_MAX_CONV_K);
	CHECK(c->n_kv_heads && c->n_heads % c->n_kv_heads == 0, "attention heads %u not a multiple of kv heads %u", c->n_heads, c->n_kv_heads);
	CHECK(c->n_heads / c->n_kv_heads <= 16, "more than 16 query heads per kv head (%u)", c->n_heads / c->n_kv_heads);
	CHECK(c->n_heads <= KRNL_MAX_HEADS && c->head_dim && c->head_dim <= KRNL_MAX_HEAD_DIM, "attention head_dim %u too large", c->head_dim);
	CHECK(c->n_heads * c->head_dim <= KRNL_MAX_HIDDEN, "attention width %u too wide", c->n_heads * c->head_dim);
	CHECK(c->rope_dim % 2 == 0 && c->rope_dim <= c->head_dim, "rotary dims %u invalid", c->rope_dim);
	CHECK(c->dt_kv == KRNL_FMT_F32 || (c->dt_kv == KRNL_FMT_BF16 && c->head_dim % 2 == 0),
	      "KV format %u not f32, or bf16 with an even head_dim", c->dt_kv);
	CHECK(c->n_experts >= 1 && c->n_experts <= KRNL_MAX_EXPERTS, "num_experts %u exceeds %u", c->n_experts, KRNL_MAX_EXPERTS);
	CHECK(c->top_k >= 1 && c->top_k <= c->n_experts && c->top_k <= KRNL_MAX_TOPK, "num_experts_per_tok %u invalid", c->top_k);
	CHECK(c->moe_inter >= 1 && c->moe_inter <= KRNL_MAX_INTER, "moe_intermediate_size %u exceeds %u", c->moe_inter, KRNL_MAX_INTER);
	CHECK(c->shared_inter <= KRNL_MAX_INTER, "shared_expert_intermediate_size %u exceeds %u", c->shared_inter, KRNL_MAX_INTER);
	CHECK(krnl_dt_valid(c->dt_attn) && krnl_dt_valid(c->dt_expert) &&
	      krnl_dt_valid(c->dt_shared) && krnl_dt_valid(c->dt_head) &&
	      krnl_dt_valid(c->dt_router) && !krnl_fmt_quant(KRNL_DT_FMT(c->dt_router)),
	      "weight formats %#x/%#x/%#x/%#x/%#x unknown", c->dt_attn, c->dt_expert,
	      c->dt_shared, c->dt_head, c->dt_router);
	return 0;
}

static int place_layer(struct fw *fw, uint32_t l)
{
	const struct fw_model_cfg *c = &fw->cfg;
	struct fw_layer *L = &fw->layer[l];
	uint32_t h = c->hidden, dt = c->dt_attn;
	int rc = 0;

	rc |= place(fw, FW_T_IN_NORM, l, 1, h, KRNL_FMT_F32, FW_X_NONE, &L->in_norm);
	if (!c->layer_attn[l]) {
		uint32_t nk = c->lin_nk, nv = c->lin_nv, dk = c->lin_dk, dv = c->lin_dv;
		uint32_t ch = 2 * nk * dk + nv * dv;

		rc |= place(fw, FW_T_LIN_QKVZ, l, ch + nv * dv, h, dt, FW_X_QKVZ, &L->qkvz);
		rc |= place(fw, FW_T_LIN_BA, l, 2 * nv, h, dt, FW_X_BA, &L->ba);
		rc |= place(fw, FW_T_LIN_CONV, l, ch, c->conv_k, KRNL_FMT_F32, FW_X_NONE, &L->conv);
		rc |= place(fw, FW_T_LIN_ALOG, l, 1, nv, KRNL_FMT_F32, FW_X_NONE, &L->alog);
		rc |= place(fw, FW_T_LIN_DTB, l, 1, nv, KRNL_FMT_F32, FW_X_NONE, &L->dtb);
		rc |= place(fw, FW_T_LIN_NORM, l, 1, dv, KRNL_FMT_F32, FW_X_NONE, &L->lnorm);
		rc |= place(fw, FW_T_LIN_OUT, l, h, nv * dv, dt, FW_X_NONE, &L->lout);
	} else {
		uint32_t nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim;

		rc |= place(fw, FW_T_ATT_Q, l, 2 * nh * hd, h, dt, FW_X_QGATE, &L->q);
		rc |= place(fw, FW_T_ATT_K, l, nkv * hd, h, dt, FW_X_NONE, &L->k);
		rc |= place(fw, FW_T_ATT_V, l, nkv * hd, h, dt, FW_X_NONE, &L->v);
		rc |= place(fw, FW_T_ATT_O, l, h, nh * hd, dt, FW_X_NONE, &L->o);
		rc |= place(fw, FW_T_ATT_QN, l, 1, hd, KRNL_FMT_F32, FW_X_NONE, &L->qn);
		rc |= place(fw, FW_T_ATT_KN, l, 1, hd, KRNL_FMT_F32, FW_X_NONE, &L->kn);
	}
	rc |= place(fw, FW_T_POST_NORM, l, 1, h, KRNL_FMT_F32, FW_X_NONE, &L->post_norm);
	rc |= place(fw, FW_T_ROUTER, l, c->n_experts, h, c->dt_router, FW_X_NONE, &L->router);
	rc |= place(fw, FW_T_EXPERTS, l, c->n_experts * 3 * c->moe_inter, h, c->dt_expert,
		    FW_X_EXPERTS, &L->experts);
	if (c->shared_inter && !rc) {
		/* the shared expert rides in the same call: one CU must reach both */
		fw->pin = companion(fw, "krnl_expert_ffn", "w",
				    fw->places[fw->n_places - 1].bank, "sw");
		rc |= place(fw, FW_T_SHARED, l, 3 * c->shared_inter, h, c->dt_shared, FW_X_SHARED,
			    &L->shared);
		fw->pin = ~0ull;
		rc |= place(fw, FW_T_SHARED_GATE, l, 1, h, KRNL_FMT_F32, FW_X_NONE, &L->sgate);
	}
	return rc ? -FW_ENOMEM : 0;
}

static int place_scratch(struct fw *fw)
{
	const struct fw_model_cfg *c = &fw->cfg;
	struct fw_scratch *s = &fw->s;
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint64_t B = KRNL_MAX_BATCH, f = 4;
	uint32_t lin_w = 2 * c->lin_nk * c->lin_dk + 2 * c->lin_nv * c->lin_dv;
	uint32_t att_w = 2 * c->n_heads * c->head_dim;
	int rc = 0;

	s->proj_w = lin_w > att_w ? lin_w : att_w;
	s->o_w = c->lin_nv * c->lin_dv > c->n_heads * c->head_dim ?
		 c->lin_nv * c->lin_dv : c->n_heads * c->head_dim;

	rc |= scratch(fw, (uint64_t)FW_MAX_PLACES * sizeof(struct fw_place), HOST_ONLY,
		      &ctrl->layout_addr);
	ctrl->prompt_cap = fw->ctx;
	rc |= scratch(fw, (uint64_t)fw->n_seqs * fw->ctx * 4, HOST_ONLY, &ctrl->tok_addr);
	/* logits: one row per batch row for the sampler, then the score ring */
	ctrl->logits_rows = FW_LOGITS_ROWS;
	rc |= scratch(fw, (B + FW_LOGITS_ROWS) * c->vocab * f,
		      USES({ "krnl_lm_head_argmax", "logits" }, { "krnl_sampler", "logits" }),
		      &s->logits);
	ctrl->logits_addr = s->logits + B * c->vocab * f;
	rc |= scratch(fw, B * sizeof(struct krnl_sample_params), USES({ "krnl_sampler", "params" }),
		      &s->params);
	rc |= scratch(fw, B * 4, USES({ "krnl_sampler", "token" }), &s->token);
	rc |= scratch(fw, B * 4, USES({ "krnl_sampler", "logprob" }), &s->logprob);
	rc |= scratch(fw, B * c->hidden * f,
		      USES({ "krnl_embed_gather", "out" }, { "krnl_rmsnorm", "x" },
			   { "krnl_gemv", "y" }, { "krnl_expert_ffn", "y" },
			   { "krnl_lm_head_argmax", "x" }), &s->x);
	rc |= scratch(fw, B * c->hidden * f,
		      USES({ "krnl_rmsnorm", "y" }, { "krnl_gemv", "x" }, { "krnl_expert_ffn", "x" }),
		      &s->xn);
	rc |= scratch(fw, B * s->proj_w * f,
		      USES({ "krnl_gemv", "y" }, { "krnl_conv1d_step", "x" },
			   { "krnl_deltanet_step", "qkv" }, { "krnl_rmsnorm_gated", "z" },
			   { "krnl_attn_decode", "qg" }), &s->proj);
	rc |= scratch(fw, B * 2 * c->lin_nv * f,
		      USES({ "krnl_gemv", "y" }, { "krnl_deltanet_step", "ba" }), &s->ba);
	rc |= scratch(fw, B * c->n_kv_heads * c->head_dim * f,
		      USES({ "krnl_gemv", "y" }, { "krnl_attn_decode", "k" }), &s->kv_k);
	rc |= scratch(fw, B * c->n_kv_heads * c->head_dim * f,
		      USES({ "krnl_gemv", "y" }, { "krnl_attn_decode", "v" }), &s->kv_v);
	rc |= scratch(fw, B * s->o_w * f,
		      USES({ "krnl_deltanet_step", "out" }, { "krnl_rmsnorm_gated", "x" },
			   { "krnl_rmsnorm_gated", "y" }, { "krnl_attn_decode", "out" },
			   { "krnl_gemv", "x" }), &s->o);
	rc |= scratch(fw, B * c->n_experts * f,
		      USES({ "krnl_gemv", "y" }, { "krnl_moe_router", "logits" }), &s->rlogits);
	rc |= scratch(fw, (uint64_t)c->n_experts * 4,
		      USES({ "krnl_moe_router", "count" }, { "krnl_expert_ffn", "count" }), &s->count);
	rc |= scratch(fw, (uint64_t)c->n_experts * KRNL_MAX_BATCH * 4,
		      USES({ "krnl_moe_router", "list" }, { "krnl_expert_ffn", "list" }), &s->list);
	rc |= scratch(fw, (uint64_t)c->n_experts * KRNL_MAX_BATCH * 4,
		      USES({ "krnl_moe_router", "listw" }, { "krnl_expert_ffn", "listw" }), &s->listw);
	rc |= scratch(fw, B * 4, USES({ "krnl_embed_gather", "ids" }), &s->ids);
	rc |= scratch(fw, 2 * B * 4,
		      USES({ "krnl_conv1d_step", "blocks" }, { "krnl_deltanet_step", "blocks" },
			   { "krnl_attn_decode", "blocks" }), &s->blocks);
	if (c->mtp)
		rc |= scratch(fw, B * c->hidden * f,
			      USES({ "krnl_rmsnorm", "x" }, { "krnl_rmsnorm", "y" }, { "krnl_gemv", "x" }),
			      &s->mh);
	rc |= scratch(fw, B * 4, USES({ "krnl_attn_decode", "pos" }), &s->pos);
	rc |= scratch(fw, B * (c->rope_dim ? c->rope_dim : 1) * f,
		      USES({ "krnl_attn_decode", "rope" }), &s->rope);
	rc |= scratch(fw, B * 4, USES({ "krnl_lm_head_argmax", "dst" }), &s->dst);
	rc |= scratch(fw, B * 4, USES({ "krnl_lm_head_argmax", "argmax" }), &s->argmax);
	return rc ? -FW_ENOMEM : 0;
}

/* The state pool: nblk handles (GDN blocks of every layer and a block-table
 * row each) and npages KV pages in every attention layer.  0, or -FW_ENOMEM
 * with the banks as they were. */
static int place_pool(struct fw *fw, uint32_t nblk, uint32_t npages)
{
	const struct fw_model_cfg *c = &fw->cfg;
	uint64_t saved[FW_MAX_BANKS], conv = krnl_conv_block(fw->lin_ch, c->conv_k) * 4;
	uint64_t dn = krnl_dn_block(c->lin_nv, c->lin_dk, c->lin_dv) * 4;
	uint64_t pg = krnl_kv_page(c->n_kv_heads, c->head_dim) * krnl_kv_es(c->dt_kv);
	uint32_t tabw = krnl_kv_pages(fw->ctx);
	int rc = 0;

	memcpy(saved, fw->bank_next, sizeof(saved));
	rc |= scratch(fw, (uint64_t)nblk * tabw * 4, USES({ "krnl_attn_decode", "bt" }), &fw->s.bt);
	for (uint32_t l = 0; !rc && l < fw_layers(c); l++) {
		struct fw_layer *L = &fw->layer[l];

		if (!c->layer_attn[l]) {
			rc |= scratch(fw, nblk * conv, USES({ "krnl_conv1d_step", "state" }),
				      &L->conv_state);
			rc |= scratch(fw, nblk * dn, USES({ "krnl_deltanet_step", "state" }),
				      &L->dn_state);
		} else {
			rc |= scratch(fw, npages * pg, USES({ "krnl_attn_decode", "kc" }), &L->kcache);
			rc |= scratch(fw, npages * pg, USES({ "krnl_attn_decode", "vc" }), &L->vcache);
		}
	}
	if (rc) {
		memcpy(fw->bank_next, saved, sizeof(saved));
		return -FW_ENOMEM;
	}
	return 0;
}

/* Size the pool from the HBM the weights left: handles for the sequences and
 * as many snapshots (at most half of what is left), then every KV page that
 * fits. */
static int size_pool(struct fw *fw)
{
	const struct fw_model_cfg *c = &fw->cfg;
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint64_t left = 0, blk = 0, page = 0, saved[FW_MAX_BANKS];
	uint32_t nblk, lo, hi, tabw = krnl_kv_pages(fw->ctx);

	memcpy(saved, fw->bank_next, sizeof(saved));
	for (uint32_t i = 0; i < fw->board.n_banks; i++)
		left += fw->board.banks[i].base + fw->board.banks[i].size - fw->bank_next[i];
	for (uint32_t l = 0; l < fw_layers(c); l++) {
		if (!c->layer_attn[l])
			blk += (krnl_conv_block(fw->lin_ch, c->conv_k) +
				krnl_dn_block(c->lin_nv, c->lin_dk, c->lin_dv)) * 4;
		else
			page += 2 * krnl_kv_page(c->n_kv_heads, c->head_dim) * krnl_kv_es(c->dt_kv);
	}
	/* per sequence: its own, a spare for draft rows (speculative), a snapshot */
	nblk = (fw->spec ? 3 : 2) * fw->n_seqs;
	nblk = nblk < FW_MAX_BLOCKS ? nblk : FW_MAX_BLOCKS;
	while (nblk > 2 && (uint64_t)nblk * (blk + tabw * 4ull) > left / 2)
		nblk /= 2;
	/* enough handles and pages for one sequence of full context, at least */
	while (place_pool(fw, nblk, tabw)) {
		if (nblk <= 2) {
			snprintf(fw->err, sizeof(fw->err), "no room after the weights for the "
				 "state of one sequence of %u positions (%u KV pages of %llu KiB)",
				 fw->ctx, tabw, (unsigned long long)(page >> 10));
			return -FW_ENOMEM;
		}
		nblk /= 2;
	}
	memcpy(fw->bank_next, saved, sizeof(saved));
	lo = tabw;
	hi = ctrl->page_limit && ctrl->page_limit < FW_MAX_PAGES ? ctrl->page_limit : FW_MAX_PAGES;
	if (hi < lo)
		hi = lo;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo + 1) / 2;

		if (place_pool(fw, nblk, mid) == 0) {
			memcpy(fw->bank_next, saved, sizeof(saved));
			lo = mid;
		} else {
			hi = mid - 1;
		}
	}
	if (place_pool(fw, nblk, lo))
		return -FW_ENOMEM;
	fw->pool.nblk = nblk;
	fw->pool.npages = lo;
	fw->pool.tabw = tabw;
	fw->pool.blk_bytes = blk;
	fw->pool.page_bytes = page;
	if (fw->n_seqs > nblk)
		fw->n_seqs = nblk;
	ctrl->n_blocks = nblk;
	ctrl->n_pages = lo;
	ctrl->block_bytes = blk;
	ctrl->page_bytes = page;
	ctrl->state_bytes = (uint64_t)nblk * (blk + tabw * 4ull) + (uint64_t)lo * page;
	return 0;
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
	fw->n_seqs = ctrl->seq_limit && ctrl->seq_limit < FW_MAX_SEQS ? ctrl->seq_limit :
		     FW_MAX_SEQS;
	for (uint32_t i = 0; i < FW_MAX_BANKS; i++)
		fw->bank_next[i] = 0;
	for (uint32_t i = 0; i < fw->board.n_banks; i++)
		fw->bank_next[i] = fw->board.banks[i].base;
	fw->n_places = 0;
	fw->pin = ~0ull;
	fw->err[0] = 0;
	ctrl->weight_bytes = ctrl->state_bytes = 0;

	rc = place_scratch(fw);
	if (!rc)
		rc = place(fw, FW_T_EMBED, 0, c->vocab, c->hidden, c->dt_head, FW_X_NONE, &fw->embed);
	for (uint32_t l = 0; !rc && l < fw_layers(c); l++)
		rc = place_layer(fw, l);
	if (!rc)
		rc = place(fw, FW_T_FINAL_NORM, 0, 1, c->hidden, KRNL_FMT_F32, FW_X_NONE, &fw->final_norm);
	if (!rc)
		rc = place(fw, FW_T_LM_HEAD, 0, c->vocab, c->hidden, c->dt_head, FW_X_NONE, &fw->lm_head);
	if (!rc && c->mtp) {
		uint32_t h = c->hidden, m = c->n_layers;

		rc |= place(fw, FW_T_MTP_NORM_E, m, 1, h, KRNL_FMT_F32, FW_X_NONE, &fw->mtp_norm_e);
		rc |= place(fw, FW_T_MTP_NORM_H, m, 1, h, KRNL_FMT_F32, FW_X_NONE, &fw->mtp_norm_h);
		rc |= place(fw, FW_T_MTP_FC_E, m, h, h, c->dt_attn, FW_X_NONE, &fw->mtp_fc_e);
		rc |= place(fw, FW_T_MTP_FC_H, m, h, h, c->dt_attn, FW_X_NONE, &fw->mtp_fc_h);
		rc |= place(fw, FW_T_MTP_NORM, m, 1, h, KRNL_FMT_F32, FW_X_NONE, &fw->mtp_norm);
		rc = rc ? -FW_ENOMEM : 0;
	}
	if (!rc) {
		rc = size_pool(fw);
		if (rc)
			return rc;
	}
	if (rc) {
		if (!fw->err[0])
			snprintf(fw->err, sizeof(fw->err),
				 "model does not fit the card's %u banks (%llu MiB of weights placed"
				 " so far, each in the banks its kernel ports reach)", fw->board.n_banks,
				 (unsigned long long)(ctrl->weight_bytes >> 20));
		return rc;
	}
	ctrl->hbm_used = 0;
	for (uint32_t i = 0; i < fw->board.n_banks; i++)
		ctrl->hbm_used += fw->bank_next[i] - fw->board.banks[i].base;
	ctrl->layout_count = fw->n_places;
	ctrl->n_seqs = fw->n_seqs;
	ctrl->rows_max = FW_MAX_ROWS;
	ctrl->page_pos = KRNL_KV_PAGE;
	ctrl->ctx = fw->ctx;
	return fw->hal.write(fw->hal.ctx, ctrl->layout_addr, fw->places,
			     (uint64_t)fw->n_places * sizeof(struct fw_place)) ? -FW_EHAL : 0;
}
