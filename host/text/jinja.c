/* jinja.c — a Jinja2 subset for chat templates (see jinja.h).
 *
 * Three stages: the lexer turns the source into text pieces and tag tokens,
 * applying Jinja's whitespace rules as it goes (trim_blocks, lstrip_blocks,
 * "-" and "+" markers); a recursive-descent parser builds statement and
 * expression nodes with Jinja's precedence; the renderer walks them over
 * values built from the JSON variables.  Everything a render allocates lives
 * in one arena freed at its end.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "text/jinja.h"

#define MAX_DEPTH	64		/* nesting of expressions and statements */
#define MAX_OUT		(16u << 20)	/* rendered bytes */
#define MAX_STEPS	(4u << 20)	/* loop iterations and node visits */
#define MAX_ARENA	(256u << 20)	/* bytes one render may allocate */

/* ---- arena ---- */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char mem[];
};

struct arena {
	struct chunk *head;
	size_t total;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (!a->head || a->head->used + n > a->head->cap) {
		size_t cap = n > 65536 ? n : 65536;
		struct chunk *c;

		if (a->total + cap > MAX_ARENA)
			return NULL;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
		a->total += cap;
	}
	void *p = a->head->mem + a->head->used;
	a->head->used += n;
	memset(p, 0, n);
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
	a->total = 0;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = 0;
	}
	return p;
}

/* ---- tokens ---- */

enum tk {
	TK_TEXT, TK_VAR, TK_BLOCK, TK_END,	/* text, "{{", "{%", "}}" or "%}" */
	TK_NAME, TK_STR, TK_INT, TK_FLOAT, TK_OP, TK_EOF,
};

struct tok {
	enum tk t;
	const char *s;		/* text / name / string (unescaped) / op */
	size_t n;
	long long i;
	double f;
	int line;
};

/* ---- values ---- */

enum vt { V_UNDEF, V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_LIST, V_DICT, V_NS };

struct val;
struct list {
	struct val *v;
	size_t n, cap;
	int tuple;		/* printed (a, b) */
};
struct dict {
	const char **k;
	size_t *kn;
	struct val *v;
	size_t n, cap;
};

struct val {
	enum vt t;
	union {
		int b;
		long long i;
		double f;
		struct {
			const char *s;
			size_t n;
		} str;
		struct list *l;
		struct dict *d;	/* V_DICT and V_NS */
	};
	const char *uname;	/* V_UNDEF: the name, for messages */
};

/* ---- AST ---- */

enum ek {
	E_LIT, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_BIN, E_NEG,
	E_NOT, E_AND, E_OR, E_COND, E_LIST, E_DICT, E_IN,
};

struct expr {
	enum ek k;
	int line;
	struct val lit;
	const char *name;	/* NAME, ATTR, FILTER, TEST, BIN op */
	struct expr *a, *b, *c;
	struct expr **args;	/* CALL, FILTER, TEST, LIST, DICT (keys then values) */
	const char **kw;	/* keyword names (NULL: positional) */
	size_t nargs;
	int neg;		/* TEST: is not; IN: not in */
	int tuple;		/* LIST: written (a, b) */
};

enum sk { S_TEXT, S_OUT, S_IF, S_FOR, S_SET, S_BREAK, S_CONTINUE };

struct stmt {
	enum sk k;
	int line;
	const char *text;
	size_t n;
	struct expr *e;		/* OUT, SET value, FOR iterable, IF: unused */
	/* IF: conds[i] -> bodies[i]; else body at bodies[nconds] */
	struct expr **conds;
	struct stmt ***bodies;
	size_t *nbody;
	size_t nconds;
	/* FOR */
	const char *var[2];
	size_t nvar;
	struct expr *filt;	/* for x in y if filt */
	struct stmt **body, **ebody;
	size_t nb, neb;
	/* SET: name, or ns.attr */
	const char *target, *attr;
};

struct nc_jinja {
	const char *src;
	struct arena a;
	struct stmt **body;
	size_t n;
};

/* ---- errors ---- */

struct perr {
	char *buf;
	size_t len;
	int set;
};

static void seterr(struct perr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(struct perr *e, const char *fmt, ...)
{
	va_list ap;

	if (e->set || !e->buf || !e->len)
		return;
	va_start(ap, fmt);
	vsnprintf(e->buf, e->len, fmt, ap);
	va_end(ap);
	e->set = 1;
}

/* ---- lexer ---- */

struct lexer {
	const char *src;
	size_t len, pos;
	int line;
	struct arena *a;
	struct tok *t;
	size_t n, cap;
	struct perr *err;
};

static struct tok *push(struct lexer *L, enum tk t)
{
	if (L->n == L->cap) {
		size_t cap = L->cap ? 2 * L->cap : 256;
		struct tok *nt = realloc(L->t, cap * sizeof(*nt));

		if (!nt) {
			seterr(L->err, "out of memory");
			return NULL;
		}
		L->t = nt;
		L->cap = cap;
	}
	L->t[L->n] = (struct tok){ .t = t, .line = L->line };
	return &L->t[L->n++];
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int count_lines(const char *s, size_t n)
{
	int k = 0;

	for (size_t i = 0; i < n; i++)
		k += s[i] == '\n';
	return k;
}

/* A string literal at L->pos (quote there): unescaped into the arena. */
static int lex_string(struct lexer *L, struct tok *t)
{
	char q = L->src[L->pos++];
	size_t cap = 64, n = 0;
	char *out = malloc(cap);

	if (!out)
		return seterr(L->err, "out of memory"), -1;
	while (L->pos < L->len && L->src[L->pos] != q) {
		char c = L->src[L->pos++];

		if (c == '\\' && L->pos < L->len) {
			char e = L->src[L->pos++];

			switch (e) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'r': c = '\r'; break;
			case '\\': c = '\\'; break;
			case '\'': c = '\''; break;
			case '"': c = '"'; break;
			case '0': c = 0; break;
			case '\n': continue;
			default:	/* unknown escapes stay as written, as in Python */
				if (n + 2 >= cap) {
					char *nb = realloc(out, cap *= 2);
					if (!nb)
						return free(out), seterr(L->err, "out of memory"), -1;
					out = nb;
				}
				out[n++] = '\\';
				c = e;
			}
		}
		if (c == '\n')
			L->line++;
		if (n + 2 >= cap) {
			char *nb = realloc(out, cap *= 2);
			if (!nb)
				return free(out), seterr(L->err, "out of memory"), -1;
			out = nb;
		}
		out[n++] = c;
	}
	if (L->pos >= L->len) {
		free(out);
		return seterr(L->err, "line %d: unterminated string", L->line), -1;
	}
	L->pos++;
	t->s = arena_strndup(L->a, out, n);
	t->n = n;
	free(out);
	return t->s ? 0 : (seterr(L->err, "out of memory"), -1);
}

/* Tokens of a tag's inside up to its end; *rstrip / *notrim from a "-" or
 * "+" before the closing delimiter. */
static int lex_tag(struct lexer *L, int block, int *rstrip, int *notrim)
{
	static const char *const ops2[] = { "//", "**", "==", "!=", "<=", ">=" };
	const char *close = block ? "%}" : "}}";

	for (;;) {
		while (L->pos < L->len && is_ws(L->src[L->pos])) {
			L->line += L->src[L->pos] == '\n';
			L->pos++;
		}
		if (L->pos >= L->len)
			return seterr(L->err, "line %d: tag not closed", L->line), -1;
		const char *p = L->src + L->pos;
		size_t left = L->len - L->pos;

		if ((p[0] == '-' || p[0] == '+') && left >= 3 && !memcmp(p + 1, close, 2)) {
			*rstrip = p[0] == '-';
			*notrim = p[0] == '+';
			L->pos += 3;
			return push(L, TK_END) ? 0 : -1;
		}
		if (left >= 2 && !memcmp(p, close, 2)) {
			L->pos += 2;
			return push(L, TK_END) ? 0 : -1;
		}
		struct tok *t = push(L, TK_OP);
		if (!t)
			return -1;
		if (*p == '\'' || *p == '"') {
			t->t = TK_STR;
			if (lex_string(L, t))
				return -1;
			continue;
		}
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_') {
			size_t n = 1;

			while (n < left && ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') ||
					    (p[n] >= '0' && p[n] <= '9') || p[n] == '_'))
				n++;
			t->t = TK_NAME;
			t->s = p;
			t->n = n;
			L->pos += n;
			continue;
		}
		if (*p >= '0' && *p <= '9') {
			size_t n = 0;
			int fl = 0;

			while (n < left && p[n] >= '0' && p[n] <= '9')
				n++;
			if (n + 1 < left && p[n] == '.' && p[n + 1] >= '0' && p[n + 1] <= '9') {
				fl = 1;
				n++;
				while (n < left && p[n] >= '0' && p[n] <= '9')
					n++;
			}
			if (n < left && (p[n] == 'e' || p[n] == 'E')) {
				size_t m = n + 1;

				if (m < left && (p[m] == '+' || p[m] == '-'))
					m++;
				if (m < left && p[m] >= '0' && p[m] <= '9') {
					fl = 1;
					n = m;
					while (n < left && p[n] >= '0' && p[n] <= '9')
						n++;
				}
			}
			char num[64];
			if (n >= sizeof(num))
				return seterr(L->err, "line %d: number too long", L->line), -1;
			memcpy(num, p, n);
			num[n] = 0;
			if (fl) {
				t->t = TK_FLOAT;
				t->f = strtod(num, NULL);
			} else {
				errno = 0;
				t->t = TK_INT;
				t->i = strtoll(num, NULL, 10);
				if (errno)
					return seterr(L->err, "line %d: integer out of range", L->line), -1;
			}
			L->pos += n;
			continue;
		}
		t->s = p;
		t->n = 1;
		for (size_t k = 0; k < sizeof(ops2) / sizeof(ops2[0]); k++)
			if (left >= 2 && !memcmp(p, ops2[k], 2))
				t->n = 2;
		if (t->n == 1 && !strchr("+-*/%~<>()[]{},.:|=", *p))
			return seterr(L->err, "line %d: unexpected character '%c' in a tag", L->line,
				      *p), -1;
		L->pos += t->n;
	}
}

static int lex(struct lexer *L)
{
	int lstrip_next = 0, trim_next = 0;

	while (L->pos <= L->len) {
		size_t i = L->pos;
		const char *s = L->src;

		while (i + 1 < L->len && !(s[i] == '{' && (s[i + 1] == '{' || s[i + 1] == '%' ||
							     s[i + 1] == '#')))
			i++;
		if (i + 1 >= L->len)
			i = L->len;
		/* the text before the tag, with the whitespace rules applied */
		size_t a = L->pos, b = i;
		if (trim_next && a < b && s[a] == '\n')
			a++;
		if (lstrip_next)
			while (a < b && is_ws(s[a]))
				a++;
		int kind = i < L->len ? s[i + 1] : 0;	/* '{', '%', '#' or 0 at the end */
		char mark = i + 2 < L->len ? s[i + 2] : 0;
		if (kind && mark == '-') {
			while (b > a && is_ws(s[b - 1]))
				b--;
		} else if ((kind == '%' || kind == '#') && mark != '+') {
			/* lstrip_blocks: spaces and tabs from the line's start */
			size_t k = b;

			while (k > a && (s[k - 1] == ' ' || s[k - 1] == '\t'))
				k--;
			if ((k > a && s[k - 1] == '\n') || (k == a && (a == 0 || s[a - 1] == '\n')))
				b = k;
		}
		if (b > a) {
			struct tok *t = push(L, TK_TEXT);
			if (!t)
				return -1;
			t->s = s + a;
			t->n = b - a;
		}
		L->line += count_lines(s + L->pos, i - L->pos);
		if (!kind) {
			push(L, TK_EOF);
			return L->err->set ? -1 : 0;
		}
		L->pos = i + 2 + (mark == '-' || mark == '+');
		int rstrip = 0, notrim = 0;
		if (kind == '#') {
			const char *e = NULL;

			for (size_t k = L->pos; k + 1 < L->len; k++)
				if (s[k] == '#' && s[k + 1] == '}') {
					e = s + k;
					break;
				}
			if (!e)
				return seterr(L->err, "line %d: comment not closed", L->line), -1;
			size_t end = (size_t)(e - s);
			rstrip = end > L->pos && s[end - 1] == '-';
			notrim = end > L->pos && s[end - 1] == '+';
			L->line += count_lines(s + L->pos, end - L->pos);
			L->pos = end + 2;
			lstrip_next = rstrip;
			trim_next = !rstrip && !notrim;
			continue;
		}
		if (!push(L, kind == '%' ? TK_BLOCK : TK_VAR))
			return -1;
		if (lex_tag(L, kind == '%', &rstrip, &notrim))
			return -1;
		lstrip_next = rstrip;
		trim_next = kind == '%' && !rstrip && !notrim;
	}
	push(L, TK_EOF);
	return L->err->set ? -1 : 0;
}

