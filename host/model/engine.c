/* engine.c — model bring-up and the host side of the rings. */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "model/config.h"
#include "model/engine.h"
#include "model/sched.h"
#include "model/sched.h"
#include "model/image.h"
#include "model/quant.h"

#define DEFAULT_CTX 4096u
#define DEFAULT_PREFIX_EVERY 256u	/* positions between prefix-cache snapshots */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *nc_engine_default_board(const char *card, char *buf, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	const char *env = getenv("NEXTCARD_BOARD");
	const char *name = card && !strncmp(card, "xrt", 3) ? "u55c" : "emu";

	if (env && *env)
		return env;
	if (n <= 0)
		return "build/board/emu.dtb";
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	/* build/nextcard -> build/board; build/rel/tests/x -> build/board */
	snprintf(buf, len, "%s/board/%s.dtb", exe, name);
	if (access(buf, R_OK) == 0)
		return buf;
	snprintf(buf, len, "%s/../../board/%s.dtb", exe, name);
	if (access(buf, R_OK) == 0)
		return buf;
	snprintf(buf, len, "build/board/%s.dtb", name);
	return buf;
}

static int post_cmd(struct nc_engine *e, const struct fw_cmd *c)
{
	struct fw_ctrl *ctrl = e->ctrl;
	uint32_t head = atomic_load_explicit(&ctrl->cmd_head, memory_order_relaxed);

	if (head - atomic_load_explicit(&ctrl->cmd_tail, memory_order_acquire) >= FW_CMD_RING)
		return -1;
	ctrl->cmd[head % FW_CMD_RING] = *c;
	atomic_store_explicit(&ctrl->cmd_head, head + 1, memory_order_release);
	shim_kick(e->card);
	return 0;
}

int nc_engine_poll(struct nc_engine *e, struct fw_res *r)
{
	struct fw_ctrl *ctrl = e->ctrl;
	uint32_t tail = atomic_load_explicit(&ctrl->res_tail, memory_order_relaxed);

	if (tail == atomic_load_explicit(&ctrl->res_head, memory_order_acquire)) {
		if (atomic_load_explicit(&ctrl->state, memory_order_acquire) == FW_ST_FAILED)
			return -1;
		/* the watchdog: a step that does not end is a card that hangs.  In
		 * this order: in a step (its start is then written), when it
		 * started, the clock (a later step only has a later start) */
		int in_step = atomic_load_explicit(&ctrl->in_step, memory_order_acquire);
		uint64_t t0 = atomic_load_explicit(&ctrl->step_t0, memory_order_acquire);
		uint64_t now = now_ns();

		if (in_step && now > t0 && now - t0 > e->watchdog_ns) {
			snprintf(ctrl->error, sizeof(ctrl->error),
				 "watchdog: a token step ran past %llu ms; the card is not answering",
				 (unsigned long long)(e->watchdog_ns / 1000000));
			atomic_store_explicit(&ctrl->state, FW_ST_FAILED, memory_order_release);
			return -1;
		}
		return 0;
	}
	*r = ctrl->res[tail % FW_RES_RING];
	atomic_store_explicit(&ctrl->res_tail, tail + 1, memory_order_release);
	if (((r->kind != FW_RES_ACK && (r->flags & FW_RF_LAST)) ||
	     (r->kind == FW_RES_ACK && r->op == FW_OP_SUBMIT && r->status)) &&
	    r->seq < e->n_seqs && e->seq_busy[r->seq]) {
		e->seq_busy[r->seq] = 0;
		e->seq_free[e->n_free++] = r->seq;
	}
	return 1;
}

int nc_engine_wait(struct nc_engine *e, struct fw_res *r, uint32_t timeout_ms)
{
	uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;

	for (;;) {
		unsigned seq = shim_result_seq(e->card);
		int rc = nc_engine_poll(e, r);
		uint64_t now;

		if (rc)
			return rc;
		now = now_ns();
		if (now > end)
			return 0;
		/* sleep until the firmware has done something (no core spins) */
		shim_wait_result(e->card, seq, end - now < 100000000ull ? end - now : 100000000ull);
	}
}

