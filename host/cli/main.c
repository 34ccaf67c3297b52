/* main.c — `nextcard`: the appliance's command-line entry point. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

#pragma weak cmd_serve
static int serve(int argc, char **argv)
{
	if (!cmd_serve) {
		fprintf(stderr, "nextcard serve: this build has no DPDK data plane\n");
		return 1;
	}
	return cmd_serve(argc, argv);
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} cmds[] = {
	{ "score", cmd_score, "teacher-forced logits of --ids to --logits-out" },
	{ "generate", cmd_generate, "greedy continuation of --ids" },
	{ "info", cmd_info, "layer map, parameter counts, HBM placement" },
	{ "tokenize", cmd_tokenize, "stdin text -> token ids" },
	{ "detokenize", cmd_detokenize, "--ids -> text" },
	{ "render", cmd_render, "a chat request (stdin JSON) through the model's chat template" },
	{ "synth", cmd_synth, "random-weight checkpoint for a config (benchmarks, planning)" },
	{ "quantize", cmd_quantize, "pre-quantized checkpoint (int8/int4 card rows) of --model" },
	{ "serve", serve, "the appliance: DPDK port, protocol v1 (docs/dataplane.md)" },
	{ "http", cmd_http, "OpenAI-compatible HTTP API (no data plane)" },
};

static int usage(FILE *f)
{
	fprintf(f, "usage: nextcard COMMAND [options]\ncommands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].help);
	return f == stderr ? 2 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "nextcard: no command given (try nextcard --help)\n");
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return usage(stdout);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "nextcard: unknown command '%s' (try nextcard --help)\n", argv[1]);
	return 2;
}
