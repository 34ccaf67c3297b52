/* hls_lint — reject C that Vitis HLS cannot synthesize, before v++ does.
 *
 * usage: hls_lint file.c|file.h...
 *
 * Rules (DESIGN.md, hls_kernels/krnl_common.h, hls_kernels/krnl_mem.h):
 *   - no malloc, calloc, realloc or free
 *   - no recursion (a function that calls itself)
 *   - no function pointers
 *   - no while or do loops, and every for loop has a trip count Vitis can
 *     see: either its condition is `EXPR < BOUND` or `EXPR <= BOUND` where
 *     BOUND is built only from numbers, UPPER_CASE macros (KRNL_MAX_*) and
 *     arithmetic (the runtime size is then a break inside the loop), or its
 *     body opens, before any nested loop, with
 *     `#pragma HLS loop_tripcount max=N`, N a number or UPPER_CASE macro
 *     expression (a runtime bound with a declared maximum)
 *   - no loop-carried float accumulation under PIPELINE II=1: in a loop
 *     with `#pragma HLS PIPELINE` (II=1, the default) directly in its body,
 *     no `s += ...`, `s -= ...`, `s = s + ...` or `s = s - ...` on a scalar
 *     float/double s declared outside that loop; elements of an array of
 *     partial sums (acc[r][b % 8] += ...) and integers are fine
 *   - every pointer parameter of a kernel (a non-static function named
 *     krnl_*) has a `#pragma HLS INTERFACE m_axi port=<name>` in its body;
 *     each m_axi port names a bundle= and no two ports share one
 *   - a kernel reaches HBM only through the accessor of krnl_mem.h: its
 *     m_axi ports are passed to calls (krnl_rd(w, i), krnl_rd_f32(x, w,
 *     off, n), w + off), never dereferenced (P[...], *P, P->...)
 *   - no double precision: neither the keyword double nor the double libm
 *     functions (sqrt, exp, pow, ...; use sqrtf, expf, powf)
 *
 * Code between `#ifndef __SYNTHESIS__` (or `#if !defined(__SYNTHESIS__)`)
 * and its #elif/#else/#endif is C-simulation only and is not linted; neither
 * is the #elif/#else part of `#ifdef __SYNTHESIS__`.  Other conditionals are
 * linted in all their branches.  Headers are linted like sources; static
 * (inline) functions are helpers, not kernels.
 *
 * A small tokenizer, not a C parser: comments and literals are blanked,
 * preprocessor lines other than `#pragma HLS` and the conditionals are
 * skipped.  Each finding is one line "file:line: what"; exit 1 if any, 2 on
 * usage/IO.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_TOK 200000
#define MAX_PRAGMA 4096
#define MAX_COND 64
#define MAX_LOOP 4096
#define MAX_DECL 4096

struct tok {
	char s[64];
	int line;
};

/* A `#pragma HLS` line, standing before token tok. */
struct pragma {
	char text[256];	/* what follows "HLS", continuations joined */
	int line, tok;
};

/* A for loop of the function being checked; bo..bc its braces, or -1. */
struct loop {
	int kw, bo, bc, pipe;
};

/* A scalar float/double of the function being checked: its name is token
 * tok, in scope up to token end. */
struct decl {
	int tok, end;
};

static struct tok tk[MAX_TOK];
static int ntk;
static struct pragma pr[MAX_PRAGMA];
static int npr;
static struct loop lp[MAX_LOOP];
static int nlp;
static struct decl dl[MAX_DECL];
static int ndl;
/* #if nesting: kind 1 holds only in C-sim, 2 only in synthesis, 0 neither */
static int cond_kind[MAX_COND], cond_else[MAX_COND], ncond;
static int findings;
static const char *fname;

