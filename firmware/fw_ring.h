/* fw_ring.h — the only path between host and card: a control block in
 * host-visible card memory holding the command ring, the result ring and the
 * CONFIGURE mailbox.
 *
 * Single producer / single consumer on each ring: the host produces commands
 * and consumes results, the firmware the reverse.  An index is advanced with
 * a release store after the entry is written and read with an acquire load,
 * so an entry is never seen half-written.  Indices run freely and wrap at
 * 2^32; the entry is index % ring size.
 *
 * Bulk data stays in HBM and is named by address: prompts in per-sequence
 * token buffers, logits rows (score path) in the logits ring, the weight
 * placement table published after CONFIGURE.
 *
 * A sequence id (0 .. n_seqs-1, chosen by the host among those it has not in
 * flight) names a request's token buffer and its firmware record; it is not a
 * batch row.  The firmware gives each sequence a state handle from its pool and
 * schedules up to rows_max of their positions per step.
 */
#ifndef FW_RING_H
#define FW_RING_H

#include <stdatomic.h>
#include <stdint.h>
#include "fw_model.h"

#define FW_CTRL_MAGIC	0x4e43524cu	/* "NCRL" */
#define FW_CMD_RING	64
#define FW_RES_RING	1024
#define FW_MAX_SEQS	256		/* live sequences */
#define FW_MAX_ROWS	64		/* positions per token step */
#define FW_MAX_STOP	18		/* the wire's 16, end-of-sequence, end-of-turn */

enum fw_state {
	FW_ST_OFF = 0,
	FW_ST_BOOTED,		/* board parsed, waiting for CONFIGURE */
	FW_ST_CONFIGURED,	/* placement published, weights being loaded */
	FW_ST_RUNNING,		/* serving SUBMITs */
	FW_ST_FAILED,		/* see ctrl->error */
};

enum fw_op {
	FW_OP_CONFIGURE = 1,	/* mailbox cfg + ctx_limit -> placement */
	FW_OP_START,		/* weights are in place: start serving */
	FW_OP_SUBMIT,		/* seq, n_prompt ids in its token buffer; ACK value: positions
				   restored from the prefix cache */
	FW_OP_CANCEL,		/* seq */
	FW_OP_SNAPSHOT,		/* seq: keep its state at this step; ACK value: snapshot id,
				   ACK pos: the positions it holds */
	FW_OP_ROLLBACK,		/* seq, arg = snapshot id: return to it (the snapshot stays) */
	FW_OP_DROP,		/* arg = snapshot id: free it */
};

#define FW_SUB_LOGITS	0x1u	/* stream every position's logits (score) */
#define FW_SUB_NOCACHE	0x2u	/* neither use nor fill the prefix cache */
#define FW_SUB_MTP	0x8u	/* with FW_SUB_LOGITS: the rows carry the MTP head's logits
				   instead (row p drafts token p + 2; positions
				   0 .. n_prompt - 2 only; needs cfg.mtp) */
#define FW_SUB_CACHE	0x4u	/* with FW_SUB_LOGITS: restore from the prefix cache anyway
				   (positions restored stream no logits; the ACK value says
				   how many); without it a logits request runs every position */

struct fw_cmd {
	uint32_t op;		/* enum fw_op */
	uint32_t seq;
	uint32_t n_prompt;	/* ids already written to the seq's token buffer */
	uint32_t max_new;	/* tokens to generate after the prompt */
	uint32_t flags;		/* FW_SUB_* */
	uint32_t n_stop;	/* stop token ids */
	int32_t stop[FW_MAX_STOP];
	float temperature;	/* 0: greedy */
	float top_p;		/* 1: off */
	uint32_t top_k;		/* 0: off */
	uint32_t arg;		/* ROLLBACK, DROP: snapshot id */
	uint64_t seed;		/* same seed, same tokens */
	uint64_t tag;		/* host cookie, echoed in results */
};

enum fw_res_kind {
	FW_RES_ACK = 1,		/* a command finished: status in .status */
	FW_RES_TOKEN,		/* a generated token */
	FW_RES_LOGITS,		/* a score-path logits row (no new token) */
};

enum fw_finish {
	FW_FIN_NONE = 0,
	FW_FIN_LENGTH,		/* max_new reached */
	FW_FIN_STOP,		/* a stop id was generated */
	FW_FIN_CANCEL,
	FW_FIN_CTX,		/* context limit reached */
	FW_FIN_NOMEM,		/* the pool has no room for the sequence, even alone */
};

#define FW_RF_FIRST	0x1u	/* first token of the request */
#define FW_RF_LAST	0x2u	/* the sequence id is free after this */
#define FW_RF_LOGITS	0x4u	/* logits_row is valid */

