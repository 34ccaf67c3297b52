/* fw_main.c — boot and the command/step loop of the card's control program. */
#include <stdio.h>
#include <string.h>
#include "fw.h"

static const char *const fw_errs[] = {
	[FW_OK] = "ok",
	[FW_EINVAL] = "invalid argument or command",
	[FW_EBOARD] = "board description refused",
	[FW_ECONFIG] = "model configuration not supported by the kernels",
	[FW_ENOMEM] = "model and state do not fit the card memory",
	[FW_EHAL] = "kernel run or card memory access failed",
	[FW_ESTATE] = "command not valid in the card's state",
	[FW_EBUSY] = "sequence id busy",
	[FW_ENOSPC] = "the state pool is full",
};

const char *fw_strerror(int code)
{
	if (code < 0)
		code = -code;
	return code <= FW_EMAX ? fw_errs[code] : "unknown firmware error";
}

static void fail(struct fw *fw, int rc, const char *what)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;

	snprintf(ctrl->error, sizeof(ctrl->error), "%s: %s%s%s", what,
		 fw_strerror(rc), fw->err[0] ? ": " : "", fw->err);
	atomic_store_explicit(&ctrl->state, FW_ST_FAILED, memory_order_release);
}

int fw_boot(struct fw *fw, const struct fw_hal *hal, const void *dtb, size_t len)
{
	int rc;

	memset(fw, 0, sizeof(*fw));
	fw->hal = *hal;
	memset(hal->ctrl, 0, sizeof(*hal->ctrl));
	hal->ctrl->magic = FW_CTRL_MAGIC;
	rc = fw_board_parse(dtb, len, &fw->board, fw->err, sizeof(fw->err));
	if (rc || fw->board.n_banks == 0) {
		if (!rc)
			snprintf(fw->err, sizeof(fw->err), "board has no memory banks");
		fail(fw, -FW_EBOARD, "boot");
		return -FW_EBOARD;
	}
	atomic_store_explicit(&hal->ctrl->state, FW_ST_BOOTED, memory_order_release);
	return 0;
}

static int post(struct fw *fw, const struct fw_res *r)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint32_t head = atomic_load_explicit(&ctrl->res_head, memory_order_relaxed);
	uint32_t tail = atomic_load_explicit(&ctrl->res_tail, memory_order_acquire);

	if (head - tail >= FW_RES_RING)
		return -FW_EBUSY;
	ctrl->res[head % FW_RES_RING] = *r;
	atomic_store_explicit(&ctrl->res_head, head + 1, memory_order_release);
	return 0;
}

static uint32_t res_free(const struct fw_ctrl *ctrl)
{
	return FW_RES_RING - (atomic_load_explicit(&ctrl->res_head, memory_order_relaxed) -
			      atomic_load_explicit(&ctrl->res_tail, memory_order_acquire));
}

static int ack_value(struct fw *fw, const struct fw_cmd *c, int status, uint32_t value)
{
	struct fw_res r = { .kind = FW_RES_ACK, .seq = c->seq, .status = status,
			    .op = c->op, .tag = c->tag, .value = value };

	if (c->op == FW_OP_SNAPSHOT && status == 0)
		r.pos = fw->pool.snap[value].npos;

	return post(fw, &r);
}

static int ack(struct fw *fw, const struct fw_cmd *c, int status)
{
	return ack_value(fw, c, status, 0);
}

/* The card does not trust the ring: every prompt id must be in the vocabulary
 * before a kernel indexes a table with it. */
static int check_prompt(struct fw *fw, uint32_t seq, uint32_t n)
{
	int32_t ids[256];
	uint64_t base = fw->hal.ctrl->tok_addr + (uint64_t)seq * fw->ctx * 4;

	for (uint32_t at = 0; at < n; at += 256) {
		uint32_t k = n - at < 256 ? n - at : 256;

		if (fw->hal.read(fw->hal.ctx, base + (uint64_t)at * 4, ids, (uint64_t)k * 4))
			return -FW_EHAL;
		for (uint32_t i = 0; i < k; i++)
			if (ids[i] < 0 || (uint32_t)ids[i] >= fw->cfg.vocab)
				return -FW_EINVAL;
	}
	return 0;
}

