/* cmd_info.c — `nextcard info --model DIR`: what the model is and where it
 * would live on the card.  Needs only config.json: the placement is computed
 * by the firmware on the chosen card, weights are not loaded. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/args.h"
#include "cli/cli.h"
#include "model/config.h"
#include "firmware/fw_place.h"
#include "model/engine.h"
#include "model/quant.h"
#include "model/image.h"

struct counts {
	double total, active, embed, head, attn, lin, router, experts, shared, norms;
};

static void count(const struct fw_model_cfg *c, struct counts *n)
{
	double h = c->hidden, e3 = 3.0 * h * c->moe_inter;

	memset(n, 0, sizeof(*n));
	n->embed = h * c->vocab;
	n->head = h * c->vocab;
	for (uint32_t l = 0; l < c->n_layers; l++) {
		if (c->layer_attn[l]) {
			double hd = c->head_dim;
			n->attn += h * hd * (2.0 * c->n_heads + 2.0 * c->n_kv_heads) +
				   h * c->n_heads * hd + 2 * hd;
		} else {
			double ch = 2.0 * c->lin_nk * c->lin_dk + c->lin_nv * c->lin_dv;
			n->lin += h * (ch + c->lin_nv * c->lin_dv) + h * 2.0 * c->lin_nv +
				  ch * c->conv_k + 2.0 * c->lin_nv + c->lin_dv +
				  (double)c->lin_nv * c->lin_dv * h;
		}
		n->router += h * c->n_experts;
		n->experts += e3 * c->n_experts;
		n->shared += 3.0 * h * c->shared_inter + (c->shared_inter ? h : 0);
		n->norms += 2 * h;
	}
	n->norms += h;
	n->total = n->embed + n->head + n->attn + n->lin + n->router + n->experts +
		   n->shared + n->norms;
	n->active = n->total - n->experts + e3 * c->top_k * c->n_layers;
}

static void layer_map(const struct fw_model_cfg *c)
{
	printf("layers: %u (", c->n_layers);
	for (uint32_t l = 0; l < c->n_layers; l++)
		putchar(c->layer_attn[l] ? 'A' : 'L');
	printf(")  L = Gated DeltaNet, A = gated full attention; every layer MoE\n");
	printf("hidden %u, vocab %u, context %u\n", c->hidden, c->vocab, c->max_ctx);
	printf("deltanet: %u key heads x %u, %u value heads x %u, conv %u\n", c->lin_nk,
	       c->lin_dk, c->lin_nv, c->lin_dv, c->conv_k);
	printf("attention: %u q heads / %u kv heads x %u, rotary %u dims, theta %g\n",
	       c->n_heads, c->n_kv_heads, c->head_dim, c->rope_dim, (double)c->rope_theta);
	printf("moe: %u experts, top %u%s, expert width %u, shared expert width %u\n",
	       c->n_experts, c->top_k, c->norm_topk ? " (renormalised)" : "",
	       c->moe_inter, c->shared_inter);
}

static int placement(const char *dir, const char *card, const char *board,
		     const struct fw_model_cfg *cfg, const struct nc_engine_opts *eo)
{
	struct shim_card *sc;
	struct fw_ctrl *ctrl;
	char dtb[PATH_MAX], err[256];
	struct fw_cmd c = { .op = FW_OP_CONFIGURE };
	uint64_t per_bank[SHIM_MAX_BANKS] = { 0 };

	if (!board)
		board = nc_engine_default_board(card, dtb, sizeof(dtb));
	sc = shim_open(card, board, err, sizeof(err));
	if (!sc) {
		fprintf(stderr, "nextcard info: %s\n", err);
		return 1;
	}
	ctrl = shim_ctrl(sc);
	ctrl->cfg = *cfg;
	ctrl->ctx_limit = eo->ctx_limit ? eo->ctx_limit : cfg->max_ctx < 4096 ? cfg->max_ctx : 4096;
	ctrl->seq_limit = eo->seqs;
	ctrl->page_limit = eo->kv_pages;
	ctrl->cfg.dt_kv = eo->kv == NC_KV_F32 ? KRNL_FMT_F32 : KRNL_FMT_BF16;	/* as the engine */
	if ((eo->spec || eo->mtp) && cfg->n_layers < FW_MAX_LAYERS) {
		/* the MTP head as the engine places it (from the config alone) */
		ctrl->cfg.mtp = 1;
		ctrl->cfg.layer_attn[cfg->n_layers] = 1;
		ctrl->spec = eo->spec;
	}
	ctrl->cmd[0] = c;
	atomic_store(&ctrl->cmd_head, 1);
	shim_kick(sc);
	while (atomic_load(&ctrl->res_head) == 0)
		;
	if (ctrl->res[0].status) {
		printf("placement on %s (%s): does not fit: %s\n", card, board, ctrl->error);
		shim_close(sc);
		return 0;
	}
	uint32_t n = ctrl->layout_count;
	struct fw_place *pl = calloc(n, sizeof(*pl));
	if (!pl || shim_read(sc, ctrl->layout_addr, pl, (uint64_t)n * sizeof(*pl))) {
		fprintf(stderr, "nextcard info: cannot read the placement\n");
		free(pl);
		shim_close(sc);
		return 1;
	}
	for (uint32_t i = 0; i < n; i++)
		if (pl[i].bank < SHIM_MAX_BANKS)
			per_bank[pl[i].bank] += pl[i].bytes;
	printf("placement on %s (%s): %u tensors, weights %.1f MiB, state pool %.1f MiB,"
	       " HBM used %.1f MiB, context %u\n", card, board, n, ctrl->weight_bytes / 1048576.0,
	       ctrl->state_bytes / 1048576.0, ctrl->hbm_used / 1048576.0, ctrl->ctx);
	printf("state pool: %u sequences, %u rows per step; %u state handles of %.1f KiB "
	       "(GDN conv + delta); %u KV pages of %u positions, %.1f KiB each "
	       "(%llu positions in all)\n", ctrl->n_seqs, ctrl->rows_max, ctrl->n_blocks,
	       ctrl->block_bytes / 1024.0, ctrl->n_pages, ctrl->page_pos,
	       ctrl->page_bytes / 1024.0, (unsigned long long)ctrl->n_pages * ctrl->page_pos);
	if (ctrl->cfg.mtp)
		printf("mtp head: layer %u (gated attention + MoE, its own KV pages), fc and norms;"
		       " %s\n", cfg->n_layers, ctrl->spec ? "speculative decoding, 1 draft a step"
							 " (a spare state handle per sequence)" :
							 "placed for MTP logits");
	printf("weights per bank (MiB):");
	for (uint32_t b = 0; b < SHIM_MAX_BANKS; b++)
		if (per_bank[b])
			printf(" %u:%.2f", b, per_bank[b] / 1048576.0);
	printf("\n");
	for (uint32_t i = 0; i < n && i < 64; i++) {
		char f[24];

		printf("  %-20s layer %-3u bank %-2u addr 0x%010llx %10llu bytes %s\n",
		       fw_tkind_name(pl[i].kind), pl[i].layer, pl[i].bank,
		       (unsigned long long)pl[i].addr, (unsigned long long)pl[i].bytes,
		       nc_fmt_spec(fw_place_dt(&pl[i]), f, sizeof(f)));
	}
	if (n > 64)
		printf("  ... %u more\n", n - 64);
	free(pl);
	(void)dir;
	shim_close(sc);
	return 0;
}

