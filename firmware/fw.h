/* fw.h — the card's control program.
 *
 * Boots from the board's DTB, takes CONFIGURE/START/SUBMIT/CANCEL and the
 * pool's SNAPSHOT/ROLLBACK/DROP from the command ring, places the model in HBM
 * and runs token steps over the positions of the live sequences.  Freestanding style: everything lives in struct fw (allocated by the
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
	FW_EBUSY = 7,		/* sequence id in use */
	FW_ENOSPC = 8,		/* the state pool is full */
	FW_EMAX = 8,
};

const char *fw_strerror(int code);

/* What the card backend provides.  run() starts a kernel and waits for it. */
struct fw_hal {
	void *ctx;
	int (*run)(void *ctx, const struct krnl_call *call);
	int (*read)(void *ctx, uint64_t addr, void *dst, uint64_t n);
	int (*write)(void *ctx, uint64_t addr, const void *src, uint64_t n);
	int (*fill)(void *ctx, uint64_t addr, uint8_t byte, uint64_t n);
	int (*copy)(void *ctx, uint64_t dst, uint64_t src, uint64_t n);	/* card to card */
	uint64_t (*now_ns)(void *ctx);
	struct fw_ctrl *ctrl;	/* host-visible control block */
};

#define FW_MAX_PLACES (FW_MAX_LAYERS * 16 + 8)

/* HBM addresses of one decoder layer's tensors and state pools (krnl_state.h). */
struct fw_layer {
	uint64_t in_norm, post_norm;
	uint64_t qkvz, ba, conv, alog, dtb, lnorm, lout;	/* linear attention */
	uint64_t q, k, v, o, qn, kn;				/* full attention */
	uint64_t router, experts, shared, sgate;		/* MoE */
	uint64_t conv_state, dn_state;	/* [blocks][C][K-1], [blocks][nv][dk][dv] */
	uint64_t kcache, vcache;	/* [pages][nkv][KRNL_KV_PAGE][hd] each */
};

/* Per-step scratch in HBM: activations of the whole batch. */
struct fw_scratch {
	uint64_t x, xn, proj, ba, kv_k, kv_v, o, rlogits;
	uint64_t count, list, listw;
	uint64_t ids, blocks, pos, dst, argmax;	/* blocks: [2][rows] GDN handles in, out */
	uint64_t mh;		/* MTP: [KRNL_MAX_BATCH][hidden] the rows' normed final hidden */
	uint64_t rope;		/* [KRNL_MAX_BATCH][rope_dim]: cos then sin of each row's position */
	uint64_t logits;	/* [KRNL_MAX_BATCH + logits ring rows][vocab]: rows, then the ring */
	uint64_t bt;		/* block tables: [blocks][tabw] int32 page ids */
	uint64_t params, token, logprob;	/* sampler in/out per row */
	uint32_t proj_w;	/* floats per row of proj */
	uint32_t o_w;		/* floats per row of o */
};

/* A live sequence.  Its tokens (prompt, then every generated one) are in its
 * token buffer; positions [0, pos) have run; len tokens are known. */
struct fw_seq {
	uint32_t active;
	uint32_t pos;		/* next position to run */
	uint32_t len;		/* tokens in the buffer */
	uint32_t n_prompt;
	uint32_t max_new;
	uint32_t generated;
	uint32_t emitted;	/* positions below this produced their results already
				   (a preempted sequence replays them silently) */
	uint32_t flags;		/* FW_SUB_* */
	uint32_t cancel;
	uint32_t blk;		/* state handle */
	uint32_t spare;		/* a second handle a draft row writes its GDN state to
				   (UINT32_MAX: none); swapped with blk on acceptance */
	int32_t draft;		/* the MTP head's draft of token len, or -1 */
	uint32_t npg;		/* pages in its block table */
	uint32_t n_stop;
	int32_t stop[FW_MAX_STOP];
	float temperature, top_p;
	uint32_t top_k;
	uint64_t seed;
	uint64_t tag;
	uint64_t born;		/* admission order: the youngest is preempted first */
	uint64_t key[2];	/* prefix hash of its first (pos / KRNL_KV_PAGE) pages */
	uint32_t keyed;		/* pages folded into key */
};

/* A kept state: a prefix-cache entry (keyed, evictable) or a rollback point
 * (pinned to its sequence).  Its handle's conv and delta blocks are a copy;
 * its block-table row shares the pages (reference counts). */
struct fw_snap {
	uint32_t used;
	uint32_t pinned;
	uint32_t blk;
	uint32_t npos;		/* positions it covers */
	uint32_t npg;		/* pages in its table row */
	int32_t next;		/* prefix entry with an MTP head: the token at npos (the
				   head's KV at npos - 1 depends on it); -1 otherwise */
	uint32_t seq;		/* pinned: owner */
	uint32_t generated;	/* pinned: the owner's counters then */
	uint32_t len;
	uint64_t key[2];
	uint64_t used_at;	/* LRU tick */
	uint64_t bytes;
};

#define FW_MAX_BLOCKS	1024		/* state handles: sequences + snapshots */
#define FW_MAX_PAGES	(1u << 18)	/* KV pages */

