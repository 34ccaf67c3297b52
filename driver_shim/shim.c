/* shim.c — opening a card, the firmware thread, DMA and counters. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "shim_card.h"

uint64_t shim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void shim_account(struct shim_card *c, int k, uint64_t addr, uint64_t n, int wr)
{
	const struct fw_board *b = &c->board;

	if (k >= 0 && k < KRNL_COUNT)
		atomic_fetch_add_explicit(wr ? &c->cnt.krnl_wr[k] : &c->cnt.krnl_rd[k], n,
					  memory_order_relaxed);
	for (uint32_t i = 0; i < b->n_banks && i < SHIM_MAX_BANKS && n; i++) {
		uint64_t lo = b->banks[i].base, hi = lo + b->banks[i].size;

		if (addr >= hi || addr + n <= lo)
			continue;
		uint64_t s = addr > lo ? addr : lo, e = addr + n < hi ? addr + n : hi;
		atomic_fetch_add_explicit(wr ? &c->cnt.bank_wr[i] : &c->cnt.bank_rd[i],
					  e - s, memory_order_relaxed);
	}
}

/* HAL glue: the firmware's view of this card. */
static int hal_run(void *ctx, const struct krnl_call *k)
{
	struct shim_card *c = ctx;
	uint64_t t0 = shim_now_ns();
	int rc;

	if (k->id >= KRNL_COUNT)
		return -EINVAL;
	if (c->fault_kind && atomic_fetch_add_explicit(&c->calls, 1, memory_order_relaxed) + 1 ==
			     atomic_load_explicit(&c->fault_at, memory_order_relaxed)) {
		if (c->fault_kind == SHIM_FAULT_HANG)	/* until a reset: the card is closed */
			while (!atomic_load_explicit(&c->stop, memory_order_acquire))
				usleep(1000);
		return -EIO;
	}
	rc = c->be->run(c, k);
	atomic_fetch_add_explicit(&c->cnt.krnl_calls[k->id], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->cnt.krnl_ns[k->id], shim_now_ns() - t0,
				  memory_order_relaxed);
	return rc;
}

static int hal_read(void *ctx, uint64_t addr, void *dst, uint64_t n)
{
	struct shim_card *c = ctx;

	atomic_fetch_add_explicit(&c->cnt.fw_rd, n, memory_order_relaxed);
	shim_account(c, -1, addr, n, 0);
	return c->be->read(c, addr, dst, n);
}

static int hal_write(void *ctx, uint64_t addr, const void *src, uint64_t n)
{
	struct shim_card *c = ctx;

	atomic_fetch_add_explicit(&c->cnt.fw_wr, n, memory_order_relaxed);
	shim_account(c, -1, addr, n, 1);
	return c->be->write(c, addr, src, n);
}

static int hal_fill(void *ctx, uint64_t addr, uint8_t v, uint64_t n)
{
	struct shim_card *c = ctx;

	atomic_fetch_add_explicit(&c->cnt.fw_wr, n, memory_order_relaxed);
	shim_account(c, -1, addr, n, 1);
	return c->be->fill(c, addr, v, n);
}

static int hal_copy(void *ctx, uint64_t dst, uint64_t src, uint64_t n)
{
	struct shim_card *c = ctx;
	uint8_t buf[16384];

	atomic_fetch_add_explicit(&c->cnt.fw_rd, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->cnt.fw_wr, n, memory_order_relaxed);
	shim_account(c, -1, src, n, 0);
	shim_account(c, -1, dst, n, 1);
	if (c->be->copy)
		return c->be->copy(c, dst, src, n);
	for (uint64_t at = 0; at < n; at += sizeof(buf)) {
		uint64_t k = n - at < sizeof(buf) ? n - at : sizeof(buf);

		if (c->be->read(c, src + at, buf, k) || c->be->write(c, dst + at, buf, k))
			return -1;
	}
	return 0;
}

static uint64_t hal_now(void *ctx)
{
	(void)ctx;
	return shim_now_ns();
}

/* Absolute CLOCK_REALTIME deadline ns from now, for pthread_cond_timedwait. */
static struct timespec deadline(uint64_t ns)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ns += (uint64_t)ts.tv_nsec;
	ts.tv_sec += (time_t)(ns / 1000000000ull);
	ts.tv_nsec = (long)(ns % 1000000000ull);
	return ts;
}

/* The firmware's processor: poll the rings; after a unit of work tell a
 * waiting host; when idle, sleep until the doorbell (or 1 ms, the bound on
 * anything the host posts without ringing). */
