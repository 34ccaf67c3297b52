/* test_board.c — board device trees, fw_board_parse and the v++ cfg files.
 *
 * Reads the DTBs in build/board (made by `make dtbs`), the cfg files in
 * board/ and the HLS kernel sources; cwd must be the repo root.  Mutations use a random seed,
 * printed, and NEXTCARD_SEED=<n> replays one run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <libfdt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fw_board.h"

#define DTB_CAP (64 * 1024)
#define GiB (1ull << 30)
#define MiB (1ull << 20)

static unsigned int seed;
static struct fw_board bd;	/* big: keep off the stack */
static char err[256];

static const char *const kernels[] = {
	"krnl_gemv", "krnl_expert_ffn", "krnl_deltanet_step",
	"krnl_attn_decode", "krnl_conv1d_step", "krnl_moe_router",
	"krnl_rmsnorm", "krnl_rmsnorm_gated", "krnl_embed_gather",
	"krnl_lm_head_argmax", "krnl_sampler",
};

/* ---- helpers ---------------------------------------------------------- */

static size_t read_all(const char *path, void *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		fail_msg("cannot open %s (run `make dtbs` from the repo root)", path);
	n = fread(buf, 1, cap, f);
	fclose(f);
	if (n == cap)
		fail_msg("%s larger than %zu bytes", path, cap);
	return n;
}

static size_t load_dtb(const char *board, void *buf)
{
	char path[128];

	snprintf(path, sizeof(path), "build/board/%s.dtb", board);
	return read_all(path, buf, DTB_CAP);
}

static void parse_ok(const char *board)
{
	char path[128];
	int rc;

	snprintf(path, sizeof(path), "build/board/%s.dtb", board);
	rc = fw_board_load(path, &bd, err, sizeof(err));
	if (rc)
		fail_msg("%s: rc %d (%s): %s", path, rc, fw_board_strerror(rc), err);
}

/* A writable copy of a board's DTB with room to grow. */
static void *open_copy(const char *board, size_t *len)
{
	static char orig[DTB_CAP];
	static char copy[DTB_CAP * 2];

	load_dtb(board, orig);
	assert_int_equal(fdt_open_into(orig, copy, sizeof(copy)), 0);
	*len = fdt_totalsize(copy);
	return copy;
}

/* The mutated copy must be refused with code want (0: any) and a message
 * that contains both needles. */
static void expect_refused(const void *fdt, int want, const char *n1,
			   const char *n2)
{
	int rc = fw_board_parse(fdt, fdt_totalsize(fdt), &bd, err, sizeof(err));

	if (rc >= 0)
		fail_msg("accepted; wanted refusal naming '%s' '%s'", n1, n2 ? n2 : "");
	if (want && rc != -want)
		fail_msg("rc %d (%s), want %d: %s", rc, fw_board_strerror(rc), -want, err);
	if (n1 && !strstr(err, n1))
		fail_msg("message '%s' does not name '%s'", err, n1);
	if (n2 && !strstr(err, n2))
		fail_msg("message '%s' does not name '%s'", err, n2);
	assert_int_equal(bd.n_banks, 0);	/* board cleared on failure */
}

static void set_u32(void *fdt, const char *path, const char *prop, uint32_t v)
{
	int off = fdt_path_offset(fdt, path);

	assert_true(off >= 0);
	assert_int_equal(fdt_setprop_u32(fdt, off, prop, v), 0);
}

static void set_reg(void *fdt, const char *path, uint64_t base, uint64_t size)
{
	fdt64_t r[2] = { cpu_to_fdt64(base), cpu_to_fdt64(size) };
	int off = fdt_path_offset(fdt, path);

	assert_true(off >= 0);
	assert_int_equal(fdt_setprop(fdt, off, "reg", r, sizeof(r)), 0);
}

/* Path of the i-th child of parent, into buf. */
static const char *child_path(const void *fdt, const char *parent, int i,
			      char *buf, int cap)
{
	int p = fdt_path_offset(fdt, parent), n, k = 0;

	assert_true(p >= 0);
	fdt_for_each_subnode(n, fdt, p)
		if (k++ == i) {
			assert_int_equal(fdt_get_path(fdt, n, buf, cap), 0);
			return buf;
		}
	fail_msg("%s has no child %d", parent, i);
	return NULL;
}

