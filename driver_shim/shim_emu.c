/* shim_emu.c — the emulated card: HBM banks in host memory, kernels run as
 * their HLS C-simulation code.
 *
 * Each kernel call is decoded from its argument registers (krnl_abi.h); every
 * buffer argument is bounds-checked against card memory and registered as a
 * port of the kernel's traffic meter (krnl_mem.h).  The kernels' own memory
 * accessor counts every beat they move per port and per bank, so the HBM
 * bytes per token we steer by are measured, not modelled.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include "shim_card.h"
#include "krnl_state.h"
#include "krnl_common.h"
#include "krnl_mem.h"
#include "krnl_embed_gather.h"
#include "krnl_rmsnorm.h"
#include "krnl_rmsnorm_gated.h"
#include "krnl_gemv.h"
#include "krnl_conv1d_step.h"
#include "krnl_deltanet_step.h"
#include "krnl_attn_decode.h"
#include "krnl_moe_router.h"
#include "krnl_expert_ffn.h"
#include "krnl_lm_head_argmax.h"
#include "krnl_sampler.h"

#define EMU_MAX_CU 16

/* The CU threads: the caller takes part in each batch of jobs it posts and
 * waits for the jobs, not for the threads: a worker that wakes late finds
 * nothing left to claim and holds nobody up.  A job is claimed by a
 * compare-and-swap on the ticket (batch << 32 | next job), so a claim can
 * only succeed in the batch whose description the claimer read. */
struct cu_pool {
	uint32_t n;			/* threads, the caller included */
	pthread_t tid[EMU_MAX_CU];
	pthread_mutex_t mu;
	pthread_cond_t go, done_cv;
	atomic_ulong gen;		/* wakes the workers, one per batch */
	_Atomic uint64_t ticket;	/* batch << 32 | next job */
	atomic_uint done;		/* jobs of the batch finished */
	atomic_int stop;
	_Atomic uint32_t njobs;		/* the batch: written only between batches */
	void (*_Atomic fn)(void *arg, uint32_t job);
	void *_Atomic arg;
};

struct emu {
	uint8_t *hbm;
	uint64_t size;		/* end of the highest bank */
	struct fw_ctrl ctrl;	/* host-visible control block (a BAR in real life) */
	struct krnl_meter meter0;	/* bank table of this card, no ports */
	struct cu_pool pool;
	uint32_t cus[KRNL_COUNT];	/* CU threads a call of each kernel may use */
	uint64_t split_min;		/* weight bytes per CU below which a call stays whole */
	void *scratch;			/* a split expert FFN's jobs: kept between calls */
	size_t scratch_bytes;
};

/* The split expert FFN's scratch, grown to bytes (64-byte aligned). */
static void *emu_scratch(struct emu *e, size_t bytes)
{
	if (bytes > e->scratch_bytes) {
		void *p = aligned_alloc(KRNL_BEAT_BYTES, (bytes + 63) / 64 * 64);

		if (!p)
			return NULL;
		free(e->scratch);
		e->scratch = p;
		e->scratch_bytes = bytes;
	}
	return e->scratch;
}

static struct emu *EMU(struct shim_card *c)
{
	return c->priv;
}

static void *mem(struct shim_card *c, uint64_t addr, uint64_t n)
{
	struct emu *e = EMU(c);

	if (addr > e->size || n > e->size - addr)
		return NULL;
	return e->hbm + addr;
}

/* ---- CU threads ------------------------------------------------------------ */

/* Kernel calls follow each other within microseconds during a step: a worker
 * spins this long for the next batch before it sleeps. */
#define CU_SPIN 20000

/* One beat of a spin wait: tell the core (and its sibling thread) we wait. */
static inline void cu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Take and run jobs until none is left. */
static void cu_take(struct cu_pool *pl)
{
	for (;;) {
		uint64_t t = atomic_load_explicit(&pl->ticket, memory_order_acquire);
		uint32_t j = (uint32_t)t, n = atomic_load_explicit(&pl->njobs, memory_order_relaxed);
		void (*fn)(void *, uint32_t) = atomic_load_explicit(&pl->fn, memory_order_relaxed);
		void *arg = atomic_load_explicit(&pl->arg, memory_order_relaxed);

		if (j >= n)
			return;
		/* fails if anyone claimed since t was read: then fn, arg, n may
		 * belong to a later batch, and are read again */
		if (!atomic_compare_exchange_weak_explicit(&pl->ticket, &t, t + 1,
							   memory_order_acq_rel,
							   memory_order_acquire))
			continue;
		fn(arg, j);
		if (atomic_fetch_add_explicit(&pl->done, 1, memory_order_acq_rel) + 1 == n) {
			pthread_mutex_lock(&pl->mu);
			pthread_cond_signal(&pl->done_cv);
			pthread_mutex_unlock(&pl->mu);
		}
	}
}

static void *cu_main(void *arg)
{
	struct cu_pool *pl = arg;
	unsigned long seen = 0;

	for (;;) {
		unsigned long g = atomic_load_explicit(&pl->gen, memory_order_acquire);

		for (uint32_t i = 0; g == seen && i < CU_SPIN; i++) {
			cu_relax();
			g = atomic_load_explicit(&pl->gen, memory_order_acquire);
		}
		if (g == seen) {
			pthread_mutex_lock(&pl->mu);
			while ((g = atomic_load(&pl->gen)) == seen && !atomic_load(&pl->stop))
				pthread_cond_wait(&pl->go, &pl->mu);
			pthread_mutex_unlock(&pl->mu);
		}
		if (atomic_load(&pl->stop))
			return NULL;
		seen = g;
		cu_take(pl);
	}
}

/* fn(arg, j) for j < njobs, over all CU threads; returns when all are done. */
static void cu_run(struct cu_pool *pl, void (*fn)(void *, uint32_t), void *arg, uint32_t njobs)
{
	if (pl->n < 2 || njobs < 2) {
		for (uint32_t j = 0; j < njobs; j++)
			fn(arg, j);
		return;
	}
	/* the last batch is done: nobody can claim until the new ticket */
	atomic_store_explicit(&pl->fn, fn, memory_order_relaxed);
	atomic_store_explicit(&pl->arg, arg, memory_order_relaxed);
	atomic_store_explicit(&pl->njobs, njobs, memory_order_relaxed);
	atomic_store_explicit(&pl->done, 0, memory_order_relaxed);
	atomic_store_explicit(&pl->ticket,
			      ((atomic_load_explicit(&pl->ticket, memory_order_relaxed) >> 32) + 1) << 32,
			      memory_order_release);
	pthread_mutex_lock(&pl->mu);
	atomic_fetch_add_explicit(&pl->gen, 1, memory_order_release);
	pthread_cond_broadcast(&pl->go);
	pthread_mutex_unlock(&pl->mu);
	cu_take(pl);
	for (uint32_t i = 0; atomic_load_explicit(&pl->done, memory_order_acquire) < njobs &&
			     i < CU_SPIN; i++)
		cu_relax();
	pthread_mutex_lock(&pl->mu);
	while (atomic_load(&pl->done) < njobs)
		pthread_cond_wait(&pl->done_cv, &pl->mu);
	pthread_mutex_unlock(&pl->mu);
}