static int cmd_submit(struct fw *fw, const struct fw_cmd *c, uint32_t *cached)
{
	struct fw_seq *s;
	int rc;

	*cached = 0;
	if (c->seq >= fw->n_seqs || c->n_prompt == 0 || c->n_prompt > fw->ctx ||
	    c->n_stop > FW_MAX_STOP ||
	    ((c->flags & FW_SUB_MTP) && (!fw->cfg.mtp || !(c->flags & FW_SUB_LOGITS))))
		return -FW_EINVAL;
	s = &fw->seq[c->seq];
	if (s->active)
		return -FW_EBUSY;
	rc = check_prompt(fw, c->seq, c->n_prompt);
	if (rc)
		return rc;
	memset(s, 0, sizeof(*s));
	s->n_prompt = s->len = c->n_prompt;
	s->max_new = c->max_new;
	s->flags = c->flags;
	s->n_stop = c->n_stop;
	memcpy(s->stop, c->stop, sizeof(s->stop));
	s->temperature = c->temperature > 0.0f ? c->temperature : 0.0f;
	s->top_p = c->top_p > 0.0f && c->top_p < 1.0f ? c->top_p : 1.0f;
	s->top_k = c->top_k;
	s->seed = c->seed;
	s->tag = c->tag;
	rc = fw_pool_admit(fw, s);
	if (rc)
		return rc;
	rc = fw_prefix_restore(fw, s, cached);
	if (rc) {
		fw_pool_release(fw, s);
		return rc;
	}
	s->active = 1;
	return 0;
}

static struct fw_seq *live(struct fw *fw, uint32_t seq)
{
	return seq < fw->n_seqs && fw->seq[seq].active ? &fw->seq[seq] : NULL;
}

static int command(struct fw *fw, const struct fw_cmd *c)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint32_t st = atomic_load_explicit(&ctrl->state, memory_order_acquire);
	uint32_t v = 0;
	int rc;

	switch (c->op) {
	case FW_OP_CONFIGURE:
		if (st != FW_ST_BOOTED)
			return ack(fw, c, -FW_ESTATE);
		fw->cfg = ctrl->cfg;
		fw->err[0] = 0;
		fw->spec = fw->cfg.mtp && ctrl->spec ? 1 : 0;
		rc = fw_place_model(fw);
		if (!rc)
			rc = fw_pool_init(fw);
		if (rc) {
			snprintf(ctrl->error, sizeof(ctrl->error), "configure: %s: %s",
				 fw_strerror(rc), fw->err);
			return ack(fw, c, rc);
		}
		atomic_store_explicit(&ctrl->state, FW_ST_CONFIGURED, memory_order_release);
		return ack(fw, c, 0);
	case FW_OP_START:
		if (st != FW_ST_CONFIGURED)
			return ack(fw, c, -FW_ESTATE);
		atomic_store_explicit(&ctrl->state, FW_ST_RUNNING, memory_order_release);
		return ack(fw, c, 0);
	case FW_OP_SUBMIT:
		if (st != FW_ST_RUNNING)
			return ack(fw, c, -FW_ESTATE);
		rc = cmd_submit(fw, c, &v);
		fw_pool_publish(fw);
		return ack_value(fw, c, rc, v);
	case FW_OP_CANCEL:
		if (!live(fw, c->seq))
			return ack(fw, c, -FW_EINVAL);
		fw->seq[c->seq].cancel = 1;
		return ack(fw, c, 0);
	case FW_OP_SNAPSHOT:
		if (st != FW_ST_RUNNING || !live(fw, c->seq))
			return ack(fw, c, -FW_EINVAL);
		rc = fw_snap_take(fw, &fw->seq[c->seq], &v);
		fw_pool_publish(fw);
		return ack_value(fw, c, rc, v);
	case FW_OP_ROLLBACK:
		if (st != FW_ST_RUNNING || !live(fw, c->seq))
			return ack(fw, c, -FW_EINVAL);
		rc = fw_snap_rollback(fw, &fw->seq[c->seq], c->arg);
		fw_pool_publish(fw);
		return ack(fw, c, rc);
	case FW_OP_DROP:
		if (st != FW_ST_RUNNING)
			return ack(fw, c, -FW_ESTATE);
		rc = fw_snap_drop(fw, c->arg);
		fw_pool_publish(fw);
		return ack(fw, c, rc);
	default:
		return ack(fw, c, -FW_EINVAL);
	}
}

static int is_stop(const struct fw_seq *s, int32_t tok)
{
	for (uint32_t i = 0; i < s->n_stop; i++)
		if (s->stop[i] == tok)
			return 1;
	return 0;
}