static int count_children(const void *fdt, const char *parent)
{
	int p = fdt_path_offset(fdt, parent), n, k = 0;

	if (p < 0)
		return 0;
	fdt_for_each_subnode(n, fdt, p)
		k++;
	return k;
}

/* Invariants every accepted board must satisfy. */
static void check_invariants(const struct fw_board *b)
{
	assert_true(b->n_banks >= 1 && b->n_banks <= FW_MAX_BANKS);
	assert_true(b->n_cus >= 1 && b->n_cus <= FW_MAX_CUS);
	assert_true(b->n_nics <= FW_MAX_NICS);
	assert_true(b->kernel_clock_mhz > 0);
	for (uint32_t i = 0; i < b->n_banks; i++) {
		assert_true(b->banks[i].size > 0);
		if (i)
			assert_true(b->banks[i].base >=
				    b->banks[i - 1].base + b->banks[i - 1].size);
	}
	for (uint32_t i = 0; i < b->n_cus; i++) {
		assert_true(b->cus[i].n_ports >= 1 &&
			    b->cus[i].n_ports <= FW_MAX_PORTS);
		assert_true(b->cus[i].slr < b->n_slrs);
		for (uint32_t p = 0; p < b->cus[i].n_ports; p++) {
			assert_true(b->cus[i].ports[p].bank_lo <=
				    b->cus[i].ports[p].bank_hi);
			assert_true(b->cus[i].ports[p].bank_hi < b->n_banks);
		}
	}
}

static const struct fw_cu *find_cu(const struct fw_board *b, const char *kernel)
{
	for (uint32_t i = 0; i < b->n_cus; i++)
		if (strcmp(b->cus[i].kernel, kernel) == 0)
			return &b->cus[i];
	return NULL;
}

static void check_banks(const struct fw_board *b, uint32_t first, uint32_t n,
			const char *type, uint64_t base, uint64_t size,
			uint64_t bw)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct fw_bank *k = &b->banks[first + i];

		assert_string_equal(k->type, type);
		assert_int_equal(k->base, base + i * size);
		assert_int_equal(k->size, size);
		assert_int_equal(k->bw_bytes_per_s, bw);
		assert_int_equal(k->type_index, i);
	}
}

/* ---- every board parses ---------------------------------------------- */

static void test_parse_all(void **state)
{
	glob_t g;
	int found = 0;

	if (glob("build/board/*.dtb", 0, NULL, &g) != 0)
		fail_msg("no build/board/*.dtb: run `make dtbs` from the repo root");
	for (size_t i = 0; i < g.gl_pathc; i++) {
		int rc = fw_board_load(g.gl_pathv[i], &bd, err, sizeof(err));

		if (rc)
			fail_msg("%s: %s", g.gl_pathv[i], err);
		check_invariants(&bd);
		for (size_t k = 0; k < sizeof(kernels) / sizeof(kernels[0]); k++)
			if (!find_cu(&bd, kernels[k]))
				fail_msg("%s: no compute unit of %s",
					 g.gl_pathv[i], kernels[k]);
		found++;
	}
	globfree(&g);
	assert_true(found >= 5);
}

static void test_emu(void **state)
{
	parse_ok("emu");
	assert_string_equal(bd.compatible, "nextcard,emu");
	assert_string_equal(bd.flow, "emu");
	assert_string_equal(bd.platform, "");
	assert_int_equal(bd.n_banks, 32);
	check_banks(&bd, 0, 32, "hbm", 0, 256 * MiB, 14375000000ull);
	assert_int_equal(bd.hbm_bytes, 8 * GiB);
	assert_int_equal(bd.n_nics, 0);
	assert_int_equal(bd.has_cpu, 0);
	assert_int_equal(bd.n_slrs, 1);
}