/* ---- parser ---- */

struct parser {
	struct tok *t;
	size_t n, i;
	struct arena *a;
	struct perr *err;
	int depth;
};

static struct tok *cur(struct parser *P)
{
	return &P->t[P->i < P->n ? P->i : P->n - 1];
}

static int is_op(struct parser *P, const char *op)
{
	struct tok *t = cur(P);

	return t->t == TK_OP && t->n == strlen(op) && !memcmp(t->s, op, t->n);
}

static int is_name(struct parser *P, const char *nm)
{
	struct tok *t = cur(P);

	return t->t == TK_NAME && t->n == strlen(nm) && !memcmp(t->s, nm, t->n);
}

static int expect_op(struct parser *P, const char *op)
{
	if (!is_op(P, op)) {
		seterr(P->err, "line %d: expected '%s'", cur(P)->line, op);
		return -1;
	}
	P->i++;
	return 0;
}

static const char *take_name(struct parser *P)
{
	struct tok *t = cur(P);

	if (t->t != TK_NAME) {
		seterr(P->err, "line %d: expected a name", t->line);
		return NULL;
	}
	P->i++;
	return arena_strndup(P->a, t->s, t->n);
}

static struct expr *node(struct parser *P, enum ek k)
{
	struct expr *e = arena_alloc(P->a, sizeof(*e));

	if (!e)
		seterr(P->err, "out of memory");
	else {
		e->k = k;
		e->line = cur(P)->line;
	}
	return e;
}

static struct expr *parse_expr(struct parser *P);

/* (args...) with keyword arguments; the '(' is current. */
static int parse_args(struct parser *P, struct expr *e)
{
	struct expr *args[32];
	const char *kw[32];
	size_t n = 0;

	if (expect_op(P, "("))
		return -1;
	while (!is_op(P, ")")) {
		if (n == 32)
			return seterr(P->err, "line %d: too many arguments", cur(P)->line), -1;
		kw[n] = NULL;
		if (cur(P)->t == TK_NAME && P->i + 1 < P->n && P->t[P->i + 1].t == TK_OP &&
		    P->t[P->i + 1].n == 1 && P->t[P->i + 1].s[0] == '=') {
			kw[n] = take_name(P);
			P->i++;
		}
		args[n] = parse_expr(P);
		if (!args[n])
			return -1;
		n++;
		if (!is_op(P, ","))
			break;
		P->i++;
	}
	if (expect_op(P, ")"))
		return -1;
	e->args = arena_alloc(P->a, (n ? n : 1) * sizeof(*e->args));
	e->kw = arena_alloc(P->a, (n ? n : 1) * sizeof(*e->kw));
	if (!e->args || !e->kw)
		return seterr(P->err, "out of memory"), -1;
	memcpy(e->args, args, n * sizeof(*args));
	memcpy(e->kw, kw, n * sizeof(*kw));
	e->nargs = n;
	return 0;
}

static struct expr *parse_primary(struct parser *P)
{
	struct tok *t = cur(P);
	struct expr *e;

	if (t->t == TK_STR) {
		/* adjacent literals concatenate */
		size_t n = 0, j = P->i;
		while (j < P->n && P->t[j].t == TK_STR)
			n += P->t[j++].n;
		char *s = arena_alloc(P->a, n + 1);
		if (!s)
			return seterr(P->err, "out of memory"), NULL;
		n = 0;
		while (P->i < j) {
			memcpy(s + n, P->t[P->i].s, P->t[P->i].n);
			n += P->t[P->i++].n;
		}
		e = node(P, E_LIT);
		if (e)
			e->lit = (struct val){ .t = V_STR, .str = { s, n } };
		return e;
	}
	if (t->t == TK_INT || t->t == TK_FLOAT) {
		e = node(P, E_LIT);
		if (e)
			e->lit = t->t == TK_INT ? (struct val){ .t = V_INT, .i = t->i } :
						  (struct val){ .t = V_FLOAT, .f = t->f };
		P->i++;
		return e;
	}
	if (t->t == TK_NAME) {
		static const struct { const char *n; struct val v; } consts[] = {
			{ "true", { .t = V_BOOL, .b = 1 } }, { "True", { .t = V_BOOL, .b = 1 } },
			{ "false", { .t = V_BOOL, .b = 0 } }, { "False", { .t = V_BOOL, .b = 0 } },
			{ "none", { .t = V_NONE } }, { "None", { .t = V_NONE } },
		};
		for (size_t k = 0; k < sizeof(consts) / sizeof(consts[0]); k++)
			if (is_name(P, consts[k].n)) {
				e = node(P, E_LIT);
				if (e)
					e->lit = consts[k].v;
				P->i++;
				return e;
			}
		e = node(P, E_NAME);
		if (e && !(e->name = take_name(P)))
			return NULL;
		return e;
	}
	if (is_op(P, "(")) {
		struct expr *items[64];
		size_t n = 0;

		P->i++;
		if (is_op(P, ")")) {	/* () */
			P->i++;
			e = node(P, E_LIST);
			if (e)
				e->tuple = 1;
			return e;
		}
		e = parse_expr(P);
		if (!e)
			return NULL;
		if (!is_op(P, ","))
			return expect_op(P, ")") ? NULL : e;
		items[n++] = e;	/* a tuple */
		while (is_op(P, ",")) {
			P->i++;
			if (is_op(P, ")"))
				break;
			if (n == 64)
				return seterr(P->err, "line %d: tuple too long", cur(P)->line), NULL;
			if (!(items[n++] = parse_expr(P)))
				return NULL;
		}
		if (expect_op(P, ")") || !(e = node(P, E_LIST)))
			return NULL;
		e->tuple = 1;
		e->args = arena_alloc(P->a, n * sizeof(*e->args));
		if (!e->args)
			return seterr(P->err, "out of memory"), NULL;
		memcpy(e->args, items, n * sizeof(*items));
		e->nargs = n;
		return e;
	}
	if (is_op(P, "[") || is_op(P, "{")) {
		int dict = is_op(P, "{");
		struct expr *items[256];
		size_t n = 0;

		e = node(P, dict ? E_DICT : E_LIST);
		if (!e)
			return NULL;
		P->i++;
		while (!is_op(P, dict ? "}" : "]")) {
			if (n + 2 > 256)
				return seterr(P->err, "line %d: literal too long", e->line), NULL;
			if (!(items[n++] = parse_expr(P)))
				return NULL;
			if (dict && (expect_op(P, ":") || !(items[n++] = parse_expr(P))))
				return NULL;
			if (!is_op(P, ","))
				break;
			P->i++;
		}
		if (expect_op(P, dict ? "}" : "]"))
			return NULL;
		e->args = arena_alloc(P->a, (n ? n : 1) * sizeof(*e->args));
		if (!e->args)
			return seterr(P->err, "out of memory"), NULL;
		memcpy(e->args, items, n * sizeof(*items));
		e->nargs = n;
		return e;
	}
	seterr(P->err, "line %d: unexpected '%.*s'", t->line, (int)(t->n < 20 ? t->n : 20),
	       t->t == TK_END ? "end of tag" : t->s ? t->s : "?");
	return NULL;
}

static struct expr *parse_postfix(struct parser *P, struct expr *e)
{
	while (e) {
		if (is_op(P, ".")) {
			struct expr *x = node(P, E_ATTR);

			P->i++;
			if (!x)
				return NULL;
			x->a = e;
			if (cur(P)->t == TK_INT) {	/* a.0 */
				x->k = E_ITEM;
				x->b = node(P, E_LIT);
				if (!x->b)
					return NULL;
				x->b->lit = (struct val){ .t = V_INT, .i = cur(P)->i };
				P->i++;
			} else if (!(x->name = take_name(P))) {
				return NULL;
			}
			e = x;
		} else if (is_op(P, "[")) {
			struct expr *x = node(P, E_ITEM), *parts[3] = { 0 };
			int colon = 0, k = 0;

			P->i++;
			if (!x)
				return NULL;
			while (!is_op(P, "]")) {
				if (is_op(P, ":")) {
					if (++colon > 2)
						return seterr(P->err, "line %d: bad slice", x->line), NULL;
					k++;
					P->i++;
					continue;
				}
				if (parts[k])
					return seterr(P->err, "line %d: bad subscript", x->line), NULL;
				if (!(parts[k] = parse_expr(P)))
					return NULL;
			}
			P->i++;
			x->a = e;
			if (colon) {
				x->k = E_SLICE;
				x->args = arena_alloc(P->a, 3 * sizeof(*x->args));
				if (!x->args)
					return seterr(P->err, "out of memory"), NULL;
				memcpy(x->args, parts, sizeof(parts));
				x->nargs = 3;
			} else if (!parts[0]) {
				return seterr(P->err, "line %d: empty subscript", x->line), NULL;
			} else {
				x->b = parts[0];
			}
			e = x;
		} else if (is_op(P, "(")) {
			struct expr *x = node(P, E_CALL);

			if (!x)
				return NULL;
			x->a = e;
			if (parse_args(P, x))
				return NULL;
			e = x;
		} else {
			break;
		}
	}
	return e;
}

static struct expr *parse_unary(struct parser *P);

/* Filters and tests after a unary expression. */
static struct expr *parse_filters(struct parser *P, struct expr *e)
{
	while (e) {
		if (is_op(P, "|")) {
			struct expr *x = node(P, E_FILTER);

			P->i++;
			if (!x || !(x->name = take_name(P)))
				return NULL;
			x->a = e;
			if (is_op(P, "(") && parse_args(P, x))
				return NULL;
			e = x;
		} else if (is_name(P, "is")) {
			struct expr *x = node(P, E_TEST);

			P->i++;
			if (!x)
				return NULL;
			if (is_name(P, "not")) {
				x->neg = 1;
				P->i++;
			}
			if (!(x->name = take_name(P)))
				return NULL;
			x->a = e;
			if (is_op(P, "(")) {
				if (parse_args(P, x))
					return NULL;
			} else if (cur(P)->t == TK_STR || cur(P)->t == TK_INT || cur(P)->t == TK_FLOAT ||
				   (cur(P)->t == TK_NAME && !is_name(P, "and") && !is_name(P, "or") &&
				    !is_name(P, "else") && !is_name(P, "if") && !is_name(P, "in") &&
				    !is_name(P, "is") && !is_name(P, "not"))) {
				/* x is divisibleby 3, x is sameas y */
				x->args = arena_alloc(P->a, sizeof(*x->args));
				x->kw = arena_alloc(P->a, sizeof(*x->kw));
				if (!x->args || !x->kw || !(x->args[0] = parse_unary(P)))
					return NULL;
				x->nargs = 1;
			}
			e = x;
		} else {
			break;
		}
	}
	return e;
}