/* Post a control command and wait for its ACK (no requests are in flight). */
static int control(struct nc_engine *e, uint32_t op, const char *what, char *err,
		   size_t errlen)
{
	struct fw_cmd c = { .op = op };
	struct fw_res r;

	if (post_cmd(e, &c)) {
		snprintf(err, errlen, "%s: command ring full", what);
		return -1;
	}
	for (;;) {
		int rc = nc_engine_wait(e, &r, 60000);
		if (rc <= 0) {
			snprintf(err, errlen, "%s: card %s: %s", what,
				 rc ? "failed" : "timed out", e->ctrl->error);
			return -1;
		}
		if (r.kind == FW_RES_ACK && r.op == op)
			break;
	}
	if (r.status) {
		snprintf(err, errlen, "%s: %s", what, e->ctrl->error[0] ? e->ctrl->error : "refused");
		return -1;
	}
	return 0;
}

static int dma(void *ctx, uint64_t addr, const void *src, uint64_t n)
{
	return shim_write(ctx, addr, src, n);
}

static int quant_round(const char *quant)
{
	struct nc_quant_plan p;

	return quant && !nc_quant_plan_parse(quant, &p, NULL, 0) ? (int)p.round : NC_ROUND_CLIP;
}

struct progress {
	uint64_t t0;
	int shown, tty;
};

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct progress *p = ctx;

	if (!p->tty || now_ns() - p->t0 < 1000000000ull)
		return;
	fprintf(stderr, "\rload: %llu / %llu MiB on the card", (unsigned long long)(done >> 20),
		(unsigned long long)(total >> 20));
	p->shown = 1;
}

static int load_weights(struct nc_engine *e, const char *dir, int round, int verbose,
			char *err, size_t errlen)
{
	struct progress pr = { .t0 = now_ns(), .tty = verbose && isatty(2) };
	struct nc_image_opts io = { .round = round, .progress = show_progress, .pctx = &pr };
	struct fw_ctrl *ctrl = e->ctrl;
	uint32_t n = ctrl->layout_count;
	struct fw_place *pl = calloc(n ? n : 1, sizeof(*pl));
	char e2[256];
	int rc = -1;

	if (!pl) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (shim_read(e->card, ctrl->layout_addr, pl, (uint64_t)n * sizeof(*pl))) {
		snprintf(err, errlen, "cannot read the card's placement table");
	} else if (nc_image_check(&e->st, &e->cfg, pl, n, e2, sizeof(e2)) ||
		   nc_image_fill(&e->st, &e->cfg, pl, n, &io, dma, e->card, e2, sizeof(e2))) {
		snprintf(err, errlen, "%s: %s", dir, e2);
	} else {
		rc = 0;
	}
	if (pr.shown)
		fputc('\n', stderr);
	free(pl);
	return rc;
}

/* The card format a tensor class gets: what --quant asks, else what a
 * pre-quantized checkpoint holds, else the checkpoint's own float type
 * (bf16, f16 and f32 kept as they are: nothing rounded, nothing widened;
 * FP8 blocks are widened to bf16). */
static uint32_t class_fmt(const struct st_set *st, const char *name, uint32_t dflt)
{
	const struct st_tensor *t = st_find(st, name);
	uint32_t dt;

	if (!t)
		return dflt;
	if (nc_image_prequant(st, name, &dt))
		return dt;
	switch (t->dtype) {
	case ST_BF16: case ST_F8_E4M3: case ST_F8_E5M2: return KRNL_FMT_BF16;
	case ST_F16: return KRNL_FMT_F16;
	default: return KRNL_FMT_F32;
	}
}