static void test_u55c(void **state)
{
	parse_ok("u55c");
	assert_string_equal(bd.model, "AMD Alveo U55C");
	assert_string_equal(bd.platform, "xilinx_u55c_gen3x16_xdma_3_202210_1");
	assert_int_equal(bd.n_banks, 32);
	check_banks(&bd, 0, 32, "hbm", 0, 512 * MiB, 14375000000ull);
	assert_int_equal(bd.hbm_bytes, 16 * GiB);
	assert_int_equal(bd.hbm_bw_bytes_per_s, 460000000000ull);
	assert_int_equal(bd.n_nics, 2);
	assert_int_equal(bd.nic_gbps[0], 100);
	assert_int_equal(bd.nic_gbps[1], 100);
	assert_int_equal(bd.kernel_clock_mhz, 300);
	assert_int_equal(bd.has_cpu, 0);
}

static void test_u280(void **state)
{
	parse_ok("u280");
	assert_int_equal(bd.n_banks, 34);
	check_banks(&bd, 0, 32, "hbm", 0, 256 * MiB, 14375000000ull);
	check_banks(&bd, 32, 2, "ddr", 16 * GiB, 16 * GiB, 19250000000ull);
	assert_int_equal(bd.hbm_bytes, 8 * GiB);
	assert_int_equal(bd.n_nics, 2);
	assert_string_equal(bd.flow, "xclbin");
}

static void test_v80(void **state)
{
	char cfg[256];

	parse_ok("v80");
	assert_int_equal(bd.n_banks, 33);
	check_banks(&bd, 0, 32, "hbm", 0x4000000000ull, GiB, 25600000000ull);
	assert_string_equal(bd.banks[32].type, "ddr");
	assert_int_equal(bd.banks[32].size, 32 * GiB);
	assert_int_equal(bd.hbm_bytes, 32 * GiB);
	assert_int_equal(bd.n_nics, 4);
	assert_int_equal(bd.nic_gbps[3], 200);
	assert_int_equal(bd.has_cpu, 4);
	assert_string_equal(bd.flow, "aved");
	assert_string_equal(bd.platform, "");
	/* Not an xclbin shell: no v++ connectivity. */
	assert_int_equal(fw_board_connectivity(&bd, cfg, sizeof(cfg), err,
					       sizeof(err)), -FW_BOARD_ERR_FLOW);
	assert_non_null(strstr(err, "aved"));
}

static void test_f2(void **state)
{
	parse_ok("f2");
	assert_string_equal(bd.platform, "xilinx_aws-vu47p-f2_202410_1");
	assert_int_equal(bd.n_banks, 33);
	check_banks(&bd, 0, 32, "hbm", 0, 512 * MiB, 14375000000ull);
	assert_string_equal(bd.banks[32].type, "ddr");
	assert_int_equal(bd.banks[32].size, 64 * GiB);
	assert_int_equal(bd.hbm_bytes, 16 * GiB);
	assert_int_equal(bd.n_nics, 0);
}

/* ---- the cfg files cannot drift from the device trees ----------------- */

static void check_cfg(const char *board)
{
	static char want[64 * 1024], got[64 * 1024];
	char path[128];
	size_t n, line = 1;
	int len;

	parse_ok(board);
	len = fw_board_connectivity(&bd, got, sizeof(got), err, sizeof(err));
	if (len < 0)
		fail_msg("%s: %s", board, err);
	assert_int_equal((size_t)len, strlen(got));
	snprintf(path, sizeof(path), "board/%s.cfg", board);
	n = read_all(path, want, sizeof(want));
	for (size_t i = 0; i < n && i < (size_t)len; i++) {
		if (want[i] != got[i])
			fail_msg("%s differs from build/board/%s.dtb at line %zu: "
				 "regenerate with tools/gen_connectivity", path,
				 board, line);
		line += want[i] == '\n';
	}
	if (n != (size_t)len)
		fail_msg("%s is %zu bytes, generated %d: regenerate with "
			 "tools/gen_connectivity", path, n, len);
}

static void test_cfg_u55c(void **state) { check_cfg("u55c"); }
static void test_cfg_u280(void **state) { check_cfg("u280"); }
static void test_cfg_f2(void **state) { check_cfg("f2"); }

