/* shim_card.h — internals shared by the generic card layer and its backends.
 *
 * Both backends run the same firmware in a host thread; they differ only in
 * what a kernel run and a card memory access are (the register/BO layer).
 */
#ifndef SHIM_CARD_H
#define SHIM_CARD_H

#include <pthread.h>
#include <stdatomic.h>
#include "fw.h"
#include "shim.h"

struct shim_card;

struct shim_backend {
	const char *name;
	int (*open)(struct shim_card *c, const char *arg, char *err, size_t errlen);
	void (*close)(struct shim_card *c);
	/* before the firmware boots again in shim_reset; NULL: nothing to do */
	int (*reset)(struct shim_card *c, char *err, size_t errlen);
	int (*run)(struct shim_card *c, const struct krnl_call *k);
	int (*read)(struct shim_card *c, uint64_t addr, void *dst, uint64_t n);
	int (*write)(struct shim_card *c, uint64_t addr, const void *src, uint64_t n);
	int (*fill)(struct shim_card *c, uint64_t addr, uint8_t v, uint64_t n);
	/* card to card; NULL: through host memory with read and write */
	int (*copy)(struct shim_card *c, uint64_t dst, uint64_t src, uint64_t n);
};

struct shim_counters {
	_Atomic uint64_t bank_rd[SHIM_MAX_BANKS], bank_wr[SHIM_MAX_BANKS];
	_Atomic uint64_t krnl_calls[KRNL_COUNT], krnl_rd[KRNL_COUNT], krnl_wr[KRNL_COUNT];
	_Atomic uint64_t krnl_ns[KRNL_COUNT];
	_Atomic uint64_t fw_rd, fw_wr, dma_rd, dma_wr;
	_Atomic uint64_t experts_fetched, expert_rows, expert_weight_bytes;
	_Atomic uint64_t split_calls;
	uint32_t cu_threads;
};

struct shim_card {
	const struct shim_backend *be;
	void *priv;			/* backend state */
	struct fw_board board;		/* as the host read the DTB */
	struct fw_ctrl *ctrl;		/* set by the backend's open */
	struct fw fw;			/* the firmware's memory */
	pthread_t thread;
	int thread_up;
	atomic_int stop;
	atomic_uint doorbell;
	/* Events between the firmware thread and the host, so neither spins:
	 * results posted (res_seq, res_cv) and commands rung (doorbell, cmd_cv). */
	pthread_mutex_t ev_mu;
	pthread_cond_t res_cv, cmd_cv;
	atomic_uint res_seq;
	int ev_up;
	struct shim_counters cnt;
	/* an injected fault (shim_inject_fault): at kernel call fault_at */
	atomic_int fault_kind;		/* SHIM_FAULT_* */
	_Atomic uint64_t calls, fault_at;
	void *dtb;			/* the board's DTB, booted again by a reset */
	size_t dtb_len;
};

/* Count n bytes at addr against the banks they fall in (and kernel k, or -1). */
void shim_account(struct shim_card *c, int k, uint64_t addr, uint64_t n, int wr);
uint64_t shim_now_ns(void);

extern const struct shim_backend shim_emu_backend;
extern const struct shim_backend shim_xrt_backend;

#endif
