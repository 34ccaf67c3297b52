/* fuzz_safetensors.c — st_parse on arbitrary bytes, then read every tensor
 * (FP8 ones through their block scales), look up every metadata key and
 * parse every value as a pre-quantized tensor's format. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/model/safetensors.h"
#include "host/model/quant.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch each accepted tensor's bytes so an out-of-range one trips ASan. */
static void read_all(const struct st_set *s)
{
	const struct st_tensor *t;
	float f[64];
	uint64_t n, off;
	size_t i;

	for (i = 0; i < st_count(s); i++) {
		t = st_at(s, i);
		if (st_find(s, t->name) != t)
			abort();
		n = st_numel(t);
		for (off = 0; off < n && off < 4096; off += 64) {
			st_read_f32(t, off, n - off < 64 ? n - off : 64, f);
			/* FP8 through its block scale, blocks small and default */
			st_read_f32_fp8(s, t, off, n - off < 64 ? n - off : 64, f,
					(uint32_t)(1 + n % 3));
			st_read_f32_fp8(s, t, off, n - off < 64 ? n - off : 64, f, 0);
		}
		if (t->nbytes)
			(void)*(volatile const uint8_t *)((const uint8_t *)t->data +
							  t->nbytes - 1);
	}
	/* every metadata key finds its first file's value */
	for (i = 0; i < s->nmeta; i++) {
		const char *v = st_meta(s, s->meta[i].key);

		if (!v || (i && strcmp(s->meta[i - 1].key, s->meta[i].key) > 0))
			abort();
		if ((!i || strcmp(s->meta[i - 1].key, s->meta[i].key)) && v != s->meta[i].val)
			abort();
		/* a pre-quantized tensor's format string is untrusted too */
		uint32_t dt, cols;
		if (nc_quant_meta_parse(s->meta[i].val, &dt, &cols) == 0 &&
		    (!krnl_dt_valid(dt) || !cols))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_set s = { 0 };
	char err[256];
	uint8_t *copy = malloc(size + 1);	/* exact-size: overreads show */

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	if (!st_parse(&s, copy, size, 0, "fuzz", err, sizeof(err))) {
		read_all(&s);
		/* a second copy of the same file must collide, not merge */
		if (st_count(&s) && !st_parse(&s, copy, size, 1, "fuzz2", err,
					       sizeof(err)))
			abort();
	} else if (!err[0] || !memchr(err, 0, sizeof(err))) {
		abort();
	}
	st_close(&s);
	free(copy);
	return 0;
}