static void test_cfg_content(void **state)
{
	static char cfg[64 * 1024];

	parse_ok("u280");
	assert_true(fw_board_connectivity(&bd, cfg, sizeof(cfg), err,
					  sizeof(err)) > 0);
	assert_non_null(strstr(cfg, "\n[connectivity]\n"));
	assert_non_null(strstr(cfg, "\nnk=krnl_gemv:2:gemv_1.gemv_2\n"));
	assert_non_null(strstr(cfg, "\nsp=gemv_1.w:HBM[0:3]\n"));
	assert_non_null(strstr(cfg, "\nsp=embed_1.table:DDR[0]\n"));
	assert_non_null(strstr(cfg, "\nslr=gemv_2:SLR1\n"));
	assert_non_null(strstr(cfg, "platform=xilinx_u280_"));
}

static void test_cfg_nospace(void **state)
{
	char small[100];

	parse_ok("u55c");
	memset(small, 'x', sizeof(small));
	assert_int_equal(fw_board_connectivity(&bd, small, sizeof(small), err,
					       sizeof(err)), -FW_BOARD_ERR_NOSPACE);
	assert_non_null(memchr(small, '\0', sizeof(small)));
	assert_int_equal(fw_board_connectivity(NULL, small, sizeof(small), err,
					       sizeof(err)), -FW_BOARD_ERR_INVAL);
}

/* ---- the dts port lists follow the HLS kernels' m_axi ports ----------- */

struct axi {
	char port[32], bundle[32];
};

static int read_axi(const char *kernel, struct axi *a, int cap)
{
	char path[128], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "hls_kernels/%s.c", kernel);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s", path);
	while (fgets(line, sizeof(line), f)) {
		const char *p = strstr(line, "INTERFACE m_axi");

		if (!p || n == cap)
			continue;
		if (sscanf(p, "INTERFACE m_axi port=%31s bundle=%31s",
			   a[n].port, a[n].bundle) == 2)
			n++;
	}
	fclose(f);
	return n;
}

static void check_cu_axi(const char *board, const struct fw_cu *cu)
{
	struct axi a[FW_MAX_PORTS + 1];
	int n = read_axi(cu->kernel, a, FW_MAX_PORTS + 1);

	if (n != (int)cu->n_ports)
		fail_msg("%s /kernels/%s: %u port-args, %s has %d m_axi ports",
			 board, cu->name, cu->n_ports, cu->kernel, n);
	for (int i = 0; i < n; i++) {
		if (strcmp(a[i].port, cu->ports[i].arg))
			fail_msg("%s /kernels/%s: port %d is '%s', kernel has '%s'",
				 board, cu->name, i, cu->ports[i].arg, a[i].port);
		/* One bundle is one AXI master: its ports share a bank range. */
		for (int j = 0; j < i; j++)
			if (strcmp(a[i].bundle, a[j].bundle) == 0 &&
			    (cu->ports[i].bank_lo != cu->ports[j].bank_lo ||
			     cu->ports[i].bank_hi != cu->ports[j].bank_hi))
				fail_msg("%s /kernels/%s: '%s' and '%s' share %s but not banks",
					 board, cu->name, a[i].port, a[j].port,
					 a[i].bundle);
	}
}

static void test_ports_match_hls(void **state)
{
	static const char *const boards[] = { "emu", "u55c", "u280", "v80", "f2" };

	for (size_t b = 0; b < sizeof(boards) / sizeof(boards[0]); b++) {
		parse_ok(boards[b]);
		for (uint32_t i = 0; i < bd.n_cus; i++)
			check_cu_axi(boards[b], &bd.cus[i]);
	}
}

/* ---- refusals ---------------------------------------------------------- */

static const char *const boards_all[] = { "emu", "u55c", "u280", "v80", "f2" };
#define N_BOARDS (sizeof(boards_all) / sizeof(boards_all[0]))

static void test_truncated(void **state)
{
	static char buf[DTB_CAP];

	for (size_t b = 0; b < N_BOARDS; b++) {
		size_t len = load_dtb(boards_all[b], buf);

		for (int i = 0; i < 300; i++) {
			size_t cut = i < 50 ? (size_t)i : (size_t)rand() % len;
			int rc = fw_board_parse(buf, cut, &bd, err, sizeof(err));

			if (rc != -FW_BOARD_ERR_TRUNCATED)
				fail_msg("%s cut at %zu: rc %d (%s) '%s'",
					 boards_all[b], cut, rc,
					 fw_board_strerror(rc), err);
			assert_non_null(strstr(err, "bytes"));
		}
	}
}

