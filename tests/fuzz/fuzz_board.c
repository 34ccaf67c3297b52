/* fuzz_board.c — fw_board_parse on arbitrary bytes.
 *
 * Seeds: the compiled board DTBs in tests/fuzz/corpus/board/.  A blob that
 * parses must satisfy the struct's invariants, and its connectivity text
 * (for xclbin boards) must fit and be NUL-terminated.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fw_board.h"

static void check(const struct fw_board *b)
{
	if (b->n_banks == 0 || b->n_banks > FW_MAX_BANKS ||
	    b->n_cus == 0 || b->n_cus > FW_MAX_CUS || b->n_nics > FW_MAX_NICS)
		abort();
	for (uint32_t i = 1; i < b->n_banks; i++)
		if (b->banks[i].base < b->banks[i - 1].base + b->banks[i - 1].size)
			abort();
	for (uint32_t i = 0; i < b->n_cus; i++)
		for (uint32_t p = 0; p < b->cus[i].n_ports; p++)
			if (b->cus[i].ports[p].bank_hi >= b->n_banks)
				abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fw_board b;
	static char cfg[16 * 1024];
	char err[256];
	int rc = fw_board_parse(data, size, &b, err, sizeof(err));

	if (rc < 0) {
		if (err[0] == '\0' || rc < -FW_BOARD_ERR_MAX)
			abort();
		return 0;
	}
	check(&b);
	rc = fw_board_connectivity(&b, cfg, sizeof(cfg), err, sizeof(err));
	if (rc >= 0 && strlen(cfg) != (size_t)rc)
		abort();
	fw_board_bank_of(&b, b.banks[0].base, 1);
	return 0;
}
