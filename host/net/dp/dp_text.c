/* dp_text.c — tokenizer bridge for the data plane (see dp_text.h). */
#include <string.h>

#include "net/dp/dp_text.h"
#include "text/tokenizer.h"

_Static_assert(sizeof(struct nc_detok) <= sizeof(((struct dp_detok *)0)->state),
	       "dp_detok too small for nc_detok");

int dp_text_load(struct nc_tokenizer **out, const char *dir, int32_t *eos,
		 char *err, size_t errlen)
{
	*eos = -1;
	if (nc_tok_load(out, dir, err, errlen)) {
		*out = NULL;
		return -1;
	}
	*eos = nc_tok_eos_id(*out);
	return 0;
}

void dp_text_free(struct nc_tokenizer *tok)
{
	if (tok)
		nc_tok_free(tok);
}

long dp_text_encode(const struct nc_tokenizer *tok, const uint8_t *text, size_t len,
		    int32_t *ids, size_t cap)
{
	return nc_tok_encode(tok, (const char *)text, len, ids, cap);
}

void dp_text_detok_init(struct dp_detok *d)
{
	struct nc_detok *k = (struct nc_detok *)(void *)d->state;

	nc_detok_init(k);
	k->skip_special = 1;	/* as the HTTP API: "<|endoftext|>" is no text */
}

long dp_text_detok_push(struct dp_detok *d, const struct nc_tokenizer *tok,
			int32_t id, int last, char *out, size_t cap)
{
	struct nc_detok *k = (struct nc_detok *)(void *)d->state;
	long n = nc_detok_push(k, tok, id, out, cap), f;

	if (n < 0 || (size_t)n > cap)
		n = 0;
	if (last) {
		f = nc_detok_flush(k, out + n, cap - (size_t)n);
		if (f > 0 && (size_t)f <= cap - (size_t)n)
			n += f;
	}
	return n;
}