/* Finish a sequence: its result, then its state back to the pool. */
static int finish(struct fw *fw, struct fw_seq *s, uint32_t why)
{
	struct fw_res r = { .kind = FW_RES_TOKEN, .seq = (uint32_t)(s - fw->seq), .token = -1,
			    .pos = s->pos, .flags = FW_RF_LAST, .finish = why, .tag = s->tag };
	int rc = post(fw, &r);

	if (rc)
		return rc;
	s->active = 0;
	return fw_pool_release(fw, s);
}

/* Turn the step's outputs into results and advance each sequence. */
static int emit(struct fw *fw, const struct fw_row *rows, uint32_t n, uint32_t batch,
		const struct fw_pick *pick, uint64_t ns)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	int rc = 0;

	for (uint32_t r = 0; r < n; r++) {
		struct fw_seq *s = &fw->seq[rows[r].seq];
		uint32_t q = (uint32_t)rows[r].pos;
		struct fw_res res = { .seq = (uint32_t)rows[r].seq, .pos = q,
				      .batch = batch, .tag = s->tag, .step_ns = ns };

		if (rows[r].draft) {
			/* the row before picked the token this row assumed, or the
			 * row ran on a wrong token: its state stays in the spare
			 * handle and its KV entry is written again next step */
			atomic_fetch_add_explicit(&ctrl->drafted, 1, memory_order_relaxed);
			if (!s->active || s->pos != q || s->len != q + 1 ||
			    pick[r - 1].token != rows[r].token)
				continue;
			atomic_fetch_add_explicit(&ctrl->accepted, 1, memory_order_relaxed);
			rc |= fw_pool_accept(fw, s);
		}
		s->pos = q + 1;
		if (q < s->emitted && q + 1 < s->len)
			continue;	/* replay of a preempted sequence */
		if (rows[r].dst >= 0) {
			res.flags |= FW_RF_LOGITS;
			res.logits_row = (uint32_t)rows[r].dst;
		}
		if (q + 1 < s->len) {
			if (!(res.flags & FW_RF_LOGITS))
				continue;
			res.kind = FW_RES_LOGITS;
			res.token = -1;
		} else {
			int32_t tok = pick[r].token;

			res.kind = FW_RES_TOKEN;
			res.token = tok;
			res.logprob = pick[r].logprob;
			s->draft = fw->spec ? pick[r].draft : -1;
			if (s->generated == 0)
				res.flags |= FW_RF_FIRST;
			s->generated++;
			if (s->len < fw->ctx) {
				uint64_t at = ctrl->tok_addr +
					      ((uint64_t)rows[r].seq * fw->ctx + s->len) * 4;

				rc |= fw->hal.write(fw->hal.ctx, at, &tok, 4);
				s->len++;
			}
			if (s->pos > s->emitted)
				s->emitted = s->pos;
			if (is_stop(s, tok))
				res.finish = FW_FIN_STOP;
			else if (s->generated >= s->max_new)
				res.finish = FW_FIN_LENGTH;
			else if (s->pos >= fw->ctx)
				res.finish = FW_FIN_CTX;
			if (res.finish) {
				res.flags |= FW_RF_LAST;
				s->active = 0;
				rc |= fw_pool_release(fw, s);
			}
			atomic_fetch_add_explicit(&ctrl->tokens, 1, memory_order_relaxed);
		}
		post(fw, &res);	/* room was checked before the step */
	}
	return rc;
}

/* A logits-ring row for a score-path row, or -1; 1 if the ring is full. */
static int take_logits_row(struct fw_ctrl *ctrl, const struct fw_seq *s, uint32_t q,
			   uint32_t *lg, uint32_t *lfree, int32_t *dst)
{
	*dst = -1;
	if (!(s->flags & FW_SUB_LOGITS) || q < s->emitted ||
	    ((s->flags & FW_SUB_MTP) && q + 1 >= s->n_prompt))
		return 0;
	if (*lfree == 0)
		return 1;	/* waits for the host to drain logits */
	*dst = (int32_t)(*lg % ctrl->logits_rows);
	(*lg)++;
	(*lfree)--;
	return 0;
}

/* The youngest live sequence other than keep that holds pages and has no row
 * in this step (rows[0..n)). */
static struct fw_seq *victim(struct fw *fw, const struct fw_seq *keep,
			     const struct fw_row *rows, uint32_t n)
{
	struct fw_seq *v = NULL;

	for (uint32_t i = 0; i < fw->n_seqs; i++) {
		struct fw_seq *s = &fw->seq[i];
		int busy = 0;

		if (!s->active || s == keep || s->npg == 0 || (v && s->born < v->born))
			continue;
		for (uint32_t r = 0; r < n && !busy; r++)
			busy = rows[r].seq == (int32_t)i;
		if (!busy)
			v = s;
	}
	return v;
}

