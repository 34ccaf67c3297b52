/* fuzz_openai.c — hostile HTTP bodies through the OpenAI request parser
 * (both endpoints), the error-object builder and the stop-string matcher. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "api/openai.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct oai_limits lim = { .model = "fortune-13m", .max_tokens = 4096, .vocab = 4096 };
	struct oai_req r;
	struct oai_error e;

	for (int k = 0; k < 2; k++) {
		memset(&r, 0, sizeof(r));
		memset(&e, 0, sizeof(e));
		if (oai_parse(k ? OAI_CHAT : OAI_COMPLETION, (const char *)data, size, &lim, &r,
			      &e) == 0) {
			/* a request that parsed: run its stop strings over the body as text */
			struct oai_stopper st;
			struct nc_obuf out = { 0 };

			oai_stop_init(&st, r.stop, r.n_stop);
			for (size_t i = 0; i < size; i += 7)
				if (oai_stop_feed(&st, (const char *)data + i,
						  size - i < 7 ? size - i : 7, &out))
					break;
			oai_stop_finish(&st, &out);
			oai_stop_free(&st);
			nc_obuf_free(&out);
			oai_req_free(&r);
		} else {
			char *j = oai_error_json(&e);
			free(j);
		}
	}
	return 0;
}
