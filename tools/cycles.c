/* cycles.c — the kernels' cycle model (hls_kernels/krnl_cycles.h) over one
 * decode step of a model, per kernel, from its config.json.
 *
 *   build/tools/cycles [--model DIR|config.json] [--quant SPEC] [--rows N]
 *                      [--pos P] [--board DTB]
 *
 * It makes the kernel calls fw_step() makes (firmware/fw_step.c: the same
 * kernels with the same argument registers, layer by layer), asks the model
 * of each, and prints cycles and HBM beats per kernel and per token: what
 * one compute unit per kernel, run back to back at the kernel clock, would
 * take; what the same bytes need if each call streamed its busiest port at a
 * beat per cycle; and what the board's HBM allows (bandwidth from its DTB).
 *
 *   --model    a model directory (its config.json) or a config.json itself;
 *              default assets/fortune-13m
 *   --quant    a --quant plan (host/model/quant.h), e.g. experts=int4:64;
 *              default: the checkpoint's own float format everywhere
 *   --rows     batch rows of the step (default 1); each selected expert is
 *              assumed distinct (rows x top_k of them, at most all)
 *   --pos      position of every row (default 1024): attention reads pos
 *              cached entries per kv head
 *   --board    the card's DTB (default build/board/u55c.dtb, `make dtbs`)
 *   --check N  also run N decode steps of the model (a directory with its
 *              weights) on the emulated card and compare the bytes each
 *              kernel read and wrote in each step with the model's beats:
 *              exit 1 on any difference
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "krnl_cycles.h"
#include "krnl_state.h"
#include "fw.h"
#include "fw_board.h"
#include "model/config.h"
#include "model/engine.h"
#include "model/quant.h"

struct tally {
	uint64_t calls, cycles, stream, rd, wr;
};

static struct tally per[KRNL_COUNT];
static struct krnl_cycle_ctx ctx;

static int add(uint32_t id, const uint64_t *a, uint32_t n)
{
	struct krnl_call k = { .id = id };
	struct krnl_cycle_est e;
	uint64_t busiest = 0;

	for (uint32_t i = 0; i < n && i < KRNL_MAX_ARGS; i++)
		k.arg[i] = a[i];
	if (krnl_cycles_estimate(&k, &ctx, &e)) {
		fprintf(stderr, "cycles: %s: the model refuses the call\n", krnl_names[id]);
		return -1;
	}
	/* AXI reads and writes have channels of their own */
	for (int p = 0; p < KRNL_MAX_ARGS; p++) {
		uint64_t b = e.port_beats[p][0] > e.port_beats[p][1] ? e.port_beats[p][0]
								     : e.port_beats[p][1];
		busiest = b > busiest ? b : busiest;
	}
	per[id].calls++;
	per[id].cycles += e.cycles;
	per[id].stream += busiest;
	per[id].rd += e.beats[0];
	per[id].wr += e.beats[1];
	return 0;
}

#define RUN(id, ...) do { \
	const uint64_t a_[] = { __VA_ARGS__ }; \
	if (add(id, a_, sizeof(a_) / sizeof(a_[0]))) \
		return -1; \
} while (0)

#define F(x) krnl_f2u(x)

/* The calls of fw_step() for n rows; addresses are 0 (the model reads only
 * the scalars: ports start on a beat, as the shim demands). */