static struct expr *parse_unary(struct parser *P)
{
	struct expr *e;

	if (++P->depth > MAX_DEPTH) {
		seterr(P->err, "line %d: expression nested too deeply", cur(P)->line);
		return NULL;
	}
	if (is_op(P, "-") || is_op(P, "+")) {
		int neg = is_op(P, "-");

		P->i++;
		e = node(P, E_NEG);
		if (e && !(e->a = parse_unary(P)))
			e = NULL;
		if (e && !neg)
			e = e->a;
	} else {
		e = parse_filters(P, parse_postfix(P, parse_primary(P)));
	}
	P->depth--;
	return e;
}

static struct expr *binop(struct parser *P, const char *op, struct expr *a, struct expr *b)
{
	struct expr *x;

	if (!a || !b)
		return NULL;
	x = node(P, E_BIN);
	if (x) {
		x->name = op;
		x->a = a;
		x->b = b;
	}
	return x;
}

static struct expr *parse_pow(struct parser *P)
{
	struct expr *e = parse_unary(P);

	while (e && is_op(P, "**")) {
		P->i++;
		e = binop(P, "**", e, parse_unary(P));
	}
	return e;
}

static struct expr *parse_math2(struct parser *P)
{
	struct expr *e = parse_pow(P);

	while (e) {
		const char *op = is_op(P, "*") ? "*" : is_op(P, "/") ? "/" : is_op(P, "//") ? "//" :
				 is_op(P, "%") ? "%" : NULL;
		if (!op)
			break;
		P->i++;
		e = binop(P, op, e, parse_pow(P));
	}
	return e;
}

static struct expr *parse_concat(struct parser *P)
{
	struct expr *e = parse_math2(P);

	while (e && is_op(P, "~")) {
		P->i++;
		e = binop(P, "~", e, parse_math2(P));
	}
	return e;
}

static struct expr *parse_math1(struct parser *P)
{
	struct expr *e = parse_concat(P);

	while (e) {
		const char *op = is_op(P, "+") ? "+" : is_op(P, "-") ? "-" : NULL;
		if (!op)
			break;
		P->i++;
		e = binop(P, op, e, parse_concat(P));
	}
	return e;
}

static struct expr *parse_compare(struct parser *P)
{
	struct expr *e = parse_math1(P);

	while (e) {
		static const char *const ops[] = { "==", "!=", "<=", ">=", "<", ">" };
		const char *op = NULL;

		for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]) && !op; k++)
			if (is_op(P, ops[k]))
				op = ops[k];
		if (op) {
			P->i++;
			e = binop(P, op, e, parse_math1(P));
			continue;
		}
		int neg = 0;
		if (is_name(P, "not") && P->i + 1 < P->n && P->t[P->i + 1].t == TK_NAME &&
		    P->t[P->i + 1].n == 2 && !memcmp(P->t[P->i + 1].s, "in", 2)) {
			neg = 1;
			P->i++;
		}
		if (!is_name(P, "in"))
			break;
		P->i++;
		struct expr *x = node(P, E_IN);
		if (!x)
			return NULL;
		x->neg = neg;
		x->a = e;
		if (!(x->b = parse_math1(P)))
			return NULL;
		e = x;
	}
	return e;
}

static struct expr *parse_not(struct parser *P)
{
	if (is_name(P, "not")) {
		struct expr *x = node(P, E_NOT);

		P->i++;
		if (!x || ++P->depth > MAX_DEPTH ||
		    !(x->a = parse_not(P)))
			return seterr(P->err, "line %d: bad 'not'", cur(P)->line), NULL;
		P->depth--;
		return x;
	}
	return parse_compare(P);
}

static struct expr *parse_and(struct parser *P)
{
	struct expr *e = parse_not(P);

	while (e && is_name(P, "and")) {
		struct expr *x = node(P, E_AND);

		P->i++;
		if (!x || !(x->b = parse_not(P)))
			return NULL;
		x->a = e;
		e = x;
	}
	return e;
}

static struct expr *parse_or(struct parser *P)
{
	struct expr *e = parse_and(P);

	while (e && is_name(P, "or")) {
		struct expr *x = node(P, E_OR);

		P->i++;
		if (!x || !(x->b = parse_and(P)))
			return NULL;
		x->a = e;
		e = x;
	}
	return e;
}

static struct expr *parse_expr(struct parser *P)
{
	struct expr *e;

	if (++P->depth > MAX_DEPTH) {
		seterr(P->err, "line %d: expression nested too deeply", cur(P)->line);
		return NULL;
	}
	e = parse_or(P);
	while (e && is_name(P, "if")) {	/* a if c else b */
		struct expr *x = node(P, E_COND);

		P->i++;
		if (!x || !(x->b = parse_or(P)))
			return NULL;
		x->a = e;
		if (is_name(P, "else")) {
			P->i++;
			if (!(x->c = parse_or(P)))
				return NULL;
		}
		e = x;
	}
	P->depth--;
	return e;
}

/* Statements until one of the end words; *stop is the one found. */
static int parse_body(struct parser *P, const char *const *ends, struct stmt ***out, size_t *n,
		      const char **stop);

static struct stmt *snode(struct parser *P, enum sk k)
{
	struct stmt *s = arena_alloc(P->a, sizeof(*s));

	if (!s)
		seterr(P->err, "out of memory");
	else {
		s->k = k;
		s->line = cur(P)->line;
	}
	return s;
}

static int end_tag(struct parser *P)
{
	if (cur(P)->t != TK_END) {
		seterr(P->err, "line %d: expected the end of the tag", cur(P)->line);
		return -1;
	}
	P->i++;
	return 0;
}

static struct stmt *parse_if(struct parser *P)
{
	static const char *const ends[] = { "elif", "else", "endif", NULL };
	struct stmt *s = snode(P, S_IF);
	struct expr *conds[64];
	struct stmt **bodies[65];
	size_t nb[65], k = 0;
	const char *stop = "elif";

	if (!s)
		return NULL;
	while (!strcmp(stop, "elif")) {
		if (k == 64)
			return seterr(P->err, "line %d: too many elif", s->line), NULL;
		if (!(conds[k] = parse_expr(P)) || end_tag(P) ||
		    parse_body(P, ends, &bodies[k], &nb[k], &stop))
			return NULL;
		k++;
	}
	bodies[k] = NULL;
	nb[k] = 0;
	if (!strcmp(stop, "else")) {
		static const char *const e2[] = { "endif", NULL };
		if (end_tag(P) || parse_body(P, e2, &bodies[k], &nb[k], &stop))
			return NULL;
	}
	if (end_tag(P))
		return NULL;
	s->conds = arena_alloc(P->a, k * sizeof(*s->conds));
	s->bodies = arena_alloc(P->a, (k + 1) * sizeof(*s->bodies));
	s->nbody = arena_alloc(P->a, (k + 1) * sizeof(*s->nbody));
	if (!s->conds || !s->bodies || !s->nbody)
		return seterr(P->err, "out of memory"), NULL;
	memcpy(s->conds, conds, k * sizeof(*conds));
	memcpy(s->bodies, bodies, (k + 1) * sizeof(*bodies));
	memcpy(s->nbody, nb, (k + 1) * sizeof(*nb));
	s->nconds = k;
	return s;
}

static struct stmt *parse_for(struct parser *P)
{
	static const char *const ends[] = { "else", "endfor", NULL };
	struct stmt *s = snode(P, S_FOR);
	const char *stop;

	if (!s || !(s->var[0] = take_name(P)))
		return NULL;
	s->nvar = 1;
	if (is_op(P, ",")) {
		P->i++;
		if (!(s->var[1] = take_name(P)))
			return NULL;
		s->nvar = 2;
	}
	if (!is_name(P, "in"))
		return seterr(P->err, "line %d: expected 'in'", s->line), NULL;
	P->i++;
	/* the iterable: an or-expression, so a trailing "if" filters */
	if (!(s->e = parse_or(P)))
		return NULL;
	if (is_name(P, "if")) {
		P->i++;
		if (!(s->filt = parse_expr(P)))
			return NULL;
	}
	if (is_name(P, "recursive"))
		return seterr(P->err, "line %d: recursive loops are not supported", s->line), NULL;
	if (end_tag(P) || parse_body(P, ends, &s->body, &s->nb, &stop))
		return NULL;
	if (!strcmp(stop, "else")) {
		static const char *const e2[] = { "endfor", NULL };
		if (end_tag(P) || parse_body(P, e2, &s->ebody, &s->neb, &stop))
			return NULL;
	}
	return end_tag(P) ? NULL : s;
}

static struct stmt *parse_set(struct parser *P)
{
	struct stmt *s = snode(P, S_SET);

	if (!s || !(s->target = take_name(P)))
		return NULL;
	if (is_op(P, ".")) {
		P->i++;
		if (!(s->attr = take_name(P)))
			return NULL;
	}
	if (!is_op(P, "="))
		return seterr(P->err, "line %d: block assignments ({%% set x %%}...) are not"
			      " supported", s->line), NULL;
	P->i++;
	if (!(s->e = parse_expr(P)))
		return NULL;
	if (is_op(P, ",")) {	/* a, b = ... */
		seterr(P->err, "line %d: tuple assignment is not supported", s->line);
		return NULL;
	}
	return end_tag(P) ? NULL : s;
}

static int parse_body(struct parser *P, const char *const *ends, struct stmt ***out, size_t *n,
		      const char **stop)
{
	struct stmt **v = NULL;
	size_t cnt = 0, cap = 0;

	*stop = NULL;
	if (++P->depth > MAX_DEPTH) {
		seterr(P->err, "line %d: blocks nested too deeply", cur(P)->line);
		return -1;
	}
	for (;;) {
		struct tok *t = cur(P);
		struct stmt *s = NULL;

		if (t->t == TK_EOF) {
			if (ends) {
				size_t k = 0;

				while (ends[k + 1])
					k++;
				seterr(P->err, "line %d: missing {%% %s %%}", t->line, ends[k]);
				goto fail;
			}
			break;
		}
		if (t->t == TK_TEXT) {
			if (!(s = snode(P, S_TEXT)))
				goto fail;
			s->text = t->s;
			s->n = t->n;
			P->i++;
		} else if (t->t == TK_VAR) {
			P->i++;
			if (!(s = snode(P, S_OUT)) || !(s->e = parse_expr(P)) || end_tag(P))
				goto fail;
		} else if (t->t == TK_BLOCK) {
			P->i++;
			struct tok *w = cur(P);
			int known = 0;

			for (size_t k = 0; ends && ends[k]; k++)
				if (is_name(P, ends[k])) {
					*stop = ends[k];
					P->i++;
					goto done;
				}
			if (w->t != TK_NAME) {
				seterr(P->err, "line %d: expected a statement", w->line);
				goto fail;
			}
			if (is_name(P, "if")) {
				P->i++;
				s = parse_if(P);
				known = 1;
			} else if (is_name(P, "for")) {
				P->i++;
				s = parse_for(P);
				known = 1;
			} else if (is_name(P, "set")) {
				P->i++;
				s = parse_set(P);
				known = 1;
			} else if (is_name(P, "break") || is_name(P, "continue")) {
				s = snode(P, is_name(P, "break") ? S_BREAK : S_CONTINUE);
				P->i++;
				known = 1;
				if (s && end_tag(P))
					s = NULL;
			}
			if (!known)
				seterr(P->err, "line %d: statement '%.*s' is not supported", w->line,
				       (int)(w->n < 32 ? w->n : 32), w->s);
			if (!s)
				goto fail;
		} else {
			seterr(P->err, "line %d: unexpected token", t->line);
			goto fail;
		}
		if (cnt == cap) {
			size_t nc = cap ? 2 * cap : 16;
			struct stmt **nv = arena_alloc(P->a, nc * sizeof(*nv));

			if (!nv) {
				seterr(P->err, "out of memory");
				goto fail;
			}
			if (cnt)
				memcpy(nv, v, cnt * sizeof(*v));
			v = nv;
			cap = nc;
		}
		v[cnt++] = s;
	}
done:
	P->depth--;
	*out = v;
	*n = cnt;
	return 0;
fail:
	return -1;
}