/* The state pool: handles, pages and snapshots (fw_pool.c). */
struct fw_pool {
	uint32_t nblk, npages, tabw;
	uint32_t nblk_free, npage_free;
	uint32_t blk_free[FW_MAX_BLOCKS];
	uint32_t page_free[FW_MAX_PAGES];
	uint16_t ref[FW_MAX_PAGES];
	struct fw_snap snap[FW_MAX_BLOCKS];
	uint64_t tick;
	uint64_t born;
	uint64_t blk_bytes, page_bytes;	/* per handle (GDN), per page (all layers, K and V) */
	uint32_t every;			/* prefix snapshot spacing in positions */
	uint64_t budget;		/* prefix-cache bytes */
	uint64_t held;			/* bytes the prefix cache holds now */
	uint32_t seen_pages, seen_blks;	/* free counts last published */
};

struct fw {
	struct fw_hal hal;
	struct fw_board board;
	struct fw_model_cfg cfg;
	uint32_t ctx;		/* positions per sequence */
	uint32_t n_seqs;
	uint64_t bank_next[FW_MAX_BANKS];	/* bump pointer per bank */
	uint64_t pin;		/* extra bank mask while placing a companion buffer */
	struct fw_layer layer[FW_MAX_LAYERS];
	uint64_t embed, final_norm, lm_head;
	uint64_t mtp_fc_e, mtp_fc_h;	/* mtp.fc.weight's embedding and hidden halves [h][h] */
	uint64_t mtp_norm_e, mtp_norm_h, mtp_norm;
	uint32_t spec;		/* drafts per step (ctrl->spec, 0 without an MTP head) */
	struct fw_scratch s;
	uint32_t n_places;
	struct fw_place places[FW_MAX_PLACES];
	struct fw_seq seq[FW_MAX_SEQS];
	struct fw_pool pool;
	uint32_t lin_ch;	/* conv channels 2*nk*dk + nv*dv */
	float rope[KRNL_MAX_BATCH * KRNL_MAX_HEAD_DIM];	/* staging of s.rope */
	char err[160];
};

/* Parse the board and publish FW_ST_BOOTED in hal->ctrl. */
int fw_boot(struct fw *fw, const struct fw_hal *hal, const void *dtb, size_t len);

/* Do one unit of work: a pending command, else one token step of the active
 * sequences.  Returns 1 if it did something, 0 if idle, negative on a failure
 * (the card is then FW_ST_FAILED with ctrl->error set). */
int fw_service(struct fw *fw);

/* Placement (fw_place.c): lay the configured model out in HBM. */
int fw_place_model(struct fw *fw);

/* One row of a token step: which sequence, which token at which position,
 * whether it goes through the lm_head (head: a token is picked for it, or its
 * logits go to row dst >= 0 of the logits ring). */
struct fw_row {
	int32_t seq, token, pos, dst;
	uint32_t head;
	int32_t next;		/* the token at pos + 1 if known, else -1: the head's pick
				   (the MTP head's input) */
	int32_t out;		/* handle the row writes its GDN state to; -1: its own */
	uint32_t mhead;		/* MTP head: through the lm_head (a draft, or MTP logits to
				   row dst with FW_SUB_MTP) */
	uint32_t draft;		/* token is a draft, verified by the row before */
};

/* What the step chose for a row. */
struct fw_pick {
	int32_t token;
	float logprob;
	int32_t draft;		/* mhead rows: the MTP head's greedy draft of token pos + 2 */
};

/* The token step (fw_step.c): runs n <= KRNL_MAX_BATCH rows through every
 * layer and samples each head row's next token into pick[]; with an MTP head,
 * runs it on every row (its input: the row's next token, known or just
 * picked) and drafts for the mhead rows. */
int fw_step(struct fw *fw, const struct fw_row *rows, uint32_t n, struct fw_pick *pick);

/* The state pool (fw_pool.c).  All return 0 or -FW_E*. */
int fw_pool_init(struct fw *fw);
int fw_pool_page(struct fw *fw, struct fw_seq *s, uint32_t pos);	/* page for pos */
int fw_pool_admit(struct fw *fw, struct fw_seq *s);	/* handle + fresh state */
int fw_pool_release(struct fw *fw, struct fw_seq *s);	/* handle and pages back */
int fw_pool_preempt(struct fw *fw, struct fw_seq *s);	/* drop state, replay later */
int fw_pool_accept(struct fw *fw, struct fw_seq *s);	/* a draft row's state is s's now */
int fw_prefix_restore(struct fw *fw, struct fw_seq *s, uint32_t *got);	/* at submit */
int fw_prefix_after(struct fw *fw, struct fw_seq *s);	/* after a step: maybe snapshot */
int fw_snap_take(struct fw *fw, struct fw_seq *s, uint32_t *id);	/* pinned */
int fw_snap_rollback(struct fw *fw, struct fw_seq *s, uint32_t id);
int fw_snap_drop(struct fw *fw, uint32_t id);
void fw_pool_publish(struct fw *fw);
/* Next prefix-snapshot position above pos, or UINT32_MAX. */
uint32_t fw_prefix_next(const struct fw *fw, const struct fw_seq *s);

#endif