static int step(const struct fw_model_cfg *c, uint32_t n)
{
	uint32_t h = c->hidden, nv = c->lin_nv, dv = c->lin_dv, nh = c->n_heads;
	uint32_t nkv = c->n_kv_heads, hd = c->head_dim, E = c->n_experts;
	uint32_t ch = 2 * c->lin_nk * c->lin_dk + c->lin_nv * c->lin_dv;	/* fw->lin_ch */
	uint32_t lin_w = 2 * c->lin_nk * c->lin_dk + 2 * c->lin_nv * c->lin_dv;
	uint32_t att_w = 2 * c->n_heads * c->head_dim;
	uint32_t proj_w = lin_w > att_w ? lin_w : att_w;	/* fw_place.c */
	uint32_t maxctx = c->max_ctx;

	RUN(KRNL_EMBED_GATHER, 0, 0, 0, n, h, c->dt_head);
	for (uint32_t l = 0; l < c->n_layers; l++) {
		RUN(KRNL_RMSNORM, 0, 0, 0, n, h, F(c->rms_eps), F(1.0f));
		if (c->layer_attn[l]) {
			RUN(KRNL_GEMV, 0, 0, 0, n, h, 2 * nh * hd, h, 2 * nh * hd, c->dt_attn, 0);
			RUN(KRNL_GEMV, 0, 0, 0, n, h, nkv * hd, h, nkv * hd, c->dt_attn, 0);
			RUN(KRNL_GEMV, 0, 0, 0, n, h, nkv * hd, h, nkv * hd, c->dt_attn, 0);
			RUN(KRNL_ATTN_DECODE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, n, nh, nkv, hd,
			    c->rope_dim, F(c->rms_eps), krnl_kv_pages(maxctx), FW_MAX_PAGES,
			    FW_MAX_BLOCKS, c->dt_kv, krnl_attn_split(KRNL_ATTN_WHOLE, 0, 0));
			RUN(KRNL_GEMV, 0, 0, 0, n, nh * hd, h, nh * hd, h, c->dt_attn, 1);
		} else {
			RUN(KRNL_GEMV, 0, 0, 0, n, h, ch + nv * dv, h, proj_w, c->dt_attn, 0);
			RUN(KRNL_GEMV, 0, 0, 0, n, h, 2 * nv, h, 2 * nv, c->dt_attn, 0);
			RUN(KRNL_CONV1D_STEP, 0, 0, 0, 0, n, ch, c->conv_k, proj_w, FW_MAX_BLOCKS);
			RUN(KRNL_DELTANET_STEP, 0, 0, 0, 0, 0, 0, 0, n, c->lin_nk, nv, c->lin_dk, dv,
			    proj_w, FW_MAX_BLOCKS);
			RUN(KRNL_RMSNORM_GATED, 0, 0, 0, 0, n, nv, dv, proj_w, F(c->rms_eps));
			RUN(KRNL_GEMV, 0, 0, 0, n, nv * dv, h, nv * dv, h, c->dt_attn, 1);
		}
		RUN(KRNL_RMSNORM, 0, 0, 0, n, h, F(c->rms_eps), F(1.0f));
		RUN(KRNL_GEMV, 0, 0, 0, n, h, E, h, E, c->dt_router, 0);
		RUN(KRNL_MOE_ROUTER, 0, 0, 0, 0, n, E, c->top_k, c->norm_topk);
		RUN(KRNL_EXPERT_FFN, 0, 0, 0, 0, 0, 0, 0, 0, n, h, c->moe_inter, E, c->shared_inter,
		    c->dt_expert, c->dt_shared);
	}
	RUN(KRNL_LM_HEAD_ARGMAX, 0, 0, 0, 0, 0, 0, n, h, c->vocab, F(c->rms_eps), c->dt_head);
	RUN(KRNL_SAMPLER, 0, 0, 0, 0, n, c->vocab);
	return 0;
}

/* Counters with the card held at a step boundary; the hold stays on until
 * release(), so the card does not run ahead while a snapshot is matched. */
static void held_snapshot(struct nc_engine *e, struct nc_card_snap *s)
{
	atomic_store(&e->ctrl->hold, 1);
	while (atomic_load(&e->ctrl->in_step))
		sched_yield();
	shim_get_stats(e->card, &s->st);
	s->steps = atomic_load(&e->ctrl->steps);
}

static void release(struct nc_engine *e)
{
	atomic_store(&e->ctrl->hold, 0);
}

/* --check: n decode steps on the emulated card, each kernel's bytes per
 * step against the model.  Results come back while the card runs ahead, so
 * a snapshot may cover several steps: they are matched to the positions
 * they ran at.  The sequence asks for CHECK_SLACK more tokens than are
 * checked, so a fast card cannot finish before the first snapshot. */
#define CHECK_SLACK 64u

