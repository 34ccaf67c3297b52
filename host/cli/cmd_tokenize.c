/* cmd_tokenize.c — `nextcard tokenize` and `nextcard detokenize`.
 *
 *   nextcard tokenize --model DIR            stdin bytes -> "id,id,...\n"
 *   nextcard detokenize --model DIR --ids 1,2,3 [--skip-special]
 *                                            ids -> text on stdout, as is
 * Without --ids, detokenize reads the ids from stdin (commas or spaces).
 * Failures print one line on stderr and return 1 (2 for bad usage).
 */
#include "cli/cli.h"
#include "text/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tok_args {
	const char *model;
	const char *ids;
	int skip_special;
};

static const char *usage_tail(const char *cmd)
{
	return strcmp(cmd, "detokenize") ? "" : " [--ids 1,2,3] [--skip-special]";
}

static int usage_err(const char *cmd, const char *msg, const char *arg)
{
	fprintf(stderr, "nextcard %s: %s%s%s (usage: nextcard %s --model DIR%s)\n",
		cmd, msg, arg[0] ? ": " : "", arg, cmd, usage_tail(cmd));
	return 2;
}

static int usage_help(const char *cmd)
{
	printf("usage: nextcard %s --model DIR%s\n", cmd, usage_tail(cmd));
	return -1;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]; NULL if not this option.
 * *bad is set when the value is missing. */
static const char *opt_val(int argc, char **argv, int *i, const char *name,
			   int *bad)
{
	size_t l = strlen(name);
	const char *s = argv[*i];

	if (strncmp(s, name, l))
		return NULL;
	if (s[l] == '=')
		return s + l + 1;
	if (s[l])
		return NULL;
	if (*i + 1 >= argc) {
		*bad = 1;
		return NULL;
	}
	return argv[++*i];
}

/* argv may start at the sub-command or at the program name: bare words
 * other than the sub-command's own name are errors.  Returns 0 to go on,
 * -1 after --help, else the exit status. */
static int parse_args(const char *cmd, int argc, char **argv,
		      struct tok_args *a)
{
	int detok = !strcmp(cmd, "detokenize");
	int bad = 0;
	const char *v;

	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc && !bad; i++) {
		if ((v = opt_val(argc, argv, &i, "--model", &bad)))
			a->model = v;
		else if (detok && (v = opt_val(argc, argv, &i, "--ids", &bad)))
			a->ids = v;
		else if (detok && !strcmp(argv[i], "--skip-special"))
			a->skip_special = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return usage_help(cmd);
		else if (!bad && (argv[i][0] == '-' || strcmp(argv[i], cmd)))
			return usage_err(cmd, "unknown argument", argv[i]);
	}
	if (bad)
		return usage_err(cmd, "option needs a value", argv[argc - 1]);
	if (!a->model || !a->model[0])
		return usage_err(cmd, "--model DIR is required", "");
	return 0;
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0, r;
	char *p = malloc(cap), *np;

	while (p && (r = fread(p + n, 1, cap - n, f)) > 0) {
		n += r;
		if (n == cap) {
			np = realloc(p, cap *= 2);
			if (!np)
				free(p);
			p = np;
		}
	}
	if (p && ferror(f)) {
		free(p);
		return NULL;
	}
	*len = n;
	return p;
}

static struct nc_tokenizer *open_tok(const char *cmd, const char *dir)
{
	struct nc_tokenizer *t;
	char err[256];

	if (nc_tok_load(&t, dir, err, sizeof(err))) {
		fprintf(stderr, "nextcard %s: %s\n", cmd, err);
		return NULL;
	}
	return t;
}

static int print_ids(const int32_t *ids, long n)
{
	for (long i = 0; i < n; i++)
		printf(i ? ",%d" : "%d", (int)ids[i]);
	putchar('\n');
	return fflush(stdout) || ferror(stdout) ? -EIO : 0;
}