struct fw_res {
	uint32_t kind;		/* enum fw_res_kind */
	uint32_t seq;
	int32_t token;		/* FW_RES_TOKEN */
	float logprob;		/* FW_RES_TOKEN: log p(token) under the sampling temperature */
	uint32_t pos;		/* position whose output this is */
	uint32_t flags;		/* FW_RF_* */
	uint32_t finish;	/* enum fw_finish, with FW_RF_LAST */
	uint32_t logits_row;	/* with FW_RF_LOGITS: row of the logits ring */
	int32_t status;		/* FW_RES_ACK: 0 or -FW_E* */
	uint32_t op;		/* FW_RES_ACK: the command's op */
	uint32_t batch;		/* rows in the step that produced this */
	uint32_t value;		/* FW_RES_ACK: what the op says it returns */
	uint32_t pad;
	uint64_t tag;
	uint64_t step_ns;	/* card time of that step */
};

struct fw_ctrl {
	uint32_t magic;
	_Atomic uint32_t state;		/* enum fw_state */
	char error[256];		/* last failure, one line */

	_Atomic uint32_t cmd_head;	/* host writes */
	_Atomic uint32_t cmd_tail;	/* firmware writes */
	struct fw_cmd cmd[FW_CMD_RING];

	_Atomic uint32_t res_head;	/* firmware writes */
	_Atomic uint32_t res_tail;	/* host writes */
	struct fw_res res[FW_RES_RING];

	/* CONFIGURE mailbox, written by the host before the command */
	struct fw_model_cfg cfg;
	uint32_t ctx_limit;		/* max positions per sequence, 0: model max */
	uint32_t seq_limit;		/* live sequences, 0: FW_MAX_SEQS */
	uint32_t prefix_every;		/* prefix snapshots every N positions (multiple of
					   KRNL_KV_PAGE; 0: none), and at a prompt's last page */
	uint32_t pad0;
	uint64_t prefix_budget;		/* bytes the prefix cache may hold, 0: what the pool has */
	uint32_t page_limit;		/* KV pages at most, 0: all that fit */
	uint32_t spec;			/* speculative decoding with the MTP head: drafts
					   verified per step (0: off, 1; needs cfg.mtp) */

	/* published by the firmware when CONFIGURE succeeds */
	uint32_t n_seqs;		/* sequence ids 0..n_seqs-1 */
	uint32_t ctx;			/* positions per sequence */
	uint32_t rows_max;		/* positions per token step */
	uint32_t page_pos;		/* positions per KV page */
	uint64_t layout_addr;		/* struct fw_place[layout_count] in HBM */
	uint32_t layout_count;
	uint32_t prompt_cap;		/* ids per token buffer (= ctx) */
	uint64_t tok_addr;		/* token buffers: seq s at tok_addr + s * prompt_cap * 4 */
	uint64_t logits_addr;		/* logits ring: rows of vocab f32 */
	uint32_t logits_rows;
	_Atomic uint32_t logits_head;	/* firmware writes */
	_Atomic uint32_t logits_tail;	/* host writes */
	uint64_t weight_bytes;		/* HBM taken by weights */
	uint64_t state_bytes;		/* HBM taken by the state pool */
	uint64_t hbm_used;
	uint32_t n_blocks;		/* state handles (sequences + snapshots) */
	uint32_t n_pages;		/* KV pages */
	uint64_t block_bytes;		/* GDN state of one handle, all layers */
	uint64_t page_bytes;		/* one KV page, all attention layers, K and V */

	/* counters, firmware-owned */
	_Atomic uint32_t in_step;	/* 1 while a token step runs */
	_Atomic uint64_t step_t0;	/* when it began (the card's monotonic ns): for the
					   host's watchdog */
	_Atomic uint32_t hold;		/* host writes 1: start no new step (counter snapshots) */
	_Atomic uint64_t steps;
	_Atomic uint64_t step_rows;
	_Atomic uint64_t tokens;
	_Atomic uint64_t step_ns_total;
	_Atomic uint32_t blocks_free;
	_Atomic uint32_t pages_free;
	_Atomic uint32_t live_seqs;
	_Atomic uint32_t snaps;		/* snapshots held (prefix cache + pinned) */
	_Atomic uint64_t snap_bytes;	/* bytes they hold */
	_Atomic uint64_t prefix_hits;	/* submits that restored a prefix */
	_Atomic uint64_t prefix_misses;
	_Atomic uint64_t prefix_tokens;	/* positions not recomputed thanks to it */
	_Atomic uint64_t prefix_stored;	/* snapshots taken for the cache */
	_Atomic uint64_t prefix_evicted;
	_Atomic uint64_t preempted;	/* sequences whose state was dropped to make room */
	_Atomic uint64_t replayed;	/* positions recomputed after preemption */
	_Atomic uint64_t drafted;	/* MTP drafts verified */
	_Atomic uint64_t accepted;	/* of them, accepted: tokens that took no step */
};

#endif
