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
	[FW_EBUSY] = "slot busy",
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

static int ack(struct fw *fw, const struct fw_cmd *c, int status)
{
	struct fw_res r = { .kind = FW_RES_ACK, .slot = c->slot, .status = status,
			    .op = c->op, .tag = c->tag };

	return post(fw, &r);
}

/* Fresh recurrent state for a slot: conv taps and delta-rule matrices. */
static int reset_slot_state(struct fw *fw, uint32_t slot)
{
	const struct fw_model_cfg *c = &fw->cfg;
	uint64_t conv = (uint64_t)fw->lin_ch * (c->conv_k - 1) * 4;
	uint64_t dn = (uint64_t)c->lin_nv * c->lin_dk * c->lin_dv * 4;
	int rc = 0;

	for (uint32_t l = 0; l < c->n_layers; l++) {
		if (c->layer_attn[l])
			continue;
		rc |= fw->hal.fill(fw->hal.ctx, fw->layer[l].conv_state + slot * conv, 0, conv);
		rc |= fw->hal.fill(fw->hal.ctx, fw->layer[l].dn_state + slot * dn, 0, dn);
	}
	return rc ? -FW_EHAL : 0;
}

/* The card does not trust the ring: every prompt id must be in the vocabulary
 * before a kernel indexes a table with it. */
static int check_prompt(struct fw *fw, uint32_t slot, uint32_t n)
{
	int32_t ids[256];

	for (uint32_t at = 0; at < n; at += 256) {
		uint32_t k = n - at < 256 ? n - at : 256;

		if (fw->hal.read(fw->hal.ctx, fw->hal.ctrl->prompt_addr[slot] + (uint64_t)at * 4,
				 ids, (uint64_t)k * 4))
			return -FW_EHAL;
		for (uint32_t i = 0; i < k; i++)
			if (ids[i] < 0 || (uint32_t)ids[i] >= fw->cfg.vocab)
				return -FW_EINVAL;
	}
	return 0;
}

static int cmd_submit(struct fw *fw, const struct fw_cmd *c)
{
	struct fw_slot *s;
	int rc;

	if (c->slot >= FW_MAX_SLOTS || c->n_prompt == 0 || c->n_prompt > fw->ctx ||
	    c->n_stop > FW_MAX_STOP)
		return -FW_EINVAL;
	rc = check_prompt(fw, c->slot, c->n_prompt);
	if (rc)
		return rc;
	s = &fw->slot[c->slot];
	if (s->active)
		return -FW_EBUSY;
	if (reset_slot_state(fw, c->slot))
		return -FW_EHAL;
	memset(s, 0, sizeof(*s));
	s->active = 1;
	s->n_prompt = c->n_prompt;
	s->max_new = c->max_new;
	s->flags = c->flags;
	s->n_stop = c->n_stop;
	memcpy(s->stop, c->stop, sizeof(s->stop));
	s->temperature = c->temperature > 0.0f ? c->temperature : 0.0f;
	s->top_p = c->top_p > 0.0f && c->top_p < 1.0f ? c->top_p : 1.0f;
	s->top_k = c->top_k;
	s->seed = c->seed;
	s->tag = c->tag;
	return 0;
}

static int command(struct fw *fw, const struct fw_cmd *c)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint32_t st = atomic_load_explicit(&ctrl->state, memory_order_acquire);
	int rc;

	switch (c->op) {
	case FW_OP_CONFIGURE:
		if (st != FW_ST_BOOTED)
			return ack(fw, c, -FW_ESTATE);
		fw->cfg = ctrl->cfg;
		fw->err[0] = 0;
		rc = fw_place_model(fw);
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
		return ack(fw, c, cmd_submit(fw, c));
	case FW_OP_CANCEL:
		if (c->slot >= FW_MAX_SLOTS || !fw->slot[c->slot].active)
			return ack(fw, c, -FW_EINVAL);
		fw->slot[c->slot].cancel = 1;
		return ack(fw, c, 0);
	default:
		return ack(fw, c, -FW_EINVAL);
	}
}

static int is_stop(const struct fw_slot *s, int32_t tok)
{
	for (uint32_t i = 0; i < s->n_stop; i++)
		if (s->stop[i] == tok)
			return 1;
	return 0;
}

/* Finish a cancelled slot without running it. */
static int retire_cancelled(struct fw *fw, uint32_t i)
{
	struct fw_slot *s = &fw->slot[i];
	struct fw_res r = { .kind = FW_RES_TOKEN, .slot = i, .token = -1,
			    .pos = s->pos, .flags = FW_RF_LAST,
			    .finish = FW_FIN_CANCEL, .tag = s->tag };
	int rc = post(fw, &r);

	if (!rc)
		s->active = 0;
	return rc;
}