static int choose_formats(struct nc_engine *e, const char *quant, char *err, size_t errlen)
{
	struct fw_model_cfg *c = &e->cfg;
	struct nc_quant_plan plan = { 0 };
	uint32_t l0 = 0, la = 0, *dt[NC_TC_COUNT];
	char n[NC_TC_COUNT][128], a[NC_TC_COUNT][24], r[24];
	int fp8 = 0, pre = 0;

	if (quant && nc_quant_plan_parse(quant, &plan, err, errlen))
		return -1;
	while (la < c->n_layers && !c->layer_attn[la])
		la++;
	snprintf(n[NC_TC_EXPERT], sizeof(n[0]), "model.layers.%u.mlp.experts.0.gate_proj.weight", l0);
	snprintf(n[NC_TC_SHARED], sizeof(n[0]), "model.layers.%u.mlp.shared_expert.gate_proj.weight", l0);
	if (c->layer_attn[l0])
		snprintf(n[NC_TC_ATTN], sizeof(n[0]), "model.layers.%u.self_attn.q_proj.weight", l0);
	else
		snprintf(n[NC_TC_ATTN], sizeof(n[0]), "model.layers.%u.linear_attn.in_proj_qkvz.weight", l0);
	snprintf(n[NC_TC_HEAD], sizeof(n[0]), "lm_head.weight");
	dt[NC_TC_EXPERT] = &c->dt_expert;
	dt[NC_TC_ATTN] = &c->dt_attn;
	dt[NC_TC_SHARED] = &c->dt_shared;
	dt[NC_TC_HEAD] = &c->dt_head;
	for (int k = 0; k < NC_TC_COUNT; k++) {
		const struct st_tensor *t = st_find(&e->st, n[k]);
		uint32_t pdt;
		int pq = nc_image_prequant(&e->st, n[k], &pdt);

		*dt[k] = plan.set[k] ? plan.dt[k] : class_fmt(&e->st, n[k], *dt[k]);
		if (pq && *dt[k] != pdt) {
			snprintf(err, errlen, "the checkpoint holds %s pre-quantized as %s; this plan"
				 " asks %s (quantize the original instead)", nc_tclass_name(k),
				 nc_fmt_spec(pdt, a[0], sizeof(a[0])),
				 nc_fmt_spec(*dt[k], a[1], sizeof(a[1])));
			return -1;
		}
		pre |= pq;
		fp8 |= t && (t->dtype == ST_F8_E4M3 || t->dtype == ST_F8_E5M2);
	}
	snprintf(n[0], sizeof(n[0]), "model.layers.%u.mlp.gate.weight", l0);
	c->dt_router = class_fmt(&e->st, n[0], c->dt_router);
	if (krnl_fmt_quant(KRNL_DT_FMT(c->dt_router)))
		c->dt_router = KRNL_FMT_F32;
	snprintf(e->formats, sizeof(e->formats),
		 "experts %s, attn %s, shared %s, head %s, router %s, kv %s%s%s",
		 nc_fmt_spec(c->dt_expert, a[0], sizeof(a[0])),
		 nc_fmt_spec(c->dt_attn, a[1], sizeof(a[1])),
		 nc_fmt_spec(c->dt_shared, a[2], sizeof(a[2])),
		 nc_fmt_spec(c->dt_head, a[3], sizeof(a[3])),
		 nc_fmt_spec(c->dt_router, r, sizeof(r)), krnl_fmt_name(c->dt_kv),
		 quant ? (plan.round == NC_ROUND_RTN ? " (quantized at load, round to nearest)"
						    : " (quantized at load, clipped scales)") : "",
		 fp8 ? " (FP8 blocks widened to bf16)" : pre ? " (pre-quantized)" : "");
	e->converted = quant || fp8 || pre;
	return 0;
}


/* A booted card (after shim_open or shim_reset) configured, its weights
 * loaded from the checkpoint (e->st open) and started; the checkpoint's
 * mapping is dropped then, so the process holds the model once. */
