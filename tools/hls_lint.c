/* hls_lint — reject C that Vitis HLS cannot synthesize, before v++ does.
 *
 * usage: hls_lint file.c...
 *
 * Rules (DESIGN.md, hls_kernels/krnl_common.h):
 *   - no malloc, calloc, realloc or free
 *   - no recursion (a function that calls itself)
 *   - no function pointers
 *   - no while or do loops; every for loop's condition is `EXPR < BOUND` or
 *     `EXPR <= BOUND` where BOUND is built only from numbers, UPPER_CASE
 *     macros (KRNL_MAX_*) and arithmetic: a static trip count; the runtime
 *     size is a break inside the loop
 *   - every pointer parameter of a kernel (a non-static function named
 *     krnl_*) has a `#pragma HLS INTERFACE m_axi port=<name>` in its body
 *
 * A small tokenizer, not a C parser: comments and literals are blanked,
 * preprocessor lines other than `#pragma HLS INTERFACE` are skipped.  Each
 * finding is one line "file:line: what"; exit 1 if any, 2 on usage/IO.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOK 200000
#define MAX_PRAGMA 512

struct tok {
	char s[64];
	int line;
};

struct pragma {
	char port[64];
	int line, maxi;
};

static struct tok tk[MAX_TOK];
static int ntk;
static struct pragma pr[MAX_PRAGMA];
static int npr;
static int findings;
static const char *fname;

static void report(int line, const char *fmt, const char *a, const char *b)
{
	printf("%s:%d: ", fname, line);
	printf(fmt, a, b);
	putchar('\n');
	findings++;
}

/* A #pragma line: remember INTERFACE port= and whether it is m_axi. */
static void pragma_line(const char *l, int line)
{
	const char *p = strstr(l, "port=");

	if (!strstr(l, "HLS") || !strstr(l, "INTERFACE") || !p || npr >= MAX_PRAGMA)
		return;
	p += 5;
	snprintf(pr[npr].port, sizeof(pr[npr].port), "%.*s", (int)strcspn(p, " \t\r\n"), p);
	pr[npr].line = line;
	pr[npr].maxi = strstr(l, "m_axi") != NULL;
	npr++;
}

static int lex(char *src)
{
	int line = 1, bol = 1;
	char *p = src;

	while (*p) {
		if (*p == '\n') {
			line++;
			bol = 1;
			p++;
			continue;
		}
		if (isspace((unsigned char)*p)) {
			p++;
			continue;
		}
		if (bol && *p == '#') {		/* preprocessor line, with continuations */
			char *e = p;

			while (*e && !(*e == '\n' && e[-1] != '\\'))
				e++;
			char save = *e;
			*e = 0;
			if (!strncmp(p + 1 + strspn(p + 1, " \t"), "pragma", 6))
				pragma_line(p, line);
			for (char *q = p; q < e; q++)
				line += *q == '\n';
			*e = save;
			p = e;
			continue;
		}
		bol = 0;
		if (p[0] == '/' && p[1] == '*') {
			char *e = strstr(p + 2, "*/");

			for (char *q = p; *q && (!e || q < e); q++)
				line += *q == '\n';
			p = e ? e + 2 : p + strlen(p);
			continue;
		}
		if (p[0] == '/' && p[1] == '/') {
			p += strcspn(p, "\n");
			continue;
		}
		if (ntk >= MAX_TOK)
			return -1;
		struct tok *t = &tk[ntk++];
		size_t n = 1;

		t->line = line;
		if (*p == '"' || *p == '\'') {	/* literal: one opaque token */
			char q = *p;

			while (p[n] && p[n] != q)
				n += p[n] == '\\' && p[n + 1] ? 2 : 1;
			snprintf(t->s, sizeof(t->s), "%c%c", q, q);
			p += p[n] ? n + 1 : n;
			continue;
		}
		if (isalnum((unsigned char)*p) || *p == '_') {
			while (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '.')
				n++;
		} else if (strchr("<>=!&|+-*/", *p) && p[1] &&
			   (p[1] == '=' || (p[1] == *p && strchr("<>&|+-", *p)) ||
			    (*p == '-' && p[1] == '>'))) {
			n = 2;
		}
		snprintf(t->s, sizeof(t->s), "%.*s", (int)(n < 63 ? n : 63), p);
		p += n;
	}
	return 0;
}

static int is(int i, const char *s)
{
	return i >= 0 && i < ntk && !strcmp(tk[i].s, s);
}

static int ident(int i)
{
	return i >= 0 && i < ntk && (isalpha((unsigned char)tk[i].s[0]) || tk[i].s[0] == '_');
}

/* Index of the token closing the bracket at i, or ntk. */
static int close_of(int i)
{
	const char *o = tk[i].s, *c = is(i, "(") ? ")" : is(i, "{") ? "}" : "]";
	int d = 0;

	for (int j = i; j < ntk; j++) {
		if (!strcmp(tk[j].s, o))
			d++;
		else if (!strcmp(tk[j].s, c) && --d == 0)
			return j;
	}
	return ntk;
}

