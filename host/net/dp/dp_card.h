/* dp_card.h — the data plane's view of the card: the engine and the request
 * scheduler behind plain types.
 *
 * dp_card.c is the one dp file that sees the engine and the scheduler; the
 * rest of the data plane sees only this header, which keeps the packet code
 * free of card types.
 */
#ifndef HOST_NET_DP_CARD_H
#define HOST_NET_DP_CARD_H

#include <stddef.h>
#include <stdint.h>

struct nc_engine_opts;

/* Finish reasons, numbered as the wire's enum nc_finish. */
enum { DP_FIN_STOP = 1, DP_FIN_LENGTH = 2, DP_FIN_CANCEL = 3, DP_FIN_ERROR = 4 };
enum { DP_EV_TOKEN = 1, DP_EV_DONE, DP_EV_ERROR };

struct dp_card_ev {
	int kind;		/* DP_EV_* */
	int32_t token;
	uint32_t index;
	int last;
	int finish;		/* DP_FIN_* with last */
	uint64_t step_ns;	/* card compute time of the step behind the token */
	uint32_t batch;
	const char *error;
};

/* Called from dp_card_poll (and from submit/cancel for synchronous ends),
 * with the scheduler lock held: must not call back into dp_card. */
typedef void (*dp_card_event_fn)(void *user, const struct dp_card_ev *ev);

struct dp_card_req {
	const int32_t *ids;	/* prompt, 4-byte aligned; read until release() */
	uint32_t n_ids;
	uint32_t max_new;
	float temperature, top_p;
	uint32_t top_k;
	uint64_t seed;
	const int32_t *stop;
	uint32_t n_stop;
	void (*release)(void *user);
	void *user;
};

struct dp_card_info {
	uint32_t vocab, ctx, slots, queue_cap, max_stop;
	uint64_t load_ns;
	const char *backend;
};

struct dp_card_stats {
	uint32_t active, queued, queue_cap, slots;
	uint64_t steps, tokens, refused_busy;
	uint32_t spec;			/* MTP drafts verified per step (0: off) */
	uint64_t drafted, accepted;
};

struct dp_card;
struct nc_tokenizer;
struct nc_metrics;

/* Bring the model up and create the scheduler.  keep_off: CPUs the card's
 * own threads must avoid (the polling lcores), as a bitmask (0: none).
 * Returns 0, or -1 with a one-line reason in err. */
int dp_card_open(struct dp_card **out, const char *model_dir, const char *card,
		 const char *board, const char *quant, uint32_t ctx,
		 const struct nc_engine_opts *pool, uint32_t queue_cap,
		 uint64_t keep_off, dp_card_event_fn fn, char *err, size_t errlen);
void dp_card_close(struct dp_card *c);
void dp_card_info(const struct dp_card *c, struct dp_card_info *info);

/* 0 (*handle set), -EBUSY (queue full), -EINVAL (message in err), -EIO (the
 * card failed, message in err).  On a
 * non-zero return release() has not been called. */
/* 1 + the requests ahead of handle in the queue; 0 when it runs. */
uint32_t dp_card_queue_pos(struct dp_card *c, uint64_t handle);

int dp_card_submit(struct dp_card *c, const struct dp_card_req *r,
		   uint64_t *handle, char *err, size_t errlen);
int dp_card_cancel(struct dp_card *c, uint64_t handle);
/* Events delivered, or -1 if the card failed (the poll that sees it resets
 * the card, nc_sched_poll). */
int dp_card_poll(struct dp_card *c);
/* A log line if the card failed or was reset since *seen (nc_sched_fault_news). */
struct nc_fault_seen;
const char *dp_card_fault_news(struct dp_card *c, struct nc_fault_seen *seen, char *buf,
			       size_t len);
void dp_card_stats(struct dp_card *c, struct dp_card_stats *st);

/* Optional OpenAI-compatible HTTP port beside the data plane (host/api/http.h);
 * -1 with err when it cannot start. */
int dp_card_http_start(struct dp_card *c, uint16_t port, const char *model_name,
		       const struct nc_tokenizer *tok, struct nc_metrics *m,
		       char *err, size_t errlen);
/* Stop it while the caller keeps polling (a helper thread stops it). */
void dp_card_http_stop(struct dp_card *c);

#endif