static void test_flipped(void **state)
{
	static char orig[DTB_CAP], buf[DTB_CAP];
	int refused = 0, accepted = 0;

	for (size_t b = 0; b < N_BOARDS; b++) {
		size_t len = load_dtb(boards_all[b], orig);

		for (int i = 0; i < 2000; i++) {
			int flips = 1 + rand() % 8, rc;

			memcpy(buf, orig, len);
			for (int f = 0; f < flips; f++)
				buf[rand() % len] ^= (char)(1 + rand() % 255);
			rc = fw_board_parse(buf, len, &bd, err, sizeof(err));
			if (rc < 0) {
				assert_true(err[0] != '\0');
				assert_true(rc >= -FW_BOARD_ERR_MAX);
				refused++;
			} else {
				check_invariants(&bd);
				accepted++;
			}
		}
	}
	/* A flip in the magic is always caught. */
	memcpy(buf, orig, sizeof(orig));
	buf[0] ^= 0x40;
	assert_int_equal(fw_board_parse(buf, sizeof(buf), &bd, err, sizeof(err)),
			 -FW_BOARD_ERR_BADDTB);
	print_message("flips: %d refused, %d accepted (harmless)\n", refused, accepted);
	assert_true(refused > 0);
}

struct req {
	const char *path;	/* NULL: a random child of parent */
	const char *parent;
	const char *prop;
};

static const struct req required[] = {
	{ "/", NULL, "model" },
	{ "/", NULL, "compatible" },
	{ "/", NULL, "nextcard,flow" },
	{ "/", NULL, "nextcard,platform" },
	{ "/", NULL, "nextcard,slr-count" },
	{ "/", NULL, "#address-cells" },
	{ "/", NULL, "#size-cells" },
	{ "/memory", NULL, "#address-cells" },
	{ "/memory", NULL, "#size-cells" },
	{ NULL, "/memory", "nextcard,memory-type" },
	{ NULL, "/memory", "reg" },
	{ NULL, "/memory", "nextcard,bandwidth" },
	{ "/clocks/kernel-clock", NULL, "clock-frequency" },
	{ NULL, "/kernels", "nextcard,kernel" },
	{ NULL, "/kernels", "nextcard,slr" },
	{ NULL, "/kernels", "nextcard,port-args" },
	{ NULL, "/kernels", "nextcard,port-banks" },
	{ NULL, "/nics", "nextcard,speed-gbps" },
	{ NULL, "/cpus", "compatible" },
};

static void test_missing_property(void **state)
{
	char path[128];

	for (size_t b = 0; b < N_BOARDS; b++)
		for (size_t r = 0; r < sizeof(required) / sizeof(required[0]); r++) {
			const struct req *q = &required[r];
			size_t len;
			void *fdt = open_copy(boards_all[b], &len);
			const char *p = q->path;
			int off, kids;

			if (!p) {
				kids = count_children(fdt, q->parent);
				if (kids == 0)
					continue;	/* board has no /nics or /cpus */
				p = child_path(fdt, q->parent, rand() % kids,
					       path, sizeof(path));
			}
			off = fdt_path_offset(fdt, p);
			assert_true(off >= 0);
			assert_int_equal(fdt_delprop(fdt, off, q->prop), 0);
			expect_refused(fdt, FW_BOARD_ERR_NOTFOUND, p, q->prop);
		}
}

static void test_missing_node(void **state)
{
	static const char *const nodes[] = { "/memory", "/kernels",
					     "/clocks/kernel-clock", "/clocks" };

	for (size_t b = 0; b < N_BOARDS; b++)
		for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
			size_t len;
			void *fdt = open_copy(boards_all[b], &len);

			assert_int_equal(fdt_del_node(fdt, fdt_path_offset(fdt, nodes[i])), 0);
			expect_refused(fdt, FW_BOARD_ERR_NOTFOUND,
				       i == 3 ? "/clocks/kernel-clock" : nodes[i], NULL);
		}
}

