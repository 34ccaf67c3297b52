/* engine.h — a model brought up on a card, seen through the command ring.
 *
 * nc_engine_open loads config.json and the safetensors, opens the card,
 * CONFIGUREs the firmware, fills the placement it publishes and STARTs it.
 * After that the host only submits requests and takes results.
 */
#ifndef HOST_MODEL_ENGINE_H
#define HOST_MODEL_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "firmware/fw_ring.h"
#include "driver_shim/shim.h"
#include "model/safetensors.h"

struct nc_engine_opts {
	const char *model_dir;
	const char *card;	/* "emu" (default), "xrt", "xrt:N" */
	const char *board;	/* DTB path; NULL: the emulated card's default */
	uint32_t ctx_limit;	/* positions per sequence; 0: min(model max, 4096) */
	const char *quant;	/* --quant plan (host/model/quant.h); NULL: as stored */
	int verbose;		/* say the formats and show progress on stderr */
	uint32_t threads;	/* emulated card's CU threads; 0: NEXTCARD_THREADS or the cores */
	uint32_t seqs;		/* live sequences; 0: as many as the card's pool takes */
	uint32_t prefix_every;	/* prefix-cache snapshot spacing in positions (rounded down to
				   whole KV pages); 0: 256, NC_PREFIX_OFF: no prefix cache */
	uint64_t prefix_budget;	/* bytes the prefix cache may hold; 0: what the pool has */
	uint32_t kv_pages;	/* KV pages at most (one sequence's full context at least);
				   0: all the card has room for */
	uint32_t kv;		/* NC_KV_*: format of the KV cache pages */
	uint32_t watchdog_ms;	/* a token step running longer fails the card; 0: 30000 */
	const char *inject_fault; /* tests: shim_inject_fault spec once the model is up */
	uint32_t no_reset;	/* a failed card stays failed (nc_sched resets it otherwise) */
	uint32_t mtp;		/* place the checkpoint's MTP head (mtp.*) */
	uint32_t spec;		/* speculative decoding: MTP drafts verified per step (0, 1);
				   places the head */
};

enum { NC_KV_DEFAULT = 0, NC_KV_F32, NC_KV_BF16 };

#define NC_PREFIX_OFF UINT32_MAX

struct nc_engine {
	struct shim_card *card;
	struct fw_ctrl *ctrl;
	struct fw_model_cfg cfg;
	struct st_set st;
	uint32_t n_seqs;	/* sequence ids the card takes */
	uint32_t n_free;
	uint32_t *seq_free;	/* ids not in flight, a stack */
	uint8_t *seq_busy;	/* [n_seqs], host's view */
	uint64_t load_ns;	/* time to bring the model up */
	uint64_t watchdog_ns;
	char formats[200];	/* "experts int4:64, attn int8:64, ..." as placed */
	int converted;		/* formats differ from the checkpoint's float types */
	uint32_t spec;		/* drafts verified per step */
	struct nc_engine_opts o;	/* as opened (strings below), for a reset */
	char *model_dir, *quant;
	uint64_t faults, resets;	/* card faults seen, resets that brought it back */
	uint64_t reset_ns;		/* the last reset took */
	char last_fault[256];		/* the card's error at the last fault */
};

int nc_engine_open(struct nc_engine **out, const struct nc_engine_opts *o,
		   char *err, size_t errlen);
void nc_engine_close(struct nc_engine *e);

/* Bring a failed card back: reset it (shim_reset), boot, configure, load the
 * weights again from the checkpoint and start it, as nc_engine_open did;
 * every sequence id is free after.  The caller must have ended every request
 * the card held and must not use the engine from another thread meanwhile
 * (readers of e->ctrl see it cleared, then filled again).  0, or -1 with err
 * (the card stays failed). */
int nc_engine_reset(struct nc_engine *e, char *err, size_t errlen);

/* Default board DTB for a card spec, next to the running binary. */
const char *nc_engine_default_board(const char *card, char *buf, size_t len);

/* Queue a request under a free sequence id (returned in *slot).  Prompt ids
 * are checked against the vocabulary.  -1 with err set if refused (no free
 * id, bad ids). */
int nc_engine_submit(struct nc_engine *e, const int32_t *ids, uint32_t n,
		     uint32_t max_new, uint32_t flags, const int32_t *stop,
		     uint32_t n_stop, uint64_t tag, uint32_t *slot, char *err,
		     size_t errlen);
/* Sampling of a request: temperature 0 is greedy; top_p 0 or 1 and top_k 0
 * are off; the same seed gives the same tokens. */
struct nc_sampling {
	float temperature, top_p;
	uint32_t top_k;
	uint64_t seed;
};

/* nc_engine_submit with sampling parameters (NULL: greedy). */
int nc_engine_submit_ex(struct nc_engine *e, const int32_t *ids, uint32_t n,
			uint32_t max_new, uint32_t flags, const struct nc_sampling *smp,
			const int32_t *stop, uint32_t n_stop, uint64_t tag, uint32_t *slot,
			char *err, size_t errlen);
int nc_engine_cancel(struct nc_engine *e, uint32_t slot);

/* A pool command on a live sequence: FW_OP_SNAPSHOT (ACK value: snapshot id),
 * FW_OP_ROLLBACK and FW_OP_DROP (arg: snapshot id).  The ACK comes through
 * nc_engine_poll with tag. */
int nc_engine_pool_op(struct nc_engine *e, uint32_t op, uint32_t seq, uint32_t arg,
		      uint64_t tag);

/* Take the next result if there is one: 1 got one, 0 none yet, -1 card failed.
 * A result with FW_RF_LAST frees its sequence id. */
int nc_engine_poll(struct nc_engine *e, struct fw_res *r);

/* Wait up to timeout_ms for a result (1), or 0 on timeout, -1 on failure. */
int nc_engine_wait(struct nc_engine *e, struct fw_res *r, uint32_t timeout_ms);

/* Card counters taken between two token steps, so traffic and step counts
 * agree: the card is held at a step boundary for the length of the copy. */
struct nc_card_snap {
	struct shim_stats st;
	uint64_t steps, rows;
	uint64_t tokens;	/* generated, all sequences */
	uint64_t drafted, accepted;	/* MTP drafts verified, accepted */
	uint64_t ns;		/* monotonic time of the snapshot */
};
void nc_engine_snapshot(struct nc_engine *e, struct nc_card_snap *s);

/* The card's state-pool gauges and counters into the pool fields of st. */
struct nc_sched_stats;
void nc_engine_pool_stats(struct nc_engine *e, struct nc_sched_stats *st);

/* Copy logits row `row` (vocab floats) and hand the row back to the card.
 * Rows must be released in the order results name them. */
int nc_engine_take_logits(struct nc_engine *e, uint32_t row, float *dst);

#endif