static int bring_up(struct nc_engine *e, int verbose, char *err, size_t errlen)
{
	const struct nc_engine_opts *o = &e->o;

	e->ctrl->cfg = e->cfg;
	e->ctrl->ctx_limit = o->ctx_limit ? o->ctx_limit :
			     (e->cfg.max_ctx < DEFAULT_CTX ? e->cfg.max_ctx : DEFAULT_CTX);
	e->ctrl->seq_limit = o->seqs;
	e->ctrl->prefix_every = o->prefix_every == NC_PREFIX_OFF ? 0 :
				o->prefix_every ? o->prefix_every : DEFAULT_PREFIX_EVERY;
	e->ctrl->prefix_budget = o->prefix_budget;
	e->ctrl->page_limit = o->kv_pages;
	e->ctrl->spec = e->spec;
	if (control(e, FW_OP_CONFIGURE, "configure", err, errlen) ||
	    load_weights(e, e->model_dir, quant_round(e->quant), verbose, err, errlen) ||
	    control(e, FW_OP_START, "start", err, errlen))
		return -1;
	st_close(&e->st);
	return 0;
}

int nc_engine_reset(struct nc_engine *e, char *err, size_t errlen)
{
	uint64_t t0 = now_ns();
	char e2[256];

	snprintf(e->last_fault, sizeof(e->last_fault), "%s",
		 e->ctrl->error[0] ? e->ctrl->error : "no reason given");
	e->faults++;
	if (shim_reset(e->card, e2, sizeof(e2))) {
		snprintf(err, errlen, "card reset: %s", e2);
		return -1;
	}
	if (st_open_dir(&e->st, e->model_dir, e2, sizeof(e2))) {
		snprintf(err, errlen, "card reset: %s", e2);
		return -1;
	}
	if (bring_up(e, 0, e2, sizeof(e2))) {
		st_close(&e->st);
		snprintf(err, errlen, "card reset: %s", e2);
		return -1;
	}
	/* every sequence id is free again: the card forgot them all */
	e->n_free = 0;
	memset(e->seq_busy, 0, e->n_seqs);
	for (uint32_t i = e->n_seqs; i-- > 0;)
		e->seq_free[e->n_free++] = i;
	e->resets++;
	e->reset_ns = now_ns() - t0;
	return 0;
}