static int check(const char *dir, const char *quant, uint32_t n)
{
	struct nc_engine_opts o = { .model_dir = dir, .ctx_limit = 512, .quant = quant };
	struct nc_engine *e;
	struct nc_card_snap s0, s1;
	struct fw_res r;
	char err[512];
	int32_t ids[4] = { 11, 222, 333, 44 };
	uint32_t slot, p0 = 0, done = 0, bad = 0, first = 1;

	fflush(stdout);
	if (nc_engine_open(&e, &o, err, sizeof(err))) {
		fprintf(stderr, "cycles: --check: %s\n", err);
		return -1;
	}
	for (uint32_t i = 0; i < 4; i++)
		ids[i] %= (int32_t)e->cfg.vocab;
	if (nc_engine_submit(e, ids, 4, n + CHECK_SLACK, 0, NULL, 0, 0, &slot, err, sizeof(err))) {
		fprintf(stderr, "cycles: --check: %s\n", err);
		nc_engine_close(e);
		return -1;
	}
	printf("\ncheck: %s (%s) on the emulated card, %u decode steps\n", dir, e->formats, n);
	while (!bad && done < n && nc_engine_wait(e, &r, 600000) > 0) {
		if (r.kind != FW_RES_TOKEN)
			continue;
		if (first) {	/* after the prompt: from here on, decode steps */
			held_snapshot(e, &s0);
			first = 0;
		} else {
			held_snapshot(e, &s1);
			uint64_t steps = s1.steps - s0.steps;
			uint32_t p, lo = done ? p0 : 4, hi = done ? p0 : 4 + n + CHECK_SLACK;

			for (p = lo; steps && p <= hi; p++) {	/* the first position that fits */
				struct tally sum[KRNL_COUNT];
				struct fw_model_cfg c = e->cfg;
				int off = 0;

				memset(sum, 0, sizeof(sum));
				c.max_ctx = c.max_ctx < 512 ? c.max_ctx : 512;	/* = fw->ctx */
				for (uint64_t j = 0; j < steps; j++) {
					memset(per, 0, sizeof(per));
					memset(&ctx, 0, sizeof(ctx));
					ctx.pos[0] = p + (uint32_t)j;
					ctx.blk[0] = slot;
					ctx.experts_selected = ctx.expert_rows = c.top_k;
					ctx.sample_k = 1;
					if (step(&c, 1))
						break;
					for (int k = 0; k < KRNL_COUNT; k++) {
						sum[k].rd += per[k].rd;
						sum[k].wr += per[k].wr;
					}
				}
				for (int k = 0; k < KRNL_COUNT; k++)
					off += s1.st.krnl_rd[k] - s0.st.krnl_rd[k] !=
						       sum[k].rd * KRNL_BEAT_BYTES ||
					       s1.st.krnl_wr[k] - s0.st.krnl_wr[k] !=
						       sum[k].wr * KRNL_BEAT_BYTES;
				if (off)
					continue;
				uint64_t rd = 0, wr = 0;
				for (int k = 0; k < KRNL_COUNT; k++) {
					rd += s1.st.krnl_rd[k] - s0.st.krnl_rd[k];
					wr += s1.st.krnl_wr[k] - s0.st.krnl_wr[k];
				}
				printf("  positions %u..%u: every kernel's bytes as modelled (%llu B read, "
				       "%llu B written)\n", p, p + (uint32_t)steps - 1,
				       (unsigned long long)rd, (unsigned long long)wr);
				p0 = p + (uint32_t)steps;
				done += (uint32_t)steps;
				break;
			}
			if (steps && p > hi) {
				printf("  %llu step(s) after position %u: the bytes differ from the model\n",
				       (unsigned long long)steps, p0);
				for (int k = 0; k < KRNL_COUNT; k++)
					printf("    %-20s read %llu written %llu B\n", krnl_names[k],
					       (unsigned long long)(s1.st.krnl_rd[k] - s0.st.krnl_rd[k]),
					       (unsigned long long)(s1.st.krnl_wr[k] - s0.st.krnl_wr[k]));
				bad = 1;
			}
			s0 = s1;
		}
		release(e);
		if (r.flags & FW_RF_LAST)
			break;
	}
	release(e);
	nc_engine_close(e);
	if (!bad && done < n) {
		printf("  only %u of %u steps seen\n", done, n);
		bad = 1;
	}
	printf("check: %s\n", bad ? "FAILED" : "the model's beats are the meter's");
	return bad ? -1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: cycles [--model DIR|config.json] [--quant SPEC] [--rows N] "
			"[--pos P] [--board DTB] [--check N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *model = "assets/fortune-13m", *quant = NULL, *dtb = "build/board/u55c.dtb";
	uint32_t rows = 1, pos = 1024, nlin = 0, ncheck = 0;
	struct fw_model_cfg c;
	struct nc_quant_plan plan;
	static struct fw_board board;
	char err[256], a[5][24];
	struct tally tot = { 0 };

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--model"))
			model = argv[++i];
		else if (!strcmp(argv[i], "--quant"))
			quant = argv[++i];
		else if (!strcmp(argv[i], "--rows"))
			rows = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--pos"))
			pos = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--board"))
			dtb = argv[++i];
		else if (!strcmp(argv[i], "--check"))
			ncheck = (uint32_t)strtoul(argv[++i], NULL, 10);
		else
			usage();
	}
	if (!rows || rows > KRNL_MAX_BATCH) {
		fprintf(stderr, "cycles: --rows: 1..%u\n", KRNL_MAX_BATCH);
		return 2;
	}
	if (nc_config_load_path(model, &c, err, sizeof(err))) {
		fprintf(stderr, "cycles: %s: %s\n", model, err);
		return 1;
	}
	if (fw_board_load(dtb, &board, err, sizeof(err))) {
		fprintf(stderr, "cycles: %s: %s (make dtbs)\n", dtb, err);
		return 1;
	}
	if (quant) {
		if (nc_quant_plan_parse(quant, &plan, err, sizeof(err))) {
			fprintf(stderr, "cycles: --quant: %s\n", err);
			return 2;
		}
		if (plan.set[NC_TC_EXPERT])
			c.dt_expert = plan.dt[NC_TC_EXPERT];
		if (plan.set[NC_TC_ATTN])
			c.dt_attn = plan.dt[NC_TC_ATTN];
		if (plan.set[NC_TC_SHARED])
			c.dt_shared = plan.dt[NC_TC_SHARED];
		if (plan.set[NC_TC_HEAD])
			c.dt_head = plan.dt[NC_TC_HEAD];
	}
	if (pos >= c.max_ctx)
		pos = c.max_ctx - 1;
	for (uint32_t r = 0; r < rows; r++) {
		ctx.pos[r] = pos;
		ctx.blk[r] = r;
	}
	ctx.experts_selected = rows * c.top_k < c.n_experts ? rows * c.top_k : c.n_experts;
	ctx.expert_rows = rows * c.top_k;
	ctx.sample_k = 1;	/* greedy */
	for (uint32_t l = 0; l < c.n_layers; l++)
		nlin += !c.layer_attn[l];
	if (step(&c, rows))
		return 1;

	double hz = KRNL_CYCLE_HZ, beat = KRNL_CYCLE_BEAT_BYTES;
	printf("model %s: %u layers (%u Gated DeltaNet, %u attention), hidden %u, vocab %u,\n"
	       "  %u experts (top-%u, intermediate %u), shared expert %u\n", model, c.n_layers, nlin,
	       c.n_layers - nlin, c.hidden, c.vocab, c.n_experts, c.top_k, c.moe_inter,
	       c.shared_inter);
	printf("formats: experts %s, attn %s, shared %s, head %s, router %s\n",
	       nc_fmt_spec(c.dt_expert, a[0], sizeof(a[0])), nc_fmt_spec(c.dt_attn, a[1], sizeof(a[1])),
	       nc_fmt_spec(c.dt_shared, a[2], sizeof(a[2])), nc_fmt_spec(c.dt_head, a[3], sizeof(a[3])),
	       nc_fmt_spec(c.dt_router, a[4], sizeof(a[4])));
	printf("step: %u row%s at position %u (attention over %u entries), %u experts selected "
	       "per layer, greedy\n", rows, rows > 1 ? "s" : "", pos, pos + 1,
	       ctx.experts_selected);
	printf("clock %.0f MHz (board %s: %u MHz), %u B per beat: one port at II=1 moves %.2f GB/s\n\n",
	       hz / 1e6, board.model, board.kernel_clock_mhz, KRNL_CYCLE_BEAT_BYTES,
	       krnl_cycles_port_bw() / 1e9);
	printf("%-20s %6s %13s %6s %10s %12s %10s %10s %7s\n", "kernel", "calls", "cycles", "share",
	       "ms", "stream cyc", "MB read", "MB write", "B/cyc");
	for (int i = 0; i < KRNL_COUNT; i++) {
		tot.calls += per[i].calls;
		tot.cycles += per[i].cycles;
		tot.stream += per[i].stream;
		tot.rd += per[i].rd;
		tot.wr += per[i].wr;
	}
	for (int i = 0; i < KRNL_COUNT; i++) {
		const struct tally *t = &per[i];

		if (!t->calls)
			continue;
		printf("%-20s %6llu %13llu %5.1f%% %10.3f %12llu %10.3f %10.3f %7.2f\n",
		       krnl_cycle_models[i].name + 5, (unsigned long long)t->calls,
		       (unsigned long long)t->cycles, 100.0 * t->cycles / tot.cycles,
		       krnl_cycles_seconds(t->cycles) * 1e3, (unsigned long long)t->stream,
		       t->rd * beat / 1e6, t->wr * beat / 1e6, (t->rd + t->wr) * beat / t->cycles);
	}
	printf("%-20s %6llu %13llu %5.1f%% %10.3f %12llu %10.3f %10.3f %7.2f\n", "step",
	       (unsigned long long)tot.calls, (unsigned long long)tot.cycles, 100.0,
	       krnl_cycles_seconds(tot.cycles) * 1e3, (unsigned long long)tot.stream,
	       tot.rd * beat / 1e6, tot.wr * beat / 1e6, (tot.rd + tot.wr) * beat / tot.cycles);

	double bytes = (double)(tot.rd + tot.wr) * beat, t_model = krnl_cycles_seconds(tot.cycles);
	double t_stream = krnl_cycles_seconds(tot.stream), hbm = (double)board.hbm_bw_bytes_per_s;
	double t_hbm = bytes / hbm, pc = 0, port = krnl_cycles_port_bw();
	uint32_t nhbm = 0;

	for (uint32_t b = 0; b < board.n_banks; b++)
		if (!strcmp(board.banks[b].type, "hbm")) {
			nhbm++;
			pc = (double)board.banks[b].bw_bytes_per_s;
		}
	printf("\nper token (%u row%s): %.3f ms modelled (%.1f tokens/s), %.3f MB of HBM traffic\n",
	       rows, rows > 1 ? "s" : "", t_model * 1e3 / rows, rows / t_model, bytes / 1e6 / rows);
	printf("  as modelled: one CU per kernel, back to back: %.2f GB/s of HBM (%.1f%% of one "
	       "port's %.1f GB/s)\n", bytes / t_model / 1e9,
	       100.0 * bytes / t_model / krnl_cycles_port_bw(), krnl_cycles_port_bw() / 1e9);
	printf("  all of it through one port at a beat per cycle: %.3f ms\n",
	       bytes / port * 1e3 / rows);
	printf("  streamed: every call at a beat per cycle on its busiest port: %.3f ms "
	       "(%.1fx faster than modelled)\n", t_stream * 1e3 / rows, t_model / t_stream);
	printf("  HBM floor: %s, %u pseudo-channels x %.3f GB/s = %.1f GB/s: %.3f ms\n",
	       board.model, nhbm, pc / 1e9, hbm / 1e9, t_hbm * 1e3 / rows);
	printf("  to reach it: %.1f ports streaming at once at %.1f GB/s; but a port on one "
	       "pseudo-channel gets %.3f GB/s,\n  so %.0f ports, one per pseudo-channel; the "
	       "modelled step is %.0fx the floor\n", hbm / port, port / 1e9,
	       (pc < port ? pc : port) / 1e9, hbm / (pc < port && pc > 0 ? pc : port),
	       t_model / t_hbm);
	if (ncheck && check(model, quant, ncheck))
		return 1;
	return 0;
}