struct nc_jinja *nc_jinja_compile(const char *src, size_t len, char *err, size_t errlen)
{
	struct nc_jinja *t = calloc(1, sizeof(*t));
	struct perr pe = { err, errlen, 0 };
	struct lexer L = { .src = src, .len = len, .line = 1, .err = &pe };
	const char *stop;

	if (err && errlen)
		err[0] = 0;
	if (!t) {
		seterr(&pe, "out of memory");
		return NULL;
	}
	L.a = &t->a;
	if (!src || memchr(src, 0, len)) {
		seterr(&pe, "template contains a NUL byte");
		goto fail;
	}
	/* as Jinja: newlines normalised to \n, one trailing newline dropped */
	char *norm = arena_alloc(&t->a, len + 1);
	size_t nn = 0;
	if (!norm) {
		seterr(&pe, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\r') {
			norm[nn++] = '\n';
			if (i + 1 < len && src[i + 1] == '\n')
				i++;
		} else {
			norm[nn++] = src[i];
		}
	}
	if (nn && norm[nn - 1] == '\n')
		nn--;
	norm[nn] = 0;
	L.src = norm;
	L.len = nn;
	t->src = norm;
	if (lex(&L))
		goto fail;
	struct parser P = { .t = L.t, .n = L.n, .a = &t->a, .err = &pe };
	if (parse_body(&P, NULL, &t->body, &t->n, &stop))
		goto fail;
	free(L.t);
	return t;
fail:
	free(L.t);
	nc_jinja_free(t);
	return NULL;
}

const char *nc_jinja_source(const struct nc_jinja *t)
{
	return t && t->src ? t->src : "";
}

void nc_jinja_free(struct nc_jinja *t)
{
	if (!t)
		return;
	arena_free(&t->a);
	free(t);
}

/* ---- rendering ---- */

struct frame {
	struct frame *up;
	struct dict vars;
};

struct rctx {
	struct arena a;
	struct perr *err;
	char *out;
	size_t n, cap;
	struct frame *top;
	unsigned long steps;
	int depth;
	int brk, cont;		/* loop control pending */
};

#define FAIL(R, ...) (seterr((R)->err, __VA_ARGS__), -1)

static int emit(struct rctx *R, const char *s, size_t n)
{
	if (R->n + n + 1 > MAX_OUT)
		return FAIL(R, "output larger than %u bytes", MAX_OUT);
	if (R->n + n + 1 > R->cap) {
		size_t cap = R->cap ? R->cap : 1024;
		char *p;

		while (cap < R->n + n + 1)
			cap *= 2;
		p = realloc(R->out, cap);
		if (!p)
			return FAIL(R, "out of memory");
		R->out = p;
		R->cap = cap;
	}
	memcpy(R->out + R->n, s, n);
	R->n += n;
	R->out[R->n] = 0;
	return 0;
}

/* A scratch string builder in the arena. */
struct sb {
	char *p;
	size_t n, cap;
	int oom;
};

static void sb_put(struct rctx *R, struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		char *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		if (cap > MAX_OUT || !(p = arena_alloc(&R->a, cap))) {
			b->oom = 1;
			return;
		}
		if (b->n)
			memcpy(p, b->p, b->n);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static void sb_puts(struct rctx *R, struct sb *b, const char *s)
{
	sb_put(R, b, s, strlen(s));
}

static struct val mkstr(const char *s, size_t n)
{
	return (struct val){ .t = V_STR, .str = { s ? s : "", s ? n : 0 } };
}

static struct val undef(const char *name)
{
	return (struct val){ .t = V_UNDEF, .uname = name };
}

static int dict_put(struct rctx *R, struct dict *d, const char *k, size_t kn, struct val v)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->kn[i] == kn && !memcmp(d->k[i], k, kn)) {
			d->v[i] = v;
			return 0;
		}
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 8;
		const char **nk = arena_alloc(&R->a, cap * sizeof(*nk));
		size_t *nkn = arena_alloc(&R->a, cap * sizeof(*nkn));
		struct val *nv = arena_alloc(&R->a, cap * sizeof(*nv));

		if (!nk || !nkn || !nv)
			return FAIL(R, "out of memory");
		if (d->n) {
			memcpy(nk, d->k, d->n * sizeof(*nk));
			memcpy(nkn, d->kn, d->n * sizeof(*nkn));
			memcpy(nv, d->v, d->n * sizeof(*nv));
		}
		d->k = nk;
		d->kn = nkn;
		d->v = nv;
		d->cap = cap;
	}
	d->k[d->n] = k;
	d->kn[d->n] = kn;
	d->v[d->n++] = v;
	return 0;
}

static const struct val *dict_get(const struct dict *d, const char *k, size_t kn)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->kn[i] == kn && !memcmp(d->k[i], k, kn))
			return &d->v[i];
	return NULL;
}

static int list_push(struct rctx *R, struct list *l, struct val v)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct val *nv = arena_alloc(&R->a, cap * sizeof(*nv));

		if (!nv)
			return FAIL(R, "out of memory");
		if (l->n)
			memcpy(nv, l->v, l->n * sizeof(*nv));
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = v;
	return 0;
}

static struct list *newlist(struct rctx *R)
{
	struct list *l = arena_alloc(&R->a, sizeof(*l));

	if (!l)
		seterr(R->err, "out of memory");
	return l;
}

static struct dict *newdict(struct rctx *R)
{
	struct dict *d = arena_alloc(&R->a, sizeof(*d));

	if (!d)
		seterr(R->err, "out of memory");
	return d;
}

/* JSON variables to values. */
static int from_json(struct rctx *R, const cJSON *j, struct val *out, int depth)
{
	if (depth > MAX_DEPTH)
		return FAIL(R, "variables nested too deeply");
	if (cJSON_IsNull(j)) {
		*out = (struct val){ .t = V_NONE };
	} else if (cJSON_IsBool(j)) {
		*out = (struct val){ .t = V_BOOL, .b = cJSON_IsTrue(j) };
	} else if (cJSON_IsNumber(j)) {
		double d = j->valuedouble;

		/* JSON has one number type; an integral value is taken as an int */
		if (d == floor(d) && fabs(d) < 9007199254740992.0)
			*out = (struct val){ .t = V_INT, .i = (long long)d };
		else
			*out = (struct val){ .t = V_FLOAT, .f = d };
	} else if (cJSON_IsString(j)) {
		*out = mkstr(j->valuestring, strlen(j->valuestring));
	} else if (cJSON_IsArray(j)) {
		struct list *l = newlist(R);

		if (!l)
			return -1;
		for (const cJSON *c = j->child; c; c = c->next) {
			struct val v;

			if (from_json(R, c, &v, depth + 1) || list_push(R, l, v))
				return -1;
		}
		*out = (struct val){ .t = V_LIST, .l = l };
	} else if (cJSON_IsObject(j)) {
		struct dict *d = newdict(R);

		if (!d)
			return -1;
		for (const cJSON *c = j->child; c; c = c->next) {
			struct val v;

			if (!c->string)
				continue;
			if (from_json(R, c, &v, depth + 1) ||
			    dict_put(R, d, c->string, strlen(c->string), v))
				return -1;
		}
		*out = (struct val){ .t = V_DICT, .d = d };
	} else {
		*out = (struct val){ .t = V_NONE };
	}
	return 0;
}

static int truthy(const struct val *v)
{
	switch (v->t) {
	case V_UNDEF: case V_NONE: return 0;
	case V_BOOL: return v->b;
	case V_INT: return v->i != 0;
	case V_FLOAT: return v->f != 0.0;
	case V_STR: return v->str.n != 0;
	case V_LIST: return v->l->n != 0;
	case V_DICT: return v->d->n != 0;
	case V_NS: return 1;
	}
	return 0;
}

static const char *tname(const struct val *v)
{
	static const char *const n[] = { "undefined", "None", "bool", "int", "float", "str",
					 "list", "dict", "namespace" };
	return n[v->t];
}

/* Python's repr of a float: the shortest digits that read back the same. */
static void float_repr(double f, char *buf, size_t len)
{
	if (isnan(f)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (isinf(f)) {
		snprintf(buf, len, f > 0 ? "Infinity" : "-Infinity");
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, len, "%.*e", p - 1, f);
		if (strtod(buf, NULL) == f) {
			/* digits and exponent of the shortest form */
			char dig[32];
			int e, nd = 0, neg = buf[0] == '-';
			const char *s = buf + neg;

			for (; *s && *s != 'e'; s++)
				if (*s >= '0' && *s <= '9')
					dig[nd++] = *s;
			dig[nd] = 0;
			e = atoi(s + 1);
			if (e < -4 || e >= 16) {
				/* 1e-05, 1.5e+16 */
				int k = 0;
				k += snprintf(buf + k, len - k, "%s%c", neg ? "-" : "", dig[0]);
				if (nd > 1)
					k += snprintf(buf + k, len - k, ".%s", dig + 1);
				snprintf(buf + k, len - k, "e%c%02d", e < 0 ? '-' : '+', abs(e));
			} else if (e < 0) {
				snprintf(buf, len, "%s0.%0*d%s", neg ? "-" : "", -e - 1, 0, dig);
				if (-e - 1 == 0)	/* %0*d with width 0 printed "0" */
					snprintf(buf, len, "%s0.%s", neg ? "-" : "", dig);
			} else {
				char ip[32], fp[32];
				int ni = e + 1;

				for (int i = 0; i < ni; i++)
					ip[i] = i < nd ? dig[i] : '0';
				ip[ni] = 0;
				if (nd > ni) {
					memcpy(fp, dig + ni, (size_t)(nd - ni));
					fp[nd - ni] = 0;
				} else {
					strcpy(fp, "0");
				}
				snprintf(buf, len, "%s%s.%s", neg ? "-" : "", ip, fp);
			}
			return;
		}
	}
}

static void py_str(struct rctx *R, struct sb *b, const struct val *v, int repr);