int cmd_info(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, 0, 'm' },
		{ "card", required_argument, 0, 'c' },
		{ "board", required_argument, 0, 'b' },
		{ "quant", required_argument, 0, 'Q' },
		{ "ctx", required_argument, 0, 'x' },
		NC_POOL_OPTS,
		{ 0, 0, 0, 0 },
	};
	const char *dir = NULL, *card = "emu", *board = NULL, *quant = NULL;
	struct nc_engine_opts eo = { 0 };
	struct nc_quant_plan plan;
	struct fw_model_cfg cfg;
	struct counts n;
	char err[256];
	int o;

	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int po = nc_pool_opt(o, optarg, &eo, err, sizeof(err));

		if (po < 0) {
			fprintf(stderr, "nextcard info: %s\n", err);
			return 2;
		}
		if (po)
			continue;
		if (o == 'm')
			dir = optarg;
		else if (o == 'x' && !nc_parse_u32(optarg, 1, 1u << 20, &eo.ctx_limit))
			;
		else if (o == 'c')
			card = optarg;
		else if (o == 'b')
			board = optarg;
		else if (o == 'Q')
			quant = optarg;
		else {
			fprintf(stderr, "nextcard info: unknown or incomplete option (usage: nextcard info --model DIR [--card emu] [--board DTB] [--quant SPEC] [--ctx N] " NC_POOL_USAGE ")\n");
			return 2;
		}
	}
	if (!dir || optind < argc) {
		fprintf(stderr, "nextcard info: --model DIR is required (usage: nextcard info --model DIR [--card emu] [--board DTB] [--quant SPEC] [--ctx N] " NC_POOL_USAGE ")\n");
		return 2;
	}
	if (nc_config_load(dir, &cfg, err, sizeof(err))) {
		fprintf(stderr, "nextcard info: %s\n", err);
		return 1;
	}
	if (quant) {
		uint32_t *dt[NC_TC_COUNT] = { &cfg.dt_expert, &cfg.dt_attn, &cfg.dt_shared, &cfg.dt_head };

		if (nc_quant_plan_parse(quant, &plan, err, sizeof(err))) {
			fprintf(stderr, "nextcard info: --quant: %s\n", err);
			return 2;
		}
		for (int k = 0; k < NC_TC_COUNT; k++)
			if (plan.set[k])
				*dt[k] = plan.dt[k];
	}
	layer_map(&cfg);
	count(&cfg, &n);
	{
		char f[5][24];

		printf("formats: experts %s, attn %s, shared %s, head %s, router %s;"
		       " weights %.2f GB, active-weight floor per token %.1f MB\n",
		       nc_fmt_spec(cfg.dt_expert, f[0], sizeof(f[0])),
		       nc_fmt_spec(cfg.dt_attn, f[1], sizeof(f[1])),
		       nc_fmt_spec(cfg.dt_shared, f[2], sizeof(f[2])),
		       nc_fmt_spec(cfg.dt_head, f[3], sizeof(f[3])),
		       nc_fmt_spec(cfg.dt_router, f[4], sizeof(f[4])), nc_weight_bytes(&cfg) / 1e9,
		       nc_active_floor(&cfg) / 1e6);
	}
	printf("parameters: total %.0f (%.3f G), active per token %.0f (%.3f G)\n",
	       n.total, n.total / 1e9, n.active, n.active / 1e9);
	printf("  embed %.0f, lm_head %.0f, deltanet %.0f, attention %.0f, router %.0f,"
	       " experts %.0f, shared %.0f, norms %.0f\n", n.embed, n.head, n.lin, n.attn,
	       n.router, n.experts, n.shared, n.norms);
	return placement(dir, card, board, &cfg, &eo);
}