/* libm functions of double precision (the float ones end in f). */
static const char *const dbl_fn[] = {
	"acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil",
	"copysign", "cos", "cosh", "erf", "erfc", "exp", "exp2", "expm1", "fabs",
	"fdim", "floor", "fma", "fmax", "fmin", "fmod", "frexp", "hypot", "ilogb",
	"ldexp", "lgamma", "llrint", "llround", "log", "log10", "log1p", "log2",
	"logb", "lrint", "lround", "modf", "nan", "nearbyint", "nextafter",
	"nexttoward", "pow", "remainder", "remquo", "rint", "round", "scalbln",
	"scalbn", "sin", "sinh", "sqrt", "tan", "tanh", "tgamma", "trunc", NULL
};

__attribute__((format(printf, 2, 3)))
static void report(int line, const char *fmt, ...)
{
	va_list ap;

	printf("%s:%d: ", fname, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	findings++;
}

/* ---- pragmas ------------------------------------------------------------- */

static int word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_';
}

/* Where the whole word w (any case) starts in s at or after from, or NULL. */
static const char *find_word(const char *s, const char *from, const char *w)
{
	size_t n = strlen(w);

	for (const char *p = from; *p; p++)
		if ((p == s || !word_char(p[-1])) && !strncasecmp(p, w, n) && !word_char(p[n]))
			return p;
	return NULL;
}

/* The value of key=VALUE in a pragma (key in any case), up to the next
 * `word=` or the end; 0 if the key is not there. */
static int pr_val(const char *s, const char *key, char *out, size_t n)
{
	for (const char *p = find_word(s, s, key); p; p = find_word(s, p + 1, key)) {
		const char *v = p + strlen(key), *e;

		v += strspn(v, " ");
		if (*v != '=' || v[1] == '=')
			continue;
		v += 1 + strspn(v + 1, " ");
		for (e = v; *e; e++) {
			const char *w = e + strspn(e, " ");

			if (*e != ' ' || !word_char(*w))
				continue;
			while (word_char(*w))
				w++;
			w += strspn(w, " ");
			if (*w == '=' && w[1] != '=')
				break;
		}
		while (e > v && e[-1] == ' ')
			e--;
		snprintf(out, n, "%.*s", (int)(e - v), v);
		return 1;
	}
	return 0;
}

/* Is the first word of pragma i (after HLS) w? */
static int pr_is(int i, const char *w)
{
	const char *s = pr[i].text + strspn(pr[i].text, " ");

	return find_word(s, s, w) == s;
}

static int pr_maxi(int i)
{
	return pr_is(i, "INTERFACE") && find_word(pr[i].text, pr[i].text, "m_axi");
}

/* One word of a value (port=, bundle=); 0 if the key is not there. */
static int pr_name(int i, const char *key, char *out, size_t n)
{
	if (!pr_val(pr[i].text, key, out, n))
		return 0;
	out[strcspn(out, " ")] = 0;
	return 1;
}

/* PIPELINE at II=1: the pragma's default, or II=1 written out. */
static int pr_pipe1(int i)
{
	char v[64];

	if (!pr_is(i, "PIPELINE") || find_word(pr[i].text, pr[i].text, "off"))
		return 0;
	return !pr_val(pr[i].text, "II", v, sizeof(v)) || (v[0] == '1' && !word_char(v[1]));
}

/* Numbers, UPPER_CASE macros and arithmetic only (a loop_tripcount max=). */
static int const_text(const char *v)
{
	int any = 0;

	for (const char *p = v; *p;) {
		if (isdigit((unsigned char)*p)) {	/* 16, 16u, 0x10 */
			while (word_char(*p))
				p++;
			any = 1;
		} else if (word_char(*p)) {
			for (; word_char(*p); p++)
				if (islower((unsigned char)*p))
					return 0;
			any = 1;
		} else if (strchr(" */%+-()<>", *p)) {
			p++;
		} else {
			return 0;
		}
	}
	return any;
}

/* A #pragma line (l: what follows "pragma"): keep it if it is HLS. */
static void pragma_line(const char *l, int line)
{
	const char *p = l + strspn(l, " ");

	if (strncasecmp(p, "HLS", 3) || word_char(p[3]) || npr >= MAX_PRAGMA)
		return;
	snprintf(pr[npr].text, sizeof(pr[npr].text), "%s", p + 3);
	pr[npr].line = line;
	pr[npr].tok = ntk;
	npr++;
}

