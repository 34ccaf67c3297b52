/* fw_board.h — the card as its device tree describes it.
 *
 * The firmware parses the board's DTB once at boot into struct fw_board and
 * never touches the blob again: no fdt calls in the token loop.  The binding
 * (node and property names) is documented in docs/boards.md.
 *
 * Errors follow libfdt: functions return 0 (or a length) on success and a
 * negative FW_BOARD_ERR_* code on failure, with a one-line message naming the
 * node path and property written into the caller's err buffer.  Nothing is
 * allocated; every array is fixed-size.
 */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stddef.h>
#include <stdint.h>

#define FW_MAX_BANKS	64
#define FW_MAX_NICS	8
#define FW_MAX_CUS	32
#define FW_MAX_PORTS	16
#define FW_MAX_SLRS	8
#define FW_MAX_DTB	(1u << 20)	/* fw_board_load refuses larger files */

enum fw_board_err {
	FW_BOARD_OK = 0,
	FW_BOARD_ERR_INVAL = 1,		/* NULL argument */
	FW_BOARD_ERR_BADDTB = 2,	/* not a DTB, or a broken structure */
	FW_BOARD_ERR_TRUNCATED = 3,	/* header totalsize > bytes given */
	FW_BOARD_ERR_NOTFOUND = 4,	/* required node or property missing */
	FW_BOARD_ERR_BADLEN = 5,	/* property has the wrong length */
	FW_BOARD_ERR_BADVALUE = 6,	/* property value out of its domain */
	FW_BOARD_ERR_TOOMANY = 7,	/* a count exceeds a FW_MAX_* limit */
	FW_BOARD_ERR_OVERLAP = 8,	/* banks overlap or are not sorted */
	FW_BOARD_ERR_IO = 9,		/* fw_board_load could not read the file */
	FW_BOARD_ERR_NOSPACE = 10,	/* output buffer too small */
	FW_BOARD_ERR_FLOW = 11,		/* board has no v++ (xclbin) flow */
	FW_BOARD_ERR_MAX = 11,
};

struct fw_bank {
	char name[16];		/* node name, e.g. "hbm@20000000" */
	char type[8];		/* "hbm" or "ddr" */
	uint64_t base, size;	/* bytes, card address space */
	uint64_t bw_bytes_per_s; /* theoretical peak of this bank */
	uint32_t type_index;	/* index among banks of the same type: HBM[n] */
};

struct fw_port {
	char arg[32];		/* kernel argument name (the m_axi port) */
	uint32_t bank_lo, bank_hi; /* inclusive range of indices into banks[] */
};

struct fw_cu {
	char kernel[32];	/* e.g. "krnl_gemv" */
	char name[32];		/* compute unit name, e.g. "gemv_1" */
	uint32_t slr;
	uint32_t n_ports;
	struct fw_port ports[FW_MAX_PORTS];
};

struct fw_board {
	char model[64];		/* e.g. "AMD Alveo U55C" */
	char compatible[64];	/* first compatible string */
	char platform[128];	/* XRT platform name, "" when there is none */
	char flow[16];		/* "xclbin", "aved", "hdk" or "emu" */
	uint32_t n_banks;
	struct fw_bank banks[FW_MAX_BANKS];	/* sorted by base */
	uint64_t hbm_bytes;	/* sum over hbm banks */
	uint64_t hbm_bw_bytes_per_s; /* sum over hbm banks */
	uint32_t kernel_clock_mhz;
	uint32_t has_cpu;	/* number of embedded processor cores, 0: none */
	uint32_t n_slrs;
	uint32_t n_nics;
	uint32_t nic_gbps[FW_MAX_NICS];
	uint32_t n_cus;
	struct fw_cu cus[FW_MAX_CUS];
};

/* Parse and validate a DTB of len bytes into *b (zeroed first).
 * Returns 0, or -FW_BOARD_ERR_{INVAL,BADDTB,TRUNCATED,NOTFOUND,BADLEN,
 * BADVALUE,TOOMANY,OVERLAP}; err then holds "<node path>: <what>". */
int fw_board_parse(const void *dtb, size_t len, struct fw_board *b,
		   char *err, size_t errlen);

/* Map the file at dtb_path (no malloc) and fw_board_parse it.
 * Adds -FW_BOARD_ERR_IO to fw_board_parse's codes. */
int fw_board_load(const char *dtb_path, struct fw_board *b,
		  char *err, size_t errlen);

/* Write the v++ [connectivity] config for b into out (NUL-terminated).
 * Returns its length, or -FW_BOARD_ERR_{INVAL,FLOW,NOSPACE,BADVALUE}. */
int fw_board_connectivity(const struct fw_board *b, char *out, size_t outlen,
			  char *err, size_t errlen);

/* Index of the bank holding [addr, addr+len), or -FW_BOARD_ERR_NOTFOUND. */
int fw_board_bank_of(const struct fw_board *b, uint64_t addr, uint64_t len);

/* Static string for a code (either sign). */
const char *fw_board_strerror(int code);

#endif /* FW_BOARD_H */
