/* test_xrt.c — the XRT backend against Debian's libxrt 2.13 in noop mode.
 *
 * noop accepts everything and computes nothing, so outputs are never
 * checked.  What is checked is what noop cannot fake: that libxrt accepts
 * mkxclbin's container, that xrtKernelArgGroupId gives every port the banks
 * of the board DTB, the bank groups and their BO sizes, the direction and
 * size of every sync, the CU chosen for a call, the sub-buffer cache, and the
 * refusal of a buffer a port cannot reach.  Refusals without XILINX_XRT and
 * without a device are checked first, the latter in a child process (XRT
 * picks its shim once per process).
 *
 * ASan: libxrt is not instrumented but runs fine under ASan/LSan here (no
 * leak reports from it), so this test runs in both variants.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>
#include "shim_card.h"
#include "model/engine.h"

int shim_xrt_query(struct shim_card *c, const char *key, uint32_t i, uint64_t *v);
const char *shim_xrt_last_error(struct shim_card *c);

#define U55C_DTB "build/board/u55c.dtb"
#define U280_DTB "build/board/u280.dtb"
#define MIB (1ull << 20)

static char tmp[64];		/* the test's folder: xrt/lib, xclbins, boards */

static char *path(const char *name)
{
	static char p[4][160];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", tmp, name);
	return p[i];
}

static uint64_t q(struct shim_card *c, const char *key, uint32_t i)
{
	uint64_t v = ~0ull;

	if (shim_xrt_query(c, key, i, &v))
		fail_msg("shim_xrt_query(%s, %u) refused", key, i);
	return v;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void run_ok(const char *cmd)
{
	int rc = system(cmd);

	if (rc != 0)
		fail_msg("'%s' exited %d", cmd, rc);
}

/* tmp/xrt/lib: symlinks to the XRT libraries Debian installs. */
static int setup(void **state)
{
	glob_t g;
	char cmd[512];

	snprintf(tmp, sizeof(tmp), "/tmp/nextcard-xrt.XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/xrt/lib", tmp);
	if (system(cmd))
		return -1;
	if (glob("/usr/lib/x86_64-linux-gnu/libxrt*.so*", 0, NULL, &g) || g.gl_pathc == 0)
		return -1;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char dst[256];

		snprintf(dst, sizeof(dst), "%s/xrt/lib/%s", tmp, strrchr(g.gl_pathv[i], '/') + 1);
		if (symlink(g.gl_pathv[i], dst))
			return -1;
	}
	globfree(&g);
	return 0;
}

