/* chat.c — ChatML formatting (see chat.h for the exact shape). */
#include "text/chat.h"

#include <errno.h>
#include <string.h>

struct out {
	char *p;
	size_t cap, n;
};

static void put(struct out *o, const char *s)
{
	size_t l = strlen(s);

	if (o->n < o->cap) {
		size_t room = o->cap - o->n;

		memcpy(o->p + o->n, s, l < room ? l : room);
	}
	o->n += l;
}

static void put_msg(struct out *o, const char *role, const char *content)
{
	put(o, "<|im_start|>");
	put(o, role);
	put(o, "\n");
	put(o, content ? content : "");
	put(o, "<|im_end|>\n");
}

long nc_chat_format_ex(const struct nc_chat_msg *msgs, size_t n,
		       int add_generation_prompt, const char *default_system,
		       char *out, size_t cap)
{
	struct out o = { out, out ? cap : 0, 0 };

	if (!msgs && n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!msgs[i].role)
			return -EINVAL;
	if (default_system && (!n || strcmp(msgs[0].role, "system")))
		put_msg(&o, "system", default_system);
	for (size_t i = 0; i < n; i++)
		put_msg(&o, msgs[i].role, msgs[i].content);
	if (add_generation_prompt)
		put(&o, "<|im_start|>assistant\n");
	if (o.n < o.cap)
		o.p[o.n] = 0;
	else if (o.cap)
		o.p[o.cap - 1] = 0;
	return (long)o.n;
}

long nc_chat_format(const struct nc_chat_msg *msgs, size_t n,
		    int add_generation_prompt, char *out, size_t cap)
{
	return nc_chat_format_ex(msgs, n, add_generation_prompt, NULL, out,
				 cap);
}

/* A literal system turn in the template, as Qwen2.5 writes it:
 *   '<|im_start|>system\nYou are ...<|im_end|>\n'
 * The newline may be a real one or a Jinja "\n" escape.  Text holding
 * template syntax is an expression (the user's system message), not a
 * default. */
long nc_chat_default_system(const char *tpl, char *out, size_t cap)
{
	static const char head[] = "<|im_start|>system";
	const char *p = tpl, *end;
	size_t n = 0;

	if (!tpl)
		return -EINVAL;
	while ((p = strstr(p, head))) {
		p += sizeof(head) - 1;
		if (*p == '\n')
			p++;
		else if (p[0] == '\\' && p[1] == 'n')
			p += 2;
		else
			continue;
		end = strstr(p, "<|im_end|>");
		if (!end || end == p)
			continue;
		if (memchr(p, '\'', end - p) || memchr(p, '{', end - p) ||
		    memchr(p, '+', end - p))
			continue;
		for (const char *s = p; s < end; s++) {
			char c = *s;

			if (c == '\\' && s + 1 < end && s[1] == 'n') {
				c = '\n';
				s++;
			}
			if (out && n + 1 < cap)
				out[n] = c;
			n++;
		}
		if (out && cap)
			out[n < cap ? n : cap - 1] = 0;
		return (long)n;
	}
	if (out && cap)
		out[0] = 0;
	return 0;
}