static void *fw_thread(void *arg)
{
	struct shim_card *c = arg;
	unsigned idle = 0;

	while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
		unsigned bell = atomic_load_explicit(&c->doorbell, memory_order_acquire);
		int rc = fw_service(&c->fw);

		if (rc > 0) {
			idle = 0;
			atomic_fetch_add_explicit(&c->res_seq, 1, memory_order_release);
			pthread_mutex_lock(&c->ev_mu);
			pthread_cond_broadcast(&c->res_cv);
			pthread_mutex_unlock(&c->ev_mu);
			continue;
		}
		if (++idle < 64) {
			sched_yield();
			continue;
		}
		struct timespec ts = deadline(1000000);
		pthread_mutex_lock(&c->ev_mu);
		while (atomic_load_explicit(&c->doorbell, memory_order_acquire) == bell &&
		       !atomic_load_explicit(&c->stop, memory_order_acquire) &&
		       pthread_cond_timedwait(&c->cmd_cv, &c->ev_mu, &ts) == 0)
			;
		pthread_mutex_unlock(&c->ev_mu);
	}
	return NULL;
}

unsigned shim_result_seq(struct shim_card *c)
{
	return atomic_load_explicit(&c->res_seq, memory_order_acquire);
}

void shim_wait_result(struct shim_card *c, unsigned seen, uint64_t timeout_ns)
{
	struct timespec ts = deadline(timeout_ns);

	pthread_mutex_lock(&c->ev_mu);
	while (atomic_load_explicit(&c->res_seq, memory_order_acquire) == seen &&
	       pthread_cond_timedwait(&c->res_cv, &c->ev_mu, &ts) == 0)
		;
	pthread_mutex_unlock(&c->ev_mu);
}

static int boot(struct shim_card *c, char *err, size_t errlen);

static int read_file(const char *path, void **buf, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (long)FW_MAX_DTB ||
	    fseek(f, 0, SEEK_SET)) {
		snprintf(err, errlen, "%s: not a readable board DTB (size)", path);
		fclose(f);
		return -1;
	}
	*buf = malloc(n ? (size_t)n : 1);
	if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
		snprintf(err, errlen, "%s: read failed", path);
		free(*buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	*len = (size_t)n;
	return 0;
}

struct shim_card *shim_open(const char *spec, const char *dtb_path, char *err,
			    size_t errlen)
{
	const struct shim_backend *be;
	const char *arg = "";
	struct shim_card *c;
	void *dtb = NULL;
	size_t len = 0;
	char e2[256];

	if (!spec || !strcmp(spec, "emu")) {
		be = &shim_emu_backend;
	} else if (!strncmp(spec, "emu:", 4)) {
		be = &shim_emu_backend;	/* emu:N, N compute-unit threads */
		arg = spec + 4;
	} else if (!strncmp(spec, "xrt", 3) && (spec[3] == 0 || spec[3] == ':')) {
		be = &shim_xrt_backend;
		arg = spec[3] ? spec + 4 : "0";
	} else {
		snprintf(err, errlen, "unknown card '%s' (want emu, emu:THREADS, xrt or xrt:N)", spec);
		return NULL;
	}
	if (read_file(dtb_path, &dtb, &len, err, errlen))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		free(dtb);
		return NULL;
	}
	c->be = be;
	if (fw_board_parse(dtb, len, &c->board, e2, sizeof(e2))) {
		snprintf(err, errlen, "%s: %s", dtb_path, e2);
		goto fail;
	}
	if (be->open(c, arg, err, errlen))
		goto fail;
	c->dtb = dtb;
	c->dtb_len = len;
	pthread_mutex_init(&c->ev_mu, NULL);
	pthread_cond_init(&c->res_cv, NULL);
	pthread_cond_init(&c->cmd_cv, NULL);
	c->ev_up = 1;
	if (boot(c, e2, sizeof(e2))) {
		snprintf(err, errlen, "%s: %s", dtb_path, e2);
		shim_close(c);
		return NULL;
	}
	return c;
fail:
	free(dtb);
	free(c);
	return NULL;
}

/* Boot the firmware from the board's DTB and start its thread. */
static int boot(struct shim_card *c, char *err, size_t errlen)
{
	struct fw_hal hal = {
		.ctx = c, .run = hal_run, .read = hal_read, .write = hal_write,
		.fill = hal_fill, .copy = hal_copy, .now_ns = hal_now, .ctrl = c->ctrl,
	};

	if (fw_boot(&c->fw, &hal, c->dtb, c->dtb_len)) {
		snprintf(err, errlen, "firmware boot: %s", c->ctrl->error);
		return -1;
	}
	atomic_store_explicit(&c->stop, 0, memory_order_release);
	if (pthread_create(&c->thread, NULL, fw_thread, c)) {
		snprintf(err, errlen, "cannot start the firmware thread");
		return -1;
	}
	c->thread_up = 1;
	return 0;
}

/* Stop the firmware's processor; a kernel that hangs is let go (as a reset
 * aborts it on a real card). */