/* ---- the tokenizer -------------------------------------------------------- */

/* Inside C-simulation-only code? */
static int cond_skip(void)
{
	for (int i = 0; i < ncond && i < MAX_COND; i++)
		if ((cond_kind[i] == 1 && !cond_else[i]) || (cond_kind[i] == 2 && cond_else[i]))
			return 1;
	return 0;
}

/* What an #if, #ifdef or #ifndef with argument a says about __SYNTHESIS__. */
static int cond_kind_of(const char *d, const char *a)
{
	char s[128];
	size_t n = 0;

	for (; *a && n + 1 < sizeof(s); a++)
		if (*a != ' ')
			s[n++] = *a;
	s[n] = 0;
	if (!strcmp(d, "ifndef"))
		return !strcmp(s, "__SYNTHESIS__") ? 1 : 0;
	if (!strcmp(d, "ifdef"))
		return !strcmp(s, "__SYNTHESIS__") ? 2 : 0;
	if (!strcmp(s, "!defined(__SYNTHESIS__)") || !strcmp(s, "!defined__SYNTHESIS__"))
		return 1;
	if (!strcmp(s, "defined(__SYNTHESIS__)") || !strcmp(s, "defined__SYNTHESIS__"))
		return 2;
	return 0;
}

/* A preprocessor line b..e (after the '#'): conditionals and pragmas. */
static void directive(const char *b, const char *e, int line)
{
	char l[1024], d[16], *a, *c;
	size_t n = 0;

	for (; b < e && n + 1 < sizeof(l); b++)
		l[n++] = strchr("\\\n\r\t", *b) ? ' ' : *b;
	l[n] = 0;
	if ((c = strstr(l, "//")))
		*c = 0;
	if ((c = strstr(l, "/*")))
		*c = 0;
	a = l + strspn(l, " ");
	n = 0;
	while (word_char(*a) && n + 1 < sizeof(d))
		d[n++] = *a++;
	d[n] = 0;
	if (!strcmp(d, "if") || !strcmp(d, "ifdef") || !strcmp(d, "ifndef")) {
		if (ncond < MAX_COND) {
			cond_kind[ncond] = cond_kind_of(d, a);
			cond_else[ncond] = 0;
		}
		ncond++;
	} else if (!strcmp(d, "elif") || !strcmp(d, "else") || !strcmp(d, "elifdef") ||
		   !strcmp(d, "elifndef")) {
		if (ncond > 0 && ncond <= MAX_COND)
			cond_else[ncond - 1] = 1;
	} else if (!strcmp(d, "endif")) {
		if (ncond > 0)
			ncond--;
	} else if (!strcmp(d, "pragma") && !cond_skip()) {
		pragma_line(a, line);
	}
}

static int lex(char *src)
{
	int line = 1, bol = 1;
	char *p = src;

	ncond = 0;
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
			directive(p + 1, e, line);
			for (char *q = p; q < e; q++)
				line += *q == '\n';
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
		size_t n = 1;
		char lit = 0;

		if (*p == '"' || *p == '\'') {	/* literal: one opaque token */
			lit = *p;
			while (p[n] && p[n] != lit && p[n] != '\n')
				n += p[n] == '\\' && p[n + 1] ? 2 : 1;
			if (p[n] == lit)
				n++;
		} else if (word_char(*p)) {
			while (word_char(p[n]) || p[n] == '.')
				n++;
		} else if (strchr("<>=!&|+-*/", *p) && p[1] &&
			   (p[1] == '=' || (p[1] == *p && strchr("<>&|+-", *p)) ||
			    (*p == '-' && p[1] == '>'))) {
			n = 2;
		}
		if (!cond_skip()) {		/* C-sim only code makes no tokens */
			if (ntk >= MAX_TOK)
				return -1;
			struct tok *t = &tk[ntk++];

			t->line = line;
			if (lit)
				snprintf(t->s, sizeof(t->s), "%c%c", lit, lit);
			else
				snprintf(t->s, sizeof(t->s), "%.*s", (int)(n < 63 ? n : 63), p);
		}
		p += n;
	}
	return 0;
}

