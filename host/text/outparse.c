/* outparse.c — content, reasoning and tool calls out of a text stream. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "text/outparse.h"

#define MAX_CALL (1u << 20)	/* bytes of one tool call's JSON */

static const char T_OPEN[] = "<think>", T_CLOSE[] = "</think>";
static const char C_OPEN[] = "<tool_call>", C_CLOSE[] = "</tool_call>";

void nc_outparse_init(struct nc_outparse *p, int think, int in_reasoning, int tools)
{
	memset(p, 0, sizeof(*p));
	p->think = think;
	p->tools = tools;
	if (think && in_reasoning) {
		p->state = 1;
		p->skip_nl = 1;
	}
}

void nc_outparse_free(struct nc_outparse *p)
{
	nc_obuf_free(&p->hold);
	nc_obuf_free(&p->call);
}

void nc_outsink_free(struct nc_outsink *o)
{
	for (uint32_t i = 0; i < o->n; i++) {
		free(o->calls[i].name);
		free(o->calls[i].arguments);
	}
	free(o->calls);
	nc_obuf_free(&o->content);
	nc_obuf_free(&o->reasoning);
	memset(o, 0, sizeof(*o));
}

/* Text of the current state to where it goes. */
static int out_text(struct nc_outparse *p, const char *s, size_t n, struct nc_outsink *o)
{
	if (p->skip_nl)
		while (n && *s == '\n') {
			s++;
			n--;
		}
	if (!n)
		return 0;
	p->skip_nl = 0;
	if (p->state == 2)
		return p->call.len + n > MAX_CALL ? -E2BIG : nc_obuf_put(&p->call, s, n);
	if (p->state == 1) {
		/* newlines at the end may be the ones before </think> */
		size_t k = n;

		while (k && s[k - 1] == '\n')
			k--;
		if (k) {
			for (; p->held_nl; p->held_nl--)
				if (nc_obuf_put(&o->reasoning, "\n", 1))
					return -ENOMEM;
			if (nc_obuf_put(&o->reasoning, s, k))
				return -ENOMEM;
		}
		p->held_nl += (uint32_t)(n - k);
		return 0;
	}
	for (size_t i = 0; i < n && !p->started; i++)
		p->started = s[i] != ' ' && s[i] != '\n' && s[i] != '\t';
	return nc_obuf_put(&o->content, s, n);
}

/* A finished <tool_call> body: a call, or back to content as it was. */
static int end_call(struct nc_outparse *p, struct nc_outsink *o)
{
	cJSON *j = cJSON_ParseWithLength(p->call.p ? p->call.p : "", p->call.len);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "arguments");
	int rc = 0;

	if (cJSON_IsObject(j) && cJSON_IsString(name) && name->valuestring[0] &&
	    (!args || cJSON_IsObject(args))) {
		struct nc_toolcall c = { strdup(name->valuestring),
					 args ? cJSON_PrintUnformatted(args) : strdup("{}") };

		if (!c.name || !c.arguments || (o->n == o->cap && !(o->calls = realloc(
				o->calls, (o->cap = o->cap ? 2 * o->cap : 4) * sizeof(*o->calls))))) {
			free(c.name);
			free(c.arguments);
			rc = -ENOMEM;
		} else {
			o->calls[o->n++] = c;
		}
	} else {
		p->malformed++;
		rc = nc_obuf_put(&o->content, C_OPEN, sizeof(C_OPEN) - 1) ||
		     nc_obuf_put(&o->content, p->call.p ? p->call.p : "", p->call.len) ||
		     nc_obuf_put(&o->content, C_CLOSE, sizeof(C_CLOSE) - 1) ? -ENOMEM : 0;
		p->started = 1;
	}
	cJSON_Delete(j);
	p->call.len = 0;
	return rc;
}

/* The markers the current state listens for. */
static size_t markers(const struct nc_outparse *p, const char **m)
{
	size_t n = 0;

	if (p->state == 0) {
		if (p->think && !p->started)
			m[n++] = T_OPEN;
		if (p->tools)
			m[n++] = C_OPEN;
	} else {
		m[n++] = p->state == 1 ? T_CLOSE : C_CLOSE;
	}
	return n;
}

static int take_marker(struct nc_outparse *p, const char *m, struct nc_outsink *o)
{
	if (m == T_OPEN) {
		p->state = 1;
		p->skip_nl = 1;
	} else if (m == T_CLOSE) {
		p->state = 0;
		p->held_nl = 0;		/* the newlines before </think> */
		p->skip_nl = 1;		/* and after it */
	} else if (m == C_OPEN) {
		p->state = 2;
		p->call.len = 0;
	} else {
		p->state = 0;
		return end_call(p, o);
	}
	return 0;
}

int nc_outparse_feed(struct nc_outparse *p, const char *s, size_t n, struct nc_outsink *o)
{
	if (nc_obuf_put(&p->hold, s, n))
		return -ENOMEM;
	for (;;) {
		const char *m[2], *h = p->hold.p ? p->hold.p : "";
		size_t nm = markers(p, m), at = p->hold.len, keep = 0;
		const char *hit = NULL;
		int rc;

		/* the earliest whole marker */
		for (size_t k = 0; k < nm; k++) {
			size_t ml = strlen(m[k]);

			for (size_t i = 0; i + ml <= p->hold.len && i < at; i++) {
				if (m[k] == T_OPEN && h[i] != ' ' && h[i] != '\n' && h[i] != '\t' &&
				    h[i] != '<')
					break;	/* <think> opens the output or nothing */
				if (!memcmp(h + i, m[k], ml)) {
					at = i;
					hit = m[k];
					break;
				}
				if (m[k] == T_OPEN && h[i] == '<')
					break;
			}
		}
		if (hit) {
			rc = out_text(p, h, at, o);
			if (!rc)
				rc = take_marker(p, hit, o);
			if (rc)
				return rc;
			size_t used = at + strlen(hit);
			memmove(p->hold.p, p->hold.p + used, p->hold.len - used);
			p->hold.len -= used;
			p->hold.p[p->hold.len] = 0;
			continue;
		}
		/* hold back the longest tail that could begin a marker */
		for (size_t k = 0; k < nm; k++) {
			size_t ml = strlen(m[k]);

			for (size_t l = ml - 1; l > keep; l--)
				if (l <= p->hold.len && !memcmp(h + p->hold.len - l, m[k], l)) {
					keep = l;
					break;
				}
		}
		rc = out_text(p, h, p->hold.len - keep, o);
		if (rc)
			return rc;
		memmove(p->hold.p, p->hold.p + p->hold.len - keep, keep);
		p->hold.len = keep;
		if (p->hold.p)
			p->hold.p[keep] = 0;
		return 0;
	}
}

int nc_outparse_finish(struct nc_outparse *p, struct nc_outsink *o)
{
	int rc = 0;

	if (p->state == 2) {
		/* a tool call cut off: what came back is content, as written */
		p->malformed++;
		rc = nc_obuf_put(&o->content, C_OPEN, sizeof(C_OPEN) - 1) ||
		     nc_obuf_put(&o->content, p->call.p ? p->call.p : "", p->call.len) ||
		     nc_obuf_put(&o->content, p->hold.p ? p->hold.p : "", p->hold.len) ? -ENOMEM : 0;
		p->call.len = 0;
	} else if (p->hold.len) {
		rc = out_text(p, p->hold.p, p->hold.len, o);
	}
	p->hold.len = 0;
	p->state = 0;
	return rc;
}