/* The page for position q of s, preempting younger sequences if the pool is
 * out of pages.  0, or -FW_ENOSPC when s must wait. */
static int page_for(struct fw *fw, struct fw_seq *s, uint32_t q, const struct fw_row *rows,
		    uint32_t n)
{
	int rc;

	while ((rc = fw_pool_page(fw, s, q)) == -FW_ENOSPC) {
		struct fw_seq *v = victim(fw, s, rows, n);

		if (!v || v->born < s->born)
			return rc;	/* the older ones keep their pages */
		rc = fw_pool_preempt(fw, v);
		if (rc)
			return rc;
	}
	return rc;
}

/* May decoding sequence s verify a draft this step? */
static int draft_ok(const struct fw *fw, const struct fw_seq *s)
{
	return fw->spec && s->draft >= 0 && s->spare != UINT32_MAX && s->pos + 1 == s->len &&
	       s->len >= s->emitted && s->pos + 2 < fw->ctx && s->generated + 1 < s->max_new &&
	       !(s->flags & FW_SUB_LOGITS);
}

/* Order of service: oldest sequences first. */
static uint32_t by_age(struct fw *fw, uint32_t *order)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < fw->n_seqs; i++)
		if (fw->seq[i].active) {
			uint32_t j = n++;

			while (j > 0 && fw->seq[order[j - 1]].born > fw->seq[i].born) {
				order[j] = order[j - 1];
				j--;
			}
			order[j] = i;
		}
	return n;
}

/* Gather the step's rows: first one row per decoding sequence, then the rows
 * left go to prompts (and replays), several consecutive positions of one
 * sequence at once (chunked prefill: every kernel handles a sequence's rows in
 * order, so a later position sees the cache and state the earlier one wrote).
 * A chunk ends at the sequence's next prefix-snapshot boundary.  0 rows if
 * results or logits lack room. */
static uint32_t gather(struct fw *fw, struct fw_row *rows, int *err)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint32_t n = 0, lg = atomic_load_explicit(&ctrl->logits_head, memory_order_relaxed);
	uint32_t lfree = ctrl->logits_rows -
			 (lg - atomic_load_explicit(&ctrl->logits_tail, memory_order_acquire));
	uint32_t order[FW_MAX_SEQS], ns;
	int starved = 0;

	*err = 0;
	for (uint32_t i = 0; i < fw->n_seqs; i++) {
		struct fw_seq *s = &fw->seq[i];

		if (s->active && s->cancel && (res_free(ctrl) == 0 || finish(fw, s, FW_FIN_CANCEL)))
			return 0;
	}
	if (res_free(ctrl) < FW_MAX_ROWS + 1)
		return 0;
	ns = by_age(fw, order);
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t o = 0; o < ns && n < FW_MAX_ROWS; o++) {
			struct fw_seq *s = &fw->seq[order[o]];
			int32_t tok[FW_MAX_ROWS + 1], dst;
			uint32_t k, kr, nx;
			int decoding = s->pos + 1 == s->len;

			if (!s->active || s->pos >= s->len || decoding != (pass == 0))
				continue;
			k = s->len - s->pos;
			if (k > FW_MAX_ROWS - n)
				k = FW_MAX_ROWS - n;
			nx = fw_prefix_next(fw, s);
			if (nx != UINT32_MAX && s->pos + k > nx)
				k = nx - s->pos;
			/* and the token after the chunk: the MTP head's input */
			kr = fw->cfg.mtp && s->pos + k < s->len ? k + 1 : k;
			if (fw->hal.read(fw->hal.ctx, ctrl->tok_addr +
					 ((uint64_t)order[o] * fw->ctx + s->pos) * 4, tok,
					 (uint64_t)kr * 4)) {
				*err = -FW_EHAL;
				return 0;
			}
			for (uint32_t j = 0; j < k; j++) {
				uint32_t q = s->pos + j;
				int rc = page_for(fw, s, q, rows, n);

				if (rc == -FW_ENOSPC) {
					starved = 1;
					break;
				}
				if (rc) {
					*err = rc;
					return 0;
				}
				if (take_logits_row(ctrl, s, q, &lg, &lfree, &dst))
					break;
				rows[n] = (struct fw_row){
					.seq = (int32_t)order[o], .token = tok[j], .pos = (int32_t)q,
					.dst = dst,
					.head = dst >= 0 || (q + 1 == s->len && q + 1 >= s->emitted),
					.next = j + 1 < kr ? tok[j + 1] : -1, .out = -1,
				};
				rows[n].mhead = (fw->spec && rows[n].head) ||
						(dst >= 0 && (s->flags & FW_SUB_MTP));
				n++;
			}
			if (decoding && k == 1 && n > 0 && rows[n - 1].seq == (int32_t)order[o] &&
			    draft_ok(fw, s) && n < FW_MAX_ROWS && fw_pool_page(fw, s, s->pos + 1) == 0) {
				/* verify the MTP head's draft in the same step (its page
				 * may evict prefix snapshots, never preempt a sequence) */
				rows[n++] = (struct fw_row){
					.seq = (int32_t)order[o], .token = s->draft,
					.pos = (int32_t)s->pos + 1, .dst = -1, .head = 1, .next = -1,
					.out = (int32_t)s->spare, .mhead = 1, .draft = 1,
				};
			}
		}
	}
	atomic_store_explicit(&ctrl->logits_head, lg, memory_order_release);
	if (n == 0 && starved) {
		/* nothing can run: the oldest waiting sequence does not fit even
		 * with every younger one preempted */
		for (uint32_t o = 0; o < ns; o++) {
			struct fw_seq *s = &fw->seq[order[o]];

			if (s->active && s->pos < s->len) {
				*err = finish(fw, s, FW_FIN_NOMEM);
				break;
			}
		}
	}
	return n;
}

