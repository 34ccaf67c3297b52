/* sched.h — requests from any front end (UDP data plane, HTTP) onto the
 * card's batch slots.
 *
 * A request runs at once if a slot is free, else waits in a bounded FIFO; a
 * full FIFO refuses it (-EBUSY), never drops it silently.  Results come back
 * as events through the request's callback, called from nc_sched_poll.  All
 * functions are thread-safe; callbacks run with the scheduler lock held and
 * must not call back into the scheduler.
 */
#ifndef HOST_MODEL_SCHED_H
#define HOST_MODEL_SCHED_H

#include <stdint.h>
#include "model/engine.h"

enum nc_ev_kind {
	NC_EV_TOKEN = 1,	/* a generated token (last one has .last set) */
	NC_EV_DONE,		/* finished without a token (cancelled) */
	NC_EV_ERROR,		/* refused by the card or the card failed */
};

struct nc_sched_event {
	enum nc_ev_kind kind;
	uint64_t id;		/* the request's handle */
	int32_t token;		/* NC_EV_TOKEN */
	float logprob;
	uint32_t index;		/* 0 for the first generated token */
	int last;		/* no more events for this request */
	uint32_t finish;	/* enum fw_finish with last */
	uint64_t step_ns;	/* card compute time of the step that made it */
	uint32_t batch;		/* rows in that step */
	uint32_t prompt_tokens, completion_tokens;
	uint32_t cached_tokens;	/* prompt positions restored from the card's prefix cache */
	const char *error;	/* NC_EV_ERROR */
};

typedef void (*nc_sched_event_fn)(void *user, const struct nc_sched_event *ev);

struct nc_sched_req {
	const int32_t *ids;	/* prompt; read until release() is called */
	uint32_t n_ids;
	uint32_t max_new;
	struct nc_sampling smp;
	int32_t stop[FW_MAX_STOP];
	uint32_t n_stop;
	nc_sched_event_fn on_event;
	void (*release)(void *user);	/* optional: prompt memory may go */
	void *user;
};

struct nc_sched_stats {
	uint32_t active, queued, queue_cap, slots;
	uint64_t submitted, started, completed, cancelled, refused_busy, errors;
	uint64_t tokens, steps, step_rows, step_ns_total;
	/* the card's state pool (firmware/fw_ring.h) */
	uint32_t live_seqs, blocks, blocks_free, pages, pages_free, page_pos, snaps;
	uint32_t card_state;	/* enum fw_state */
	uint64_t snap_bytes, prefix_hits, prefix_misses, prefix_tokens, prefix_stored,
		 prefix_evicted, preempted, replayed;
	uint32_t spec;		/* MTP drafts verified per step (0: no speculative decoding) */
	uint64_t drafted, accepted;
	uint64_t faults, resets;	/* card faults seen; resets that brought it back */
	uint64_t reset_ns;		/* the last reset took */
	int resetting;			/* a reset is under way */
};

struct nc_sched;

/* queue_cap: requests that may wait for a slot. */
struct nc_sched *nc_sched_new(struct nc_engine *e, uint32_t queue_cap);
void nc_sched_free(struct nc_sched *s);

/* 0 (running or queued; *id set), -EBUSY (queue full), -EINVAL (bad request,
 * message in err), -EIO (the card failed, message in err).  When nc_sched_poll
 * first sees the card fail, every running and queued request ends with an
 * NC_EV_ERROR event naming the card's error; then that poll resets the card
 * (nc_engine_reset: boot, configure, weights loaded again), refusing new
 * requests with -EIO until it is back.  A reset that fails, or an engine
 * opened with no_reset, leaves the card failed for good. */
int nc_sched_submit(struct nc_sched *s, const struct nc_sched_req *r, uint64_t *id,
		    char *err, size_t errlen);

/* Cancel a queued or running request: its callback gets a final event. */
int nc_sched_cancel(struct nc_sched *s, uint64_t id);

/* Move results to callbacks and queued requests to free slots.  Returns the
 * number of events delivered, or -1 if the card has failed. */
int nc_sched_poll(struct nc_sched *s);

void nc_sched_get_stats(struct nc_sched *s, struct nc_sched_stats *st);

/* What a server's log has said of the card so far (zero it at start). */
struct nc_fault_seen {
	uint64_t resets;
	int failed;
};
/* A line for the log if the card failed, or was reset, since *seen
 * ("the card failed (…); reset in N s, serving again" or "the card failed:
 * …; requests now get errors"), else NULL.  Updates *seen. */
const char *nc_sched_fault_news(struct nc_sched *s, struct nc_fault_seen *seen, char *buf,
				size_t len);

/* Where request id waits: 1 + the requests ahead of it in the queue, or 0
 * when it runs (or is unknown). */
uint32_t nc_sched_queue_pos(struct nc_sched *s, uint64_t id);

#endif
