/* gen_connectivity — write the v++ [connectivity] config of a board DTB.
 *
 * usage: gen_connectivity <board.dtb> [out.cfg]
 * Without out.cfg the config goes to stdout.  The text comes from
 * fw_board_connectivity(), the same function tests/unit/test_board.c uses
 * to check that the committed board/<name>.cfg files match their .dts.
 */
#include <stdio.h>

#include "fw_board.h"

int main(int argc, char **argv)
{
	static struct fw_board b;
	static char cfg[64 * 1024];
	char err[256];
	FILE *f = stdout;
	int n;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s <board.dtb> [out.cfg]\n", argv[0]);
		return 2;
	}
	if (fw_board_load(argv[1], &b, err, sizeof(err)) < 0 ||
	    (n = fw_board_connectivity(&b, cfg, sizeof(cfg), err,
				       sizeof(err))) < 0) {
		fprintf(stderr, "gen_connectivity: %s: %s\n", argv[1], err);
		return 1;
	}
	if (argc == 3 && !(f = fopen(argv[2], "w"))) {
		perror(argv[2]);
		return 1;
	}
	if (fwrite(cfg, 1, (size_t)n, f) != (size_t)n ||
	    (f != stdout ? fclose(f) : fflush(f)) != 0) {
		perror(argc == 3 ? argv[2] : "stdout");
		return 1;
	}
	return 0;
}
