/* shim.h — the card seen from the host.
 *
 * The only layer that knows whether the card is real.  A card is opened from a
 * spec ("emu", or "xrt" / "xrt:N" for a real card through libxrt) and a board
 * DTB; the host then talks to the firmware only through the control block
 * (rings, mailbox) and moves bulk data with DMA-style read/write of card
 * addresses.
 */
#ifndef SHIM_H
#define SHIM_H

#include <stddef.h>
#include <stdint.h>
#include "fw_ring.h"
#include "krnl_abi.h"

#define SHIM_MAX_BANKS 64

struct shim_card;

/* HBM traffic as the card's memory system saw it. */
struct shim_stats {
	uint32_t n_banks;
	uint64_t bank_rd[SHIM_MAX_BANKS], bank_wr[SHIM_MAX_BANKS];
	uint64_t krnl_calls[KRNL_COUNT];
	uint64_t krnl_rd[KRNL_COUNT], krnl_wr[KRNL_COUNT];
	uint64_t krnl_ns[KRNL_COUNT];
	uint64_t fw_rd, fw_wr;		/* firmware's own control accesses */
	uint64_t dma_rd, dma_wr;	/* host <-> card transfers */
	uint64_t experts_fetched;	/* distinct expert blocks read by krnl_expert_ffn */
	uint64_t expert_rows;		/* (row, expert) pairs they served */
	uint64_t expert_weight_bytes;	/* routed-expert weight bytes read */
	uint32_t cu_threads;		/* emulated card: compute-unit threads (else 0) */
	uint64_t split_calls;		/* kernel calls split across CU threads */
};

/* Open a card.  spec: "emu" | "emu:THREADS" | "xrt" | "xrt:N"; dtb_path: the board's DTB.
 * Returns NULL with a one-line reason in err. */
struct shim_card *shim_open(const char *spec, const char *dtb_path, char *err,
			    size_t errlen);
void shim_close(struct shim_card *card);

/* Reset a card that failed: its firmware stops (a kernel that hangs is let
 * go), boots again from the board's DTB and waits to be configured, as after
 * shim_open; the control block stays where it is, cleared.  What was in card
 * memory must be loaded again.  0, or -1 with err. */
int shim_reset(struct shim_card *card, char *err, size_t errlen);

/* The host-visible control block (rings, mailbox, published layout). */
struct fw_ctrl *shim_ctrl(struct shim_card *card);

/* DMA between host memory and card memory.  0 or negative on a bad range. */
int shim_write(struct shim_card *card, uint64_t addr, const void *src, uint64_t n);
int shim_read(struct shim_card *card, uint64_t addr, void *dst, uint64_t n);

/* Tell the firmware there is a new command (a doorbell). */
void shim_kick(struct shim_card *card);

/* Results: a counter the firmware bumps after every unit of work, and a wait
 * until it moves past `seen` (or timeout_ns passes).  Read the counter before
 * polling the result ring and no wakeup is lost. */
unsigned shim_result_seq(struct shim_card *card);
void shim_wait_result(struct shim_card *card, unsigned seen, uint64_t timeout_ns);

void shim_get_stats(struct shim_card *card, struct shim_stats *st);
void shim_reset_stats(struct shim_card *card);

/* "emu" or "xrt". */
const char *shim_backend(const struct shim_card *card);

/* Inject a card fault for the tests: spec "KIND@N", the Nth kernel call from
 * now fails.  KIND: "error" (the call returns an error, as a kernel that
 * reports one or an XRT run that ends in ERT_CMD_STATE_ERROR) or "hang" (the
 * call never returns, until the card is closed).  0, or -1 with err. */
enum { SHIM_FAULT_NONE = 0, SHIM_FAULT_ERROR, SHIM_FAULT_HANG };
int shim_inject_fault(struct shim_card *card, const char *spec, char *err, size_t errlen);

#endif
