/* krnl_names.c — the kernel name table, checked against the enum. */
#include "krnl_abi.h"

const char *const krnl_names[KRNL_COUNT] = {
	[KRNL_EMBED_GATHER] = "krnl_embed_gather",
	[KRNL_RMSNORM] = "krnl_rmsnorm",
	[KRNL_RMSNORM_GATED] = "krnl_rmsnorm_gated",
	[KRNL_GEMV] = "krnl_gemv",
	[KRNL_CONV1D_STEP] = "krnl_conv1d_step",
	[KRNL_DELTANET_STEP] = "krnl_deltanet_step",
	[KRNL_ATTN_DECODE] = "krnl_attn_decode",
	[KRNL_MOE_ROUTER] = "krnl_moe_router",
	[KRNL_EXPERT_FFN] = "krnl_expert_ffn",
	[KRNL_LM_HEAD_ARGMAX] = "krnl_lm_head_argmax",
	[KRNL_SAMPLER] = "krnl_sampler",
};

_Static_assert(sizeof(krnl_names) / sizeof(krnl_names[0]) == KRNL_COUNT,
	       "krnl_names must name every kernel");
