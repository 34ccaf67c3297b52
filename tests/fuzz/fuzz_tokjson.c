/* fuzz_tokjson.c — hostile tokenizer.json files (a model file is untrusted
 * input): load, and if it loads, encode and decode a little text with it. */
#include <stdint.h>
#include <stdlib.h>
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nc_tokenizer *tok = NULL;
	char err[256], out[256];
	int32_t ids[64];
	static const char text[] = "Hello, world! 123 <|endoftext|> h\xc3\xa9llo";

	if (nc_tok_load_json(&tok, (const char *)data, size, err, sizeof(err)) == 0) {
		long n = nc_tok_encode(tok, text, sizeof(text) - 1, ids, 64);
		if (n > 64)
			n = 64;
		if (n > 0)
			nc_tok_decode(tok, ids, (size_t)n, out, sizeof(out));
		nc_tok_free(tok);
	}
	return 0;
}
