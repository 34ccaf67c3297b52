/* fw_model.h — the model as the card sees it: hyper-parameters only.
 *
 * Filled by host/model from a Hugging Face config.json (either dialect) and
 * handed to the firmware with the CONFIGURE command.  Plain fixed-size struct:
 * it crosses the command ring byte for byte.
 */
#ifndef FW_MODEL_H
#define FW_MODEL_H

#include <stdint.h>

#define FW_MAX_LAYERS 128

struct fw_model_cfg {
	uint32_t hidden;	/* hidden_size */
	uint32_t vocab;		/* vocab_size */
	uint32_t n_layers;	/* num_hidden_layers */
	uint8_t layer_attn[FW_MAX_LAYERS]; /* 1: full_attention, 0: linear_attention */
	float rms_eps;		/* rms_norm_eps */

	/* Gated DeltaNet (linear_attention layers) */
	uint32_t lin_nk;	/* linear_num_key_heads */
	uint32_t lin_nv;	/* linear_num_value_heads */
	uint32_t lin_dk;	/* linear_key_head_dim */
	uint32_t lin_dv;	/* linear_value_head_dim */
	uint32_t conv_k;	/* linear_conv_kernel_dim */

	/* gated full attention */
	uint32_t n_heads;	/* num_attention_heads */
	uint32_t n_kv_heads;	/* num_key_value_heads */
	uint32_t head_dim;	/* head_dim */
	uint32_t rope_dim;	/* head_dim * partial_rotary_factor (even) */
	float rope_theta;	/* rope_theta / rope_parameters.rope_theta */

	/* mixture of experts */
	uint32_t n_experts;	/* num_experts */
	uint32_t top_k;		/* num_experts_per_tok */
	uint32_t moe_inter;	/* moe_intermediate_size */
	uint32_t shared_inter;	/* shared_expert_intermediate_size (0: none) */
	uint32_t norm_topk;	/* norm_topk_prob */

	uint32_t max_ctx;	/* max_position_embeddings */
	int32_t eos_id;		/* eos_token_id, -1 if none */
	/* Card formats of the matrices, per tensor class: dt register values of
	 * krnl_types.h (format | group << 8).  Vectors are always f32. */
	uint32_t dt_attn;	/* attention and Gated DeltaNet projections */
	uint32_t dt_expert;	/* routed experts */
	uint32_t dt_shared;	/* shared expert */
	uint32_t dt_head;	/* lm_head and token embedding */
	uint32_t dt_router;	/* mlp.gate: never quantized (routes flip easily) */
	uint32_t dt_kv;		/* KV cache pages: KRNL_FMT_F32 or KRNL_FMT_BF16 */
	/* Multi-token prediction head (mtp.* of the checkpoint), 0 or 1: placed
	 * as decoder layer n_layers (layer_attn[n_layers] = 1, gated attention
	 * and MoE like the main layers) with its fc and norms; it drafts the
	 * token after next from each row's final hidden state and next token. */
	uint32_t mtp;
};

/* Decoder layers placed: the main ones, then the MTP head's. */
static inline uint32_t fw_layers(const struct fw_model_cfg *c)
{
	return c->n_layers + (c->mtp ? 1u : 0u);
}

#endif