int nc_engine_open(struct nc_engine **out, const struct nc_engine_opts *o,
		   char *err, size_t errlen)
{
	struct nc_engine *e = calloc(1, sizeof(*e));
	const char *card = o->card ? o->card : "emu";
	char dtb[PATH_MAX], e2[256], spec[32];
	uint64_t t0 = now_ns();

	*out = NULL;
	if (!e) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (nc_config_load(o->model_dir, &e->cfg, e2, sizeof(e2))) {
		snprintf(err, errlen, "%s", e2);
		goto fail;
	}
	if (st_open_dir(&e->st, o->model_dir, e2, sizeof(e2))) {
		snprintf(err, errlen, "%s", e2);
		goto fail;
	}
	e->cfg.dt_kv = o->kv == NC_KV_F32 ? KRNL_FMT_F32 : KRNL_FMT_BF16;
	if (o->mtp || o->spec) {
		if (!st_find(&e->st, "mtp.fc.weight")) {
			snprintf(err, errlen, "%s: the checkpoint has no multi-token-prediction head"
				 " (no mtp.* tensors), so %s cannot be used", o->model_dir,
				 o->spec ? "--speculative mtp" : "the MTP head");
			goto fail;
		}
		if (e->cfg.n_layers >= FW_MAX_LAYERS) {
			snprintf(err, errlen, "%s: no room for the MTP head after %u layers",
				 o->model_dir, e->cfg.n_layers);
			goto fail;
		}
		e->cfg.mtp = 1;
		e->cfg.layer_attn[e->cfg.n_layers] = 1;	/* its layer: gated attention + MoE */
		e->spec = o->spec;
	}
	if (choose_formats(e, o->quant, e2, sizeof(e2))) {
		snprintf(err, errlen, "--quant: %s", e2);
		goto fail;
	}
	/* say what is placed when it is not simply the checkpoint (or someone watches) */
	if (o->verbose && (e->converted || isatty(2)))
		fprintf(stderr, "load: %s: %s\n", o->model_dir, e->formats);
	const char *board = o->board ? o->board : nc_engine_default_board(card, dtb, sizeof(dtb));
	if (o->threads) {	/* --threads: the emulated card's CU threads */
		if (strcmp(card, "emu")) {
			snprintf(err, errlen, "--threads sets the emulated card's threads (card '%s')",
				 card);
			goto fail;
		}
		snprintf(spec, sizeof(spec), "emu:%u", o->threads);
		card = spec;
	}
	e->card = shim_open(card, board, e2, sizeof(e2));
	if (!e->card) {
		snprintf(err, errlen, "%s", e2);
		goto fail;
	}
	e->ctrl = shim_ctrl(e->card);
	e->o = *o;
	e->o.model_dir = e->o.quant = e->o.inject_fault = e->o.card = e->o.board = NULL;
	if (!(e->model_dir = strdup(o->model_dir)) ||
	    (o->quant && !(e->quant = strdup(o->quant)))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (bring_up(e, o->verbose, err, errlen))
		goto fail;
	e->n_seqs = e->ctrl->n_seqs;
	e->seq_free = calloc(e->n_seqs, sizeof(*e->seq_free));
	e->seq_busy = calloc(e->n_seqs, 1);
	if (!e->seq_free || !e->seq_busy) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (uint32_t i = e->n_seqs; i-- > 0;)
		e->seq_free[e->n_free++] = i;
	e->watchdog_ns = (uint64_t)(o->watchdog_ms ? o->watchdog_ms : 30000) * 1000000ull;
	if (o->inject_fault && shim_inject_fault(e->card, o->inject_fault, e2, sizeof(e2))) {
		snprintf(err, errlen, "%s", e2);
		goto fail;
	}
	e->load_ns = now_ns() - t0;
	*out = e;
	return 0;
fail:
	nc_engine_close(e);
	return -1;
}

void nc_engine_close(struct nc_engine *e)
{
	if (!e)
		return;
	shim_close(e->card);
	st_close(&e->st);
	free(e->model_dir);
	free(e->quant);
	free(e->seq_free);
	free(e->seq_busy);
	free(e);
}

int nc_engine_submit(struct nc_engine *e, const int32_t *ids, uint32_t n,
		     uint32_t max_new, uint32_t flags, const int32_t *stop,
		     uint32_t n_stop, uint64_t tag, uint32_t *slot, char *err,
		     size_t errlen)
{
	return nc_engine_submit_ex(e, ids, n, max_new, flags, NULL, stop, n_stop, tag, slot,
				   err, errlen);
}

int nc_engine_submit_ex(struct nc_engine *e, const int32_t *ids, uint32_t n,
			uint32_t max_new, uint32_t flags, const struct nc_sampling *smp,
			const int32_t *stop, uint32_t n_stop, uint64_t tag, uint32_t *slot,
			char *err, size_t errlen)
{
	struct fw_ctrl *ctrl = e->ctrl;
	struct fw_cmd c = { .op = FW_OP_SUBMIT, .n_prompt = n, .max_new = max_new,
			    .flags = flags, .n_stop = n_stop, .tag = tag };
	uint32_t s;

	if (n == 0 || n > ctrl->prompt_cap) {
		snprintf(err, errlen, "prompt of %u tokens (1..%u allowed)", n, ctrl->prompt_cap);
		return -1;
	}
	if (n_stop > FW_MAX_STOP) {
		snprintf(err, errlen, "%u stop ids (at most %u)", n_stop, FW_MAX_STOP);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (ids[i] < 0 || (uint32_t)ids[i] >= e->cfg.vocab) {
			snprintf(err, errlen, "token id %d at %u outside the vocabulary (0..%u)",
				 ids[i], i, e->cfg.vocab - 1);
			return -1;
		}
	}
	if (e->n_free == 0) {
		snprintf(err, errlen, "all %u sequences busy", e->n_seqs);
		return -1;
	}
	s = e->seq_free[e->n_free - 1];
	if (n_stop)
		memcpy(c.stop, stop, n_stop * sizeof(*stop));
	if (smp) {
		if (!(smp->temperature >= 0.0f) || !(smp->top_p >= 0.0f && smp->top_p <= 1.0f)) {
			snprintf(err, errlen, "bad sampling parameters (temperature >= 0, 0 <= top_p <= 1)");
			return -1;
		}
		c.temperature = smp->temperature;
		c.top_p = smp->top_p;
		c.top_k = smp->top_k;
		c.seed = smp->seed;
	}
	c.seq = s;
	if (shim_write(e->card, ctrl->tok_addr + (uint64_t)s * ctrl->prompt_cap * 4, ids,
		       (uint64_t)n * 4) || post_cmd(e, &c)) {
		snprintf(err, errlen, "command ring full");
		return -1;
	}
	e->n_free--;
	e->seq_busy[s] = 1;
	*slot = s;
	return 0;
}

int nc_engine_cancel(struct nc_engine *e, uint32_t seq)
{
	struct fw_cmd c = { .op = FW_OP_CANCEL, .seq = seq };

	return post_cmd(e, &c);
}

int nc_engine_pool_op(struct nc_engine *e, uint32_t op, uint32_t seq, uint32_t arg,
		      uint64_t tag)
{
	struct fw_cmd c = { .op = op, .seq = seq, .arg = arg, .tag = tag };

	if (op != FW_OP_SNAPSHOT && op != FW_OP_ROLLBACK && op != FW_OP_DROP)
		return -1;
	return post_cmd(e, &c);
}

void nc_engine_pool_stats(struct nc_engine *e, struct nc_sched_stats *st)
{
	struct fw_ctrl *c = e->ctrl;

#define LD(f) atomic_load_explicit(&c->f, memory_order_relaxed)
	st->live_seqs = LD(live_seqs);
	st->card_state = LD(state);
	st->blocks = c->n_blocks;
	st->blocks_free = LD(blocks_free);
	st->pages = c->n_pages;
	st->pages_free = LD(pages_free);
	st->page_pos = c->page_pos;
	st->snaps = LD(snaps);
	st->snap_bytes = LD(snap_bytes);
	st->prefix_hits = LD(prefix_hits);
	st->prefix_misses = LD(prefix_misses);
	st->prefix_tokens = LD(prefix_tokens);
	st->prefix_stored = LD(prefix_stored);
	st->prefix_evicted = LD(prefix_evicted);
	st->preempted = LD(preempted);
	st->replayed = LD(replayed);
	st->spec = e->spec;
	st->drafted = LD(drafted);
	st->accepted = LD(accepted);
#undef LD
}

int nc_engine_take_logits(struct nc_engine *e, uint32_t row, float *dst)
{
	struct fw_ctrl *ctrl = e->ctrl;
	int rc = shim_read(e->card, ctrl->logits_addr + (uint64_t)row * e->cfg.vocab * 4, dst,
			   (uint64_t)e->cfg.vocab * 4);

	atomic_fetch_add_explicit(&ctrl->logits_tail, 1, memory_order_release);
	return rc;
}

void nc_engine_snapshot(struct nc_engine *e, struct nc_card_snap *s)
{
	struct fw_ctrl *ctrl = e->ctrl;

	/* hold the card between steps for the few microseconds of the copy */
	atomic_store(&ctrl->hold, 1);
	/* (not past a failed card, nor past the watchdog) */
	for (;;) {
		int in_step = atomic_load(&ctrl->in_step);
		uint64_t t0 = atomic_load(&ctrl->step_t0), now = now_ns();

		if (!in_step || atomic_load(&ctrl->state) == FW_ST_FAILED ||
		    (now > t0 && now - t0 > e->watchdog_ns))
			break;
		sched_yield();
	}
	shim_get_stats(e->card, &s->st);
	s->steps = atomic_load(&ctrl->steps);
	s->rows = atomic_load(&ctrl->step_rows);
	s->tokens = atomic_load(&ctrl->tokens);
	s->drafted = atomic_load(&ctrl->drafted);
	s->accepted = atomic_load(&ctrl->accepted);
	s->ns = now_ns();
	atomic_store(&ctrl->hold, 0);
}