static void py_repr_str(struct rctx *R, struct sb *b, const char *s, size_t n)
{
	char q = memchr(s, '\'', n) && !memchr(s, '"', n) ? '"' : '\'';

	sb_put(R, b, &q, 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char e[8];

		if (c == '\\' || c == (unsigned char)q) {
			e[0] = '\\';
			e[1] = (char)c;
			sb_put(R, b, e, 2);
		} else if (c == '\n') {
			sb_puts(R, b, "\\n");
		} else if (c == '\t') {
			sb_puts(R, b, "\\t");
		} else if (c == '\r') {
			sb_puts(R, b, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(e, sizeof(e), "\\x%02x", c);
			sb_puts(R, b, e);
		} else {
			sb_put(R, b, (const char *)&s[i], 1);
		}
	}
	sb_put(R, b, &q, 1);
}

/* str() (repr = 0) or repr() (repr = 1) as Python prints them. */
static void py_str(struct rctx *R, struct sb *b, const struct val *v, int repr)
{
	char buf[64];

	switch (v->t) {
	case V_UNDEF: break;
	case V_NONE: sb_puts(R, b, "None"); break;
	case V_BOOL: sb_puts(R, b, v->b ? "True" : "False"); break;
	case V_INT: snprintf(buf, sizeof(buf), "%lld", v->i); sb_puts(R, b, buf); break;
	case V_FLOAT:
		float_repr(v->f, buf, sizeof(buf));
		sb_puts(R, b, !strcmp(buf, "NaN") ? "nan" : !strcmp(buf, "Infinity") ? "inf" :
			      !strcmp(buf, "-Infinity") ? "-inf" : buf);
		break;
	case V_STR:
		if (repr)
			py_repr_str(R, b, v->str.s, v->str.n);
		else
			sb_put(R, b, v->str.s, v->str.n);
		break;
	case V_LIST:
		sb_puts(R, b, v->l->tuple ? "(" : "[");
		for (size_t i = 0; i < v->l->n; i++) {
			if (i)
				sb_puts(R, b, ", ");
			py_str(R, b, &v->l->v[i], 1);
		}
		sb_puts(R, b, v->l->tuple ? (v->l->n == 1 ? ",)" : ")") : "]");
		break;
	case V_DICT: case V_NS:
		sb_puts(R, b, v->t == V_NS ? "<Namespace {" : "{");
		for (size_t i = 0; i < v->d->n; i++) {
			if (i)
				sb_puts(R, b, ", ");
			py_repr_str(R, b, v->d->k[i], v->d->kn[i]);
			sb_puts(R, b, ": ");
			py_str(R, b, &v->d->v[i], 1);
		}
		sb_puts(R, b, v->t == V_NS ? "}>" : "}");
		break;
	}
}

/* json.dumps(ensure_ascii=False, indent=indent), key order kept. */
static int to_json(struct rctx *R, struct sb *b, const struct val *v, int indent, int level,
		   int depth)
{
	char buf[64];

	if (depth > MAX_DEPTH)
		return FAIL(R, "tojson: value nested too deeply");
	switch (v->t) {
	case V_UNDEF: return FAIL(R, "tojson: '%s' is undefined", v->uname ? v->uname : "value");
	case V_NONE: sb_puts(R, b, "null"); break;
	case V_BOOL: sb_puts(R, b, v->b ? "true" : "false"); break;
	case V_INT: snprintf(buf, sizeof(buf), "%lld", v->i); sb_puts(R, b, buf); break;
	case V_FLOAT: float_repr(v->f, buf, sizeof(buf)); sb_puts(R, b, buf); break;
	case V_STR:
		sb_puts(R, b, "\"");
		for (size_t i = 0; i < v->str.n; i++) {
			unsigned char c = (unsigned char)v->str.s[i];

			if (c == '"')
				sb_puts(R, b, "\\\"");
			else if (c == '\\')
				sb_puts(R, b, "\\\\");
			else if (c == '\n')
				sb_puts(R, b, "\\n");
			else if (c == '\r')
				sb_puts(R, b, "\\r");
			else if (c == '\t')
				sb_puts(R, b, "\\t");
			else if (c == '\b')
				sb_puts(R, b, "\\b");
			else if (c == '\f')
				sb_puts(R, b, "\\f");
			else if (c < 0x20) {
				snprintf(buf, sizeof(buf), "\\u%04x", c);
				sb_puts(R, b, buf);
			} else
				sb_put(R, b, (const char *)&v->str.s[i], 1);
		}
		sb_puts(R, b, "\"");
		break;
	case V_LIST: case V_DICT: case V_NS: {
		int dict = v->t != V_LIST;
		size_t n = dict ? v->d->n : v->l->n;

		sb_puts(R, b, dict ? "{" : "[");
		for (size_t i = 0; i < n; i++) {
			if (i)
				sb_puts(R, b, indent >= 0 ? "," : ", ");
			if (indent >= 0) {
				sb_puts(R, b, "\n");
				for (int k = 0; k < indent * (level + 1); k++)
					sb_puts(R, b, " ");
			}
			if (dict) {
				struct val k = mkstr(v->d->k[i], v->d->kn[i]);

				if (to_json(R, b, &k, indent, level + 1, depth + 1))
					return -1;
				sb_puts(R, b, ": ");
			}
			if (to_json(R, b, dict ? &v->d->v[i] : &v->l->v[i], indent, level + 1, depth + 1))
				return -1;
		}
		if (indent >= 0 && n) {
			sb_puts(R, b, "\n");
			for (int k = 0; k < indent * level; k++)
				sb_puts(R, b, " ");
		}
		sb_puts(R, b, dict ? "}" : "]");
		break;
	}
	}
	return b->oom ? FAIL(R, "out of memory") : 0;
}

static int eval(struct rctx *R, const struct expr *e, struct val *out);

static const struct val *lookup(struct rctx *R, const char *name)
{
	for (struct frame *f = R->top; f; f = f->up) {
		const struct val *v = dict_get(&f->vars, name, strlen(name));

		if (v)
			return v;
	}
	return NULL;
}

static int val_eq(const struct val *a, const struct val *b)
{
	if ((a->t == V_INT || a->t == V_FLOAT || a->t == V_BOOL) &&
	    (b->t == V_INT || b->t == V_FLOAT || b->t == V_BOOL)) {
		double x = a->t == V_INT ? (double)a->i : a->t == V_FLOAT ? a->f : a->b;
		double y = b->t == V_INT ? (double)b->i : b->t == V_FLOAT ? b->f : b->b;

		if (a->t == V_INT && b->t == V_INT)
			return a->i == b->i;
		return x == y;
	}
	if (a->t != b->t)
		return 0;
	switch (a->t) {
	case V_UNDEF: case V_NONE: return 1;
	case V_STR: return a->str.n == b->str.n && !memcmp(a->str.s, b->str.s, a->str.n);
	case V_LIST:
		if (a->l->n != b->l->n)
			return 0;
		for (size_t i = 0; i < a->l->n; i++)
			if (!val_eq(&a->l->v[i], &b->l->v[i]))
				return 0;
		return 1;
	case V_DICT:
		if (a->d->n != b->d->n)
			return 0;
		for (size_t i = 0; i < a->d->n; i++) {
			const struct val *o = dict_get(b->d, a->d->k[i], a->d->kn[i]);
			if (!o || !val_eq(&a->d->v[i], o))
				return 0;
		}
		return 1;
	case V_NS: return a->d == b->d;
	default: return 0;
	}
}

static int is_num(const struct val *v)
{
	return v->t == V_INT || v->t == V_FLOAT || v->t == V_BOOL;
}

static double num(const struct val *v)
{
	return v->t == V_INT ? (double)v->i : v->t == V_FLOAT ? v->f : v->b;
}

static int compare(struct rctx *R, const char *op, const struct val *a, const struct val *b,
		   int *res)
{
	int c;

	if (!strcmp(op, "==")) {
		*res = val_eq(a, b);
		return 0;
	}
	if (!strcmp(op, "!=")) {
		*res = !val_eq(a, b);
		return 0;
	}
	if (is_num(a) && is_num(b)) {
		if (a->t == V_INT && b->t == V_INT)
			c = a->i < b->i ? -1 : a->i > b->i;
		else
			c = num(a) < num(b) ? -1 : num(a) > num(b);
	} else if (a->t == V_STR && b->t == V_STR) {
		size_t n = a->str.n < b->str.n ? a->str.n : b->str.n;

		c = memcmp(a->str.s, b->str.s, n);
		if (!c)
			c = a->str.n < b->str.n ? -1 : a->str.n > b->str.n;
	} else {
		return FAIL(R, "cannot compare %s with %s", tname(a), tname(b));
	}
	*res = !strcmp(op, "<") ? c < 0 : !strcmp(op, "<=") ? c <= 0 : !strcmp(op, ">") ? c > 0 : c >= 0;
	return 0;
}

/* Python index semantics: negative from the end; *ok = 0 when out of range. */
static size_t py_index(long long i, size_t n, int *ok)
{
	if (i < 0)
		i += (long long)n;
	*ok = i >= 0 && (size_t)i < n;
	return *ok ? (size_t)i : 0;
}

static int get_attr(struct rctx *R, const struct val *o, const char *k, size_t kn, struct val *out)
{
	if (o->t == V_DICT || o->t == V_NS) {
		const struct val *v = dict_get(o->d, k, kn);

		*out = v ? *v : undef(arena_strndup(&R->a, k, kn));
		return 0;
	}
	if (o->t == V_UNDEF)
		return FAIL(R, "'%s' is undefined", o->uname ? o->uname : "value");
	*out = undef(arena_strndup(&R->a, k, kn));
	return 0;
}

static int get_item(struct rctx *R, const struct val *o, const struct val *k, struct val *out)
{
	int ok;

	if (o->t == V_LIST && (k->t == V_INT || k->t == V_BOOL)) {
		size_t i = py_index(k->t == V_INT ? k->i : k->b, o->l->n, &ok);

		*out = ok ? o->l->v[i] : undef("index");
		return 0;
	}
	if (o->t == V_STR && k->t == V_INT) {
		size_t i = py_index(k->i, o->str.n, &ok);

		*out = ok ? mkstr(o->str.s + i, 1) : undef("index");
		return 0;
	}
	if ((o->t == V_DICT || o->t == V_NS) && k->t == V_STR)
		return get_attr(R, o, k->str.s, k->str.n, out);
	if (o->t == V_UNDEF)
		return FAIL(R, "'%s' is undefined", o->uname ? o->uname : "value");
	*out = undef("item");
	return 0;
}

static int slice(struct rctx *R, const struct val *o, const struct val *p, struct val *out)
{
	long long n, start, stop, step = 1;

	if (o->t != V_LIST && o->t != V_STR)
		return FAIL(R, "cannot slice a %s", tname(o));
	n = o->t == V_LIST ? (long long)o->l->n : (long long)o->str.n;
	for (int k = 0; k < 3; k++)
		if (p[k].t != V_UNDEF && p[k].t != V_NONE && p[k].t != V_INT)
			return FAIL(R, "slice indices must be integers");
	if (p[2].t == V_INT)
		step = p[2].i;
	if (step == 0)
		return FAIL(R, "slice step cannot be zero");
	if (step > 0) {
		start = p[0].t == V_INT ? p[0].i : 0;
		stop = p[1].t == V_INT ? p[1].i : n;
		if (start < 0)
			start = start + n < 0 ? 0 : start + n;
		if (stop < 0)
			stop = stop + n < 0 ? 0 : stop + n;
		start = start > n ? n : start;
		stop = stop > n ? n : stop;
	} else {
		start = p[0].t == V_INT ? p[0].i : n - 1;
		stop = p[1].t == V_INT ? p[1].i : -n - 1;
		if (start < 0)
			start = start + n < -1 ? -1 : start + n;
		else if (start >= n)
			start = n - 1;
		if (stop < 0)
			stop = stop + n < -1 ? -1 : stop + n;
		else if (stop >= n)
			stop = n - 1;
	}
	if (o->t == V_LIST) {
		struct list *l = newlist(R);

		if (!l)
			return -1;
		for (long long i = start; step > 0 ? i < stop : i > stop; i += step)
			if (list_push(R, l, o->l->v[i]))
				return -1;
		*out = (struct val){ .t = V_LIST, .l = l };
	} else {
		struct sb b = { 0 };

		for (long long i = start; step > 0 ? i < stop : i > stop; i += step)
			sb_put(R, &b, o->str.s + i, 1);
		if (b.oom)
			return FAIL(R, "out of memory");
		*out = mkstr(b.p, b.n);
	}
	return 0;
}

static int to_string(struct rctx *R, const struct val *v, struct val *out)
{
	struct sb b = { 0 };

	if (v->t == V_STR) {
		*out = *v;
		return 0;
	}
	py_str(R, &b, v, 0);
	if (b.oom)
		return FAIL(R, "out of memory");
	*out = mkstr(b.p, b.n);
	return 0;
}

/* Python's str.strip family: chars NULL strips whitespace. */
static struct val strip(const struct val *s, const struct val *chars, int left, int right)
{
	const char *p = s->str.s;
	size_t a = 0, b = s->str.n;
	int ws = !chars || chars->t != V_STR;

#define STRIPPABLE(c) (ws ? is_ws(c) : memchr(chars->str.s, (c), chars->str.n) != NULL)
	if (left)
		while (a < b && STRIPPABLE(p[a]))
			a++;
	if (right)
		while (b > a && STRIPPABLE(p[b - 1]))
			b--;
#undef STRIPPABLE
	return mkstr(p + a, b - a);
}

static int arg_str(struct rctx *R, const struct val *args, size_t n, size_t i, const char *fn)
{
	if (i >= n || args[i].t != V_STR)
		return FAIL(R, "%s() wants a string argument", fn);
	return 0;
}

static int call_method(struct rctx *R, const struct val *o, const char *m, const struct val *args,
		       size_t n, struct val *out)
{
	if (o->t == V_STR) {
		const char *s = o->str.s;
		size_t sn = o->str.n;

		if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
			int end = m[0] == 'e', hit = 0;
			const struct val *cand = args;
			size_t nc = 1;

			if (n >= 1 && args[0].t == V_LIST) {
				cand = args[0].l->v;
				nc = args[0].l->n;
			} else if (arg_str(R, args, n, 0, m)) {
				return -1;
			}
			for (size_t i = 0; i < nc && !hit; i++) {
				if (cand[i].t != V_STR)
					return FAIL(R, "%s() wants strings", m);
				size_t pn = cand[i].str.n;
				hit = pn <= sn && !memcmp(end ? s + sn - pn : s, cand[i].str.s, pn);
			}
			*out = (struct val){ .t = V_BOOL, .b = hit };
			return 0;
		}
		if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
			const struct val *ch = n >= 1 && args[0].t != V_NONE ? &args[0] : NULL;

			if (ch && ch->t != V_STR)
				return FAIL(R, "%s() wants a string", m);
			*out = strip(o, ch, m[0] != 'r', m[0] != 'l');
			return 0;
		}
		if (!strcmp(m, "upper") || !strcmp(m, "lower")) {
			char *p = arena_strndup(&R->a, s, sn);

			if (!p)
				return FAIL(R, "out of memory");
			for (size_t i = 0; i < sn; i++)
				if (m[0] == 'u' && p[i] >= 'a' && p[i] <= 'z')
					p[i] = (char)(p[i] - 32);
				else if (m[0] == 'l' && p[i] >= 'A' && p[i] <= 'Z')
					p[i] = (char)(p[i] + 32);
			*out = mkstr(p, sn);
			return 0;
		}
		if (!strcmp(m, "split")) {
			struct list *l = newlist(R);
			long long maxsplit = n >= 2 && args[1].t == V_INT ? args[1].i : -1;

			if (!l)
				return -1;
			if (n >= 1 && args[0].t == V_STR) {
				const char *sep = args[0].str.s;
				size_t pn = args[0].str.n, a = 0;

				if (!pn)
					return FAIL(R, "split(): empty separator");
				for (size_t i = 0; i + pn <= sn && maxsplit != 0;) {
					if (!memcmp(s + i, sep, pn)) {
						if (list_push(R, l, mkstr(s + a, i - a)))
							return -1;
						i += pn;
						a = i;
						maxsplit--;
					} else {
						i++;
					}
				}
				if (list_push(R, l, mkstr(s + a, sn - a)))
					return -1;
			} else {
				size_t i = 0;

				while (i < sn) {
					while (i < sn && is_ws(s[i]))
						i++;
					if (i >= sn)
						break;
					size_t a = i;
					if (maxsplit == 0) {
						size_t b = sn;
						while (b > a && is_ws(s[b - 1]))
							b--;
						if (list_push(R, l, mkstr(s + a, b - a)))
							return -1;
						break;
					}
					while (i < sn && !is_ws(s[i]))
						i++;
					if (list_push(R, l, mkstr(s + a, i - a)))
						return -1;
					maxsplit--;
				}
			}
			*out = (struct val){ .t = V_LIST, .l = l };
			return 0;
		}
		if (!strcmp(m, "replace")) {
			if (arg_str(R, args, n, 0, m) || arg_str(R, args, n, 1, m))
				return -1;
			struct sb b = { 0 };
			size_t pn = args[0].str.n;

			for (size_t i = 0; i < sn;) {
				if (pn && i + pn <= sn && !memcmp(s + i, args[0].str.s, pn)) {
					sb_put(R, &b, args[1].str.s, args[1].str.n);
					i += pn;
				} else {
					sb_put(R, &b, s + i++, 1);
				}
			}
			if (b.oom)
				return FAIL(R, "out of memory");
			*out = mkstr(b.p, b.n);
			return 0;
		}
		if (!strcmp(m, "find") || !strcmp(m, "count")) {
			long long r = m[0] == 'f' ? -1 : 0;

			if (arg_str(R, args, n, 0, m))
				return -1;
			size_t pn = args[0].str.n;
			for (size_t i = 0; i + pn <= sn; i++)
				if (!memcmp(s + i, args[0].str.s, pn)) {
					if (m[0] == 'f') {
						r = (long long)i;
						break;
					}
					r++;
					i += pn ? pn - 1 : 0;
				}
			*out = (struct val){ .t = V_INT, .i = r };
			return 0;
		}
	}
	if (o->t == V_DICT) {
		if (!strcmp(m, "get")) {
			if (arg_str(R, args, n, 0, m))
				return -1;
			const struct val *v = dict_get(o->d, args[0].str.s, args[0].str.n);
			*out = v ? *v : n >= 2 ? args[1] : (struct val){ .t = V_NONE };
			return 0;
		}
		if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
			struct list *l = newlist(R);

			if (!l)
				return -1;
			for (size_t i = 0; i < o->d->n; i++) {
				struct val k = mkstr(o->d->k[i], o->d->kn[i]), item;

				if (m[0] == 'i') {
					struct list *p = newlist(R);

					if (!p || list_push(R, p, k) || list_push(R, p, o->d->v[i]))
						return -1;
					item = (struct val){ .t = V_LIST, .l = p };
				} else {
					item = m[0] == 'k' ? k : o->d->v[i];
				}
				if (list_push(R, l, item))
					return -1;
			}
			*out = (struct val){ .t = V_LIST, .l = l };
			return 0;
		}
	}
	return FAIL(R, "%s has no method %s()", tname(o), m);
}

