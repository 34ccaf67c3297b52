/* fw.h — the card's control program.
 *
 * Boots from the board's DTB, takes CONFIGURE/START/SUBMIT/CANCEL from the
 * command ring, places the model in HBM and runs token steps over a batch of
 * slots.  Freestanding style: everything lives in struct fw (allocated by the
 * caller), no malloc, no stdio; kernels and memory are reached only through
 * struct fw_hal, which a driver_shim backend implements.
 *
 * Functions return 0 or a negative FW_E* code (fw_strerror names it).
 */
#ifndef FW_H
#define FW_H

#include <stddef.h>
#include <stdint.h>
#include "fw_board.h"
#include "fw_model.h"
#include "fw_place.h"
#include "fw_ring.h"
#include "krnl_abi.h"
#include "krnl_common.h"

enum fw_err {
	FW_OK = 0,
	FW_EINVAL = 1,		/* bad argument or command */
	FW_EBOARD = 2,		/* DTB refused */
	FW_ECONFIG = 3,		/* model config outside what the kernels take */
	FW_ENOMEM = 4,		/* model + state do not fit the card's memory */
	FW_EHAL = 5,		/* a kernel run or memory access failed */
	FW_ESTATE = 6,		/* command not valid in this state */
	FW_EBUSY = 7,		/* slot in use */
	FW_EMAX = 7,
};

const char *fw_strerror(int code);

/* What the card backend provides.  run() starts a kernel and waits for it. */
struct fw_hal {
	void *ctx;
	int (*run)(void *ctx, const struct krnl_call *call);
	int (*read)(void *ctx, uint64_t addr, void *dst, uint64_t n);
	int (*write)(void *ctx, uint64_t addr, const void *src, uint64_t n);
	int (*fill)(void *ctx, uint64_t addr, uint8_t byte, uint64_t n);
	uint64_t (*now_ns)(void *ctx);
	struct fw_ctrl *ctrl;	/* host-visible control block */
};

#define FW_MAX_PLACES (FW_MAX_LAYERS * 16 + 8)

/* HBM addresses of one decoder layer's tensors and per-slot state. */
struct fw_layer {
	uint64_t in_norm, post_norm;
	uint64_t qkvz, ba, conv, alog, dtb, lnorm, lout;	/* linear attention */
	uint64_t q, k, v, o, qn, kn;				/* full attention */
	uint64_t router, experts, shared, sgate;		/* MoE */
	uint64_t conv_state, dn_state;	/* [slots][C][K-1], [slots][nv][dk][dv] */
	uint64_t kcache, vcache;	/* [slots][nkv][ctx][hd] each */
};

/* Per-step scratch in HBM: activations of the whole batch. */
struct fw_scratch {
	uint64_t x, xn, proj, ba, kv_k, kv_v, o, rlogits;
	uint64_t count, list, listw;
	uint64_t ids, slots, pos, dst, argmax;
	uint64_t rope;		/* [FW_MAX_SLOTS][rope_dim]: cos then sin of each row's position */
	uint64_t logits;	/* [FW_MAX_SLOTS + logits ring rows][vocab]: step rows, then the ring */
	uint64_t params, token, logprob;	/* sampler in/out per row */
	uint32_t proj_w;	/* floats per row of proj */
	uint32_t o_w;		/* floats per row of o */
};

struct fw_slot {
	uint32_t active;
	uint32_t pos;		/* next position to run */
	uint32_t n_prompt;
	uint32_t max_new;
	uint32_t generated;
	uint32_t flags;		/* FW_SUB_* */
	uint32_t cancel;
	uint32_t n_stop;
	int32_t stop[FW_MAX_STOP];
	int32_t next;		/* token to feed once the prompt is consumed */
	float temperature, top_p;
	uint32_t top_k;
	uint64_t seed;
	uint64_t tag;
};

struct fw {
	struct fw_hal hal;
	struct fw_board board;
	struct fw_model_cfg cfg;
	uint32_t ctx;		/* positions per slot */
	uint64_t bank_next[FW_MAX_BANKS];	/* bump pointer per bank */
	uint64_t pin;		/* extra bank mask while placing a companion buffer */
	struct fw_layer layer[FW_MAX_LAYERS];
	uint64_t embed, final_norm, lm_head;
	struct fw_scratch s;
	uint32_t n_places;
	struct fw_place places[FW_MAX_PLACES];
	struct fw_slot slot[FW_MAX_SLOTS];
	uint32_t lin_ch;	/* conv channels 2*nk*dk + nv*dv */
	float rope[FW_MAX_SLOTS * KRNL_MAX_HEAD_DIM];	/* staging of s.rope */
	char err[160];
};

/* Parse the board and publish FW_ST_BOOTED in hal->ctrl. */
int fw_boot(struct fw *fw, const struct fw_hal *hal, const void *dtb, size_t len);

/* Do one unit of work: a pending command, else one token step of the active
 * slots.  Returns 1 if it did something, 0 if idle, negative on a failure
 * (the card is then FW_ST_FAILED with ctrl->error set). */
int fw_service(struct fw *fw);

/* Placement (fw_place.c): lay the configured model out in HBM. */
int fw_place_model(struct fw *fw);

/* One row of a token step: which slot, which token at which position, and
 * where its logits go (dst >= 0: row of the logits ring, -1: nowhere). */
struct fw_row {
	int32_t slot, token, pos, dst;
};

/* What the step chose for a row. */
struct fw_pick {
	int32_t token;
	float logprob;
};

/* The token step (fw_step.c): runs n rows through every layer and samples
 * each row's next token into pick[]. */
int fw_step(struct fw *fw, const struct fw_row *rows, uint32_t n, struct fw_pick *pick);

#endif