static void cu_start(struct cu_pool *pl, uint32_t n)
{
	pthread_mutex_init(&pl->mu, NULL);
	pthread_cond_init(&pl->go, NULL);
	pthread_cond_init(&pl->done_cv, NULL);
	pl->n = 1;
	for (uint32_t i = 1; i < n; i++) {
		if (pthread_create(&pl->tid[i], NULL, cu_main, pl))
			break;
		pl->n = i + 1;
	}
}

static void cu_stop(struct cu_pool *pl)
{
	pthread_mutex_lock(&pl->mu);
	atomic_store(&pl->stop, 1);
	pthread_cond_broadcast(&pl->go);
	pthread_mutex_unlock(&pl->mu);
	for (uint32_t i = 1; i < pl->n; i++)
		pthread_join(pl->tid[i], NULL);
	pthread_mutex_destroy(&pl->mu);
	pthread_cond_destroy(&pl->go);
	pthread_cond_destroy(&pl->done_cv);
}

/* CU threads: "emu:N", else NEXTCARD_THREADS, else the online cores. */
static uint32_t emu_threads(const char *arg, char *err, size_t errlen)
{
	const char *v = arg && *arg ? arg : getenv("NEXTCARD_THREADS");
	long n;

	if (v && *v) {
		char *end;

		n = strtol(v, &end, 10);
		if (*end || n < 1 || n > EMU_MAX_CU) {
			snprintf(err, errlen, "emulated card threads '%s': want 1..%d", v, EMU_MAX_CU);
			return 0;
		}
		return (uint32_t)n;
	}
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > EMU_MAX_CU ? EMU_MAX_CU : (uint32_t)n;
}