static int length(struct rctx *R, const struct val *v, long long *n)
{
	switch (v->t) {
	case V_STR: {
		/* characters, as Python counts them: UTF-8 lead bytes */
		long long k = 0;
		for (size_t i = 0; i < v->str.n; i++)
			k += ((unsigned char)v->str.s[i] & 0xc0) != 0x80;
		*n = k;
		return 0;
	}
	case V_LIST: *n = (long long)v->l->n; return 0;
	case V_DICT: case V_NS: *n = (long long)v->d->n; return 0;
	case V_UNDEF: *n = 0; return 0;
	default: return FAIL(R, "object of type %s has no length", tname(v));
	}
}

static const struct val *kwarg(const struct expr *e, const struct val *args, const char *name)
{
	for (size_t i = 0; i < e->nargs; i++)
		if (e->kw && e->kw[i] && !strcmp(e->kw[i], name))
			return &args[i];
	return NULL;
}

static int eval_args(struct rctx *R, const struct expr *e, struct val *args)
{
	for (size_t i = 0; i < e->nargs; i++)
		if (eval(R, e->args[i], &args[i]))
			return -1;
	return 0;
}

static int filter(struct rctx *R, const struct expr *e, struct val *out)
{
	struct val v, args[32];
	const char *f = e->name;

	if (eval(R, e->a, &v) || eval_args(R, e, args))
		return -1;
	if (!strcmp(f, "tojson")) {
		const struct val *ind = kwarg(e, args, "indent");
		struct sb b = { 0 };
		int indent = ind && ind->t == V_INT ? (int)ind->i : -1;

		for (size_t i = 0; i < e->nargs; i++)
			if (e->kw[i] && strcmp(e->kw[i], "indent") &&
			    !(!strcmp(e->kw[i], "ensure_ascii") && !truthy(&args[i])))
				return FAIL(R, "tojson: only indent is supported (not %s)", e->kw[i]);

		if (e->nargs && !e->kw[0] && args[0].t == V_INT)
			indent = (int)args[0].i;
		if (indent > 16)
			return FAIL(R, "tojson: indent too large");
		if (to_json(R, &b, &v, indent, 0, 0))
			return -1;
		*out = mkstr(b.p ? b.p : "", b.n);
		return 0;
	}
	if (!strcmp(f, "length") || !strcmp(f, "count")) {
		long long n;
		if (length(R, &v, &n))
			return -1;
		*out = (struct val){ .t = V_INT, .i = n };
		return 0;
	}
	if (!strcmp(f, "string"))
		return to_string(R, &v, out);
	if (!strcmp(f, "trim")) {
		if (v.t != V_STR)
			return FAIL(R, "trim of a %s", tname(&v));
		*out = strip(&v, e->nargs ? &args[0] : NULL, 1, 1);
		return 0;
	}
	if (!strcmp(f, "upper") || !strcmp(f, "lower")) {
		if (v.t != V_STR)
			return FAIL(R, "%s of a %s", f, tname(&v));
		return call_method(R, &v, f, NULL, 0, out);
	}
	if (!strcmp(f, "default") || !strcmp(f, "d")) {
		int b = e->nargs >= 2 && truthy(&args[1]);
		*out = (v.t == V_UNDEF || (b && !truthy(&v))) ? (e->nargs ? args[0] : mkstr("", 0)) : v;
		return 0;
	}
	if (!strcmp(f, "safe")) {
		*out = v;
		return 0;
	}
	if (!strcmp(f, "first") || !strcmp(f, "last")) {
		if (v.t == V_LIST)
			*out = v.l->n ? v.l->v[f[0] == 'f' ? 0 : v.l->n - 1] : undef(f);
		else if (v.t == V_STR)
			*out = v.str.n ? mkstr(v.str.s + (f[0] == 'f' ? 0 : v.str.n - 1), 1) : undef(f);
		else
			return FAIL(R, "%s of a %s", f, tname(&v));
		return 0;
	}
	if (!strcmp(f, "join")) {
		struct sb b = { 0 };
		const struct val *sep = e->nargs ? &args[0] : NULL;

		if (v.t != V_LIST || (sep && sep->t != V_STR))
			return FAIL(R, "join wants a list and a string");
		for (size_t i = 0; i < v.l->n; i++) {
			struct val s;

			if (i && sep)
				sb_put(R, &b, sep->str.s, sep->str.n);
			if (to_string(R, &v.l->v[i], &s))
				return -1;
			sb_put(R, &b, s.str.s, s.str.n);
		}
		if (b.oom)
			return FAIL(R, "out of memory");
		*out = mkstr(b.p, b.n);
		return 0;
	}
	if (!strcmp(f, "list")) {
		if (v.t == V_LIST) {
			*out = v;
			return 0;
		}
		if (v.t == V_DICT)
			return call_method(R, &v, "keys", NULL, 0, out);
		return FAIL(R, "list of a %s", tname(&v));
	}
	if (!strcmp(f, "items")) {
		if (v.t != V_DICT)
			return FAIL(R, "items of a %s", tname(&v));
		return call_method(R, &v, "items", NULL, 0, out);
	}
	if (!strcmp(f, "reverse")) {
		struct val p[3] = { undef(NULL), undef(NULL), { .t = V_INT, .i = -1 } };
		return slice(R, &v, p, out);
	}
	if (!strcmp(f, "int")) {
		if (v.t == V_INT || v.t == V_BOOL)
			*out = (struct val){ .t = V_INT, .i = v.t == V_INT ? v.i : v.b };
		else if (v.t == V_FLOAT && fabs(v.f) < 9e18)
			*out = (struct val){ .t = V_INT, .i = (long long)v.f };
		else if (v.t == V_STR) {
			char *s = arena_strndup(&R->a, v.str.s, v.str.n);

			*out = (struct val){ .t = V_INT, .i = s ? strtoll(s, NULL, 10) : 0 };
		} else
			*out = (struct val){ .t = V_INT, .i = 0 };
		return 0;
	}
	if (!strcmp(f, "replace")) {
		if (v.t != V_STR)
			return FAIL(R, "replace of a %s", tname(&v));
		return call_method(R, &v, "replace", args, e->nargs, out);
	}
	return FAIL(R, "filter '%s' is not supported", f);
}