int fw_service(struct fw *fw)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint32_t tail = atomic_load_explicit(&ctrl->cmd_tail, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&ctrl->cmd_head, memory_order_acquire);
	struct fw_row rows[FW_MAX_ROWS];
	struct fw_pick pick[FW_MAX_ROWS];
	uint32_t n;
	uint64_t t0;
	int rc;

	if (atomic_load_explicit(&ctrl->state, memory_order_acquire) == FW_ST_FAILED)
		return 0;
	if (head != tail) {
		if (res_free(ctrl) == 0)
			return 0;
		struct fw_cmd c = ctrl->cmd[tail % FW_CMD_RING];
		command(fw, &c);
		atomic_store_explicit(&ctrl->cmd_tail, tail + 1, memory_order_release);
		return 1;
	}
	if (atomic_load_explicit(&ctrl->state, memory_order_acquire) != FW_ST_RUNNING ||
	    atomic_load_explicit(&ctrl->hold, memory_order_acquire))
		return 0;
	n = gather(fw, rows, &rc);
	if (rc) {
		fail(fw, rc, "token step");
		return rc;
	}
	if (n == 0) {
		/* an idle poll: publish only what gather changed (evictions,
		 * preemptions, a sequence finished for want of room) */
		if (fw->pool.npage_free != fw->pool.seen_pages ||
		    fw->pool.nblk_free != fw->pool.seen_blks)
			fw_pool_publish(fw);
		return 0;
	}
	t0 = fw->hal.now_ns(fw->hal.ctx);
	atomic_store_explicit(&ctrl->step_t0, t0, memory_order_relaxed);
	atomic_store_explicit(&ctrl->in_step, 1, memory_order_release);
	/* the kernels take KRNL_MAX_BATCH rows a call: a step of more rows runs
	 * as tiles, in order, so a later tile sees what an earlier one wrote */
	for (uint32_t at = 0; at < n; at += KRNL_MAX_BATCH) {
		uint32_t m = n - at < KRNL_MAX_BATCH ? n - at : KRNL_MAX_BATCH;

		rc = fw_step(fw, rows + at, m, pick + at);
		if (rc) {
			fail(fw, rc, "token step");
			atomic_store_explicit(&ctrl->in_step, 0, memory_order_release);
			return rc;
		}
	}
	uint64_t ns = fw->hal.now_ns(fw->hal.ctx) - t0;
	atomic_fetch_add_explicit(&ctrl->steps, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ctrl->step_rows, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&ctrl->step_ns_total, ns, memory_order_relaxed);
	rc = emit(fw, rows, n, n, pick, ns);
	for (uint32_t r = 0; !rc && r < n; r++) {
		struct fw_seq *s = &fw->seq[rows[r].seq];

		if (s->active && (r + 1 == n || rows[r + 1].seq != rows[r].seq))
			rc = fw_prefix_after(fw, s);
	}
	fw_pool_publish(fw);
	/* the step ends with its results counted: a counter snapshot taken
	 * between steps sees steps, tokens and drafts of the same steps */
	atomic_store_explicit(&ctrl->in_step, 0, memory_order_release);
	if (rc) {
		fail(fw, rc, "token step");
		return rc;
	}
	return 1;
}