static int emu_open(struct shim_card *c, const char *arg, char *err, size_t errlen)
{
	struct emu *e = calloc(1, sizeof(*e));
	const struct fw_board *b = &c->board;

	if (!e || b->n_banks == 0) {
		snprintf(err, errlen, e ? "board has no memory banks" : "out of memory");
		free(e);
		return -1;
	}
	e->size = b->banks[b->n_banks - 1].base + b->banks[b->n_banks - 1].size;
	/* Untouched pages cost nothing: the card can be as large as the DT says. */
	e->hbm = mmap(NULL, e->size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (e->hbm == MAP_FAILED) {
		snprintf(err, errlen, "cannot map %llu MiB of emulated card memory",
			 (unsigned long long)(e->size >> 20));
		free(e);
		return -1;
	}
	/* Weights stream through it: 2 MiB pages spare the TLB a miss every 4 KiB
	 * (a hint; without transparent huge pages it changes nothing). */
	(void)madvise(e->hbm, e->size, MADV_HUGEPAGE);
	if (b->n_banks > KRNL_METER_BANKS) {
		snprintf(err, errlen, "board has %u banks, the meter counts %u", b->n_banks,
			 KRNL_METER_BANKS);
		munmap(e->hbm, e->size);
		free(e);
		return -1;
	}
	for (uint32_t i = 0; i < b->n_banks; i++) {
		e->meter0.bank_lo[i] = (uintptr_t)(e->hbm + b->banks[i].base);
		e->meter0.bank_hi[i] = (uintptr_t)(e->hbm + b->banks[i].base + b->banks[i].size);
	}
	e->meter0.n_banks = b->n_banks;
	uint32_t nt = emu_threads(arg, err, errlen);
	if (!nt) {
		munmap(e->hbm, e->size);
		free(e);
		return -1;
	}
	/* a kernel gets as many CU threads as the board gives it CUs */
	for (uint32_t i = 0; i < b->n_cus; i++)
		for (uint32_t id = 0; id < KRNL_COUNT; id++)
			if (!strcmp(b->cus[i].kernel, krnl_names[id]) && e->cus[id] < nt)
				e->cus[id]++;
	const char *sm = getenv("NEXTCARD_SPLIT_MIN");
	e->split_min = sm && *sm ? strtoull(sm, NULL, 10) : 256u << 10;
	uint32_t most = 1;
	for (uint32_t id = 0; id < KRNL_COUNT; id++)
		if (e->cus[id] > most)
			most = e->cus[id];
	cu_start(&e->pool, nt < most ? nt : most);
	c->cnt.cu_threads = e->pool.n;
	c->priv = e;
	c->ctrl = &e->ctrl;
	return 0;
}

static void emu_close(struct shim_card *c)
{
	struct emu *e = EMU(c);

	if (!e)
		return;
	cu_stop(&e->pool);
	free(e->scratch);
	munmap(e->hbm, e->size);
	free(e);
	c->priv = NULL;
}

static int emu_read(struct shim_card *c, uint64_t addr, void *dst, uint64_t n)
{
	void *p = mem(c, addr, n);

	if (!p)
		return -1;
	memcpy(dst, p, n);
	return 0;
}

static int emu_write(struct shim_card *c, uint64_t addr, const void *src, uint64_t n)
{
	void *p = mem(c, addr, n);

	if (!p)
		return -1;
	memcpy(p, src, n);
	return 0;
}

static int emu_fill(struct shim_card *c, uint64_t addr, uint8_t v, uint64_t n)
{
	void *p = mem(c, addr, n);

	if (!p)
		return -1;
	memset(p, v, n);
	return 0;
}

static int emu_copy(struct shim_card *c, uint64_t dst, uint64_t src, uint64_t n)
{
	void *d = mem(c, dst, n), *s = mem(c, src, n);

	if (!d || !s)
		return -1;
	memmove(d, s, n);
	return 0;
}

/* The ports of one kernel call: each pointer argument, range-checked and
 * registered with the meter that the kernel's accessor counts into. */
struct port {
	struct shim_card *c;
	const struct krnl_call *k;
	struct krnl_meter m;
	int bad;
	int rc;
};

/* Port arg of the meter spans bytes from ptr, rounded out to whole beats.  A
 * split call also points ports at host scratch: outside every bank, so the
 * meter counts it in no bank and it never reaches the card's counters. */
static void port_at(struct port *p, int arg, void *ptr, uint64_t bytes)
{
	p->m.port[arg].lo = (uintptr_t)ptr;
	p->m.port[arg].hi = (uintptr_t)ptr + (bytes + KRNL_BEAT_BYTES - 1) / KRNL_BEAT_BYTES *
						KRNL_BEAT_BYTES;
	p->m.port[arg].port = (uint16_t)arg;
	if ((uint32_t)arg >= p->m.n_ports)
		p->m.n_ports = (uint32_t)arg + 1;
}

/* What one CU of a split counted, added to the call's meter: every bank, and
 * the ports in mask (bit per argument). */
static void meter_add(struct krnl_meter *to, const struct krnl_meter *from, uint32_t mask)
{
	for (uint32_t b = 0; b < KRNL_METER_BANKS; b++) {
		to->bank_beats[b][0] += from->bank_beats[b][0];
		to->bank_beats[b][1] += from->bank_beats[b][1];
	}
	for (uint32_t a = 0; a < KRNL_METER_PORTS; a++)
		if (mask >> a & 1) {
			to->port_beats[a][0] += from->port_beats[a][0];
			to->port_beats[a][1] += from->port_beats[a][1];
		}
	to->stray_beats[0] += from->stray_beats[0];
	to->stray_beats[1] += from->stray_beats[1];
}

/* The host pointer of pointer argument arg, whose port spans bytes. */
static void *port(struct port *p, int arg, uint64_t bytes)
{
	uint64_t addr = p->k->arg[arg];
	void *ptr = mem(p->c, addr, bytes);

	if (!ptr || addr % KRNL_BEAT_BYTES || arg >= KRNL_METER_PORTS) {
		p->bad = 1;
		return NULL;
	}
	port_at(p, arg, ptr, bytes);
	return ptr;
}

/* Forget what a CU of a split read on port arg: the one-CU kernel reads it
 * once, so only the first CU's reads of a shared input are card traffic. */
static void uncount_reads(struct port *p, int arg)
{
	uint64_t n = p->m.port_beats[arg][0];
	uintptr_t lo = p->m.port[arg].lo, hi = p->m.port[arg].hi;

	for (uint32_t b = 0; n && b < p->m.n_banks; b++)
		if (lo >= p->m.bank_lo[b] && hi <= p->m.bank_hi[b]) {
			p->m.bank_beats[b][0] -= n;
			p->m.port_beats[arg][0] = 0;
			return;
		}
}

/* Beats a row-by-row f32 burst of rows x n at stride s covers. */
static uint64_t burst_beats(uint32_t rows, uint32_t s, uint32_t n)
{
	uint64_t t = 0;

	for (uint32_t r = 0; r < rows; r++) {
		uint64_t off = (uint64_t)r * s;

		t += (off + n + KRNL_F32_PER_BEAT - 1) / KRNL_F32_PER_BEAT - off / KRNL_F32_PER_BEAT;
	}
	return t;
}

/* Bytes of rows of width elements (f32) at a stride. */
static uint64_t rows_bytes(uint32_t rows, uint32_t stride, uint32_t width)
{
	return rows ? ((uint64_t)(rows - 1) * stride + width) * 4 : 0;
}

#define A(i) (k->arg[i])
#define U(i) ((uint32_t)k->arg[i])
#define FL(i) krnl_u2f(k->arg[i])
#define DT_OK(dt) krnl_dt_valid(dt)

static int run_embed(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(EMB_ROWS), dim = U(EMB_DIM), dt = U(EMB_DT);
	int32_t *ids = port(p, EMB_IDS, rows * 4ull);
	uint64_t top = 0;

	if (p->bad || rows > KRNL_MAX_BATCH || dim > KRNL_MAX_HIDDEN || !DT_OK(dt))
		return -1;
	/* the table port reaches the highest row asked for */
	for (uint32_t r = 0; r < rows; r++) {
		if (ids[r] < 0)
			return -1;
		if ((uint64_t)ids[r] + 1 > top)
			top = (uint64_t)ids[r] + 1;
	}
	port(p, EMB_TABLE, krnl_matrix_bytes(dt, top, dim));
	port(p, EMB_OUT, (uint64_t)rows * dim * 4);
	if (p->bad)
		return -1;
	krnl_embed_gather(mem(p->c, A(EMB_IDS), 0), mem(p->c, A(EMB_TABLE), 0),
			  mem(p->c, A(EMB_OUT), 0), rows, dim, dt);
	return 0;
}

static int run_rmsnorm(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(RMS_ROWS), dim = U(RMS_DIM);
	uint64_t n = (uint64_t)rows * dim * 4;
	void *x = port(p, RMS_X, n);
	void *w = port(p, RMS_W, dim * 4ull);
	void *y = port(p, RMS_Y, n);

	if (p->bad || dim > KRNL_MAX_HIDDEN || rows > KRNL_MAX_BATCH * KRNL_MAX_HEADS)
		return -1;
	krnl_rmsnorm(x, w, y, rows, dim, FL(RMS_EPS), FL(RMS_WOFF));
	return 0;
}

static int run_rmsnorm_gated(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(RMG_ROWS), heads = U(RMG_HEADS), dim = U(RMG_DIM);
	uint32_t zs = U(RMG_ZSTRIDE);
	uint64_t n = (uint64_t)rows * heads * dim * 4;
	void *x = port(p, RMG_X, n);
	void *z = port(p, RMG_Z, rows_bytes(rows, zs, heads * dim));
	void *w = port(p, RMG_W, dim * 4ull);
	void *y = port(p, RMG_Y, n);

	if (p->bad || !rows || rows > KRNL_MAX_BATCH || heads > KRNL_MAX_HEADS ||
	    dim > KRNL_MAX_HEAD_DIM || zs < heads * dim)
		return -1;
	krnl_rmsnorm_gated(x, z, w, y, rows, heads, dim, zs, FL(RMG_EPS));
	return 0;
}


static int run_gemv(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(GEMV_ROWS), in = U(GEMV_IN), out = U(GEMV_OUT), dt = U(GEMV_DT);
	uint32_t xs = U(GEMV_XSTRIDE), ys = U(GEMV_YSTRIDE);
	void *x = port(p, GEMV_X, rows_bytes(rows, xs, in));
	void *w = port(p, GEMV_W, krnl_matrix_bytes(dt, out, in));
	void *y = port(p, GEMV_Y, rows_bytes(rows, ys, out));

	if (p->bad || !rows || rows > KRNL_MAX_BATCH || in > KRNL_MAX_HIDDEN ||
	    out > KRNL_MAX_OUT || xs < in || ys < out || !DT_OK(dt))
		return -1;
	krnl_gemv(x, w, y, rows, in, out, xs, ys, dt, U(GEMV_ACC));
	return 0;
}


static int run_gemv_split(struct port *p0, const struct krnl_call *k, uint32_t n);
static uint32_t parts_for(struct emu *e, uint32_t id, uint64_t wbytes, uint32_t most);
static int run_experts_split(struct port *p0, const struct krnl_call *k, uint32_t *cnt);

/* A GEMV on one CU, or split when its weights are worth a handoff. */
static int run_gemv_any(struct port *p, const struct krnl_call *k)
{
	uint32_t out = U(GEMV_OUT), in = U(GEMV_IN), dt = U(GEMV_DT), n;

	if (!DT_OK(dt) || in > KRNL_MAX_HIDDEN || out > KRNL_MAX_OUT)
		return -1;
	n = parts_for(EMU(p->c), KRNL_GEMV, krnl_matrix_bytes(dt, out, in),
		      (out + KRNL_F32_PER_BEAT - 1) / KRNL_F32_PER_BEAT);
	if (n < 2)
		return run_gemv(p, k);
	/* the whole call's ports first: a bad call fails whole */
	struct port chk = *p;
	uint32_t rows = U(GEMV_ROWS), xs = U(GEMV_XSTRIDE), ys = U(GEMV_YSTRIDE);

	port(&chk, GEMV_X, rows_bytes(rows, xs, in));
	port(&chk, GEMV_W, krnl_matrix_bytes(dt, out, in));
	port(&chk, GEMV_Y, rows_bytes(rows, ys, out));
	if (chk.bad || !rows || rows > KRNL_MAX_BATCH || xs < in || ys < out)
		return -1;
	return run_gemv_split(p, k, n);
}

/* Every row's state handle below nblk. */
static int handles_ok(const int32_t *h, uint32_t rows, uint32_t nblk)
{
	for (uint32_t r = 0; r < rows; r++)
		if (h[r] < 0 || (uint32_t)h[r] >= nblk)
			return 0;
	return 1;
}

static int run_conv(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(CONV_ROWS), ch = U(CONV_CH), kk = U(CONV_K), xs = U(CONV_XSTRIDE);
	uint32_t nblk = U(CONV_NBLK);
	uint64_t per = (kk >= 2 ? krnl_conv_block(ch, kk) : 0) * 4;	/* one handle's state */
	void *sv = port(p, CONV_BLOCKS, rows * 8ull);	/* handles in, then out */
	void *x = port(p, CONV_X, rows_bytes(rows, xs, ch));
	void *w = port(p, CONV_W, (uint64_t)ch * kk * 4);
	void *st = port(p, CONV_STATE, per * nblk);

	if (p->bad || !rows || xs < ch || rows > KRNL_MAX_BATCH || ch > KRNL_MAX_CHAN ||
	    kk < 2 || kk > KRNL_MAX_CONV_K || !handles_ok(sv, 2 * rows, nblk))
		return -1;
	krnl_conv1d_step(x, w, st, sv, rows, ch, kk, xs, nblk);
	return 0;
}

static int run_deltanet(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(DN_ROWS), nk = U(DN_NK), nv = U(DN_NV), dk = U(DN_DK), dv = U(DN_DV);
	uint32_t xs = U(DN_XSTRIDE), nblk = U(DN_NBLK);
	uint64_t width = 2ull * nk * dk + (uint64_t)nv * dv;
	uint64_t per = krnl_dn_block(nv, dk, dv) * 4;	/* one handle's state */
	void *qkv = port(p, DN_QKV, rows ? ((uint64_t)(rows - 1) * xs + width) * 4 : 0);
	void *ba = port(p, DN_BA, rows * 2ull * nv * 4);
	void *al = port(p, DN_ALOG, nv * 4ull);
	void *dtb = port(p, DN_DTB, nv * 4ull);
	void *st = port(p, DN_STATE, per * nblk);
	void *sv = port(p, DN_BLOCKS, rows * 8ull);	/* handles in, then out */
	void *out = port(p, DN_OUT, (uint64_t)rows * nv * dv * 4);

	if (p->bad || !rows || xs < width || rows > KRNL_MAX_BATCH || !nk || nv % nk ||
	    nv > KRNL_MAX_HEADS || dk > 256 || dv > 256 || width > KRNL_MAX_CHAN ||
	    !handles_ok(sv, 2 * rows, nblk))
		return -1;
	krnl_deltanet_step(qkv, ba, al, dtb, st, sv, out, rows, nk, nv, dk, dv, xs, nblk);
	return 0;
}

/* One attention call in the given split mode; part: host scratch of
 * part_bytes for the partials (NULL in KRNL_ATTN_WHOLE). */
static int run_attn_mode(struct port *p, const struct krnl_call *k, uint32_t split, float *part,
			 uint64_t part_bytes)
{
	uint32_t rows = U(AT_ROWS), nh = U(AT_NH), nkv = U(AT_NKV), hd = U(AT_HD);
	uint32_t rd = U(AT_RD), tabw = U(AT_TABW), npages = U(AT_NPAGES), nblk = U(AT_NBLK);
	uint32_t kvdt = U(AT_KVDT);
	uint64_t pool = krnl_kv_page(nkv, hd) * krnl_kv_es(kvdt) * npages;
	void *qg = port(p, AT_QG, (uint64_t)rows * 2 * nh * hd * 4);
	void *kk = port(p, AT_K, (uint64_t)rows * nkv * hd * 4);
	void *vv = port(p, AT_V, (uint64_t)rows * nkv * hd * 4);
	void *qn = port(p, AT_QNW, hd * 4ull);
	void *kn = port(p, AT_KNW, hd * 4ull);
	void *kc = port(p, AT_KC, pool);
	void *vc = port(p, AT_VC, pool);
	void *sv = port(p, AT_BLOCKS, rows * 4ull);
	void *pv = port(p, AT_POS, rows * 4ull);
	void *bt = port(p, AT_BT, (uint64_t)nblk * tabw * 4);
	const int32_t *pos = pv;
	void *rope = port(p, AT_ROPE, (uint64_t)rows * rd * 4);
	void *out = port(p, AT_OUT, (uint64_t)rows * nh * hd * 4);

	if (part)
		port_at(p, AT_PART, part, part_bytes);
	if (p->bad || rows > KRNL_MAX_BATCH || !nkv || nh % nkv || nh / nkv > 16 ||
	    nh > KRNL_MAX_HEADS || nkv > nh || hd > KRNL_MAX_HEAD_DIM || rd > hd || rd % 2 ||
	    !npages || (uint64_t)tabw * KRNL_KV_PAGE > KRNL_MAX_CTX || !handles_ok(sv, rows, nblk) ||
	    (kvdt != KRNL_FMT_F32 && kvdt != KRNL_FMT_BF16) || (kvdt == KRNL_FMT_BF16 && hd % 2))
		return -1;
	for (uint32_t r = 0; r < rows; r++)
		if (pos[r] < 0 || (uint32_t)pos[r] >= tabw * KRNL_KV_PAGE)
			return -1;
	krnl_attn_decode(qg, kk, vv, qn, kn, kc, vc, sv, pv, rope, bt, out, (krnl_word *)part,
			 rows, nh, nkv, hd, rd, FL(AT_EPS), tabw, npages, nblk, kvdt, split);
	return 0;
}

static int run_attn_split(struct port *p0, const struct krnl_call *k, uint32_t n,
			  uint32_t nbmax);

/* The firmware asks for whole calls; the emulated card spreads the split-K
 * blocks of a long context over its CU threads when every row is a different
 * sequence (no row reads what another writes). */
static int run_attn(struct port *p, const struct krnl_call *k)
{
	struct emu *e = EMU(p->c);
	uint32_t rows = U(AT_ROWS), nbmax = 0, n;
	const int32_t *h = mem(p->c, A(AT_BLOCKS), rows * 4ull);
	const int32_t *pos = mem(p->c, A(AT_POS), rows * 4ull);

	if (U(AT_SPLIT) != krnl_attn_split(KRNL_ATTN_WHOLE, 0, 0) || rows > KRNL_MAX_BATCH)
		return -1;
	n = e->cus[KRNL_ATTN_DECODE] < e->pool.n ? e->cus[KRNL_ATTN_DECODE] : e->pool.n;
	for (uint32_t r = 0; h && pos && n > 1 && r < rows; r++) {
		uint32_t nb = pos[r] >= 0 ? krnl_attn_blocks((uint32_t)pos[r] / KRNL_KV_PAGE + 1) : 0;

		for (uint32_t q = 0; q < r; q++)
			if (h[q] == h[r])
				n = 1;
		nbmax = nb > nbmax ? nb : nbmax;
	}
	if (n > nbmax)
		n = nbmax;
	if (n < 2)
		return run_attn_mode(p, k, krnl_attn_split(KRNL_ATTN_WHOLE, 0, 0), NULL, 0);
	return run_attn_split(p, k, n, nbmax);
}

static int run_router(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(RT_ROWS), ne = U(RT_NE), topk = U(RT_TOPK);
	void *lg = port(p, RT_LOGITS, (uint64_t)rows * ne * 4);
	void *cnt = port(p, RT_COUNT, ne * 4ull);
	void *list = port(p, RT_LIST, (uint64_t)ne * KRNL_MAX_BATCH * 4);
	void *lw = port(p, RT_LISTW, (uint64_t)ne * KRNL_MAX_BATCH * 4);

	if (p->bad || rows > KRNL_MAX_BATCH || ne > KRNL_MAX_EXPERTS || !topk ||
	    topk > ne || topk > KRNL_MAX_TOPK)
		return -1;
	krnl_moe_router(lg, cnt, list, lw, rows, ne, topk, U(RT_NORM));
	return 0;
}

static int run_experts(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(EF_ROWS), h = U(EF_H), ni = U(EF_I), ne = U(EF_NE), si = U(EF_SI);
	uint32_t dt = U(EF_DT), sdt = U(EF_SDT);
	void *x = port(p, EF_X, (uint64_t)rows * h * 4);
	void *w = port(p, EF_W, ne * krnl_expert_bytes(dt, h, ni));
	uint32_t *cnt = port(p, EF_COUNT, ne * 4ull);
	int32_t *list = port(p, EF_LIST, (uint64_t)ne * KRNL_MAX_BATCH * 4);
	void *lw = port(p, EF_LISTW, (uint64_t)ne * KRNL_MAX_BATCH * 4);
	void *sw = si ? port(p, EF_SW, krnl_expert_bytes(sdt, h, si)) : NULL;
	void *sg = si ? port(p, EF_SGATE, h * 4ull) : NULL;
	void *y = port(p, EF_Y, (uint64_t)rows * h * 4);

	if (p->bad || !rows || rows > KRNL_MAX_BATCH || h > KRNL_MAX_HIDDEN ||
	    ni > KRNL_MAX_INTER || si > KRNL_MAX_INTER || ne > KRNL_MAX_EXPERTS ||
	    !DT_OK(dt) || (si && !DT_OK(sdt)))
		return -1;
	for (uint32_t e = 0; e < ne; e++) {
		if (cnt[e] == 0)
			continue;
		if (cnt[e] > rows)
			return -1;
		for (uint32_t j = 0; j < cnt[e]; j++) {
			int32_t r = list[(uint64_t)e * KRNL_MAX_BATCH + j];
			if (r < 0 || (uint32_t)r >= rows)
				return -1;
		}
		atomic_fetch_add_explicit(&p->c->cnt.experts_fetched, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&p->c->cnt.expert_rows, cnt[e], memory_order_relaxed);
	}
	uint32_t n = EMU(p->c)->pool.n > 1 && EMU(p->c)->cus[KRNL_EXPERT_FFN] > 1 &&
		     p->m.n_banks < KRNL_METER_BANKS &&
		     krnl_expert_bytes(dt, h, ni) >= EMU(p->c)->split_min;
	if (n)
		return run_experts_split(p, k, cnt);
	krnl_expert_ffn(x, w, (void *)cnt, (void *)list, lw, sw, sg, y, rows, h, ni, ne, si,
			dt, sdt);
	return 0;
}

static int run_lm_head_split(struct port *p0, const struct krnl_call *k, uint32_t n);

static int run_lm_head(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(LM_ROWS), h = U(LM_H), v = U(LM_V), dt = U(LM_DT), ls = U(LM_LS);
	void *x = port(p, LM_X, (uint64_t)rows * h * 4);
	void *nw = port(p, LM_NW, h * 4ull);
	void *w = port(p, LM_W, krnl_matrix_bytes(dt, v, h));
	int32_t *dst = port(p, LM_DST, rows * 4ull);
	void *am = port(p, LM_ARGMAX, rows * 4ull);
	uint64_t top = 0;

	if (p->bad || !rows || rows > KRNL_MAX_BATCH || h > KRNL_MAX_HIDDEN ||
	    v > KRNL_MAX_VOCAB || ls < v || ls > KRNL_MAX_VOCAB || !DT_OK(dt))
		return -1;
	/* the logits port reaches the highest row written (dst < 0: none) */
	for (uint32_t r = 0; r < rows; r++)
		if (dst[r] >= 0 && (uint64_t)dst[r] + 1 > top)
			top = (uint64_t)dst[r] + 1;
	void *lg = port(p, LM_LOGITS, top ? (top - 1) * ls * 4 + v * 4ull : 4);
	if (p->bad)
		return -1;
	uint32_t n = parts_for(EMU(p->c), KRNL_LM_HEAD_ARGMAX, krnl_matrix_bytes(dt, v, h),
			       (v + KRNL_F32_PER_BEAT - 1) / KRNL_F32_PER_BEAT);
	/* a slice's argmax is merged by comparing logits: every row must write them */
	for (uint32_t r = 0; r < rows && n > 1; r++)
		if (dst[r] < 0)
			n = 1;
	if (n > 1 && p->m.n_banks < KRNL_METER_BANKS)
		return run_lm_head_split(p, k, n);
	krnl_lm_head_argmax(x, nw, w, lg, (void *)dst, am, rows, h, v, FL(LM_EPS), dt, ls);
	return 0;
}

static int run_sampler(struct port *p, const struct krnl_call *k)
{
	uint32_t rows = U(SMP_ROWS), v = U(SMP_V);
	void *pp = port(p, SMP_PARAMS, rows * (uint64_t)sizeof(struct krnl_sample_params));
	const struct krnl_sample_params *sp = pp;
	void *tok = port(p, SMP_TOKEN, rows * 4ull);
	void *lp = port(p, SMP_LOGPROB, rows * 4ull);
	uint64_t top = 0;

	if (p->bad || rows > KRNL_MAX_BATCH || v == 0 || v > KRNL_MAX_VOCAB)
		return -1;
	/* the logits port reaches the highest row sampled */
	for (uint32_t r = 0; r < rows; r++)
		if ((uint64_t)sp[r].src_row + 1 > top)
			top = (uint64_t)sp[r].src_row + 1;
	void *lg = port(p, SMP_LOGITS, top * v * 4);
	if (p->bad)
		return -1;
	krnl_sampler(lg, pp, tok, lp, rows, v);
	return 0;
}

/* ---- calls split across CU threads -------------------------------------- */

struct split {
	struct shim_card *c;
	struct port *part;		/* one per job: its own meter */
	struct krnl_call *call;		/* GEMV: each job's slice */
	/* expert FFN */
	const struct krnl_call *k;
	const int32_t *cnt;
	float *y1;			/* the jobs' scratch (job_at) */
	int32_t *eid;			/* per job: expert, or -1 the shared one */
};

static void gemv_job(void *arg, uint32_t j)
{
	struct split *sp = arg;
	struct port *p = &sp->part[j];

	krnl_meter_cur = &p->m;
	p->rc = run_gemv(p, &sp->call[j]);
	krnl_meter_cur = NULL;
}

/* How many CUs a call of this kernel with this many weight bytes uses. */
static uint32_t parts_for(struct emu *e, uint32_t id, uint64_t wbytes, uint32_t most)
{
	uint32_t n = e->cus[id] < e->pool.n ? e->cus[id] : e->pool.n;

	if (n > most)
		n = most;
	while (n > 1 && wbytes / n < e->split_min)
		n--;
	return n ? n : 1;
}

/* A GEMV in blocks of 16 output rows per CU (each y write stays on whole
 * beats); each output is computed exactly as by one CU. */
static int run_gemv_split(struct port *p0, const struct krnl_call *k, uint32_t n)
{
	uint32_t out = U(GEMV_OUT), in = U(GEMV_IN), dt = U(GEMV_DT);
	uint32_t blocks = (out + KRNL_F32_PER_BEAT - 1) / KRNL_F32_PER_BEAT;
	uint64_t rb = krnl_row_beats(dt, in);
	struct krnl_call call[EMU_MAX_CU];
	struct port part[EMU_MAX_CU];
	struct split sp = { .c = p0->c, .part = part, .call = call };

	for (uint32_t j = 0; j < n; j++) {
		uint32_t lo = blocks * j / n * KRNL_F32_PER_BEAT;
		uint32_t hi = j + 1 == n ? out : blocks * (j + 1) / n * KRNL_F32_PER_BEAT;

		call[j] = *k;
		call[j].arg[GEMV_W] += (uint64_t)lo * rb * KRNL_BEAT_BYTES;
		call[j].arg[GEMV_Y] += (uint64_t)lo * 4;
		call[j].arg[GEMV_OUT] = hi - lo;
		part[j] = *p0;
		part[j].k = &call[j];
	}
	atomic_fetch_add_explicit(&p0->c->cnt.split_calls, 1, memory_order_relaxed);
	cu_run(&EMU(p0->c)->pool, gemv_job, &sp, n);
	for (uint32_t j = 0; j < n; j++) {
		if (j)
			uncount_reads(&part[j], GEMV_X);
		if (part[j].rc)
			p0->rc = part[j].rc;
		meter_add(&p0->m, &part[j].m, ~0u);
	}
	return p0->rc;
}

/* A job's rows, rounded to whole beats. */
#define YROWS(rows, h) (((uint64_t)(rows) * (h) + 15) / 16 * 16)

/* One job's scratch: its count, list and list weights (a beat each), then
 * its rows of x and of contributions. */
struct ejob {
	int32_t cnt[KRNL_F32_PER_BEAT], list[KRNL_MAX_BATCH];
	float lw[KRNL_MAX_BATCH];
};

static struct ejob *job_at(const struct split *sp, uint32_t j, float **x, float **y)
{
	uint64_t rows = YROWS(sp->k->arg[EF_ROWS], sp->k->arg[EF_H]);
	uint8_t *b = (uint8_t *)sp->y1 + j * (sizeof(struct ejob) + 2 * rows * 4);

	*x = (float *)(void *)(b + sizeof(struct ejob));
	*y = *x + rows;
	return (struct ejob *)(void *)b;
}

/* One job of a split expert FFN: a routed expert on just the rows that
 * chose it (gathered, renumbered from 0), or the shared expert on every row,
 * run by the kernel on rows of zeros so that they end as that expert's
 * contributions, scale * down(...), rounded as the kernel rounds them. */
static void expert_job(void *arg, uint32_t j)
{
	struct split *sp = arg;
	const struct krnl_call *k = sp->k;
	struct port *p = &sp->part[j];
	struct shim_card *c = sp->c;
	uint32_t rows = U(EF_ROWS), h = U(EF_H), ni = U(EF_I), dt = U(EF_DT);
	int32_t e = sp->eid[j];
	float *xc, *yc;
	struct ejob *jb = job_at(sp, j, &xc, &yc);

	if (e < 0) {	/* the shared expert: no routed one (ne 0) */
		memset(yc, 0, (uint64_t)rows * h * 4);
		port_at(p, EF_COUNT, jb->cnt, 4);
		port_at(p, EF_Y, yc, (uint64_t)rows * h * 4);
		krnl_meter_cur = &p->m;
		krnl_expert_ffn(mem(c, A(EF_X), 0), mem(c, A(EF_W), 0), (void *)jb->cnt,
				mem(c, A(EF_LIST), 0), mem(c, A(EF_LISTW), 0), mem(c, A(EF_SW), 0),
				mem(c, A(EF_SGATE), 0), (void *)yc, rows, h, ni, 0, U(EF_SI), dt,
				U(EF_SDT));
		krnl_meter_cur = NULL;
		return;
	}
	const int32_t *list = (const int32_t *)mem(c, A(EF_LIST), 0) + (uint64_t)e * KRNL_MAX_BATCH;
	const float *lw = (const float *)mem(c, A(EF_LISTW), 0) + (uint64_t)e * KRNL_MAX_BATCH;
	const float *x = mem(c, A(EF_X), 0);
	uint32_t n = (uint32_t)sp->cnt[e];
	uint64_t eb = krnl_expert_bytes(dt, h, ni);
	uint8_t *w = (uint8_t *)mem(c, A(EF_W), 0) + (uint64_t)e * eb;

	jb->cnt[0] = (int32_t)n;
	for (uint32_t i = 0; i < n; i++) {
		jb->list[i] = (int32_t)i;
		jb->lw[i] = lw[i];
		memcpy(xc + (uint64_t)i * h, x + (uint64_t)list[i] * h, h * 4ull);
	}
	memset(yc, 0, (uint64_t)n * h * 4);
	port_at(p, EF_X, xc, (uint64_t)n * h * 4);
	port_at(p, EF_W, w, eb);
	port_at(p, EF_COUNT, jb->cnt, 4);
	port_at(p, EF_LIST, jb->list, n * 4ull);
	port_at(p, EF_LISTW, jb->lw, n * 4ull);
	port_at(p, EF_Y, yc, (uint64_t)n * h * 4);
	krnl_meter_cur = &p->m;
	krnl_expert_ffn((void *)xc, (void *)w, (void *)jb->cnt, (void *)jb->list, (void *)jb->lw,
			NULL, NULL, (void *)yc, n, h, ni, 1, 0, dt, U(EF_SDT));
	krnl_meter_cur = NULL;
}

/* The expert FFN by expert over the CU threads, then each expert's rows
 * added to the residual stream in the kernel's order (experts by index, the
 * shared one last): the same additions of the same values as one CU.  The
 * counters get the one-CU kernel's traffic: the experts' weights (and the
 * shared gate) as the jobs read them; x, the counts, each expert's list and
 * list weights and y read and written, once, as one CU reads them. */
static int run_experts_split(struct port *p0, const struct krnl_call *k, uint32_t *cnt)
{
	struct emu *em = EMU(p0->c);
	uint32_t rows = U(EF_ROWS), h = U(EF_H), ne = U(EF_NE), si = U(EF_SI);
	const int32_t *list = mem(p0->c, A(EF_LIST), 0);
	float *y = mem(p0->c, A(EF_Y), 0);
	uint32_t nj = 0;
	struct split sp = { .c = p0->c, .k = k, .cnt = (const int32_t *)cnt };
	int32_t eid[KRNL_MAX_EXPERTS + 1];

	/* one job per selected expert, then the shared one */
	for (uint32_t e = 0; e < ne; e++)
		if (cnt[e])
			eid[nj++] = (int32_t)e;
	if (si)
		eid[nj++] = -1;
	size_t pb = (sizeof(struct port) * nj + 63) / 64 * 64;
	size_t jbytes = sizeof(struct ejob) + 2 * YROWS(rows, h) * 4;
	uint8_t *scr = emu_scratch(em, pb + jbytes * nj);
	if (!scr)
		return -1;
	sp.eid = eid;
	sp.part = (struct port *)(void *)scr;
	sp.y1 = (float *)(void *)(scr + pb);
	for (uint32_t j = 0; j < nj; j++)
		sp.part[j] = *p0;
	atomic_fetch_add_explicit(&p0->c->cnt.split_calls, 1, memory_order_relaxed);
	cu_run(&em->pool, expert_job, &sp, nj);
	for (uint32_t j = 0; j < nj; j++) {
		float *xc, *c1;
		int32_t e = sp.eid[j];

		job_at(&sp, j, &xc, &c1);
		if (e < 0)
			uncount_reads(&sp.part[j], EF_X);	/* counted once below */
		for (uint32_t i = 0; i < (e >= 0 ? cnt[e] : rows); i++) {
			uint32_t r = e >= 0 ? (uint32_t)list[(uint64_t)e * KRNL_MAX_BATCH + i] : i;

			for (uint32_t o = 0; o < h; o++)
				y[(uint64_t)r * h + o] += c1[(uint64_t)i * h + o];
		}
		meter_add(&p0->m, &sp.part[j].m, 1u << EF_W | 1u << EF_SW | 1u << EF_SGATE);
	}
	/* what the one-CU kernel moves on the ports the jobs kept to themselves */
	const krnl_word *xw = mem(p0->c, A(EF_X), 0), *yw = (const krnl_word *)(const void *)y;
	const krnl_word *lw = mem(p0->c, A(EF_LIST), 0), *ww = mem(p0->c, A(EF_LISTW), 0);

	krnl_meter_cur = &p0->m;
	for (uint32_t r = 0; r < rows; r++) {
		uint64_t off = (uint64_t)r * h, nb = burst_beats(1, 0,
					(uint32_t)(off % KRNL_F32_PER_BEAT) + h);

		KRNL_METER(xw + off / KRNL_F32_PER_BEAT, nb, 0);
		KRNL_METER(yw + off / KRNL_F32_PER_BEAT, nb, 0);
		KRNL_METER(yw + off / KRNL_F32_PER_BEAT, nb, 1);
	}
	KRNL_METER(mem(p0->c, A(EF_COUNT), 0), burst_beats(1, 0, ne), 0);
	for (uint32_t e = 0; e < ne; e++)
		if (cnt[e]) {	/* n <= 16 entries from a beat boundary: one beat each */
			KRNL_METER(lw + e, 1, 0);
			KRNL_METER(ww + e, 1, 0);
		}
	krnl_meter_cur = NULL;
	return 0;
}

/* One CU's slice of the vocabulary: vocab rows [lo, hi), its argmax into
 * host scratch (an index into the slice). */
struct lm_split {
	struct shim_card *c;
	const struct krnl_call *k;
	struct port *part;
	uint32_t lo[EMU_MAX_CU], hi[EMU_MAX_CU];
	int32_t am[EMU_MAX_CU][KRNL_MAX_BATCH];
};

static void lm_job(void *arg, uint32_t j)
{
	struct lm_split *sp = arg;
	const struct krnl_call *k = sp->k;
	struct shim_card *c = sp->c;
	struct port *p = &sp->part[j];
	uint32_t h = U(LM_H), dt = U(LM_DT), lo = sp->lo[j], n = sp->hi[j] - lo;
	uint8_t *w = (uint8_t *)mem(c, A(LM_W), 0) + krnl_matrix_bytes(dt, lo, h);
	float *lg = (float *)mem(c, A(LM_LOGITS), 0) + lo;

	port_at(p, LM_W, w, krnl_matrix_bytes(dt, n, h));
	port_at(p, LM_LOGITS, lg, p->m.port[LM_LOGITS].hi - (uintptr_t)lg);
	port_at(p, LM_ARGMAX, sp->am[j], sizeof(sp->am[j]));
	krnl_meter_cur = &p->m;
	krnl_lm_head_argmax(mem(c, A(LM_X), 0), mem(c, A(LM_NW), 0), (void *)w, (void *)lg,
			    mem(c, A(LM_DST), 0), (void *)sp->am[j], U(LM_ROWS), h, n, FL(LM_EPS),
			    dt, U(LM_LS));
	krnl_meter_cur = NULL;
}

/* The lm_head in blocks of 16 vocabulary rows per CU (logits land where one
 * CU puts them); each row's argmax is the first largest logit over the slices
 * in order, as one CU's strict comparison finds it. */
static int run_lm_head_split(struct port *p0, const struct krnl_call *k, uint32_t n)
{
	uint32_t rows = U(LM_ROWS), v = U(LM_V), ls = U(LM_LS);
	uint32_t blocks = (v + KRNL_F32_PER_BEAT - 1) / KRNL_F32_PER_BEAT;
	const int32_t *dst = mem(p0->c, A(LM_DST), 0);
	const float *lg = mem(p0->c, A(LM_LOGITS), 0);
	int32_t *am = mem(p0->c, A(LM_ARGMAX), 0);
	struct port part[EMU_MAX_CU];
	struct lm_split s = { .c = p0->c, .k = k, .part = part }, *sp = &s;

	for (uint32_t j = 0; j < n; j++) {
		sp->lo[j] = blocks * j / n * KRNL_F32_PER_BEAT;
		sp->hi[j] = j + 1 == n ? v : blocks * (j + 1) / n * KRNL_F32_PER_BEAT;
		part[j] = *p0;
	}
	atomic_fetch_add_explicit(&p0->c->cnt.split_calls, 1, memory_order_relaxed);
	cu_run(&EMU(p0->c)->pool, lm_job, sp, n);
	for (uint32_t r = 0; r < rows; r++) {
		const float *row = lg + (uint64_t)dst[r] * ls;
		uint32_t best = sp->lo[0] + (uint32_t)sp->am[0][r];

		for (uint32_t j = 1; j < n; j++) {
			uint32_t i = sp->lo[j] + (uint32_t)sp->am[j][r];

			if (row[i] > row[best])
				best = i;
		}
		am[r] = (int32_t)best;
	}
	for (uint32_t j = 0; j < n; j++) {
		if (j) {	/* the batch, the norm weight and dst: read once by one CU */
			uncount_reads(&part[j], LM_X);
			uncount_reads(&part[j], LM_NW);
			uncount_reads(&part[j], LM_DST);
		}
		meter_add(&p0->m, &part[j].m, 1u << LM_W);
	}
	/* the argmax write of one CU */
	krnl_meter_cur = &p0->m;
	KRNL_METER(am, burst_beats(1, 0, rows), 1);
	krnl_meter_cur = NULL;
	return 0;
}

struct attn_split {
	struct port *part;
	const struct krnl_call *k;
	uint32_t nbmax, n;
	float *scratch;
	uint64_t bytes;
};

static void attn_job(void *arg, uint32_t j)
{
	struct attn_split *sp = arg;
	struct port *p = &sp->part[j];
	uint32_t lo = sp->nbmax * j / sp->n, hi = sp->nbmax * (j + 1) / sp->n;

	krnl_meter_cur = &p->m;
	p->rc = run_attn_mode(p, sp->k, krnl_attn_split(KRNL_ATTN_PART, lo, hi), sp->scratch,
			      sp->bytes);
	krnl_meter_cur = NULL;
}

/* Split-K over n CUs: CU j folds blocks [nbmax j/n, nbmax (j+1)/n) of every
 * row into partials, then the partials are merged in block order: the same
 * bits as one CU (krnl_attn_decode.c).  Counted as one CU: only the first
 * job's reads of the inputs every job reads, and the merge's of the gates. */
static int run_attn_split(struct port *p0, const struct krnl_call *k, uint32_t n,
			  uint32_t nbmax)
{
	struct emu *e = EMU(p0->c);
	uint32_t rows = U(AT_ROWS), nh = U(AT_NH), nkv = U(AT_NKV), hd = U(AT_HD);
	uint64_t bytes = (uint64_t)rows * nkv * krnl_attn_blocks(U(AT_TABW)) *
			 krnl_attn_part_w(nh, nkv, hd) * 4;
	struct port part[EMU_MAX_CU], pm;
	struct attn_split sp = { .part = part, .k = k, .nbmax = nbmax, .n = n };
	static const int shared[] = { AT_QG, AT_QNW, AT_KNW, AT_BLOCKS, AT_POS, AT_ROPE };

	if (!nkv || !rows)
		return -1;
	sp.bytes = bytes;
	sp.scratch = emu_scratch(e, bytes);
	if (!sp.scratch)
		return -1;
	for (uint32_t j = 0; j < n; j++)
		part[j] = *p0;
	atomic_fetch_add_explicit(&p0->c->cnt.split_calls, 1, memory_order_relaxed);
	cu_run(&e->pool, attn_job, &sp, n);
	for (uint32_t j = 0; j < n; j++) {
		for (uint32_t i = 0; j && i < sizeof(shared) / sizeof(shared[0]); i++)
			uncount_reads(&part[j], shared[i]);
		if (part[j].rc)
			p0->rc = part[j].rc;
		meter_add(&p0->m, &part[j].m, ~0u);
	}
	if (p0->rc)
		return p0->rc;
	pm = *p0;
	memcpy(&pm.m, &e->meter0, sizeof(pm.m));
	krnl_meter_cur = &pm.m;
	pm.rc = run_attn_mode(&pm, k, krnl_attn_split(KRNL_ATTN_MERGE, 0, 0), sp.scratch, bytes);
	krnl_meter_cur = &p0->m;
	uncount_reads(&pm, AT_BLOCKS);
	uncount_reads(&pm, AT_POS);
	meter_add(&p0->m, &pm.m, ~0u);
	return pm.rc;
}

static int dispatch(struct port *p, const struct krnl_call *k)
{
	switch (k->id) {
	case KRNL_EMBED_GATHER:	return run_embed(p, k);
	case KRNL_RMSNORM:	return run_rmsnorm(p, k);
	case KRNL_RMSNORM_GATED: return run_rmsnorm_gated(p, k);
	case KRNL_GEMV:		return run_gemv_any(p, k);
	case KRNL_CONV1D_STEP:	return run_conv(p, k);
	case KRNL_DELTANET_STEP: return run_deltanet(p, k);
	case KRNL_ATTN_DECODE:	return run_attn(p, k);
	case KRNL_MOE_ROUTER:	return run_router(p, k);
	case KRNL_EXPERT_FFN:	return run_experts(p, k);
	case KRNL_LM_HEAD_ARGMAX: return run_lm_head(p, k);
	case KRNL_SAMPLER:	return run_sampler(p, k);
	default:		return -1;
	}
}

/* Run one kernel under its meter, then fold what it moved into the card's
 * counters.  A beat outside every port is a kernel bug: the run fails. */
static int emu_run(struct shim_card *c, const struct krnl_call *k)
{
	struct emu *e = EMU(c);
	struct port *p = malloc(sizeof(*p));
	struct shim_counters *n = &c->cnt;
	uint64_t rd = 0, wr = 0, ewb = 0;
	int rc;

	if (!p)
		return -1;
	memcpy(&p->m, &e->meter0, sizeof(p->m));
	p->c = c;
	p->k = k;
	p->bad = 0;
	p->rc = 0;
	krnl_meter_cur = &p->m;
	rc = dispatch(p, k);
	krnl_meter_cur = NULL;
	if (rc == 0 && (p->m.stray_beats[0] || p->m.stray_beats[1]))
		rc = -1;
	for (uint32_t b = 0; b < p->m.n_banks; b++) {
		uint64_t br = p->m.bank_beats[b][0] * KRNL_BEAT_BYTES;
		uint64_t bw = p->m.bank_beats[b][1] * KRNL_BEAT_BYTES;
		if (br)
			atomic_fetch_add_explicit(&n->bank_rd[b], br, memory_order_relaxed);
		if (bw)
			atomic_fetch_add_explicit(&n->bank_wr[b], bw, memory_order_relaxed);
		rd += br;
		wr += bw;
	}
	if (k->id == KRNL_EXPERT_FFN)
		ewb = p->m.port_beats[EF_W][0] * KRNL_BEAT_BYTES;
	free(p);
	if (k->id < KRNL_COUNT) {
		atomic_fetch_add_explicit(&n->krnl_rd[k->id], rd, memory_order_relaxed);
		atomic_fetch_add_explicit(&n->krnl_wr[k->id], wr, memory_order_relaxed);
		atomic_fetch_add_explicit(&n->expert_weight_bytes, ewb, memory_order_relaxed);
	}
	return rc;
}

/* A reset loses what card memory held, as a real card's may: every page of
 * the emulated HBM reads zeros after it (and costs nothing until touched). */
static int emu_reset(struct shim_card *c, char *err, size_t errlen)
{
	struct emu *e = EMU(c);

	if (madvise(e->hbm, e->size, MADV_DONTNEED)) {
		snprintf(err, errlen, "reset: cannot clear the emulated card memory: %s",
			 strerror(errno));
		return -1;
	}
	return 0;
}

const struct shim_backend shim_emu_backend = {
	.name = "emu",
	.open = emu_open,
	.close = emu_close,
	.reset = emu_reset,
	.run = emu_run,
	.read = emu_read,
	.write = emu_write,
	.fill = emu_fill,
	.copy = emu_copy,
};