/* ---- token helpers -------------------------------------------------------- */

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

/* The closing brace of the innermost block around token j (lo: the function's
 * opening brace; hi: its closing one). */
static int block_end(int j, int lo, int hi)
{
	int d = 0;

	for (int k = j - 1; k > lo; k--) {
		if (is(k, "}"))
			d++;
		else if (is(k, "{") && d-- == 0)
			return close_of(k);
	}
	return hi;
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

/* ---- loops ---------------------------------------------------------------- */

/* Does the braced body bo..bc open, before any nested loop, with a
 * loop_tripcount?  1 yes, 0 no, -1 one that is wrong (reported). */
static int tripcount(int bo, int bc, const char *fn)
{
	int lim = bc;
	char v[256];

	for (int j = bo + 1; j < bc; j++)
		if (is(j, "for") || is(j, "while") || is(j, "do")) {
			lim = j;
			break;
		}
	for (int p = 0; p < npr; p++) {
		if (pr[p].tok <= bo || pr[p].tok > lim || !pr_is(p, "loop_tripcount"))
			continue;
		if (!pr_val(pr[p].text, "max", v, sizeof(v))) {
			report(pr[p].line, "%s: loop_tripcount has no max=", fn);
			return -1;
		}
		if (!const_text(v)) {
			report(pr[p].line, "%s: loop_tripcount max=%s is not a number or "
			       "UPPER_CASE macro expression", fn, v);
			return -1;
		}
		return 1;
	}
	return 0;
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
		report(tk[i].line, "%s: for loop without three clauses", fn);
		return;
	}
	if (s2 == s1 + 1) {
		report(tk[i].line, "%s: for loop without a condition (no trip count)", fn);
		return;
	}
	/* cond: EXPR < BOUND  or  EXPR <= BOUND (i < N, j + 1 < N) */
	int lt = -1;

	for (int j = s1 + 1; j < s2 && lt < 0; j++)
		if (is(j, "<") || is(j, "<="))
			lt = j;
	if (lt > s1 + 1 && static_bound(lt + 1, s2))
		return;
	/* a runtime bound: the body must declare its maximum */
	int t = is(end + 1, "{") ? tripcount(end + 1, close_of(end + 1), fn) : 0;

	if (t == 0)
		report(tk[i].line, "%s: for loop bound is not a compile-time constant and the "
		       "loop has no loop_tripcount (want i < KRNL_MAX_* and a break at the "
		       "runtime size, or #pragma HLS loop_tripcount max=N in its body)", fn);
}

/* The for loops of the body bo..bc, and which are pipelined at II=1 by a
 * pragma directly in their body (not in a nested loop's). */
static void find_loops(int bo, int bc)
{
	nlp = 0;
	for (int i = bo + 1; i < bc && nlp < MAX_LOOP; i++) {
		if (!is(i, "for") || !is(i + 1, "("))
			continue;
		int h = close_of(i + 1);
		struct loop *l = &lp[nlp++];

		l->kw = i;
		l->bo = is(h + 1, "{") ? h + 1 : -1;
		l->bc = l->bo >= 0 ? close_of(l->bo) : -1;
		l->pipe = 0;
	}
	for (int p = 0; p < npr; p++) {
		int in = -1;

		if (pr[p].tok <= bo || pr[p].tok > bc || !pr_pipe1(p))
			continue;
		for (int l = 0; l < nlp; l++)
			if (lp[l].bo >= 0 && lp[l].bo < pr[p].tok && pr[p].tok <= lp[l].bc &&
			    (in < 0 || lp[l].bo > lp[in].bo))
				in = l;
		if (in >= 0)
			lp[in].pipe = 1;
	}
}

/* Scalar float/double declarators after the type keyword at i (parameters:
 * one; in the body: up to the ';'). */
