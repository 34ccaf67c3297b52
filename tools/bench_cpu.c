/* bench_cpu.c — the emulated card on this CPU, per weight format, against the
 * machine's own memory bandwidth.
 *
 *   build/tools/bench_cpu [--model DIR] [--reps N] [--threads N]
 *
 * Without --model it benchmarks the benchmark shape (tools/bench/bench-729m.json,
 * 729M parameters, 168M active), synthesized once with `nextcard synth --dtype
 * f16` into build/bench/b729 and reused after.  For each format (f16 as stored,
 * bf16, int8:64, int4:64) and each CU-thread count of the emulated card (1,
 * then --threads, by default the machine's cores; the board caps it at its
 * CUs per kernel) one engine is opened and, per repetition, measures:
 *
 *   decode   one sequence, an 8-token prompt, 32 new tokens; decode steps only,
 *            between a snapshot at the first token and one at the end (as
 *            `nextcard generate --stats` does);
 *   prefill  a 128-token prompt, from submit to its first token;
 *   bytes    HBM bytes the kernels read per decoded token (the card's counters),
 *            and bytes x tokens/s, the bandwidth the card used.
 *
 * Repetitions (--reps, 3 by default) are interleaved (each format once, then
 * again; one thread count after the other, so only its four engines are open)
 * and the medians printed, with the range of decode.  The same run
 * measures the machine's memory read bandwidth (sum of a 1 GiB float array,
 * with 1 and 2 threads) so the card's figure reads as a fraction of what this
 * CPU can stream with as many threads as the card used.
 */
#include <limits.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "model/engine.h"
#include "model/image.h"

#define MAX_REPS	9
#define DECODE_PROMPT	8	/* tokens of the decode run's prompt */
#define DECODE_NEW	32	/* tokens it generates: the first from prefill, 31 decode steps */
#define PREFILL_PROMPT	128	/* tokens of the prefill run's prompt */
#define CTX_LIMIT	256	/* positions per sequence: room for both runs */
#define STREAM_BYTES	(1ull << 30)
#define STREAM_THREADS	2
#define WAIT_MS		600000

/* llama.cpp on the same shape and VM, 2 threads: quoted from the emulated-card
 * issue, not measured by this tool. */
#define LLAMA_F16	69.8
#define LLAMA_Q8_0	93.0

extern char **environ;

struct fmt {
	const char *name;
	const char *quant;	/* --quant plan; NULL: as stored */
	uint32_t threads;	/* asked of the emulated card */
	uint32_t cu;		/* it ran on (the board caps it) */
	struct nc_engine *e;
	int reopen;		/* too much memory to keep open: open per repetition */
	double floor;		/* active-weight floor per token, bytes */
	double dec[MAX_REPS], pre[MAX_REPS], bpt[MAX_REPS];
};

static const struct fmt formats[] = {
	{ .name = "f16" },
	{ .name = "bf16", .quant = "experts=bf16,attn=bf16,shared=bf16,head=bf16" },
	{ .name = "int8:64", .quant = "int8:64" },
	{ .name = "int4:64", .quant = "int4:64" },
};
#define N_FORMATS (sizeof(formats) / sizeof(formats[0]))
#define N_MAX (2 * N_FORMATS)

static struct fmt fmts[N_MAX];	/* every format at 1 thread, then at --threads */
static size_t N_FMTS;

/* llama.cpp on the same shape and VM, 2 threads, prefill of 128 tokens:
 * quoted from the emulated-card issue, not measured by this tool. */
#define LLAMA_F16_PRE	249.0
#define LLAMA_Q8_0_PRE	323.0

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Sort a copy of v[0..n) into s. */
static void sorted(const double *v, int n, double *s)
{
	memcpy(s, v, n * sizeof(*v));
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
			double t = s[j];
			s[j] = s[j - 1];
			s[j - 1] = t;
		}
}

