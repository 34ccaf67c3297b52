/* dp_text.h — the tokenizer seen from the data plane.
 *
 * dp_text.c is the one dp file that sees the tokenizer: text prompts in,
 * streamed text pieces out.
 */
#ifndef HOST_NET_DP_TEXT_H
#define HOST_NET_DP_TEXT_H

#include <stddef.h>
#include <stdint.h>

struct nc_tokenizer;

/* Streaming detokenizer state, opaque here (an nc_detok inside). */
struct dp_detok {
	_Alignas(8) uint8_t state[32];
};

/* Load DIR/tokenizer.json: 0 (and *eos, -1 if none), or -1 with err. */
int dp_text_load(struct nc_tokenizer **out, const char *dir, int32_t *eos,
		 char *err, size_t errlen);
void dp_text_free(struct nc_tokenizer *tok);
/* Ids of a UTF-8 prompt: the count (may exceed cap), or < 0. */
long dp_text_encode(const struct nc_tokenizer *tok, const uint8_t *text, size_t len,
		    int32_t *ids, size_t cap);
/* Start a stream; special tokens keep their text, as in nc_tok_decode. */
void dp_text_detok_init(struct dp_detok *d);
/* Text of one more token (last: also what an unfinished character left);
 * bytes written to out, 0 if none or if they would not fit. */
long dp_text_detok_push(struct dp_detok *d, const struct nc_tokenizer *tok,
			int32_t id, int last, char *out, size_t cap);

#endif