static int encode_all(const struct nc_tokenizer *t, const char *text,
		      size_t len)
{
	size_t cap = len + 16;
	int32_t *ids = malloc(cap * sizeof(*ids));
	long n = ids ? nc_tok_encode(t, text, len, ids, cap) : -ENOMEM;
	int rc;

	if (n > (long)cap) { /* more ids than bytes: only after UTF-8 repair */
		int32_t *big = realloc(ids, (size_t)n * sizeof(*ids));

		n = big ? nc_tok_encode(t, text, len, big, (size_t)n) : -ENOMEM;
		ids = big ? big : ids;
	}
	rc = n < 0 ? (int)n : print_ids(ids, n);
	free(ids);
	return rc;
}

int cmd_tokenize(int argc, char **argv)
{
	struct tok_args a;
	struct nc_tokenizer *t;
	size_t len;
	char *text;
	int rc = parse_args("tokenize", argc, argv, &a);

	if (rc)
		return rc < 0 ? 0 : rc;
	t = open_tok("tokenize", a.model);
	if (!t)
		return 1;
	text = read_all(stdin, &len);
	rc = text ? encode_all(t, text, len) : -EIO;
	if (rc)
		fprintf(stderr, "nextcard tokenize: %s\n",
			text ? strerror(-rc) : "cannot read stdin");
	free(text);
	nc_tok_free(t);
	return rc ? 1 : 0;
}

/* "1,2, 3" or "1 2 3" -> ids; -EINVAL on anything else. */
static long parse_ids(const char *s, int32_t **out)
{
	size_t n = 0, cap = 64;
	int32_t *ids = malloc(cap * sizeof(*ids)), *np;

	while (ids && *s) {
		char *end;
		long v;

		if (*s == ',' || *s == ' ' || *s == '\n' || *s == '\t' ||
		    *s == '\r') {
			s++;
			continue;
		}
		if (*s < '0' || *s > '9')
			goto bad;
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || v > INT32_MAX)
			goto bad;
		if (n == cap) {
			np = realloc(ids, (cap *= 2) * sizeof(*ids));
			if (!np)
				goto bad;
			ids = np;
		}
		ids[n++] = (int32_t)v;
		s = end;
	}
	*out = ids;
	return ids ? (long)n : -ENOMEM;
bad:
	free(ids);
	return -EINVAL;
}

static int write_text(const struct nc_tokenizer *t, const int32_t *ids,
		      long n, unsigned flags)
{
	long len = nc_tok_decode_ex(t, ids, (size_t)n, flags, NULL, 0);
	char *out;
	int rc = 0;

	if (len < 0)
		return (int)len;
	out = malloc((size_t)len + 1);
	if (!out)
		return -ENOMEM;
	nc_tok_decode_ex(t, ids, (size_t)n, flags, out, (size_t)len);
	if (fwrite(out, 1, (size_t)len, stdout) != (size_t)len || fflush(stdout))
		rc = -EIO;
	free(out);
	return rc;
}

int cmd_detokenize(int argc, char **argv)
{
	struct tok_args a;
	struct nc_tokenizer *t;
	int32_t *ids = NULL;
	char *in = NULL;
	size_t len;
	long n;
	int rc = parse_args("detokenize", argc, argv, &a);

	if (rc)
		return rc < 0 ? 0 : rc;
	if (!a.ids && !(a.ids = in = read_all(stdin, &len)))
		return fprintf(stderr, "nextcard detokenize: cannot read stdin\n"), 1;
	if (in)
		in[len] = 0; /* read_all always leaves room for it */
	n = parse_ids(a.ids, &ids);
	free(in);
	if (n < 0)
		return usage_err("detokenize",
				 "bad id list (want numbers separated by commas)", "");
	t = open_tok("detokenize", a.model);
	if (!t) {
		free(ids);
		return 1;
	}
	rc = write_text(t, ids, n, a.skip_special ? NC_TOK_SKIP_SPECIAL : 0);
	if (rc == -EINVAL)
		fprintf(stderr, "nextcard detokenize: id out of range (vocab size %u)\n",
			nc_tok_vocab_size(t));
	else if (rc)
		fprintf(stderr, "nextcard detokenize: %s\n", strerror(-rc));
	free(ids);
	nc_tok_free(t);
	return rc ? 1 : 0;
}