static double median(const double *v, int n)
{
	double s[MAX_REPS];

	sorted(v, n, s);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* A field of /proc/self/status or /proc/meminfo, in bytes (they say kB). */
static double proc_kb(const char *file, const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	double v = 0;
	FILE *f = fopen(file, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtod(line + kl + 1, NULL) * 1024;
			break;
		}
	fclose(f);
	return v;
}

/* ---- the machine's memory read bandwidth ---- */

typedef float v4f __attribute__((vector_size(16)));	/* one SSE register */

static volatile float stream_sink;

struct stream_part {
	const v4f *a;
	size_t n;		/* vectors */
	float sum;
};

static void *stream_sum(void *arg)
{
	struct stream_part *p = arg;
	v4f s0 = { 0 }, s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
	const v4f *a = p->a;

	/* 8 independent sums in registers: the adds never wait on each other */
	for (size_t i = 0; i + 8 <= p->n; i += 8) {
		s0 += a[i];
		s1 += a[i + 1];
		s2 += a[i + 2];
		s3 += a[i + 3];
		s4 += a[i + 4];
		s5 += a[i + 5];
		s6 += a[i + 6];
		s7 += a[i + 7];
	}
	s0 += s1 + s2 + s3 + s4 + s5 + s6 + s7;
	p->sum = s0[0] + s0[1] + s0[2] + s0[3];
	return NULL;
}

/* Seconds to sum n vectors with nt threads, each its contiguous share. */
static double stream_once(const v4f *a, size_t n, int nt)
{
	struct stream_part part[STREAM_THREADS];
	pthread_t tid[STREAM_THREADS];
	size_t share = n / nt;
	double t0 = now();
	float sum = 0;

	for (int i = 0; i < nt; i++) {
		part[i] = (struct stream_part){ .a = a + i * share, .n = share };
		if (i && pthread_create(&tid[i], NULL, stream_sum, &part[i]))
			return -1;
	}
	stream_sum(&part[0]);
	for (int i = 1; i < nt; i++)
		pthread_join(tid[i], NULL);
	double dt = now() - t0;
	for (int i = 0; i < nt; i++)
		sum += part[i].sum;
	stream_sink = sum;	/* keep the sums live */
	return dt;
}

/* GB/s reading a 1 GiB float array, median of reps, for 1 and 2 threads. */
static int stream_bw(int reps, double gbs[STREAM_THREADS])
{
	size_t n = STREAM_BYTES / sizeof(v4f);
	v4f *a = aligned_alloc(64, STREAM_BYTES), one = { 0 };
	double t[MAX_REPS];

	if (!a) {
		fprintf(stderr, "bench_cpu: cannot allocate the 1 GiB bandwidth array\n");
		return -1;
	}
	for (int l = 0; l < 4; l++)
		one[l] = 0.5f;
	for (size_t i = 0; i < n; i++)	/* touch every page before timing */
		a[i] = one;
	for (int nt = 1; nt <= STREAM_THREADS; nt++) {
		for (int r = 0; r < reps; r++) {
			t[r] = stream_once(a, n, nt);
			if (t[r] <= 0) {
				fprintf(stderr, "bench_cpu: cannot start a bandwidth thread\n");
				free(a);
				return -1;
			}
		}
		gbs[nt - 1] = STREAM_BYTES / median(t, reps) / 1e9;
		fprintf(stderr, "bench_cpu: memory read, %d thread%s: %.2f GB/s\n", nt,
			nt > 1 ? "s" : "", gbs[nt - 1]);
	}
	free(a);
	return 0;
}

/* ---- the benchmark model ---- */

/* The repository root from this binary's place (build/tools/bench_cpu), as ""
 * when it is the working directory, else "ROOT/". */
static void repo_root(char *buf, size_t len)
{
	char exe[PATH_MAX - 64], cwd[PATH_MAX];	/* leaves room for "build/..." */
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	buf[0] = 0;
	if (n <= 0)
		return;
	exe[n] = 0;
	for (int up = 0; up < 3; up++) {	/* bench_cpu, tools, build */
		char *slash = strrchr(exe, '/');
		if (!slash)
			return;
		*slash = 0;
	}
	if (getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, exe))
		return;
	snprintf(buf, len, "%s/", exe);
}