static int teardown(void **state)
{
	if (tmp[0])
		nftw(tmp, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void one_line(const char *s)
{
	assert_non_null(s);
	assert_true(strlen(s) > 0);
	assert_null(strchr(s, '\n'));
}

/* Without XILINX_XRT, XRT would abort the process: refused before any call. */
static void refuse_no_xilinx_xrt(void **state)
{
	char err[512];

	unsetenv("XILINX_XRT");
	assert_null(shim_open("xrt:0", U55C_DTB, err, sizeof(err)));
	one_line(err);
	assert_non_null(strstr(err, "card xrt:0: XILINX_XRT is not set"));
	setenv("XILINX_XRT", "/nonexistent/xrt", 1);
	assert_null(shim_open("xrt", U55C_DTB, err, sizeof(err)));
	assert_non_null(strstr(err, "XILINX_XRT is not a folder"));
	assert_null(shim_open("xrt:zero", U55C_DTB, err, sizeof(err)));
	assert_non_null(strstr(err, "want a device index"));
}

/* The real shim on a machine without a card: in a child, before this
 * process loads any shim. */
static void refuse_no_device(void **state)
{
	int fd[2], st;
	char msg[512] = "";
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char err[512] = "";
		struct shim_card *c;

		close(fd[0]);
		setenv("XILINX_XRT", path("xrt"), 1);
		unsetenv("XCL_EMULATION_MODE");
		c = shim_open("xrt:0", U55C_DTB, err, sizeof(err));
		if (c || !strstr(err, "no device")) {
			/* a host with a card: say so, the parent skips */
			xrtDeviceHandle d = xrtDeviceOpen(0);

			if (d)
				snprintf(err, sizeof(err), "card-present");
		}
		if (write(fd[1], c ? "opened" : err, strlen(c ? "opened" : err)) < 0)
			_exit(2);
		_exit(0);
	}
	close(fd[1]);
	n = read(fd[0], msg, sizeof(msg) - 1);
	close(fd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(n > 0);
	msg[n] = 0;
	if (!strcmp(msg, "card-present"))
		skip();
	one_line(msg);
	if (strncmp(msg, "card xrt:0: no device (xrtDeviceOpen: ",
		    strlen("card xrt:0: no device (xrtDeviceOpen: ")))
		fail_msg("got '%s'", msg);
}

/* From here on: noop. */
static void enter_noop(void **state)
{
	char cmd[512];

	setenv("XILINX_XRT", path("xrt"), 1);
	setenv("XCL_EMULATION_MODE", "noop", 1);
	snprintf(cmd, sizeof(cmd), "build/tools/mkxclbin %s %s && build/tools/mkxclbin %s %s",
		 U55C_DTB, path("u55c.xclbin"), U280_DTB, path("u280.xclbin"));
	run_ok(cmd);
	/* flow emu has no xclbin */
	snprintf(cmd, sizeof(cmd), "build/tools/mkxclbin build/board/emu.dtb %s 2>/dev/null",
		 path("emu.xclbin"));
	assert_int_not_equal(system(cmd), 0);
}

/* libxrt loads the container; every port's group is its DT range's highest
 * bank (XRT's default when the driver adds no group entries); mem index ==
 * DTB bank index by construction of MEM_TOPOLOGY. */
static void check_groups(const char *dtb, const char *xclbin)
{
	static struct fw_board b;
	char err[256];
	xrtDeviceHandle d;
	xuid_t uuid;

	assert_int_equal(fw_board_load(dtb, &b, err, sizeof(err)), 0);
	d = xrtDeviceOpen(0);
	assert_non_null(d);
	assert_int_equal(xrtDeviceLoadXclbinFile(d, xclbin), 0);
	assert_int_equal(xrtDeviceGetXclbinUUID(d, uuid), 0);
	for (uint32_t i = 0; i < b.n_cus; i++) {
		char name[80];
		xrtKernelHandle k;

		snprintf(name, sizeof(name), "%s:{%s}", b.cus[i].kernel, b.cus[i].name);
		k = xrtPLKernelOpen(d, uuid, name);
		if (!k)
			fail_msg("%s: xrtPLKernelOpen(%s) failed", dtb, name);
		assert_int_equal(xrtKernelArgOffset(k, 0), 0x10);
		for (uint32_t p = 0; p < b.cus[i].n_ports; p++) {
			int gid = xrtKernelArgGroupId(k, (int)p);

			if (gid != (int)b.cus[i].ports[p].bank_hi)
				fail_msg("%s %s.%s: group %d, DT banks %u..%u", dtb, b.cus[i].name,
					 b.cus[i].ports[p].arg, gid, b.cus[i].ports[p].bank_lo,
					 b.cus[i].ports[p].bank_hi);
		}
		xrtKernelClose(k);
	}
	xrtDeviceClose(d);
}

static void xclbin_groups_u55c(void **state)
{
	check_groups(U55C_DTB, path("u55c.xclbin"));
}

static void xclbin_groups_u280(void **state)
{
	check_groups(U280_DTB, path("u280.xclbin"));
}

static struct shim_card *open_u55c(void)
{
	struct shim_card *c;
	char err[512];

	setenv("NEXTCARD_XCLBIN", path("u55c.xclbin"), 1);
	c = shim_open("xrt:0", U55C_DTB, err, sizeof(err));
	if (!c)
		fail_msg("shim_open: %s", err);
	assert_string_equal(shim_backend(c), "xrt");
	return c;
}

/* Bank groups of the u55c plan (docs/boards.md): one BO each. */
static void bringup_u55c(void **state)
{
	static const uint32_t want[][2] = {
		{ 0, 3 }, { 4, 7 }, { 8, 13 }, { 14, 19 }, { 20, 21 }, { 22, 23 },
		{ 24, 25 }, { 26, 26 }, { 27, 27 }, { 28, 29 }, { 30, 30 }, { 31, 31 },
	};
	const uint32_t n = sizeof(want) / sizeof(want[0]);
	struct shim_card *c = open_u55c();
	uint64_t total = 0;

	assert_int_equal(q(c, "groups", 0), n);
	for (uint32_t g = 0; g < n; g++) {
		assert_int_equal(q(c, "group.lo", g), want[g][0]);
		assert_int_equal(q(c, "group.hi", g), want[g][1]);
		assert_int_equal(q(c, "group.gid", g), want[g][1]);
		assert_int_equal(q(c, "group.bytes", g), (want[g][1] - want[g][0] + 1) * 512 * MIB);
		for (uint32_t b = want[g][0]; b <= want[g][1]; b++)
			assert_int_equal(q(c, "bank.group", b), g);
		total += q(c, "group.bytes", g);
	}
	assert_int_equal(total, 16384 * MIB);	/* the whole card, nothing twice */
	assert_int_equal(q(c, "cus", 0), c->board.n_cus);
	for (uint32_t i = 0; i < c->board.n_cus; i++)
		for (uint32_t p = 0; p < c->board.cus[i].n_ports; p++)
			assert_int_equal(q(c, "cu.gid", i * FW_MAX_PORTS + p),
					 c->board.cus[i].ports[p].bank_hi);
	assert_non_null(shim_ctrl(c));
	assert_int_equal(shim_ctrl(c)->magic, FW_CTRL_MAGIC);	/* the firmware booted */
	shim_close(c);
}

/* Every write is one TO_DEVICE sync per group touched, every read one
 * FROM_DEVICE sync; data goes through the mapped BO at the right offset. */
static void sync_directions(void **state)
{
	struct shim_card *c = open_u55c();
	uint8_t a[100], b[100];
	uint64_t to, from, bto;

	for (int i = 0; i < 100; i++)
		a[i] = (uint8_t)(i * 7 + 1);
	to = q(c, "sync.to_device", 0);
	from = q(c, "sync.from_device", 0);
	bto = q(c, "bytes.to_device", 0);
	assert_int_equal(shim_write(c, 0xa0000000ull + 16, a, 100), 0);	/* bank 5 */
	assert_int_equal(q(c, "sync.to_device", 0), to + 1);
	assert_int_equal(q(c, "bytes.to_device", 0), bto + 100);
	assert_int_equal(q(c, "sync.from_device", 0), from);
	assert_int_equal(shim_read(c, 0xa0000000ull + 16, b, 100), 0);
	assert_int_equal(q(c, "sync.from_device", 0), from + 1);
	assert_int_equal(q(c, "sync.to_device", 0), to + 1);
	assert_memory_equal(a, b, 100);

	/* across the end of group 0..3 into group 4..7: two BOs, two syncs */
	memset(b, 0, sizeof(b));
	assert_int_equal(shim_write(c, 0x80000000ull - 40, a, 100), 0);
	assert_int_equal(q(c, "sync.to_device", 0), to + 3);
	assert_int_equal(shim_read(c, 0x80000000ull - 40, b, 100), 0);
	assert_int_equal(q(c, "sync.from_device", 0), from + 3);
	assert_memory_equal(a, b, 100);

	/* outside card memory */
	assert_int_not_equal(shim_write(c, 16384 * MIB - 8, a, 100), 0);
	assert_int_not_equal(shim_read(c, 16384 * MIB + 4096, b, 4), 0);
	shim_close(c);
}

static uint32_t cu_index(struct shim_card *c, const char *name)
{
	for (uint32_t i = 0; i < c->board.n_cus; i++)
		if (!strcmp(c->board.cus[i].name, name))
			return i;
	fail_msg("no CU %s", name);
	return 0;
}

/* A call goes to the CU whose ports reach its buffers; one no CU reaches is
 * refused with a one-line reason. */
static void cu_choice_and_refusal(void **state)
{
	struct shim_card *c = open_u55c();
	const uint64_t bank = 512 * MIB;
	struct krnl_call k = { .id = KRNL_GEMV };
	uint32_t g1 = cu_index(c, "gemv_1"), g2 = cu_index(c, "gemv_2");
	uint64_t subs;

	k.arg[GEMV_X] = 29 * bank;
	k.arg[GEMV_Y] = 29 * bank + 4096;
	k.arg[GEMV_ROWS] = 1;
	k.arg[GEMV_IN] = 8;
	k.arg[GEMV_OUT] = 8;
	k.arg[GEMV_XSTRIDE] = 8;
	k.arg[GEMV_YSTRIDE] = 8;

	k.arg[GEMV_W] = 2 * bank + 8192;	/* bank 2: gemv_1 (0..3) */
	assert_int_equal(shim_xrt_backend.run(c, &k), 0);
	assert_int_equal(q(c, "cu.runs", g1), 1);
	assert_int_equal(q(c, "cu.runs", g2), 0);
	subs = q(c, "subbufs", 0);
	assert_int_equal(subs, 3);
	assert_int_equal(shim_xrt_backend.run(c, &k), 0);	/* cached */
	assert_int_equal(q(c, "subbufs", 0), subs);

	k.arg[GEMV_W] = 6 * bank;		/* bank 6: gemv_2 (4..7) */
	assert_int_equal(shim_xrt_backend.run(c, &k), 0);
	assert_int_equal(q(c, "cu.runs", g2), 1);
	assert_int_equal(q(c, "subbufs", 0), subs + 1);

	k.arg[GEMV_W] = 9 * bank;		/* bank 9: expert weights */
	assert_int_not_equal(shim_xrt_backend.run(c, &k), 0);
	assert_int_equal(q(c, "refused", 0), 1);
	one_line(shim_xrt_last_error(c));
	assert_non_null(strstr(shim_xrt_last_error(c), "krnl_gemv: w=0x120000000 is in bank 9 (HBM[9]); "
				"gemv_1.w reaches banks 0..3"));

	k.arg[GEMV_W] = 2 * bank;
	k.arg[GEMV_X] = 0;			/* activations outside bank 29 */
	assert_int_not_equal(shim_xrt_backend.run(c, &k), 0);
	assert_non_null(strstr(shim_xrt_last_error(c), "gemv_1.x reaches banks 29..29"));
	assert_int_equal(q(c, "runs", 0), 3);
	shim_close(c);
}

/* The engine brought up on the u55c: weights go to the card through the BOs.
 * The firmware's placement (fw_place.c) deals tensors round-robin over every
 * bank and puts the step scratch in bank 0, which the u55c connectivity does
 * not allow, so the first kernel of a step is refused, and the card says why.
 * When placement follows the connectivity, this must become a token. */
static void engine_u55c(void **state)
{
	struct nc_engine_opts o = { .model_dir = "assets/tiny-a", .card = "xrt:0",
				    .board = U55C_DTB, .ctx_limit = 64 };
	struct nc_engine *e = NULL;
	struct fw_res r;
	char err[512];
	uint32_t slot;
	int32_t ids[3] = { 1, 2, 3 };
	int rc;

	setenv("NEXTCARD_XCLBIN", path("u55c.xclbin"), 1);
	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("nc_engine_open: %s", err);
	assert_true(q(e->card, "bytes.to_device", 0) >= e->ctrl->weight_bytes);
	/* the firmware placed every buffer in banks its ports reach on the
	 * U55C wiring, so the whole step runs through XRT without a refusal */
	assert_int_equal(nc_engine_submit(e, ids, 3, 2, 0, NULL, 0, 7, &slot, err, sizeof(err)), 0);
	uint32_t tokens = 0;
	while ((rc = nc_engine_wait(e, &r, 5000)) == 1) {
		if (r.kind != FW_RES_TOKEN)
			continue;
		tokens++;
		if (r.flags & FW_RF_LAST)
			break;
	}
	if (rc != 1)
		fail_msg("wait: %d: %s", rc, e->ctrl->error);
	assert_int_equal(tokens, 2);
	assert_int_equal(q(e->card, "refused", 0), 0);
	assert_true(q(e->card, "runs", 0) > 0);
	nc_engine_close(e);
}

/* A board whose every port reaches every bank, one CU per kernel, the ports
 * named from the HLS sources: the whole token step runs through XRT. */
static void write_wide_board(const char *dts, uint32_t skip)
{
	FILE *f = fopen(dts, "w");

	assert_non_null(f);
	fprintf(f, "/dts-v1/;\n/ {\n\t#address-cells = <2>;\n\t#size-cells = <2>;\n"
		"\tmodel = \"nextcard xrt test board\";\n\tcompatible = \"nextcard,xrt-test\";\n"
		"\tnextcard,flow = \"xclbin\";\n\tnextcard,platform = \"nextcard_test\";\n"
		"\tnextcard,slr-count = <1>;\n\tmemory {\n\t\t#address-cells = <2>;\n"
		"\t\t#size-cells = <2>;\n");
	for (int i = 0; i < 8; i++)
		fprintf(f, "\t\thbm@%x {\n\t\t\tnextcard,memory-type = \"hbm\";\n"
			"\t\t\treg = <0x0 0x%x 0x0 0x10000000>;\n"
			"\t\t\tnextcard,bandwidth = /bits/ 64 <14375000000>;\n\t\t};\n",
			i << 28, i << 28);
	fprintf(f, "\t};\n\tclocks {\n\t\tkernel-clock {\n\t\t\tcompatible = \"fixed-clock\";\n"
		"\t\t\t#clock-cells = <0>;\n\t\t\tclock-frequency = <300000000>;\n\t\t};\n\t};\n"
		"\tkernels {\n");
	for (int k = 0; k < KRNL_COUNT; k++) {
		char src[128], line[256];
		int n = 0;
		FILE *h;

		if (skip & (1u << k))
			continue;
		snprintf(src, sizeof(src), "hls_kernels/%s.c", krnl_names[k]);
		h = fopen(src, "r");
		assert_non_null(h);
		fprintf(f, "\t\t%s_1 {\n\t\t\tnextcard,kernel = \"%s\";\n\t\t\tnextcard,slr = <0>;\n"
			"\t\t\tnextcard,port-args = ", krnl_names[k] + 5, krnl_names[k]);
		while (fgets(line, sizeof(line), h)) {
			char *p = strstr(line, "INTERFACE m_axi port=");

			if (!p || !strstr(line, "#pragma HLS"))
				continue;
			p += strlen("INTERFACE m_axi port=");
			fprintf(f, "%s\"%.*s\"", n++ ? ", " : "", (int)strcspn(p, " \t\n"), p);
		}
		fclose(h);
		fprintf(f, ";\n\t\t\tnextcard,port-banks = ");
		for (int i = 0; i < n; i++)
			fprintf(f, "%s<0 7>", i ? ", " : "");
		fprintf(f, ";\n\t\t};\n");
	}
	fprintf(f, "\t};\n};\n");
	fclose(f);
}

/* Kernels the board parser (fw_board.c) does not know yet cannot have a CU;
 * the step then stops at the first of them, and says so. */
static uint32_t build_wide_board(void)
{
	static struct fw_board b;
	uint32_t skip = 0;
	char cmd[512], err[256];

	for (int tries = 0; tries <= KRNL_COUNT; tries++) {
		const char *u;

		write_wide_board(path("wide.dts"), skip);
		snprintf(cmd, sizeof(cmd), "dtc -q -I dts -O dtb -o %s %s", path("wide.dtb"),
			 path("wide.dts"));
		run_ok(cmd);
		if (!fw_board_load(path("wide.dtb"), &b, err, sizeof(err)))
			break;
		u = strstr(err, "unknown kernel '");
		if (!u)
			fail_msg("wide board: %s", err);
		for (int k = 0; k < KRNL_COUNT; k++)
			if (!strncmp(u + 16, krnl_names[k], strlen(krnl_names[k])) &&
			    u[16 + strlen(krnl_names[k])] == '\'')
				skip |= 1u << k;
	}
	snprintf(cmd, sizeof(cmd), "build/tools/mkxclbin %s %s", path("wide.dtb"),
		 path("wide.xclbin"));
	run_ok(cmd);
	return skip;
}

static void token_steps_wide(void **state)
{
	struct nc_engine_opts o = { .model_dir = "assets/tiny-a", .card = "xrt:0",
				    .board = path("wide.dtb"), .ctx_limit = 64 };
	struct nc_engine *e = NULL;
	struct shim_stats st;
	struct fw_res r;
	char err[512];
	uint32_t slot, tokens = 0, skip = build_wide_board();
	uint64_t subs1 = 0, from, calls = 0;
	int32_t ids[3] = { 1, 2, 3 };
	int rc;

	/* default path: build/xclbin/<board>.xclbin does not exist for it */
	unsetenv("NEXTCARD_XCLBIN");
	assert_int_not_equal(nc_engine_open(&e, &o, err, sizeof(err)), 0);
	one_line(err);
	assert_non_null(strstr(err, "build/xclbin/xrt.xclbin"));

	setenv("NEXTCARD_XCLBIN", path("wide.xclbin"), 1);
	if (nc_engine_open(&e, &o, err, sizeof(err)))
		fail_msg("nc_engine_open: %s", err);
	assert_int_equal(q(e->card, "groups", 0), 1);
	assert_int_equal(q(e->card, "group.bytes", 0), 8 * 256 * MIB);
	shim_reset_stats(e->card);
	from = q(e->card, "sync.from_device", 0);
	assert_int_equal(nc_engine_submit(e, ids, 3, 3, 0, NULL, 0, 9, &slot, err, sizeof(err)), 0);
	while ((rc = nc_engine_wait(e, &r, 10000)) == 1) {
		if (r.kind != FW_RES_TOKEN)
			continue;
		if (tokens++ == 0)
			subs1 = q(e->card, "subbufs", 0);
		if (r.flags & FW_RF_LAST)
			break;
	}
	shim_get_stats(e->card, &st);
	for (int k = 0; k < KRNL_COUNT; k++)
		calls += st.krnl_calls[k];
	/* every CU ran; shim.c counted each call the backend ran or refused */
	assert_int_equal(q(e->card, "runs", 0) + q(e->card, "refused", 0), calls);
	for (uint32_t i = 0; i < e->card->board.n_cus; i++)
		if (q(e->card, "cu.runs", i) == 0)
			fail_msg("CU %s never ran", e->card->board.cus[i].name);
	if (skip) {
		int k = __builtin_ctz(skip);
		char want[96];

		print_message("# %s has no CU (fw_board.c does not know it): step stops there\n",
			      krnl_names[k]);
		assert_int_equal(rc, -1);
		snprintf(want, sizeof(want), "%s: no compute unit", krnl_names[k]);
		one_line(e->ctrl->error);
		if (!strstr(e->ctrl->error, want))
			fail_msg("card error '%s', want '%s'", e->ctrl->error, want);
		assert_int_equal(q(e->card, "refused", 0), 1);
	} else {
		if (rc != 1)
			fail_msg("wait: %d: %s", rc, e->ctrl->error);
		assert_int_equal(tokens, 3);
		/* later steps reuse the first step's sub-buffers */
		assert_int_equal(q(e->card, "subbufs", 0), subs1);
		assert_int_equal(q(e->card, "refused", 0), 0);
	}
	/* the firmware read back from the card through FROM_DEVICE syncs */
	assert_true(q(e->card, "sync.from_device", 0) > from);
	nc_engine_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refuse_no_xilinx_xrt),
		cmocka_unit_test(refuse_no_device),
		cmocka_unit_test(enter_noop),
		cmocka_unit_test(xclbin_groups_u55c),
		cmocka_unit_test(xclbin_groups_u280),
		cmocka_unit_test(bringup_u55c),
		cmocka_unit_test(sync_directions),
		cmocka_unit_test(cu_choice_and_refusal),
		cmocka_unit_test(engine_u55c),
		cmocka_unit_test(token_steps_wide),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