static void find_decls_at(int i, int bo, int bc)
{
	int j = i + 1, param = i < bo;

	for (;;) {
		int ptr = 0, d = 0;

		while (is(j, "*") || is(j, "const") || is(j, "volatile") || is(j, "restrict"))
			ptr |= is(j++, "*");
		if (!ident(j) || is(j + 1, "("))	/* a cast, sizeof, a prototype */
			return;
		if (!ptr && !is(j + 1, "[") && ndl < MAX_DECL) {
			dl[ndl].tok = j;
			dl[ndl].end = param ? bc : block_end(j, bo, bc);
			ndl++;
		}
		for (j++; j < bc; j++) {	/* to the next declarator */
			if (is(j, "(") || is(j, "[") || is(j, "{"))
				d++;
			else if ((is(j, ")") || is(j, "]") || is(j, "}")) && d-- == 0)
				return;
			else if (is(j, ";") && d == 0)
				return;
			else if (is(j, ",") && d == 0)
				break;
		}
		if (param || j >= bc)
			return;
		j++;
	}
}

/* s += ..., s -= ..., s = s + ..., s = s - ... on a float scalar from outside
 * a loop pipelined at II=1 around it. */
static void check_accumulate(int po, int bo, int bc, const char *fn)
{
	find_loops(bo, bc);
	ndl = 0;
	for (int i = po + 1; i < bc; i++)
		if (is(i, "float") || is(i, "double"))
			find_decls_at(i, bo, bc);
	for (int i = bo + 1; i < bc; i++) {
		int in = -1, d = -1;

		if (!ident(i) || is(i - 1, ".") || is(i - 1, "->"))
			continue;
		if (!is(i + 1, "+=") && !is(i + 1, "-=") &&
		    !(is(i + 1, "=") && is(i + 2, tk[i].s) && (is(i + 3, "+") || is(i + 3, "-"))))
			continue;
		for (int l = 0; l < nlp; l++)
			if (lp[l].pipe && lp[l].bo < i && i < lp[l].bc &&
			    (in < 0 || lp[l].bo > lp[in].bo))
				in = l;
		if (in < 0)
			continue;
		for (int k = 0; k < ndl; k++)	/* the declaration in scope */
			if (dl[k].tok < i && i < dl[k].end && !strcmp(tk[dl[k].tok].s, tk[i].s) &&
			    (d < 0 || dl[k].tok > dl[d].tok))
				d = k;
		if (d >= 0 && dl[d].tok < lp[in].bo)
			report(tk[i].line, "%s: loop-carried float accumulation '%s' under "
			       "PIPELINE II=1 (use partial sums / an adder tree)", fn, tk[i].s);
	}
}

/* ---- kernels -------------------------------------------------------------- */

/* Pointer parameters of a kernel must each have an m_axi INTERFACE pragma. */
static void check_ports(int po, int pc, int bo, int bc, const char *fn)
{
	int start = po + 1;
	char port[64];

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
			if (pr[p].tok > bo && pr[p].tok <= bc && pr_maxi(p) &&
			    pr_name(p, "port", port, sizeof(port)) && !strcmp(port, tk[name].s))
				ok = 1;
		if (!ok)
			report(tk[name].line, "%s: pointer argument '%s' has no "
			       "#pragma HLS INTERFACE m_axi port", fn, tk[name].s);
	}
}

/* Each m_axi port in its own bundle. */
static void check_bundles(int bo, int bc, const char *fn)
{
	char pa[64], ba[64], pb[64], bb[64];

	for (int a = 0; a < npr; a++) {
		if (pr[a].tok <= bo || pr[a].tok > bc || !pr_maxi(a) ||
		    !pr_name(a, "port", pa, sizeof(pa)))
			continue;
		if (!pr_name(a, "bundle", ba, sizeof(ba)) || !ba[0]) {
			report(pr[a].line, "%s: m_axi port '%s' has no bundle=", fn, pa);
			continue;
		}
		for (int b = 0; b < a; b++) {
			if (pr[b].tok <= bo || pr[b].tok > bc || !pr_maxi(b) ||
			    !pr_name(b, "port", pb, sizeof(pb)) ||
			    !pr_name(b, "bundle", bb, sizeof(bb)) || strcmp(ba, bb))
				continue;
			report(pr[a].line, "%s: m_axi ports '%s' and '%s' share bundle '%s' "
			       "(one bundle per concurrent stream)", fn, pb, pa, ba);
			break;
		}
	}
}