/* Synthesize the benchmark shape into dir unless it holds a checkpoint. */
static int ensure_model(const char *root, const char *dir)
{
	char st[PATH_MAX + 32], bin[PATH_MAX], cfg[PATH_MAX], parent[PATH_MAX];
	struct stat sb;
	pid_t pid;
	int status;

	snprintf(st, sizeof(st), "%s/model.safetensors", dir);
	if (!stat(st, &sb))
		return 0;
	snprintf(bin, sizeof(bin), "%sbuild/nextcard", root);
	snprintf(cfg, sizeof(cfg), "%stools/bench/bench-729m.json", root);
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash) {
		*slash = 0;
		if (mkdir(parent, 0755) && stat(parent, &sb)) {
			fprintf(stderr, "bench_cpu: cannot create %s\n", parent);
			return -1;
		}
	}
	char *argv[] = { bin, "synth", "--config", cfg, "--out", (char *)dir, "--dtype", "f16", NULL };
	fprintf(stderr, "bench_cpu: no %s: %s synth --config %s --out %s --dtype f16"
		" (about 10 s, 1.4 GB)\n", st, bin, cfg, dir);
	if (posix_spawn(&pid, bin, NULL, NULL, argv, environ)) {
		fprintf(stderr, "bench_cpu: cannot run %s (make build/nextcard first)\n", bin);
		return -1;
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "bench_cpu: %s synth failed; no benchmark model in %s\n", bin, dir);
		return -1;
	}
	if (stat(st, &sb)) {
		fprintf(stderr, "bench_cpu: synth wrote no %s\n", st);
		return -1;
	}
	return 0;
}

/* ---- one format ---- */

static int open_fmt(struct fmt *f, const char *dir, double mem_total)
{
	struct nc_engine_opts o = { .model_dir = dir, .ctx_limit = CTX_LIMIT, .quant = f->quant,
				    .threads = f->threads };
	char err[512];
	double t0 = now();

	fprintf(stderr, "bench_cpu: %s: loading%s\n", f->name, f->quant ? " and converting" : "");
	if (nc_engine_open(&f->e, &o, err, sizeof(err))) {
		fprintf(stderr, "bench_cpu: %s: %s\n", f->name, err);
		f->e = NULL;
		return -1;
	}
	f->floor = nc_active_floor(&f->e->cfg);
	struct nc_card_snap sn;
	nc_engine_snapshot(f->e, &sn);
	f->cu = sn.st.cu_threads;
	/* file pages are the checkpoint's mapping, shared by every engine: the
	 * private (anonymous) part is what each open engine adds */
	double rss = proc_kb("/proc/self/status", "VmRSS");
	double anon = proc_kb("/proc/self/status", "RssAnon");
	fprintf(stderr, "bench_cpu: %s: %s, loaded in %.1f s; process RSS %.2f GB, %.2f GB private\n",
		f->name, f->e->formats, now() - t0, rss / 1e9, anon / 1e9);
	if (!f->reopen && mem_total > 0 && anon > mem_total / 3) {
		fprintf(stderr, "bench_cpu: %s: private memory over a third of the machine's %.1f GB:"
			" reopened for each repetition\n", f->name, mem_total / 1e9);
		f->reopen = 1;
	}
	return 0;
}

/* Run one request to its last result; snapshot *first at its first token. */
static int run_req(struct fmt *f, const int32_t *ids, uint32_t n, uint32_t max_new,
		   struct nc_card_snap *first)
{
	struct nc_engine *e = f->e;
	struct fw_res r;
	uint32_t slot;
	char err[256];

	if (nc_engine_submit(e, ids, n, max_new, 0, NULL, 0, 0, &slot, err, sizeof(err))) {
		fprintf(stderr, "bench_cpu: %s: %s\n", f->name, err);
		return -1;
	}
	for (;;) {
		int w = nc_engine_wait(e, &r, WAIT_MS);

		if (w <= 0) {
			fprintf(stderr, "bench_cpu: %s: card %s: %s\n", f->name,
				w ? "failed" : "stalled", e->ctrl->error);
			return -1;
		}
		if (r.kind == FW_RES_ACK && r.status) {
			fprintf(stderr, "bench_cpu: %s: request refused: %s\n", f->name, e->ctrl->error);
			return -1;
		}
		if (r.kind != FW_RES_TOKEN)
			continue;
		if (r.flags & FW_RF_FIRST)
			nc_engine_snapshot(e, first);
		if (r.flags & FW_RF_LAST)
			return 0;
	}
}