/* Turn the step's outputs into results and advance each slot. */
static int emit(struct fw *fw, const struct fw_row *rows, uint32_t n,
		const struct fw_pick *pick, uint64_t ns)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;

	for (uint32_t r = 0; r < n; r++) {
		struct fw_slot *s = &fw->slot[rows[r].slot];
		struct fw_res res = { .slot = (uint32_t)rows[r].slot, .pos = s->pos,
				      .batch = n, .tag = s->tag, .step_ns = ns };
		int in_prompt = s->pos + 1 < s->n_prompt;

		if (rows[r].dst >= 0) {
			res.flags |= FW_RF_LOGITS;
			res.logits_row = (uint32_t)rows[r].dst;
		}
		s->pos++;
		if (in_prompt) {
			if (!(res.flags & FW_RF_LOGITS))
				continue;
			res.kind = FW_RES_LOGITS;
			res.token = -1;
		} else {
			res.kind = FW_RES_TOKEN;
			res.token = pick[r].token;
			res.logprob = pick[r].logprob;
			if (s->generated == 0)
				res.flags |= FW_RF_FIRST;
			s->generated++;
			s->next = pick[r].token;
			if (is_stop(s, pick[r].token))
				res.finish = FW_FIN_STOP;
			else if (s->generated >= s->max_new)
				res.finish = FW_FIN_LENGTH;
			else if (s->pos >= fw->ctx)
				res.finish = FW_FIN_CTX;
			if (res.finish) {
				res.flags |= FW_RF_LAST;
				s->active = 0;
			}
			atomic_fetch_add_explicit(&ctrl->tokens, 1, memory_order_relaxed);
		}
		post(fw, &res);	/* room was checked before the step */
	}
	return 0;
}

/* A logits-ring row for a score-path row, or -1; 1 if the ring is full. */
static int take_logits_row(struct fw_ctrl *ctrl, const struct fw_slot *s, uint32_t *lg,
			   uint32_t *lfree, int32_t *dst)
{
	*dst = -1;
	if (!(s->flags & FW_SUB_LOGITS))
		return 0;
	if (*lfree == 0)
		return 1;	/* waits for the host to drain logits */
	*dst = (int32_t)(*lg % ctrl->logits_rows);
	(*lg)++;
	(*lfree)--;
	return 0;
}

/* Gather the step's rows: first one row per decoding slot, then the rows
 * left go to prompts, several consecutive positions of a prompt at once
 * (chunked prefill: every kernel handles a slot's rows in order, so a later
 * position sees the cache and state the earlier one wrote).  0 rows if
 * results or logits lack room. */
static uint32_t gather(struct fw *fw, struct fw_row *rows)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint32_t n = 0, lg = atomic_load_explicit(&ctrl->logits_head, memory_order_relaxed);
	uint32_t lfree = ctrl->logits_rows -
			 (lg - atomic_load_explicit(&ctrl->logits_tail, memory_order_acquire));

	if (res_free(ctrl) < FW_MAX_SLOTS + 1)
		return 0;
	for (uint32_t i = 0; i < FW_MAX_SLOTS; i++) {
		struct fw_slot *s = &fw->slot[i];
		int32_t dst;

		if (s->active && s->cancel)
			retire_cancelled(fw, i);
		if (!s->active || s->pos < s->n_prompt)
			continue;
		if (take_logits_row(ctrl, s, &lg, &lfree, &dst))
			continue;
		rows[n++] = (struct fw_row){ .slot = (int32_t)i, .token = s->next,
					     .pos = (int32_t)s->pos, .dst = dst };
	}
	for (uint32_t i = 0; i < FW_MAX_SLOTS && n < FW_MAX_SLOTS; i++) {
		struct fw_slot *s = &fw->slot[i];
		int32_t tok[FW_MAX_SLOTS], dst;
		uint32_t k;

		if (!s->active || s->pos >= s->n_prompt)
			continue;
		k = s->n_prompt - s->pos;
		if (k > FW_MAX_SLOTS - n)
			k = FW_MAX_SLOTS - n;
		if (fw->hal.read(fw->hal.ctx, ctrl->prompt_addr[i] + (uint64_t)s->pos * 4, tok,
				 (uint64_t)k * 4))
			break;
		for (uint32_t j = 0; j < k; j++) {
			if (take_logits_row(ctrl, s, &lg, &lfree, &dst))
				break;
			rows[n++] = (struct fw_row){ .slot = (int32_t)i, .token = tok[j],
						     .pos = (int32_t)(s->pos + j), .dst = dst };
		}
	}
	atomic_store_explicit(&ctrl->logits_head, lg, memory_order_release);
	return n;
}

int fw_service(struct fw *fw)
{
	struct fw_ctrl *ctrl = fw->hal.ctrl;
	uint32_t tail = atomic_load_explicit(&ctrl->cmd_tail, memory_order_relaxed);
	uint32_t head = atomic_load_explicit(&ctrl->cmd_head, memory_order_acquire);
	struct fw_row rows[FW_MAX_SLOTS];
	struct fw_pick pick[FW_MAX_SLOTS];
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
	n = gather(fw, rows);
	if (n == 0)
		return 0;
	atomic_store_explicit(&ctrl->in_step, 1, memory_order_release);
	t0 = fw->hal.now_ns(fw->hal.ctx);
	rc = fw_step(fw, rows, n, pick);
	if (rc) {
		fail(fw, rc, "token step");
		return rc;
	}
	uint64_t ns = fw->hal.now_ns(fw->hal.ctx) - t0;
	atomic_fetch_add_explicit(&ctrl->steps, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ctrl->step_rows, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&ctrl->step_ns_total, ns, memory_order_relaxed);
	atomic_store_explicit(&ctrl->in_step, 0, memory_order_release);
	return emit(fw, rows, n, pick, ns) ? -FW_EHAL : 1;
}