/* Is token i an m_axi port of the kernel whose body is bo..bc? */
static int is_port(int i, int bo, int bc)
{
	char port[64];

	for (int p = 0; p < npr; p++)
		if (pr[p].tok > bo && pr[p].tok <= bc && pr_maxi(p) &&
		    pr_name(p, "port", port, sizeof(port)) && !strcmp(port, tk[i].s))
			return 1;
	return 0;
}

/* m_axi ports go to calls (the accessor), never P[...], *P or P->. */
static void check_access(int bo, int bc, const char *fn)
{
	for (int i = bo + 1; i < bc; i++) {
		if (!ident(i) || is(i - 1, ".") || is(i - 1, "->") || !is_port(i, bo, bc))
			continue;
		int deref = is(i - 1, "*"), k = i - 1 - deref;	/* k: the token before */

		if ((deref || is(i + 1, "[") || is(i + 1, "->")) &&
		    !is(k, "sizeof") && !(is(k, "(") && is(k - 1, "sizeof")))
			report(tk[i].line, "%s: m_axi port '%s' accessed outside the accessor "
			       "(krnl_rd/krnl_wr in krnl_mem.h)", fn, tk[i].s);
	}
}

/* Is the while at i the end of a do { ... } (reported at the do)? */
static int do_while(int i)
{
	int d = 0;

	if (!is(i - 1, "}"))
		return 0;
	for (int k = i - 1; k >= 0; k--) {
		if (is(k, "}"))
			d++;
		else if (is(k, "{") && --d == 0)
			return is(k - 1, "do");
	}
	return 0;
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
				report(tk[i].line, "%s: recursion", fn);
		}
		if ((is(i, "while") && !do_while(i)) || is(i, "do"))
			report(tk[i].line, "%s: %s loop (no static trip count)", fn, tk[i].s);
		if (is(i, "for") && is(i + 1, "("))
			check_for(i, fn);
	}
	check_accumulate(po, bo, bc, fn);
	if (!is_static && !strncmp(fn, "krnl_", 5)) {
		check_ports(po, pc, bo, bc, fn);
		check_bundles(bo, bc, fn);
		check_access(bo, bc, fn);
	}
}

/* The keyword double and calls of double libm functions, anywhere. */
static void check_double(void)
{
	for (int i = 0; i < ntk; i++) {
		if (is(i, "double")) {
			report(tk[i].line, "double precision 'double' (use float)");
			continue;
		}
		if (!ident(i) || !is(i + 1, "(") || is(i - 1, ".") || is(i - 1, "->"))
			continue;
		for (int k = 0; dbl_fn[k]; k++)
			if (!strcmp(tk[i].s, dbl_fn[k]))
				report(tk[i].line, "double precision '%s' (use float)", tk[i].s);
	}
}

static void check_file(void)
{
	int stmt = 0;	/* first token of the current top-level declaration */

	/* function pointers anywhere: ( * name ) ( */
	for (int i = 0; i + 4 < ntk; i++)
		if (is(i, "(") && is(i + 1, "*") && ident(i + 2) && is(i + 3, ")") &&
		    is(i + 4, "("))
			report(tk[i].line, "function pointer '%s'", tk[i + 2].s);
	check_double();
	for (int i = 0; i < ntk; i++) {
		if (is(i, ";") || is(i, "}")) {
			stmt = i + 1;
			continue;
		}
		if (!is(i, "{"))
			continue;
		if (is(i - 1, "\"\"") && is(i - 2, "extern")) {	/* extern "C" { */
			stmt = i + 1;
			continue;
		}
		/* a body or an initializer at file scope */
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

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s file.c|file.h...\n", argv[0]);
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