static int measure(struct fmt *f, int rep)
{
	struct nc_card_snap sp, s0, s1;
	int32_t ids[PREFILL_PROMPT];
	uint32_t vocab = f->e->cfg.vocab;
	double rd = 0;

	/* decode: one sequence, steps after its first token */
	for (uint32_t i = 0; i < DECODE_PROMPT; i++)
		ids[i] = (int32_t)((1 + i) % vocab);
	if (run_req(f, ids, DECODE_PROMPT, DECODE_NEW, &s0))
		return -1;
	nc_engine_snapshot(f->e, &s1);
	double tokens = (double)(s1.rows - s0.rows), dec_s = (double)(s1.ns - s0.ns) / 1e9;
	for (int k = 0; k < KRNL_COUNT; k++)
		rd += (double)(s1.st.krnl_rd[k] - s0.st.krnl_rd[k]);
	if (tokens < 1 || dec_s <= 0) {
		fprintf(stderr, "bench_cpu: %s: no decode step measured\n", f->name);
		return -1;
	}
	f->dec[rep] = tokens / dec_s;
	f->bpt[rep] = rd / tokens;

	/* prefill: submit to first token */
	for (uint32_t i = 0; i < PREFILL_PROMPT; i++)
		ids[i] = (int32_t)((i * 131 + 7) % vocab);
	nc_engine_snapshot(f->e, &sp);
	if (run_req(f, ids, PREFILL_PROMPT, 1, &s0))
		return -1;
	f->pre[rep] = PREFILL_PROMPT / ((double)(s0.ns - sp.ns) / 1e9);
	fprintf(stderr, "bench_cpu: rep %d %-8s x%u decode %.1f tokens/s (%.0f steps), %.1f MB/token;"
		" prefill %.1f tokens/s\n", rep + 1, f->name, f->cu, f->dec[rep], tokens,
		f->bpt[rep] / 1e6, f->pre[rep]);
	return 0;
}

/* A bar per row and llama.cpp's quoted figures, decode then prefill, scaled
 * to the largest: the plot in docs/performance.md. */
static void bar(const char *label, double v, double top)
{
	int n = top > 0 ? (int)(v / top * 50 + 0.5) : 0;

	printf("  %-22s %7.1f |", label, v);
	for (int i = 0; i < n; i++)
		putchar('#');
	putchar('\n');
}

static void plot(int reps)
{
	for (int pre = 0; pre < 2; pre++) {
		double top = pre ? LLAMA_Q8_0_PRE : LLAMA_Q8_0;
		char label[64];

		for (size_t i = 0; i < N_FMTS; i++) {
			double v = median(pre ? fmts[i].pre : fmts[i].dec, reps);
			top = v > top ? v : top;
		}
		printf("%s tokens/s (emulated card: CU threads; llama.cpp: quoted, 2 threads)\n",
		       pre ? "prefill of 128" : "decode");
		for (size_t i = 0; i < N_FMTS; i++) {
			snprintf(label, sizeof(label), "%s x%u", fmts[i].name, fmts[i].cu);
			bar(label, median(pre ? fmts[i].pre : fmts[i].dec, reps), top);
		}
		bar("llama.cpp f16", pre ? LLAMA_F16_PRE : LLAMA_F16, top);
		bar("llama.cpp q8_0", pre ? LLAMA_Q8_0_PRE : LLAMA_Q8_0, top);
	}
}

static void close_all(void)
{
	for (size_t i = 0; i < N_FMTS; i++) {
		nc_engine_close(fmts[i].e);
		fmts[i].e = NULL;
	}
}

