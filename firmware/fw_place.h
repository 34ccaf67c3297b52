/* fw_place.h — where the model lives in HBM.
 *
 * The firmware decides the placement (fw_place_model) and publishes it as a
 * table of struct fw_place in HBM; the host's image builder fills each entry
 * from the checkpoint, in the card format the entry names.  The card format
 * of a matrix is the checkpoint's [rows][cols] in the row layout of
 * krnl_types.h (f32/bf16/f16/int8/int4, each row padded to a 64-byte beat),
 * in the format of its tensor class (fw_model_cfg.dt_*), except where the
 * kernels want rows regrouped (the FW_X_* transforms below).  Small vectors
 * (norm weights, A_log, dt_bias, conv taps, shared-expert gate) are always
 * plain f32 arrays.
 */
#ifndef FW_PLACE_H
#define FW_PLACE_H

#include <stdint.h>

enum fw_tkind {
	FW_T_EMBED,		/* model.embed_tokens.weight [vocab][h] */
	FW_T_FINAL_NORM,	/* model.norm.weight [h] */
	FW_T_LM_HEAD,		/* lm_head.weight [vocab][h] */
	FW_T_IN_NORM,		/* layers.L.input_layernorm.weight [h] */
	FW_T_POST_NORM,		/* layers.L.post_attention_layernorm.weight [h] */
	FW_T_LIN_QKVZ,		/* linear_attn.in_proj_qkvz.weight, FW_X_QKVZ */
	FW_T_LIN_BA,		/* linear_attn.in_proj_ba.weight, FW_X_BA */
	FW_T_LIN_CONV,		/* linear_attn.conv1d.weight [C][1][K] -> [C][K] */
	FW_T_LIN_ALOG,		/* linear_attn.A_log [nv] */
	FW_T_LIN_DTB,		/* linear_attn.dt_bias [nv] */
	FW_T_LIN_NORM,		/* linear_attn.norm.weight [dv] */
	FW_T_LIN_OUT,		/* linear_attn.out_proj.weight [h][nv*dv] */
	FW_T_ATT_Q,		/* self_attn.q_proj.weight, FW_X_QGATE */
	FW_T_ATT_K,		/* self_attn.k_proj.weight [nkv*hd][h] */
	FW_T_ATT_V,		/* self_attn.v_proj.weight [nkv*hd][h] */
	FW_T_ATT_O,		/* self_attn.o_proj.weight [h][nh*hd] */
	FW_T_ATT_QN,		/* self_attn.q_norm.weight [hd] */
	FW_T_ATT_KN,		/* self_attn.k_norm.weight [hd] */
	FW_T_ROUTER,		/* mlp.gate.weight [E][h] */
	FW_T_EXPERTS,		/* mlp.experts.*, FW_X_EXPERTS */
	FW_T_SHARED,		/* mlp.shared_expert.*, FW_X_SHARED */
	FW_T_SHARED_GATE,	/* mlp.shared_expert_gate.weight [1][h] -> [h] */
	FW_T_MTP_FC_E,		/* mtp.fc.weight [h][2h], columns 0..h-1 (the embedding's) */
	FW_T_MTP_FC_H,		/* mtp.fc.weight, columns h..2h-1 (the hidden state's) */
	FW_T_MTP_NORM_E,	/* mtp.pre_fc_norm_embedding.weight [h] */
	FW_T_MTP_NORM_H,	/* mtp.pre_fc_norm_hidden.weight [h] */
	FW_T_MTP_NORM,		/* mtp.norm.weight [h] */
	FW_T_COUNT
};

enum fw_xform {
	FW_X_NONE = 0,
	/* rows regrouped from per key-head group [q_g|k_g|v_g|z_g] to
	 * [q_0..q_nk-1 | k_0.. | v_0.. | z_0..]: the GEMV output is then the
	 * conv input followed by z, with no gather on the card */
	FW_X_QKVZ,
	/* per group [b_g|a_g] -> [b_0..b_nv-1 | a_0..a_nv-1] */
	FW_X_BA,
	/* per head [query_h|gate_h] -> [query_0.. | gate_0..] */
	FW_X_QGATE,
	/* experts 0..E-1 back to back, each [gate (I x h) | up (I x h) | down (h x I)] */
	FW_X_EXPERTS,
	/* the shared expert as one [gate | up | down] block */
	FW_X_SHARED,
};

struct fw_place {
	uint16_t kind;		/* enum fw_tkind */
	uint16_t dtype;		/* low 16 bits of the dt register (krnl_types.h) */
	uint16_t xform;		/* enum fw_xform */
	uint16_t bank;		/* first bank it occupies */
	uint32_t layer;		/* decoder layer, 0 for model-level tensors; the MTP
				   head's (layer and fc, norms) are layer n_layers */
	uint32_t rows, cols;	/* card-format shape (experts: E*3*I rows of h... see xform) */
	uint64_t addr;		/* HBM address */
	uint64_t bytes;
};

const char *fw_tkind_name(enum fw_tkind k);

/* 1 if tensors of kind k are matrices of rows in a weight format, 0 if they
 * are f32 vectors. */
int fw_tkind_matrix(enum fw_tkind k);

/* The dt register value of an entry (format and group). */
static inline uint32_t fw_place_dt(const struct fw_place *p)
{
	return p->dtype;
}

/* Bytes of a [rows][cols] tensor of kind k in format dt on the card; experts:
 * rows = E * 3 * I (as placed), cols = h, i the intermediate width. */
uint64_t fw_tensor_bytes(enum fw_tkind k, uint64_t rows, uint32_t cols, uint32_t dt,
			 uint32_t inter);

#endif
