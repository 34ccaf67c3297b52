/* cmd_render.c — `nextcard render`: a chat request through the model's own
 * chat template, the prompt text on stdout and nothing else.
 *
 *   nextcard render --model DIR [--no-generation-prompt] [--chat-template FILE] < request.json
 *   nextcard render --template FILE --vars VARS.json     (the template alone)
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "text/jinja.h"
#include "text/render.h"
#include "text/tokenizer.h"

#define MAX_INPUT (16u << 20)

static char *slurp(FILE *f, size_t *len)
{
	size_t cap = 1 << 16, n = 0, k;
	char *p = malloc(cap + 1);

	while (p && (k = fread(p + n, 1, cap - n, f)) > 0) {
		n += k;
		if (n == cap) {
			char *q = cap < MAX_INPUT ? realloc(p, 2 * cap + 1) : NULL;

			if (!q) {
				free(p);
				return NULL;
			}
			p = q;
			cap *= 2;
		}
	}
	if (p)
		p[n] = 0;
	*len = n;
	return p;
}

static int usage(const char *why)
{
	fprintf(stderr, "nextcard render: %s (usage: nextcard render --model DIR"
		" [--no-generation-prompt] [--chat-template FILE] < request.json, or"
		" nextcard render --template FILE --vars VARS.json)\n", why);
	return 2;
}

int cmd_render(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, 0, 'm' },
		{ "no-generation-prompt", no_argument, 0, 'n' },
		{ "chat-template", required_argument, 0, 'c' },
		{ "template", required_argument, 0, 't' },
		{ "vars", required_argument, 0, 'v' },
		{ 0, 0, 0, 0 },
	};
	const char *model = NULL, *override = NULL, *tpath = NULL, *vpath = NULL;
	struct nc_tokenizer *tok = NULL;
	struct nc_jinja *t = NULL;
	cJSON *req = NULL;
	char err[512], *in = NULL, *out = NULL;
	size_t len = 0, olen = 0;
	int agp = 1, o, rc = 1;

	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'm': model = optarg; break;
		case 'n': agp = 0; break;
		case 'c': override = optarg; break;
		case 't': tpath = optarg; break;
		case 'v': vpath = optarg; break;
		default: return usage("unknown or incomplete option");
		}
	}
	if (optind < argc)
		return usage("unexpected argument");
	if (!model == !tpath || (tpath && !vpath))
		return usage("--model, or --template with --vars");
	if (tpath) {
		FILE *f = fopen(tpath, "rb"), *g = fopen(vpath, "rb");
		char *src = f ? slurp(f, &len) : NULL, *vs = g ? slurp(g, &olen) : NULL;

		if (f)
			fclose(f);
		if (g)
			fclose(g);
		if (!src || !vs) {
			fprintf(stderr, "nextcard render: cannot read %s\n", src ? vpath : tpath);
		} else if (!(t = nc_jinja_compile(src, len, err, sizeof(err)))) {
			fprintf(stderr, "nextcard render: %s: %s\n", tpath, err);
		} else if (!(req = cJSON_ParseWithLength(vs, olen))) {
			fprintf(stderr, "nextcard render: %s: not valid JSON\n", vpath);
		} else if (!(out = nc_jinja_render(t, req, &olen, err, sizeof(err)))) {
			fprintf(stderr, "nextcard render: %s\n", err);
		} else {
			rc = fwrite(out, 1, olen, stdout) == olen ? 0 : 1;
		}
		free(src);
		free(vs);
		goto done;
	}
	if (nc_tok_load(&tok, model, err, sizeof(err))) {
		fprintf(stderr, "nextcard render: %s\n", err);
		goto done;
	}
	if (!(t = nc_render_compile(tok, override, err, sizeof(err)))) {
		fprintf(stderr, "nextcard render: %s: %s\n", model, err);
		goto done;
	}
	in = slurp(stdin, &len);
	if (!in || !(req = cJSON_ParseWithLength(in, len)) || !cJSON_IsObject(req)) {
		fprintf(stderr, "nextcard render: stdin: %s\n",
			in ? "not a JSON object" : "cannot read");
		goto done;
	}
	if (!(out = nc_render_chat(t, tok, req, agp, &olen, err, sizeof(err)))) {
		fprintf(stderr, "nextcard render: %s\n", err);
		goto done;
	}
	rc = fwrite(out, 1, olen, stdout) == olen ? 0 : 1;
done:
	free(out);
	free(in);
	cJSON_Delete(req);
	nc_jinja_free(t);
	nc_tok_free(tok);
	return rc;
}