/* Numbers, UPPER_CASE macros and arithmetic only. */
static int static_bound(int a, int b)
{
	if (a >= b)
		return 0;
	for (int i = a; i < b; i++) {
		const char *s = tk[i].s;

		if (isdigit((unsigned char)s[0]))
			continue;
		if ((strchr("*/%+-()", s[0]) && s[1] == 0) || !strcmp(s, "<<") || !strcmp(s, ">>"))
			continue;
		if (ident(i)) {
			for (const char *q = s; *q; q++)
				if (islower((unsigned char)*q))
					return 0;
			continue;
		}
		return 0;
	}
	return 1;
}

static void check_for(int i, const char *fn)
{
	int open = i + 1, end = close_of(open), s1 = -1, s2 = -1, d = 0;

	for (int j = open; j < end; j++) {
		if (is(j, "("))
			d++;
		else if (is(j, ")"))
			d--;
		else if (is(j, ";") && d == 1 && s1 < 0)
			s1 = j;
		else if (is(j, ";") && d == 1)
			s2 = j;
	}
	if (s1 < 0 || s2 < 0) {
		report(tk[i].line, "%s: for loop without three clauses%s", fn, "");
		return;
	}
	/* cond: EXPR < BOUND  or  EXPR <= BOUND (i < N, j + 1 < N) */
	int lt = -1;

	for (int j = s1 + 1; j < s2 && lt < 0; j++)
		if (is(j, "<") || is(j, "<="))
			lt = j;
	if (lt < 0 || lt == s1 + 1 || !static_bound(lt + 1, s2))
		report(tk[i].line, "%s: for loop bound is not a compile-time constant "
		       "(want i < KRNL_MAX_*, then break at the runtime size)%s", fn, "");
}

/* Pointer parameters of a kernel must each have an m_axi INTERFACE pragma. */
static void check_ports(int po, int pc, int body_lo, int body_hi, const char *fn)
{
	int start = po + 1;

	for (int j = po + 1; j <= pc; j++) {
		if (!is(j, ",") && j != pc)
			continue;
		int star = 0, name = -1;

		for (int k = start; k < j; k++) {
			star |= is(k, "*");
			if (ident(k))
				name = k;
		}
		start = j + 1;
		if (!star || name < 0)
			continue;
		int ok = 0;

		for (int p = 0; p < npr; p++)
			if (!strcmp(pr[p].port, tk[name].s) && pr[p].maxi &&
			    pr[p].line >= body_lo && pr[p].line <= body_hi)
				ok = 1;
		if (!ok)
			report(tk[name].line, "%s: pointer argument '%s' has no "
			       "#pragma HLS INTERFACE m_axi port", fn, tk[name].s);
	}
}

static void check_function(int name, int po, int pc, int bo, int bc, int is_static)
{
	const char *fn = tk[name].s;

	for (int i = bo + 1; i < bc; i++) {
		if (ident(i) && is(i + 1, "(")) {
			if (!strcmp(tk[i].s, "malloc") || !strcmp(tk[i].s, "calloc") ||
			    !strcmp(tk[i].s, "realloc") || !strcmp(tk[i].s, "free"))
				report(tk[i].line, "%s: dynamic memory (%s)", fn, tk[i].s);
			else if (!strcmp(tk[i].s, fn))
				report(tk[i].line, "%s: recursion%s", fn, "");
		}
		if (is(i, "while") || is(i, "do"))
			report(tk[i].line, "%s: %s loop (no static trip count)", fn, tk[i].s);
		if (is(i, "for") && is(i + 1, "("))
			check_for(i, fn);
	}
	if (!is_static && !strncmp(fn, "krnl_", 5))
		check_ports(po, pc, tk[bo].line, tk[bc].line, fn);
}

static void check_file(void)
{
	int stmt = 0;	/* first token of the current top-level declaration */

	/* function pointers anywhere: ( * name ) ( */
	for (int i = 0; i + 4 < ntk; i++)
		if (is(i, "(") && is(i + 1, "*") && ident(i + 2) && is(i + 3, ")") && is(i + 4, "("))
			report(tk[i].line, "function pointer '%s'%s", tk[i + 2].s, "");
	for (int i = 0; i < ntk; i++) {
		if (is(i, ";")) {
			stmt = i + 1;
			continue;
		}
		if (is(i, "{")) {	/* a body or an initializer at file scope */
			int c = close_of(i);

			if (is(i - 1, ")")) {
				int d = 0, po = i - 1;

				for (; po >= 0; po--) {
					if (is(po, ")"))
						d++;
					else if (is(po, "(") && --d == 0)
						break;
				}
				if (ident(po - 1)) {
					int st = 0;

					for (int k = stmt; k < po; k++)
						st |= is(k, "static");
					check_function(po - 1, po, i - 1, i, c, st);
				}
			}
			i = c;
			stmt = c + 1;
		}
	}
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s file.c...\n", argv[0]);
		return 2;
	}
	for (int a = 1; a < argc; a++) {
		FILE *f = fopen(argv[a], "rb");
		char *src;
		long n;

		if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
		    !(src = calloc(1, (size_t)n + 1)) || fread(src, 1, (size_t)n, f) != (size_t)n) {
			fprintf(stderr, "hls_lint: %s: cannot read\n", argv[a]);
			return 2;
		}
		fclose(f);
		fname = argv[a];
		ntk = npr = 0;
		if (lex(src)) {
			fprintf(stderr, "hls_lint: %s: too many tokens\n", argv[a]);
			return 2;
		}
		check_file();
		free(src);
	}
	return findings ? 1 : 0;
}