static int test(struct rctx *R, const struct expr *e, int *res)
{
	struct val v, args[32];
	const char *t = e->name;

	if (eval(R, e->a, &v) || eval_args(R, e, args))
		return -1;
	if (!strcmp(t, "defined"))
		*res = v.t != V_UNDEF;
	else if (!strcmp(t, "undefined"))
		*res = v.t == V_UNDEF;
	else if (!strcmp(t, "none"))
		*res = v.t == V_NONE;
	else if (!strcmp(t, "string"))
		*res = v.t == V_STR;
	else if (!strcmp(t, "number"))
		*res = v.t == V_INT || v.t == V_FLOAT;
	else if (!strcmp(t, "integer"))
		*res = v.t == V_INT;
	else if (!strcmp(t, "float"))
		*res = v.t == V_FLOAT;
	else if (!strcmp(t, "boolean"))
		*res = v.t == V_BOOL;
	else if (!strcmp(t, "true"))
		*res = v.t == V_BOOL && v.b;
	else if (!strcmp(t, "false"))
		*res = v.t == V_BOOL && !v.b;
	else if (!strcmp(t, "mapping"))
		*res = v.t == V_DICT;
	else if (!strcmp(t, "sequence") || !strcmp(t, "iterable"))
		*res = v.t == V_LIST || v.t == V_STR || v.t == V_DICT;
	else if (!strcmp(t, "equalto") || !strcmp(t, "eq") || !strcmp(t, "sameas")) {
		if (!e->nargs)
			return FAIL(R, "test %s wants an argument", t);
		*res = val_eq(&v, &args[0]);
	} else if (!strcmp(t, "divisibleby")) {
		if (!e->nargs || v.t != V_INT || args[0].t != V_INT || !args[0].i)
			return FAIL(R, "divisibleby wants integers");
		*res = v.i % args[0].i == 0;
	} else if (!strcmp(t, "odd") || !strcmp(t, "even")) {
		if (v.t != V_INT)
			return FAIL(R, "%s of a %s", t, tname(&v));
		*res = (v.i % 2 != 0) == (t[0] == 'o');
	} else {
		return FAIL(R, "test '%s' is not supported", t);
	}
	if (e->neg)
		*res = !*res;
	return 0;
}

static int call(struct rctx *R, const struct expr *e, struct val *out)
{
	struct val args[32];

	if (e->a->k == E_ATTR) {	/* obj.method(...) */
		struct val o;

		if (eval(R, e->a->a, &o) || eval_args(R, e, args))
			return -1;
		return call_method(R, &o, e->a->name, args, e->nargs, out);
	}
	if (e->a->k != E_NAME)
		return FAIL(R, "line %d: only named functions and methods can be called", e->line);
	if (eval_args(R, e, args))
		return -1;
	const char *f = e->a->name;
	if (!strcmp(f, "raise_exception"))
		return FAIL(R, "template error: %.*s", e->nargs && args[0].t == V_STR ?
			    (int)(args[0].str.n < 200 ? args[0].str.n : 200) : 7,
			    e->nargs && args[0].t == V_STR ? args[0].str.s : "raised");
	if (!strcmp(f, "namespace") || !strcmp(f, "dict")) {
		struct dict *d = newdict(R);

		if (!d)
			return -1;
		for (size_t i = 0; i < e->nargs; i++) {
			if (!e->kw[i])
				return FAIL(R, "%s() takes keyword arguments", f);
			if (dict_put(R, d, e->kw[i], strlen(e->kw[i]), args[i]))
				return -1;
		}
		*out = (struct val){ .t = f[0] == 'n' ? V_NS : V_DICT, .d = d };
		return 0;
	}
	if (!strcmp(f, "range")) {
		long long a = 0, b, s = 1;
		struct list *l = newlist(R);

		for (size_t i = 0; i < e->nargs; i++)
			if (args[i].t != V_INT)
				return FAIL(R, "range() wants integers");
		if (!l || !e->nargs || e->nargs > 3)
			return FAIL(R, "range() takes 1 to 3 integers");
		b = args[e->nargs == 1 ? 0 : 1].i;
		if (e->nargs >= 2)
			a = args[0].i;
		if (e->nargs == 3)
			s = args[2].i;
		if (!s)
			return FAIL(R, "range() step cannot be zero");
		for (long long i = a; s > 0 ? i < b : i > b; i += s) {
			if (++R->steps > MAX_STEPS)
				return FAIL(R, "template runs too long");
			if (list_push(R, l, (struct val){ .t = V_INT, .i = i }))
				return -1;
		}
		*out = (struct val){ .t = V_LIST, .l = l };
		return 0;
	}
	return FAIL(R, "function '%s' is not supported", f);
}

static int arith(struct rctx *R, const char *op, const struct val *a, const struct val *b,
		 struct val *out)
{
	if (op[0] == '~') {
		struct val x, y;
		struct sb s = { 0 };

		if (to_string(R, a, &x) || to_string(R, b, &y))
			return -1;
		sb_put(R, &s, x.str.s, x.str.n);
		sb_put(R, &s, y.str.s, y.str.n);
		if (s.oom)
			return FAIL(R, "out of memory");
		*out = mkstr(s.p ? s.p : "", s.n);
		return 0;
	}
	if (op[0] == '+' && a->t == V_STR && b->t == V_STR) {
		struct sb s = { 0 };

		sb_put(R, &s, a->str.s, a->str.n);
		sb_put(R, &s, b->str.s, b->str.n);
		if (s.oom)
			return FAIL(R, "out of memory");
		*out = mkstr(s.p ? s.p : "", s.n);
		return 0;
	}
	if (op[0] == '+' && a->t == V_LIST && b->t == V_LIST) {
		struct list *l = newlist(R);

		if (!l)
			return -1;
		for (size_t i = 0; i < a->l->n; i++)
			if (list_push(R, l, a->l->v[i]))
				return -1;
		for (size_t i = 0; i < b->l->n; i++)
			if (list_push(R, l, b->l->v[i]))
				return -1;
		*out = (struct val){ .t = V_LIST, .l = l };
		return 0;
	}
	if (!is_num(a) || !is_num(b))
		return FAIL(R, "unsupported operand types for %s: %s and %s", op, tname(a), tname(b));
	int ints = a->t != V_FLOAT && b->t != V_FLOAT;
	long long x = a->t == V_INT ? a->i : a->t == V_BOOL ? a->b : 0;
	long long y = b->t == V_INT ? b->i : b->t == V_BOOL ? b->b : 0;
	double fx = num(a), fy = num(b);

	if (!strcmp(op, "/")) {
		if (fy == 0)
			return FAIL(R, "division by zero");
		*out = (struct val){ .t = V_FLOAT, .f = fx / fy };
	} else if (!strcmp(op, "//") || !strcmp(op, "%")) {
		if (fy == 0)
			return FAIL(R, "division by zero");
		if (ints) {
			long long q = x / y, m = x % y;

			if (m && ((m < 0) != (y < 0))) {
				q--;
				m += y;
			}
			*out = (struct val){ .t = V_INT, .i = op[0] == '%' ? m : q };
		} else {
			double q = floor(fx / fy);
			*out = (struct val){ .t = V_FLOAT, .f = op[0] == '%' ? fx - q * fy : q };
		}
	} else if (!strcmp(op, "**")) {
		if (ints && y >= 0) {
			long long r = 1;

			for (long long k = 0; k < y; k++) {
				if (__builtin_mul_overflow(r, x, &r))
					return FAIL(R, "integer overflow");
				if (r == 0 || r == 1 || (r == -1 && (y - k - 1) % 2 == 0))
					break;	/* 0, 1 and -1 stay put (k is done) */
				if (k > 64)
					return FAIL(R, "integer overflow");
			}
			*out = (struct val){ .t = V_INT, .i = r };
		} else {
			*out = (struct val){ .t = V_FLOAT, .f = pow(fx, fy) };
		}
	} else if (ints) {
		long long r;
		int ovf = op[0] == '+' ? __builtin_add_overflow(x, y, &r) :
			  op[0] == '-' ? __builtin_sub_overflow(x, y, &r) :
			  __builtin_mul_overflow(x, y, &r);
		if (ovf)
			return FAIL(R, "integer overflow");
		*out = (struct val){ .t = V_INT, .i = r };
	} else {
		double r = op[0] == '+' ? fx + fy : op[0] == '-' ? fx - fy : fx * fy;
		*out = (struct val){ .t = V_FLOAT, .f = r };
	}
	return 0;
}

static int contains(struct rctx *R, const struct val *needle, const struct val *hay, int *res)
{
	if (hay->t == V_STR) {
		if (needle->t != V_STR)
			return FAIL(R, "'in <string>' requires a string");
		*res = 0;
		if (needle->str.n == 0)
			*res = 1;
		for (size_t i = 0; !*res && i + needle->str.n <= hay->str.n; i++)
			*res = !memcmp(hay->str.s + i, needle->str.s, needle->str.n);
		return 0;
	}
	if (hay->t == V_LIST) {
		*res = 0;
		for (size_t i = 0; !*res && i < hay->l->n; i++)
			*res = val_eq(needle, &hay->l->v[i]);
		return 0;
	}
	if (hay->t == V_DICT) {
		*res = needle->t == V_STR && dict_get(hay->d, needle->str.s, needle->str.n);
		return 0;
	}
	if (hay->t == V_UNDEF)
		return FAIL(R, "'%s' is undefined", hay->uname ? hay->uname : "value");
	return FAIL(R, "argument of type %s is not iterable", tname(hay));
}