static void test_bad_length(void **state)
{
	size_t len;
	void *fdt = open_copy("u280", &len);
	int off = fdt_path_offset(fdt, "/memory/hbm@30000000");
	uint32_t three[3] = { 0, 0, cpu_to_fdt32(0x10000000) };

	assert_int_equal(fdt_setprop(fdt, off, "reg", three, sizeof(three)), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADLEN,
		       "/memory/hbm@30000000: property 'reg' has 12 bytes, want 16",
		       NULL);

	fdt = open_copy("emu", &len);
	set_u32(fdt, "/kernels/gemv_1", "nextcard,port-banks", 3);
	expect_refused(fdt, FW_BOARD_ERR_BADLEN, "/kernels/gemv_1",
		       "'nextcard,port-banks' has 4 bytes, want 24");

	fdt = open_copy("emu", &len);
	off = fdt_path_offset(fdt, "/memory/hbm@0");
	assert_int_equal(fdt_setprop_u32(fdt, off, "nextcard,bandwidth", 1), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADLEN, "/memory/hbm@0",
		       "nextcard,bandwidth");

	fdt = open_copy("emu", &len);
	assert_int_equal(fdt_setprop(fdt, 0, "model", "abc", 3), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/: property 'model'", NULL);
}

/* Random pairs of banks made to overlap, or put out of order. */
static void test_overlap(void **state)
{
	char path[128], prev[128];

	for (size_t b = 0; b < N_BOARDS; b++)
		for (int t = 0; t < 20; t++) {
			size_t len;
			void *fdt = open_copy(boards_all[b], &len);
			int n = count_children(fdt, "/memory");
			int i = 1 + rand() % (n - 1);

			parse_ok(boards_all[b]);
			child_path(fdt, "/memory", i, path, sizeof(path));
			child_path(fdt, "/memory", i - 1, prev, sizeof(prev));
			if (t % 2 == 0) {
				const struct fw_bank *k = &bd.banks[i - 1];

				set_reg(fdt, path, k->base + k->size / 2 + 1,
					bd.banks[i].size);
				expect_refused(fdt, FW_BOARD_ERR_OVERLAP, path, "'reg'");
				assert_non_null(strstr(err, "overlaps"));
			} else {
				set_reg(fdt, path, bd.banks[i - 1].base - (i > 1),
					bd.banks[i].size);
				expect_refused(fdt, FW_BOARD_ERR_OVERLAP, path, "'reg'");
			}
		}
}

static void test_bad_values(void **state)
{
	size_t len;
	void *fdt;
	int off;

	fdt = open_copy("emu", &len);
	set_reg(fdt, "/memory/hbm@10000000", 0x10000000, 0);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/memory/hbm@10000000", "size 0");

	fdt = open_copy("emu", &len);
	set_reg(fdt, "/memory/hbm@1f0000000", ~0ull - 5, 0x10000000);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/memory/hbm@1f0000000", "wraps");

	fdt = open_copy("u280", &len);	/* range crossing hbm -> ddr */
	{
		uint32_t pb[6] = { 0, 0, cpu_to_fdt32(30), cpu_to_fdt32(32), 0, 0 };

		off = fdt_path_offset(fdt, "/kernels/gemv_1");
		assert_int_equal(fdt_setprop(fdt, off, "nextcard,port-banks", pb,
					     sizeof(pb)), 0);
		expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/kernels/gemv_1",
			       "spans memory types");
	}

	fdt = open_copy("emu", &len);
	{
		uint32_t pb[6] = { 0, 0, 0, cpu_to_fdt32(32), 0, 0 };

		off = fdt_path_offset(fdt, "/kernels/gemv_2");
		assert_int_equal(fdt_setprop(fdt, off, "nextcard,port-banks", pb,
					     sizeof(pb)), 0);
		expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/kernels/gemv_2",
			       "'nextcard,port-banks' port 'w'");
	}

	fdt = open_copy("u55c", &len);
	set_u32(fdt, "/kernels/attn_1", "nextcard,slr", 3);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/kernels/attn_1", "nextcard,slr");

	fdt = open_copy("u55c", &len);
	off = fdt_path_offset(fdt, "/kernels/router_1");
	assert_int_equal(fdt_setprop_string(fdt, off, "nextcard,kernel", "krnl_nope"), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/kernels/router_1", "krnl_nope");

	fdt = open_copy("u55c", &len);
	off = fdt_path_offset(fdt, "/kernels/gemv_2");
	assert_int_equal(fdt_setprop(fdt, off, "nextcard,port-args", "x\0w\0x", 6), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/kernels/gemv_2", "repeats 'x'");

	fdt = open_copy("u55c", &len);
	off = fdt_path_offset(fdt, "/kernels/gemv_2");
	assert_int_equal(fdt_setprop(fdt, off, "nextcard,port-args", "x\0w\0o", 6), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/kernels/gemv_2",
		       "differs from another krnl_gemv");

	fdt = open_copy("u55c", &len);
	assert_int_equal(fdt_setprop_string(fdt, 0, "nextcard,platform", ""), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/", "nextcard,platform");

	fdt = open_copy("u55c", &len);
	assert_int_equal(fdt_setprop_string(fdt, 0, "nextcard,flow", "magic"), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/", "nextcard,flow");

	fdt = open_copy("u55c", &len);
	off = fdt_path_offset(fdt, "/memory/hbm@0");
	assert_int_equal(fdt_setprop_string(fdt, off, "nextcard,memory-type", "sram"), 0);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/memory/hbm@0", "sram");

	fdt = open_copy("u55c", &len);
	set_u32(fdt, "/clocks/kernel-clock", "clock-frequency", 299999999);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/clocks/kernel-clock",
		       "clock-frequency");

	fdt = open_copy("u55c", &len);
	set_u32(fdt, "/memory", "#size-cells", 1);
	expect_refused(fdt, FW_BOARD_ERR_BADVALUE, "/memory", "#size-cells");
}

/* Copy node src under parent as name (properties only).  libfdt puts a
 * new node first among its siblings. */
static void clone_node(void *fdt, const char *src, const char *parent,
		       const char *name)
{
	struct { char name[64]; char val[256]; int len; } props[16];
	int n = 0, prop, d;

	fdt_for_each_property_offset(prop, fdt, fdt_path_offset(fdt, src)) {
		const char *pn;
		const void *v = fdt_getprop_by_offset(fdt, prop, &pn, &props[n].len);

		assert_true(n < 16 && props[n].len <= 256);
		snprintf(props[n].name, sizeof(props[n].name), "%s", pn);
		memcpy(props[n].val, v, (size_t)props[n].len);
		n++;
	}
	d = fdt_add_subnode(fdt, fdt_path_offset(fdt, parent), name);
	assert_true(d >= 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(fdt_setprop(fdt, d, props[i].name, props[i].val,
					     props[i].len), 0);
}

static void test_limits(void **state)
{
	char name[32], path[64];
	size_t len;
	void *fdt = open_copy("emu", &len);

	for (int i = 0; i < FW_MAX_CUS; i++) {
		snprintf(name, sizeof(name), "extra_%d", i);
		clone_node(fdt, "/kernels/rmsnorm_1", "/kernels", name);
	}
	expect_refused(fdt, FW_BOARD_ERR_TOOMANY, "/kernels", "compute units");

	fdt = open_copy("emu", &len);
	for (int i = FW_MAX_BANKS; i >= 0; i--) {	/* ends up sorted */
		uint64_t base = 0x1000000000ull + (uint64_t)i * 0x10000000ull;

		snprintf(name, sizeof(name), "hbm@%llx", (unsigned long long)base);
		clone_node(fdt, "/memory/hbm@0", "/memory", name);
		snprintf(path, sizeof(path), "/memory/%s", name);
		set_reg(fdt, path, base, 0x10000000);
	}
	expect_refused(fdt, FW_BOARD_ERR_TOOMANY, "/memory", "64 banks");

	fdt = open_copy("v80", &len);
	for (int i = 4; i < FW_MAX_NICS + 1; i++) {
		snprintf(name, sizeof(name), "nic@%d", i);
		clone_node(fdt, "/nics/nic@0", "/nics", name);
	}
	expect_refused(fdt, FW_BOARD_ERR_TOOMANY, "/nics", "8 nics");

	fdt = open_copy("emu", &len);
	{
		char list[128];
		int l = 0;

		for (unsigned int i = 0; i <= FW_MAX_PORTS; i++)
			l += snprintf(list + l, sizeof(list) - (size_t)l, "a%u", i % 100u) + 1;
		assert_int_equal(fdt_setprop(fdt, fdt_path_offset(fdt, "/kernels/gemv_1"),
					     "nextcard,port-args", list, l), 0);
		expect_refused(fdt, FW_BOARD_ERR_TOOMANY, "/kernels/gemv_1",
			       "more than 16 ports");
	}
}

/* ---- small API pieces -------------------------------------------------- */

static void test_bank_of(void **state)
{
	parse_ok("u55c");
	assert_int_equal(fw_board_bank_of(&bd, 3 * 512 * MiB + 5, 10), 3);
	assert_int_equal(fw_board_bank_of(&bd, 0, 512 * MiB), 0);
	assert_int_equal(fw_board_bank_of(&bd, 512 * MiB - 1, 2),
			 -FW_BOARD_ERR_NOTFOUND);
	assert_int_equal(fw_board_bank_of(&bd, 16 * GiB, 1), -FW_BOARD_ERR_NOTFOUND);
	assert_int_equal(fw_board_bank_of(&bd, 5, ~0ull), -FW_BOARD_ERR_NOTFOUND);
	assert_int_equal(fw_board_bank_of(NULL, 0, 1), -FW_BOARD_ERR_INVAL);
}

static void test_strerror(void **state)
{
	for (int i = 1; i <= FW_BOARD_ERR_MAX; i++) {
		assert_string_not_equal(fw_board_strerror(-i), "unknown error");
		assert_string_equal(fw_board_strerror(-i), fw_board_strerror(i));
		for (int j = 1; j < i; j++)
			assert_string_not_equal(fw_board_strerror(-i),
						fw_board_strerror(-j));
	}
	assert_string_equal(fw_board_strerror(-FW_BOARD_ERR_MAX - 1), "unknown error");
	assert_string_equal(fw_board_strerror(INT_MIN), "unknown error");
}

static void test_load_errors(void **state)
{
	char tmp[] = "/tmp/test_board_XXXXXX";
	FILE *f;
	int fd;

	assert_int_equal(fw_board_load("build/board/no-such.dtb", &bd, err,
				       sizeof(err)), -FW_BOARD_ERR_IO);
	assert_non_null(strstr(err, "no-such.dtb"));
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	assert_int_equal(fw_board_load(tmp, &bd, err, sizeof(err)), -FW_BOARD_ERR_IO);
	f = fdopen(fd, "w");
	fputs("not a device tree, just text that is long enough to read a header", f);
	fclose(f);
	assert_int_equal(fw_board_load(tmp, &bd, err, sizeof(err)),
			 -FW_BOARD_ERR_BADDTB);
	unlink(tmp);
	assert_int_equal(fw_board_parse(NULL, 0, &bd, err, sizeof(err)),
			 -FW_BOARD_ERR_INVAL);
	assert_int_equal(fw_board_parse("", 0, NULL, NULL, 0), -FW_BOARD_ERR_INVAL);
}

int main(void)
{
	const char *s = getenv("NEXTCARD_SEED");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_all),
		cmocka_unit_test(test_emu),
		cmocka_unit_test(test_u55c),
		cmocka_unit_test(test_u280),
		cmocka_unit_test(test_v80),
		cmocka_unit_test(test_f2),
		cmocka_unit_test(test_cfg_u55c),
		cmocka_unit_test(test_cfg_u280),
		cmocka_unit_test(test_cfg_f2),
		cmocka_unit_test(test_cfg_content),
		cmocka_unit_test(test_cfg_nospace),
		cmocka_unit_test(test_ports_match_hls),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_flipped),
		cmocka_unit_test(test_missing_property),
		cmocka_unit_test(test_missing_node),
		cmocka_unit_test(test_bad_length),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_bank_of),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_load_errors),
	};

	seed = s ? (unsigned int)strtoul(s, NULL, 0) : (unsigned int)time(NULL);
	printf("test_board: seed %u (NEXTCARD_SEED=%u replays)\n", seed, seed);
	srand(seed);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
