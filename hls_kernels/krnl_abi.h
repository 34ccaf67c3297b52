/* krnl_abi.h — how the firmware calls a kernel: a register block.
 *
 * A call is a kernel id plus up to KRNL_MAX_ARGS 64-bit argument registers,
 * the way an AXI-lite control block looks to the firmware.  Pointer
 * arguments are HBM addresses; scalars are u32 (floats by their bits).  The
 * argument order of each kernel is its index enum below, the same order as the
 * C function's parameters; the emulated card and the XRT backend both decode
 * calls with these enums, and the xclbin metadata is generated from them.
 */
#ifndef KRNL_ABI_H
#define KRNL_ABI_H

#include <stdint.h>

#define KRNL_MAX_ARGS 24

enum krnl_id {
	KRNL_EMBED_GATHER,
	KRNL_RMSNORM,
	KRNL_RMSNORM_GATED,
	KRNL_GEMV,
	KRNL_CONV1D_STEP,
	KRNL_DELTANET_STEP,
	KRNL_ATTN_DECODE,
	KRNL_MOE_ROUTER,
	KRNL_EXPERT_FFN,
	KRNL_LM_HEAD_ARGMAX,
	KRNL_SAMPLER,
	KRNL_COUNT
};

/* Names as the kernels are called in HLS and in the xclbin. */
extern const char *const krnl_names[KRNL_COUNT];

struct krnl_call {
	uint32_t id;		/* enum krnl_id */
	uint64_t arg[KRNL_MAX_ARGS];
};

static inline uint32_t krnl_f2u(float f)
{
	union { float f; uint32_t u; } v = { .f = f };
	return v.u;
}

static inline float krnl_u2f(uint64_t u)
{
	union { uint32_t u; float f; } v = { .u = (uint32_t)u };
	return v.f;
}

/* Argument registers of each kernel (pointer args marked P). */
enum { EMB_IDS /*P*/, EMB_TABLE /*P*/, EMB_OUT /*P*/, EMB_ROWS, EMB_DIM, EMB_DT, EMB_NARGS };
enum { RMS_X /*P*/, RMS_W /*P*/, RMS_Y /*P*/, RMS_ROWS, RMS_DIM, RMS_EPS, RMS_WOFF, RMS_NARGS };
enum { RMG_X /*P*/, RMG_Z /*P*/, RMG_W /*P*/, RMG_Y /*P*/, RMG_ROWS, RMG_HEADS, RMG_DIM,
       RMG_ZSTRIDE, RMG_EPS, RMG_NARGS };
enum { GEMV_X /*P*/, GEMV_W /*P*/, GEMV_Y /*P*/, GEMV_ROWS, GEMV_IN, GEMV_OUT,
       GEMV_XSTRIDE, GEMV_YSTRIDE, GEMV_DT, GEMV_ACC, GEMV_NARGS };
enum { CONV_X /*P*/, CONV_W /*P*/, CONV_STATE /*P*/, CONV_BLOCKS /*P*/, CONV_ROWS, CONV_CH,
       CONV_K, CONV_XSTRIDE, CONV_NBLK, CONV_NARGS };
enum { DN_QKV /*P*/, DN_BA /*P*/, DN_ALOG /*P*/, DN_DTB /*P*/, DN_STATE /*P*/, DN_BLOCKS /*P*/,
       DN_OUT /*P*/, DN_ROWS, DN_NK, DN_NV, DN_DK, DN_DV, DN_XSTRIDE, DN_NBLK, DN_NARGS };
enum { AT_QG /*P*/, AT_K /*P*/, AT_V /*P*/, AT_QNW /*P*/, AT_KNW /*P*/, AT_KC /*P*/, AT_VC /*P*/,
       AT_BLOCKS /*P*/, AT_POS /*P*/, AT_ROPE /*P*/, AT_BT /*P*/, AT_OUT /*P*/, AT_PART /*P*/,
       AT_ROWS, AT_NH, AT_NKV, AT_HD, AT_RD, AT_EPS, AT_TABW, AT_NPAGES, AT_NBLK, AT_KVDT,
       AT_SPLIT, AT_NARGS };
enum { RT_LOGITS /*P*/, RT_COUNT /*P*/, RT_LIST /*P*/, RT_LISTW /*P*/, RT_ROWS, RT_NE, RT_TOPK,
       RT_NORM, RT_NARGS };
enum { EF_X /*P*/, EF_W /*P*/, EF_COUNT /*P*/, EF_LIST /*P*/, EF_LISTW /*P*/, EF_SW /*P*/,
       EF_SGATE /*P*/, EF_Y /*P*/, EF_ROWS, EF_H, EF_I, EF_NE, EF_SI, EF_DT, EF_SDT, EF_NARGS };
enum { LM_X /*P*/, LM_NW /*P*/, LM_W /*P*/, LM_LOGITS /*P*/, LM_DST /*P*/, LM_ARGMAX /*P*/,
       LM_ROWS, LM_H, LM_V, LM_EPS, LM_DT, LM_LS, LM_NARGS };
enum { SMP_LOGITS /*P*/, SMP_PARAMS /*P*/, SMP_TOKEN /*P*/, SMP_LOGPROB /*P*/, SMP_ROWS, SMP_V,
       SMP_NARGS };

#endif