static int eval(struct rctx *R, const struct expr *e, struct val *out)
{
	int rc = 0, b = 0;

	if (++R->steps > MAX_STEPS)
		return FAIL(R, "template runs too long");
	if (++R->depth > 4 * MAX_DEPTH)
		return FAIL(R, "expression nested too deeply");
	switch (e->k) {
	case E_LIT:
		*out = e->lit;
		break;
	case E_NAME: {
		const struct val *v = lookup(R, e->name);
		*out = v ? *v : undef(e->name);
		break;
	}
	case E_ATTR: {
		struct val o;
		rc = eval(R, e->a, &o) || get_attr(R, &o, e->name, strlen(e->name), out);
		break;
	}
	case E_ITEM: {
		struct val o, k;
		rc = eval(R, e->a, &o) || eval(R, e->b, &k) || get_item(R, &o, &k, out);
		break;
	}
	case E_SLICE: {
		struct val o, p[3];
		rc = eval(R, e->a, &o);
		for (int k = 0; !rc && k < 3; k++) {
			p[k] = undef(NULL);
			if (e->args[k])
				rc = eval(R, e->args[k], &p[k]);
		}
		if (!rc)
			rc = slice(R, &o, p, out);
		break;
	}
	case E_CALL:
		rc = call(R, e, out);
		break;
	case E_FILTER:
		rc = filter(R, e, out);
		break;
	case E_TEST:
		rc = test(R, e, &b);
		*out = (struct val){ .t = V_BOOL, .b = b };
		break;
	case E_BIN: {
		struct val x, y;
		rc = eval(R, e->a, &x) || eval(R, e->b, &y);
		if (!rc && strchr("=!<>", e->name[0])) {
			rc = compare(R, e->name, &x, &y, &b);
			*out = (struct val){ .t = V_BOOL, .b = b };
		} else if (!rc) {
			rc = arith(R, e->name, &x, &y, out);
		}
		break;
	}
	case E_NEG: {
		struct val x;
		rc = eval(R, e->a, &x);
		if (!rc && x.t == V_INT)
			*out = (struct val){ .t = V_INT, .i = -x.i };
		else if (!rc && x.t == V_FLOAT)
			*out = (struct val){ .t = V_FLOAT, .f = -x.f };
		else if (!rc)
			rc = FAIL(R, "bad operand for unary -: %s", tname(&x));
		break;
	}
	case E_NOT: {
		struct val x;
		rc = eval(R, e->a, &x);
		*out = (struct val){ .t = V_BOOL, .b = !truthy(&x) };
		break;
	}
	case E_AND: case E_OR: {
		struct val x;
		rc = eval(R, e->a, &x);
		if (!rc && (e->k == E_AND ? truthy(&x) : !truthy(&x)))
			rc = eval(R, e->b, &x);
		*out = x;
		break;
	}
	case E_COND: {
		struct val c;
		rc = eval(R, e->b, &c);
		if (!rc) {
			if (truthy(&c))
				rc = eval(R, e->a, out);
			else if (e->c)
				rc = eval(R, e->c, out);
			else
				*out = undef("else");
		}
		break;
	}
	case E_LIST: case E_DICT: {
		struct list *l = e->k == E_LIST ? newlist(R) : NULL;
		struct dict *d = e->k == E_DICT ? newdict(R) : NULL;
		if (!l && !d)
			return -1;
		for (size_t i = 0; !rc && i < e->nargs; i += e->k == E_DICT ? 2 : 1) {
			struct val x, y;
			rc = eval(R, e->args[i], &x);
			if (!rc && l)
				rc = list_push(R, l, x);
			if (!rc && d) {
				rc = eval(R, e->args[i + 1], &y);
				if (!rc && x.t != V_STR)
					rc = FAIL(R, "dict keys must be strings");
				if (!rc)
					rc = dict_put(R, d, x.str.s, x.str.n, y);
			}
		}
		if (l)
			l->tuple = e->tuple;
		*out = l ? (struct val){ .t = V_LIST, .l = l } : (struct val){ .t = V_DICT, .d = d };
		break;
	}
	case E_IN: {
		struct val x, y;
		rc = eval(R, e->a, &x) || eval(R, e->b, &y) || contains(R, &x, &y, &b);
		*out = (struct val){ .t = V_BOOL, .b = e->neg ? !b : b };
		break;
	}
	}
	R->depth--;
	return rc ? -1 : 0;
}

static int run(struct rctx *R, struct stmt *const *body, size_t n);

static int set_var(struct rctx *R, const char *name, struct val v)
{
	return dict_put(R, &R->top->vars, name, strlen(name), v);
}

static int run_for(struct rctx *R, const struct stmt *s)
{
	struct val it;
	const struct val *items;
	size_t n;
	struct list *keep = NULL;

	if (eval(R, s->e, &it))
		return -1;
	if (it.t == V_DICT) {	/* iterating a dict gives its keys */
		if (call_method(R, &it, "keys", NULL, 0, &it))
			return -1;
	}
	if (it.t == V_UNDEF || it.t == V_NONE) {
		if (it.t == V_NONE)
			return FAIL(R, "line %d: 'NoneType' object is not iterable", s->line);
		items = NULL;
		n = 0;
	} else if (it.t == V_LIST) {
		items = it.l->v;
		n = it.l->n;
	} else if (it.t == V_STR) {
		keep = newlist(R);
		if (!keep)
			return -1;
		for (size_t i = 0; i < it.str.n; i++)
			if (list_push(R, keep, mkstr(it.str.s + i, 1)))
				return -1;
		items = keep->v;
		n = keep->n;
	} else {
		return FAIL(R, "line %d: %s is not iterable", s->line, tname(&it));
	}
	/* the loop filter picks items before loop.* counts them */
	struct frame f = { .up = R->top };
	struct list *sel = newlist(R);
	if (!sel)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int ok = 1;

		if (s->filt) {
			struct val c;

			R->top = &f;
			memset(&f.vars, 0, sizeof(f.vars));
			if (set_var(R, s->var[0], items[i])) {
				R->top = f.up;
				return -1;
			}
			int rc = eval(R, s->filt, &c);
			R->top = f.up;
			if (rc)
				return -1;
			ok = truthy(&c);
		}
		if (ok && list_push(R, sel, items[i]))
			return -1;
	}
	if (sel->n == 0)
		return s->ebody ? run(R, s->ebody, s->neb) : 0;
	for (size_t i = 0; i < sel->n; i++) {
		struct dict *loop = newdict(R);
		struct val x = sel->v[i];
		int rc;

		if (++R->steps > MAX_STEPS)
			return FAIL(R, "template runs too long");
		if (!loop)
			return -1;
		memset(&f.vars, 0, sizeof(f.vars));
		R->top = &f;
		rc = dict_put(R, loop, "index0", 6, (struct val){ .t = V_INT, .i = (long long)i }) ||
		     dict_put(R, loop, "index", 5, (struct val){ .t = V_INT, .i = (long long)i + 1 }) ||
		     dict_put(R, loop, "revindex0", 9, (struct val){ .t = V_INT, .i = (long long)(sel->n - i - 1) }) ||
		     dict_put(R, loop, "revindex", 8, (struct val){ .t = V_INT, .i = (long long)(sel->n - i) }) ||
		     dict_put(R, loop, "first", 5, (struct val){ .t = V_BOOL, .b = i == 0 }) ||
		     dict_put(R, loop, "last", 4, (struct val){ .t = V_BOOL, .b = i + 1 == sel->n }) ||
		     dict_put(R, loop, "length", 6, (struct val){ .t = V_INT, .i = (long long)sel->n }) ||
		     dict_put(R, loop, "previtem", 8, i ? sel->v[i - 1] : undef("previtem")) ||
		     dict_put(R, loop, "nextitem", 8, i + 1 < sel->n ? sel->v[i + 1] : undef("nextitem")) ||
		     set_var(R, "loop", (struct val){ .t = V_DICT, .d = loop });
		if (!rc && s->nvar == 2) {
			if (x.t != V_LIST || x.l->n != 2)
				rc = FAIL(R, "line %d: cannot unpack %s into two names", s->line, tname(&x));
			else
				rc = set_var(R, s->var[0], x.l->v[0]) || set_var(R, s->var[1], x.l->v[1]);
		} else if (!rc) {
			rc = set_var(R, s->var[0], x);
		}
		if (!rc)
			rc = run(R, s->body, s->nb);
		R->top = f.up;
		if (rc)
			return -1;
		R->cont = 0;
		if (R->brk) {
			R->brk = 0;
			break;
		}
	}
	return 0;
}

static int run(struct rctx *R, struct stmt *const *body, size_t n)
{
	for (size_t i = 0; i < n && !R->brk && !R->cont; i++) {
		const struct stmt *s = body[i];
		struct val v;

		if (++R->steps > MAX_STEPS)
			return FAIL(R, "template runs too long");
		switch (s->k) {
		case S_TEXT:
			if (emit(R, s->text, s->n))
				return -1;
			break;
		case S_OUT: {
			struct sb b = { 0 };

			if (eval(R, s->e, &v))
				return -1;
			if (v.t == V_STR) {
				if (emit(R, v.str.s, v.str.n))
					return -1;
				break;
			}
			py_str(R, &b, &v, 0);
			if (b.oom || (b.n && emit(R, b.p, b.n)))
				return b.oom ? FAIL(R, "out of memory") : -1;
			break;
		}
		case S_IF: {
			size_t k;

			for (k = 0; k < s->nconds; k++) {
				if (eval(R, s->conds[k], &v))
					return -1;
				if (truthy(&v))
					break;
			}
			if (++R->depth > MAX_DEPTH)
				return FAIL(R, "blocks nested too deeply");
			int rc = run(R, s->bodies[k], s->nbody[k]);
			R->depth--;
			if (rc)
				return -1;
			break;
		}
		case S_FOR: {
			if (++R->depth > MAX_DEPTH)
				return FAIL(R, "blocks nested too deeply");
			int rc = run_for(R, s);
			R->depth--;
			if (rc)
				return -1;
			break;
		}
		case S_SET:
			if (eval(R, s->e, &v))
				return -1;
			if (s->attr) {
				const struct val *ns = lookup(R, s->target);

				if (!ns || ns->t != V_NS)
					return FAIL(R, "line %d: '%s' is not a namespace", s->line, s->target);
				if (dict_put(R, ns->d, s->attr, strlen(s->attr), v))
					return -1;
			} else if (set_var(R, s->target, v)) {
				return -1;
			}
			break;
		case S_BREAK:
			R->brk = 1;
			break;
		case S_CONTINUE:
			R->cont = 1;
			break;
		}
	}
	return 0;
}

char *nc_jinja_render(const struct nc_jinja *t, const cJSON *vars, size_t *outlen, char *err,
		      size_t errlen)
{
	struct perr pe = { err, errlen, 0 };
	struct rctx R = { .err = &pe };
	struct frame globals = { 0 };
	int rc = 0;

	if (err && errlen)
		err[0] = 0;
	if (!t) {
		seterr(&pe, "no template");
		return NULL;
	}
	R.top = &globals;
	if (vars && !cJSON_IsObject(vars))
		rc = FAIL(&R, "template variables must be a JSON object");
	for (const cJSON *c = vars ? vars->child : NULL; !rc && c; c = c->next) {
		struct val v;

		if (c->string)
			rc = from_json(&R, c, &v, 0) || set_var(&R, c->string, v);
	}
	if (!rc)
		rc = run(&R, t->body, t->n);
	arena_free(&R.a);
	if (rc) {
		free(R.out);
		if (!pe.set)
			seterr(&pe, "render failed");
		return NULL;
	}
	if (!R.out) {
		R.out = calloc(1, 1);
		if (!R.out) {
			seterr(&pe, "out of memory");
			return NULL;
		}
	}
	if (outlen)
		*outlen = R.n;
	return R.out;
}
