/* fuzz_tokenizer.c — encode arbitrary bytes, decode the ids, stream them.
 * Checks: no crash or sanitizer report, decode output is valid UTF-8 and the
 * streaming detokenizer adds up to the same bytes.  Run from the repo root
 * (the bundled tokenizer is loaded once, lazily). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "text/tokenizer.h"

static struct nc_tokenizer *tok;

static void check_utf8(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t l = utf8proc_iterate((const uint8_t *)s + i,
						      (utf8proc_ssize_t)(n - i), &cp);

		if (l <= 0)
			abort();
		i += (size_t)l;
	}
}

static void check_stream(const int32_t *ids, long n, const char *full,
			 long nf)
{
	struct nc_detok d;
	char piece[512];
	long off = 0, l;

	nc_detok_init(&d);
	for (long i = 0; i <= n; i++) {
		l = i < n ? nc_detok_push(&d, tok, ids[i], piece, sizeof(piece))
			  : nc_detok_flush(&d, piece, sizeof(piece));
		if (l < 0 || (size_t)l > sizeof(piece) || off + l > nf ||
		    memcmp(full + off, piece, (size_t)l))
			abort();
		off += l;
	}
	if (off != nf)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	int32_t *ids;
	char *out;
	long n, nf;

	if (!tok && nc_tok_load(&tok, "assets/fortune-13m", err, sizeof(err))) {
		fprintf(stderr, "fuzz_tokenizer: %s (run from the repo root)\n", err);
		abort();
	}
	/* invalid UTF-8 turns one byte into U+FFFD: at most 3 ids a byte */
	ids = malloc((3 * size + 1) * sizeof(*ids));
	n = nc_tok_encode(tok, (const char *)data, size, ids, 3 * size + 1);
	if (n < 0 || (size_t)n > 3 * size + 1)
		abort();
	nf = nc_tok_decode(tok, ids, (size_t)n, NULL, 0);
	out = malloc((size_t)nf + 1);
	if (nf < 0 || !out || nc_tok_decode(tok, ids, (size_t)n, out, (size_t)nf) != nf)
		abort();
	check_utf8(out, (size_t)nf);
	check_stream(ids, n, out, nf);
	free(out);
	free(ids);
	return 0;
}