int main(int argc, char **argv)
{
	char root[PATH_MAX - 32], defdir[PATH_MAX];
	const char *dir = NULL;
	double gbs[STREAM_THREADS], mem_total = proc_kb("/proc/meminfo", "MemTotal");
	int reps = 3;
	long nt = sysconf(_SC_NPROCESSORS_ONLN);

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--model") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nt = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_cpu [--model DIR] [--reps N] [--threads N]\n");
			return 2;
		}
	}
	if (nt < 1 || nt > 16) {
		fprintf(stderr, "bench_cpu: --threads wants 1..16\n");
		return 2;
	}
	for (uint32_t t = 1; t <= (uint32_t)nt; t = t == 1 && nt > 1 ? (uint32_t)nt : t + (uint32_t)nt)
		for (size_t i = 0; i < N_FORMATS; i++) {
			fmts[N_FMTS] = formats[i];
			fmts[N_FMTS++].threads = t;
		}
	if (reps < 1 || reps > MAX_REPS) {
		fprintf(stderr, "bench_cpu: --reps wants 1..%d\n", MAX_REPS);
		return 2;
	}
	repo_root(root, sizeof(root));
	if (!dir) {
		snprintf(defdir, sizeof(defdir), "%sbuild/bench/b729", root);
		dir = defdir;
		if (ensure_model(root, dir))
			return 1;
	}
	double t0 = now();
	if (stream_bw(reps, gbs))
		return 1;
	/* one thread count at a time (its engines open together), its formats
	 * interleaved over the repetitions */
	for (size_t g = 0; g < N_FMTS; g += N_FORMATS) {
		for (int r = 0; r < reps; r++)
			for (size_t i = g; i < g + N_FORMATS; i++) {
				struct fmt *f = &fmts[i];

				if (!f->e && open_fmt(f, dir, mem_total))
					goto fail;
				if (measure(f, r))
					goto fail;
				if (f->reopen) {
					nc_engine_close(f->e);
					f->e = NULL;
				}
			}
		close_all();
	}
	fprintf(stderr, "bench_cpu: done in %.0f s; peak RSS %.2f GB, %.2f GB private now\n",
		now() - t0, proc_kb("/proc/self/status", "VmHWM") / 1e9,
		proc_kb("/proc/self/status", "RssAnon") / 1e9);

	printf("emulated card, model %s, batch 1; medians of %d interleaved runs\n", dir, reps);
	printf("decode: %u-token prompt, %u new tokens, decode steps only; prefill: %u-token prompt"
	       " to its first token\n", DECODE_PROMPT, DECODE_NEW, PREFILL_PROMPT);
	printf("memory read (sum of a 1 GiB float array): 1 thread %.2f GB/s, %d threads %.2f GB/s\n",
	       gbs[0], STREAM_THREADS, gbs[STREAM_THREADS - 1]);
	printf("%-8s %7s %12s %9s %13s %13s %14s %15s %11s\n", "format", "threads", "bytes/token",
	       "vs floor", "decode tok/s", "(min-max)", "prefill tok/s", "effective GB/s",
	       "eff/STREAM");
	for (size_t i = 0; i < N_FMTS; i++) {
		struct fmt *f = &fmts[i];
		double b = median(f->bpt, reps), d = median(f->dec, reps), s[MAX_REPS];
		double eff = b * d / 1e9;
		uint32_t st = f->cu < 1 ? 1 : f->cu > STREAM_THREADS ? STREAM_THREADS : f->cu;

		sorted(f->dec, reps, s);
		printf("%-8s %7u %9.1f MB %9.3f %13.1f %6.1f-%-6.1f %14.1f %15.2f %11.2f\n", f->name,
		       f->cu, b / 1e6, b / f->floor, d, s[0], s[reps - 1], median(f->pre, reps), eff,
		       eff / gbs[st - 1]);
	}
	/* the last thread count's f16 and int8 rows against llama.cpp's */
	const struct fmt *f16 = &fmts[N_FMTS - N_FORMATS], *i8 = &fmts[N_FMTS - N_FORMATS + 2];
	printf("vs llama.cpp (quoted from the issue, measured there on this VM with 2 threads, not"
	       " here), %u CU threads: decode f16 %.1f / %.1f = %.2fx, int8:64 vs q8_0 %.1f / %.1f"
	       " = %.2fx; prefill f16 %.1f / %.1f = %.2fx, int8:64 vs q8_0 %.1f / %.1f = %.2fx\n",
	       f16->cu, median(f16->dec, reps), LLAMA_F16, median(f16->dec, reps) / LLAMA_F16,
	       median(i8->dec, reps), LLAMA_Q8_0, median(i8->dec, reps) / LLAMA_Q8_0,
	       median(f16->pre, reps), LLAMA_F16_PRE, median(f16->pre, reps) / LLAMA_F16_PRE,
	       median(i8->pre, reps), LLAMA_Q8_0_PRE, median(i8->pre, reps) / LLAMA_Q8_0_PRE);
	plot(reps);
	close_all();
	return 0;
fail:
	close_all();
	return 1;
}