static void halt(struct shim_card *c)
{
	if (!c->thread_up)
		return;
	atomic_store_explicit(&c->stop, 1, memory_order_release);
	shim_kick(c);
	pthread_join(c->thread, NULL);
	c->thread_up = 0;
}

int shim_reset(struct shim_card *c, char *err, size_t errlen)
{
	halt(c);
	atomic_store(&c->fault_kind, SHIM_FAULT_NONE);	/* an injected fault fires once */
	if (c->be->reset && c->be->reset(c, err, errlen))
		return -1;
	return boot(c, err, errlen);
}

void shim_close(struct shim_card *c)
{
	if (!c)
		return;
	halt(c);
	if (c->ev_up) {
		pthread_cond_destroy(&c->res_cv);
		pthread_cond_destroy(&c->cmd_cv);
		pthread_mutex_destroy(&c->ev_mu);
	}
	c->be->close(c);
	free(c->dtb);
	free(c);
}

int shim_inject_fault(struct shim_card *c, const char *spec, char *err, size_t errlen)
{
	const char *at = spec ? strchr(spec, '@') : NULL;
	char *end;
	unsigned long long n;
	int kind;

	if (at && (size_t)(at - spec) == 5 && !strncmp(spec, "error", 5))
		kind = SHIM_FAULT_ERROR;
	else if (at && (size_t)(at - spec) == 4 && !strncmp(spec, "hang", 4))
		kind = SHIM_FAULT_HANG;
	else
		return snprintf(err, errlen, "fault '%s': want error@N or hang@N", spec ? spec : ""), -1;
	errno = 0;
	n = strtoull(at + 1, &end, 10);
	if (errno || end == at + 1 || *end || n == 0)
		return snprintf(err, errlen, "fault '%s': N must be a kernel call count >= 1", spec), -1;
	atomic_store(&c->fault_at, atomic_load(&c->calls) + n);
	c->fault_kind = kind;
	return 0;
}

struct fw_ctrl *shim_ctrl(struct shim_card *c)
{
	return c->ctrl;
}

int shim_write(struct shim_card *c, uint64_t addr, const void *src, uint64_t n)
{
	atomic_fetch_add_explicit(&c->cnt.dma_wr, n, memory_order_relaxed);
	return c->be->write(c, addr, src, n);
}

int shim_read(struct shim_card *c, uint64_t addr, void *dst, uint64_t n)
{
	atomic_fetch_add_explicit(&c->cnt.dma_rd, n, memory_order_relaxed);
	return c->be->read(c, addr, dst, n);
}

void shim_kick(struct shim_card *c)
{
	atomic_fetch_add_explicit(&c->doorbell, 1, memory_order_release);
	if (c->ev_up) {
		pthread_mutex_lock(&c->ev_mu);
		pthread_cond_broadcast(&c->cmd_cv);
		pthread_mutex_unlock(&c->ev_mu);
	}
}

const char *shim_backend(const struct shim_card *c)
{
	return c->be->name;
}

#define LD(x) atomic_load_explicit(&(x), memory_order_relaxed)

void shim_get_stats(struct shim_card *c, struct shim_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->n_banks = c->board.n_banks < SHIM_MAX_BANKS ? c->board.n_banks : SHIM_MAX_BANKS;
	for (uint32_t i = 0; i < SHIM_MAX_BANKS; i++) {
		st->bank_rd[i] = LD(c->cnt.bank_rd[i]);
		st->bank_wr[i] = LD(c->cnt.bank_wr[i]);
	}
	for (int k = 0; k < KRNL_COUNT; k++) {
		st->krnl_calls[k] = LD(c->cnt.krnl_calls[k]);
		st->krnl_rd[k] = LD(c->cnt.krnl_rd[k]);
		st->krnl_wr[k] = LD(c->cnt.krnl_wr[k]);
		st->krnl_ns[k] = LD(c->cnt.krnl_ns[k]);
	}
	st->fw_rd = LD(c->cnt.fw_rd);
	st->fw_wr = LD(c->cnt.fw_wr);
	st->dma_rd = LD(c->cnt.dma_rd);
	st->dma_wr = LD(c->cnt.dma_wr);
	st->experts_fetched = LD(c->cnt.experts_fetched);
	st->split_calls = LD(c->cnt.split_calls);
	st->cu_threads = c->cnt.cu_threads;
	st->expert_rows = LD(c->cnt.expert_rows);
	st->expert_weight_bytes = LD(c->cnt.expert_weight_bytes);
}

void shim_reset_stats(struct shim_card *c)
{
	_Atomic uint64_t *v = (_Atomic uint64_t *)&c->cnt;

	/* counters only: every member is an _Atomic uint64_t */
	for (size_t i = 0; i < sizeof(c->cnt) / sizeof(*v); i++)
		atomic_store_explicit(&v[i], 0, memory_order_relaxed);
}
