/* fw_board.c — parse and validate the board device tree (binding: docs/boards.md).
 *
 * Freestanding-style: no malloc, fixed arrays, only snprintf from stdio.
 * The blob is checked whole (fdt_check_full) before any lookup, so a
 * corrupted or truncated DTB is refused before libfdt walks it.
 */
#include "fw_board.h"

#include <fcntl.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Kernels the firmware knows how to drive; a typo in a .dts is an error. */
static const char *const known_kernels[] = {
	"krnl_gemv", "krnl_expert_ffn", "krnl_deltanet_step",
	"krnl_attn_decode", "krnl_conv1d_step", "krnl_moe_router",
	"krnl_rmsnorm", "krnl_rmsnorm_gated", "krnl_embed_gather",
	"krnl_lm_head_argmax", "krnl_sampler",
};

static const char *const known_flows[] = { "xclbin", "aved", "hdk", "emu" };

struct ctx {
	const void *fdt;
	char *err;
	size_t errlen;
};

/* Record "<path of node>: <message>" and return -code. */
static int fail(struct ctx *c, int code, int node, const char *fmt, ...)
{
	char path[160];
	char msg[160];
	va_list ap;

	snprintf(path, sizeof(path), "%s", c->fdt ? "dtb" : "board");
	if (node >= 0 && fdt_get_path(c->fdt, node, path, sizeof(path)) < 0)
		snprintf(path, sizeof(path), "node@offset %d", node);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->err && c->errlen)
		snprintf(c->err, c->errlen, "%s: %s", path, msg);
	return -code;
}

static int in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

static uint32_t ld32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return fdt32_to_cpu(v);
}

static uint64_t ld64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return fdt64_to_cpu(v);
}

/* A required property of exactly want bytes (want < 0: any length). */
static int get_prop(struct ctx *c, int node, const char *name, int want,
		    const void **val, int *len)
{
	int l;
	const void *p = fdt_getprop(c->fdt, node, name, &l);

	if (!p)
		return fail(c, FW_BOARD_ERR_NOTFOUND, node,
			    "property '%s' missing", name);
	if (want >= 0 && l != want)
		return fail(c, FW_BOARD_ERR_BADLEN, node,
			    "property '%s' has %d bytes, want %d", name, l, want);
	*val = p;
	if (len)
		*len = l;
	return 0;
}

static int get_u32(struct ctx *c, int node, const char *name, uint32_t *v)
{
	const void *p = NULL;
	int rc = get_prop(c, node, name, 4, &p, NULL);

	if (rc)
		return rc;
	*v = ld32(p);
	return 0;
}

static int get_u64(struct ctx *c, int node, const char *name, uint64_t *v)
{
	const void *p = NULL;
	int rc = get_prop(c, node, name, 8, &p, NULL);

	if (rc)
		return rc;
	*v = ld64(p);
	return 0;
}

/* Check that s[0..len) is one NUL-terminated string that fits in cap. */
static int check_str(struct ctx *c, int node, const char *name,
		     const char *s, int len, size_t cap)
{
	size_t n = strnlen(s, (size_t)len);

	if (n == (size_t)len)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property '%s' is not NUL-terminated", name);
	if (n >= cap)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property '%s' is %zu chars, max %zu",
			    name, n, cap - 1);
	return 0;
}

/* A required string property; only the first string of a list is kept. */
static int get_str(struct ctx *c, int node, const char *name,
		   char *dst, size_t cap, int allow_empty)
{
	const void *p = NULL;
	int len = 0, rc = get_prop(c, node, name, -1, &p, &len);

	if (rc)
		return rc;
	if (len == 0)
		return fail(c, FW_BOARD_ERR_BADLEN, node,
			    "property '%s' has 0 bytes, want a string", name);
	rc = check_str(c, node, name, p, len, cap);
	if (rc)
		return rc;
	if (!allow_empty && ((const char *)p)[0] == '\0')
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property '%s' is empty", name);
	memcpy(dst, p, strlen(p) + 1);
	return 0;
}

static int want_cells(struct ctx *c, int node, const char *name, uint32_t want)
{
	uint32_t v;
	int rc = get_u32(c, node, name, &v);

	if (rc)
		return rc;
	if (v != want)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property '%s' is %u, want %u", name, v, want);
	return 0;
}

static int node_name(struct ctx *c, int node, char *dst, size_t cap)
{
	int len;
	const char *n = fdt_get_name(c->fdt, node, &len);

	if (!n || len <= 0)
		return fail(c, FW_BOARD_ERR_BADDTB, node, "unnamed node");
	if ((size_t)len >= cap)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "node name is %d chars, max %zu", len, cap - 1);
	memcpy(dst, n, (size_t)len);
	dst[len] = '\0';
	return 0;
}

static int find_node(struct ctx *c, const char *path, int required, int *node)
{
	int off = fdt_path_offset(c->fdt, path);

	if (off == -FDT_ERR_NOTFOUND && !required) {
		*node = -1;
		return 0;
	}
	if (off < 0)
		return fail(c, FW_BOARD_ERR_NOTFOUND, -1,
			    "node '%s' missing (%s)", path, fdt_strerror(off));
	*node = off;
	return 0;
}

/* fdt_for_each_subnode ends with -FDT_ERR_NOTFOUND; anything else is damage. */
static int end_of_subnodes(struct ctx *c, int parent, int off)
{
	if (off == -FDT_ERR_NOTFOUND)
		return 0;
	return fail(c, FW_BOARD_ERR_BADDTB, parent, "walking subnodes: %s",
		    fdt_strerror(off));
}

static int parse_header(struct ctx *c, size_t len)
{
	int rc;

	if (len < sizeof(struct fdt_header))
		return fail(c, FW_BOARD_ERR_TRUNCATED, -1,
			    "%zu bytes, shorter than a DTB header", len);
	rc = fdt_check_header(c->fdt);
	if (rc)
		return fail(c, FW_BOARD_ERR_BADDTB, -1, "bad header: %s",
			    fdt_strerror(rc));
	if (fdt_totalsize(c->fdt) > len)
		return fail(c, FW_BOARD_ERR_TRUNCATED, -1,
			    "header totalsize %u > %zu bytes given",
			    fdt_totalsize(c->fdt), len);
	/* dtc writes v17; older layouts crash libfdt 1.6.1's fdt_check_full. */
	if (fdt_version(c->fdt) < 17)
		return fail(c, FW_BOARD_ERR_BADDTB, -1,
			    "header version %u, want 17 or later",
			    fdt_version(c->fdt));
	rc = fdt_check_full(c->fdt, len);
	if (rc)
		return fail(c, FW_BOARD_ERR_BADDTB, -1, "bad structure: %s",
			    fdt_strerror(rc));
	return 0;
}

static int parse_root(struct ctx *c, struct fw_board *b)
{
	int rc;

	if ((rc = want_cells(c, 0, "#address-cells", 2)) ||
	    (rc = want_cells(c, 0, "#size-cells", 2)) ||
	    (rc = get_str(c, 0, "model", b->model, sizeof(b->model), 0)) ||
	    (rc = get_str(c, 0, "compatible", b->compatible,
			  sizeof(b->compatible), 0)) ||
	    (rc = get_str(c, 0, "nextcard,flow", b->flow, sizeof(b->flow), 0)) ||
	    (rc = get_str(c, 0, "nextcard,platform", b->platform,
			  sizeof(b->platform), 1)) ||
	    (rc = get_u32(c, 0, "nextcard,slr-count", &b->n_slrs)))
		return rc;
	if (!in_list(b->flow, known_flows,
		     sizeof(known_flows) / sizeof(known_flows[0])))
		return fail(c, FW_BOARD_ERR_BADVALUE, 0,
			    "property 'nextcard,flow' is '%s', want xclbin, aved, hdk or emu",
			    b->flow);
	if (strcmp(b->flow, "xclbin") == 0 && b->platform[0] == '\0')
		return fail(c, FW_BOARD_ERR_BADVALUE, 0,
			    "property 'nextcard,platform' is empty but flow is xclbin");
	if (b->n_slrs == 0 || b->n_slrs > FW_MAX_SLRS)
		return fail(c, FW_BOARD_ERR_BADVALUE, 0,
			    "property 'nextcard,slr-count' is %u, want 1..%d",
			    b->n_slrs, FW_MAX_SLRS);
	return 0;
}

static int parse_bank(struct ctx *c, int node, struct fw_bank *k)
{
	const void *reg;
	int rc;

	if ((rc = node_name(c, node, k->name, sizeof(k->name))) ||
	    (rc = get_str(c, node, "nextcard,memory-type", k->type,
			  sizeof(k->type), 0)) ||
	    (rc = get_prop(c, node, "reg", 16, &reg, NULL)) ||
	    (rc = get_u64(c, node, "nextcard,bandwidth", &k->bw_bytes_per_s)))
		return rc;
	if (strcmp(k->type, "hbm") && strcmp(k->type, "ddr"))
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property 'nextcard,memory-type' is '%s', want hbm or ddr",
			    k->type);
	k->base = ld64(reg);
	k->size = ld64((const char *)reg + 8);
	if (k->size == 0)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property 'reg' has size 0");
	if (k->base + k->size < k->base)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property 'reg' wraps past 2^64");
	if (k->bw_bytes_per_s == 0)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property 'nextcard,bandwidth' is 0");
	return 0;
}

/* Banks must come sorted by base and must not overlap. */
static int check_order(struct ctx *c, int node, const struct fw_bank *prev,
		       const struct fw_bank *k)
{
	if (k->base < prev->base)
		return fail(c, FW_BOARD_ERR_OVERLAP, node,
			    "property 'reg' base 0x%llx below previous bank %s (0x%llx): banks not sorted",
			    (unsigned long long)k->base, prev->name,
			    (unsigned long long)prev->base);
	if (k->base < prev->base + prev->size)
		return fail(c, FW_BOARD_ERR_OVERLAP, node,
			    "property 'reg' base 0x%llx overlaps bank %s ending at 0x%llx",
			    (unsigned long long)k->base, prev->name,
			    (unsigned long long)(prev->base + prev->size));
	return 0;
}

static void count_bank(struct fw_board *b, struct fw_bank *k)
{
	uint32_t same = 0;

	for (uint32_t i = 0; i < b->n_banks; i++)
		same += strcmp(b->banks[i].type, k->type) == 0;
	k->type_index = same;
	if (strcmp(k->type, "hbm") == 0) {
		b->hbm_bytes += k->size;
		b->hbm_bw_bytes_per_s += k->bw_bytes_per_s;
	}
}

static int parse_memory(struct ctx *c, struct fw_board *b)
{
	int mem, node, rc;

	if ((rc = find_node(c, "/memory", 1, &mem)) ||
	    (rc = want_cells(c, mem, "#address-cells", 2)) ||
	    (rc = want_cells(c, mem, "#size-cells", 2)))
		return rc;
	fdt_for_each_subnode(node, c->fdt, mem) {
		struct fw_bank k;

		if (b->n_banks == FW_MAX_BANKS)
			return fail(c, FW_BOARD_ERR_TOOMANY, mem,
				    "more than %d banks", FW_MAX_BANKS);
		memset(&k, 0, sizeof(k));
		if ((rc = parse_bank(c, node, &k)))
			return rc;
		if (b->n_banks &&
		    (rc = check_order(c, node, &b->banks[b->n_banks - 1], &k)))
			return rc;
		count_bank(b, &k);
		b->banks[b->n_banks++] = k;
	}
	if ((rc = end_of_subnodes(c, mem, node)))
		return rc;
	if (b->n_banks == 0)
		return fail(c, FW_BOARD_ERR_NOTFOUND, mem, "no memory banks");
	return 0;
}

static int parse_clock(struct ctx *c, struct fw_board *b)
{
	uint32_t hz;
	int node, rc;

	if ((rc = find_node(c, "/clocks/kernel-clock", 1, &node)) ||
	    (rc = get_u32(c, node, "clock-frequency", &hz)))
		return rc;
	if (hz == 0 || hz % 1000000)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property 'clock-frequency' is %u Hz, want a non-zero whole MHz",
			    hz);
	b->kernel_clock_mhz = hz / 1000000;
	return 0;
}

/* Optional /cpus: each cpu node names its core in 'compatible'. */
static int parse_cpus(struct ctx *c, struct fw_board *b)
{
	char core[64];
	int cpus, node, rc;

	if ((rc = find_node(c, "/cpus", 0, &cpus)) || cpus < 0)
		return rc;
	fdt_for_each_subnode(node, c->fdt, cpus) {
		if ((rc = get_str(c, node, "compatible", core, sizeof(core), 0)))
			return rc;
		b->has_cpu++;
	}
	return end_of_subnodes(c, cpus, node);
}

/* Optional /nics: one node per network port on the card. */
static int parse_nics(struct ctx *c, struct fw_board *b)
{
	int nics, node, rc;

	if ((rc = find_node(c, "/nics", 0, &nics)) || nics < 0)
		return rc;
	fdt_for_each_subnode(node, c->fdt, nics) {
		uint32_t g;

		if (b->n_nics == FW_MAX_NICS)
			return fail(c, FW_BOARD_ERR_TOOMANY, nics,
				    "more than %d nics", FW_MAX_NICS);
		if ((rc = get_u32(c, node, "nextcard,speed-gbps", &g)))
			return rc;
		if (g == 0)
			return fail(c, FW_BOARD_ERR_BADVALUE, node,
				    "property 'nextcard,speed-gbps' is 0");
		b->nic_gbps[b->n_nics++] = g;
	}
	return end_of_subnodes(c, nics, node);
}

/* Split a string list into cu->ports[].arg. */
static int parse_port_args(struct ctx *c, int node, struct fw_cu *cu)
{
	static const char *pn = "nextcard,port-args";
	const void *p = NULL;
	int len = 0, rc, pos = 0;

	if ((rc = get_prop(c, node, pn, -1, &p, &len)))
		return rc;
	while (pos < len) {
		const char *s = (const char *)p + pos;
		struct fw_port *port = &cu->ports[cu->n_ports];

		if (cu->n_ports == FW_MAX_PORTS)
			return fail(c, FW_BOARD_ERR_TOOMANY, node,
				    "property '%s' lists more than %d ports",
				    pn, FW_MAX_PORTS);
		if ((rc = check_str(c, node, pn, s, len - pos, sizeof(port->arg))))
			return rc;
		if (s[0] == '\0')
			return fail(c, FW_BOARD_ERR_BADVALUE, node,
				    "property '%s' has an empty name", pn);
		for (uint32_t i = 0; i < cu->n_ports; i++)
			if (strcmp(cu->ports[i].arg, s) == 0)
				return fail(c, FW_BOARD_ERR_BADVALUE, node,
					    "property '%s' repeats '%s'", pn, s);
		memcpy(port->arg, s, strlen(s) + 1);
		pos += (int)strlen(s) + 1;
		cu->n_ports++;
	}
	if (cu->n_ports == 0)
		return fail(c, FW_BOARD_ERR_BADLEN, node,
			    "property '%s' has 0 bytes, want names", pn);
	return 0;
}

/* One <lo hi> pair of bank indices per port, within one memory type. */
static int parse_port_banks(struct ctx *c, int node, const struct fw_board *b,
			    struct fw_cu *cu)
{
	static const char *pn = "nextcard,port-banks";
	const void *p = NULL;
	int rc;

	if ((rc = get_prop(c, node, pn, (int)(8 * cu->n_ports), &p, NULL)))
		return rc;
	for (uint32_t i = 0; i < cu->n_ports; i++) {
		struct fw_port *port = &cu->ports[i];

		port->bank_lo = ld32((const char *)p + 8 * i);
		port->bank_hi = ld32((const char *)p + 8 * i + 4);
		if (port->bank_lo > port->bank_hi || port->bank_hi >= b->n_banks)
			return fail(c, FW_BOARD_ERR_BADVALUE, node,
				    "property '%s' port '%s' range <%u %u> outside banks 0..%u",
				    pn, port->arg, port->bank_lo, port->bank_hi,
				    b->n_banks - 1);
		if (strcmp(b->banks[port->bank_lo].type,
			   b->banks[port->bank_hi].type))
			return fail(c, FW_BOARD_ERR_BADVALUE, node,
				    "property '%s' port '%s' range <%u %u> spans memory types",
				    pn, port->arg, port->bank_lo, port->bank_hi);
	}
	return 0;
}

/* Compute units of one kernel must list the same arguments in one order. */
static int check_cu_unique(struct ctx *c, int node, const struct fw_board *b,
			   const struct fw_cu *cu)
{
	for (uint32_t i = 0; i < b->n_cus; i++) {
		const struct fw_cu *o = &b->cus[i];

		if (strcmp(o->name, cu->name) == 0)
			return fail(c, FW_BOARD_ERR_BADVALUE, node,
				    "compute unit name repeats '%s'", cu->name);
		if (strcmp(o->kernel, cu->kernel))
			continue;
		if (o->n_ports != cu->n_ports)
			goto differ;
		for (uint32_t p = 0; p < cu->n_ports; p++)
			if (strcmp(o->ports[p].arg, cu->ports[p].arg))
				goto differ;
	}
	return 0;
differ:
	return fail(c, FW_BOARD_ERR_BADVALUE, node,
		    "property 'nextcard,port-args' differs from another %s compute unit",
		    cu->kernel);
}

static int parse_cu(struct ctx *c, int node, const struct fw_board *b,
		    struct fw_cu *cu)
{
	int rc;

	if ((rc = node_name(c, node, cu->name, sizeof(cu->name))) ||
	    (rc = get_str(c, node, "nextcard,kernel", cu->kernel,
			  sizeof(cu->kernel), 0)) ||
	    (rc = get_u32(c, node, "nextcard,slr", &cu->slr)))
		return rc;
	if (!in_list(cu->kernel, known_kernels,
		     sizeof(known_kernels) / sizeof(known_kernels[0])))
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property 'nextcard,kernel' names unknown kernel '%s'",
			    cu->kernel);
	if (cu->slr >= b->n_slrs)
		return fail(c, FW_BOARD_ERR_BADVALUE, node,
			    "property 'nextcard,slr' is %u, board has %u SLRs",
			    cu->slr, b->n_slrs);
	if ((rc = parse_port_args(c, node, cu)) ||
	    (rc = parse_port_banks(c, node, b, cu)))
		return rc;
	return check_cu_unique(c, node, b, cu);
}

static int parse_kernels(struct ctx *c, struct fw_board *b)
{
	int kernels, node, rc;

	if ((rc = find_node(c, "/kernels", 1, &kernels)))
		return rc;
	fdt_for_each_subnode(node, c->fdt, kernels) {
		struct fw_cu *cu = &b->cus[b->n_cus];

		if (b->n_cus == FW_MAX_CUS)
			return fail(c, FW_BOARD_ERR_TOOMANY, kernels,
				    "more than %d compute units", FW_MAX_CUS);
		if ((rc = parse_cu(c, node, b, cu)))
			return rc;
		b->n_cus++;
	}
	if ((rc = end_of_subnodes(c, kernels, node)))
		return rc;
	if (b->n_cus == 0)
		return fail(c, FW_BOARD_ERR_NOTFOUND, kernels,
			    "no compute units");
	return 0;
}

int fw_board_parse(const void *dtb, size_t len, struct fw_board *b,
		   char *err, size_t errlen)
{
	struct ctx c = { .fdt = dtb, .err = err, .errlen = errlen };
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!dtb || !b)
		return fail(&c, FW_BOARD_ERR_INVAL, -1, "NULL dtb or board");
	memset(b, 0, sizeof(*b));
	if ((rc = parse_header(&c, len)) || (rc = parse_root(&c, b)) ||
	    (rc = parse_memory(&c, b)) || (rc = parse_clock(&c, b)) ||
	    (rc = parse_cpus(&c, b)) || (rc = parse_nics(&c, b)) ||
	    (rc = parse_kernels(&c, b))) {
		memset(b, 0, sizeof(*b));
		return rc;
	}
	return 0;
}

int fw_board_load(const char *dtb_path, struct fw_board *b,
		  char *err, size_t errlen)
{
	struct ctx c = { .fdt = NULL, .err = err, .errlen = errlen };
	struct stat st;
	void *map;
	int fd, rc;

	if (!dtb_path || !b)
		return fail(&c, FW_BOARD_ERR_INVAL, -1, "NULL path or board");
	fd = open(dtb_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(&c, FW_BOARD_ERR_IO, -1, "cannot open %s", dtb_path);
	if (fstat(fd, &st) || st.st_size <= 0 || st.st_size > FW_MAX_DTB) {
		close(fd);
		return fail(&c, FW_BOARD_ERR_IO, -1,
			    "%s: empty, unreadable or over %u bytes",
			    dtb_path, FW_MAX_DTB);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return fail(&c, FW_BOARD_ERR_IO, -1, "cannot map %s", dtb_path);
	rc = fw_board_parse(map, (size_t)st.st_size, b, err, errlen);
	munmap(map, (size_t)st.st_size);
	return rc;
}

int fw_board_bank_of(const struct fw_board *b, uint64_t addr, uint64_t len)
{
	if (!b)
		return -FW_BOARD_ERR_INVAL;
	for (uint32_t i = 0; i < b->n_banks && i < FW_MAX_BANKS; i++) {
		const struct fw_bank *k = &b->banks[i];

		if (addr >= k->base && addr - k->base <= k->size &&
		    len <= k->size - (addr - k->base))
			return (int)i;
	}
	return -FW_BOARD_ERR_NOTFOUND;
}

/* ---- v++ connectivity ------------------------------------------------- */

struct outbuf {
	char *p;
	size_t cap, len;
	int full;
};

static void put(struct outbuf *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len) {
		o->full = 1;
		return;
	}
	o->len += (size_t)n;
}

/* "HBM[3]" or "HBM[0:5]" in each bank type's own numbering. */
static void put_banks(struct outbuf *o, const struct fw_board *b,
		      const struct fw_port *p)
{
	const struct fw_bank *lo = &b->banks[p->bank_lo];
	const struct fw_bank *hi = &b->banks[p->bank_hi];
	char up[8];
	size_t i;

	for (i = 0; lo->type[i] && i < sizeof(up) - 1; i++)
		up[i] = lo->type[i] >= 'a' && lo->type[i] <= 'z' ?
			(char)(lo->type[i] - 'a' + 'A') : lo->type[i];
	up[i] = '\0';
	if (lo == hi)
		put(o, "%s[%u]", up, lo->type_index);
	else
		put(o, "%s[%u:%u]", up, lo->type_index, hi->type_index);
}

static void put_nk(struct outbuf *o, const struct fw_board *b)
{
	for (uint32_t i = 0; i < b->n_cus; i++) {
		uint32_t n = 0, j;

		for (j = 0; j < i; j++)
			if (strcmp(b->cus[j].kernel, b->cus[i].kernel) == 0)
				break;
		if (j < i)
			continue;	/* kernel already written */
		for (j = i; j < b->n_cus; j++)
			n += strcmp(b->cus[j].kernel, b->cus[i].kernel) == 0;
		put(o, "nk=%s:%u:", b->cus[i].kernel, n);
		for (j = i; j < b->n_cus; j++)
			if (strcmp(b->cus[j].kernel, b->cus[i].kernel) == 0)
				put(o, "%s%s", j == i ? "" : ".", b->cus[j].name);
		put(o, "\n");
	}
}

static int check_board(const struct fw_board *b, struct ctx *c)
{
	if (b->n_banks > FW_MAX_BANKS || b->n_cus > FW_MAX_CUS)
		return fail(c, FW_BOARD_ERR_BADVALUE, -1, "board counts out of range");
	for (uint32_t i = 0; i < b->n_cus; i++) {
		const struct fw_cu *cu = &b->cus[i];

		if (cu->n_ports > FW_MAX_PORTS)
			return fail(c, FW_BOARD_ERR_BADVALUE, -1,
				    "cu %.31s: too many ports", cu->name);
		for (uint32_t p = 0; p < cu->n_ports; p++)
			if (cu->ports[p].bank_lo > cu->ports[p].bank_hi ||
			    cu->ports[p].bank_hi >= b->n_banks)
				return fail(c, FW_BOARD_ERR_BADVALUE, -1,
					    "cu %.31s: bad bank range", cu->name);
	}
	return 0;
}

int fw_board_connectivity(const struct fw_board *b, char *out, size_t outlen,
			  char *err, size_t errlen)
{
	struct ctx c = { .fdt = NULL, .err = err, .errlen = errlen };
	struct outbuf o = { .p = out, .cap = outlen };
	int rc;

	if (!b || !out || outlen == 0)
		return fail(&c, FW_BOARD_ERR_INVAL, -1, "NULL board or buffer");
	if (strcmp(b->flow, "xclbin"))
		return fail(&c, FW_BOARD_ERR_FLOW, -1,
			    "%.63s uses flow '%.15s', not xclbin: no v++ connectivity",
			    b->model, b->flow);
	if ((rc = check_board(b, &c)))
		return rc;
	out[0] = '\0';
	put(&o, "# v++ link config for %s (%s).\n", b->model, b->compatible);
	put(&o, "# Generated from the board device tree by tools/gen_connectivity; do not edit.\n");
	put(&o, "platform=%s\nkernel_frequency=%u\n\n[connectivity]\n",
	    b->platform, b->kernel_clock_mhz);
	put_nk(&o, b);
	for (uint32_t i = 0; i < b->n_cus; i++)
		for (uint32_t p = 0; p < b->cus[i].n_ports; p++) {
			put(&o, "sp=%s.%s:", b->cus[i].name, b->cus[i].ports[p].arg);
			put_banks(&o, b, &b->cus[i].ports[p]);
			put(&o, "\n");
		}
	for (uint32_t i = 0; i < b->n_cus; i++)
		put(&o, "slr=%s:SLR%u\n", b->cus[i].name, b->cus[i].slr);
	if (o.full)
		return fail(&c, FW_BOARD_ERR_NOSPACE, -1,
			    "connectivity needs more than %zu bytes", outlen);
	return (int)o.len;
}

const char *fw_board_strerror(int code)
{
	static const char *const msg[] = {
		[FW_BOARD_OK] = "ok",
		[FW_BOARD_ERR_INVAL] = "invalid argument",
		[FW_BOARD_ERR_BADDTB] = "not a valid device tree blob",
		[FW_BOARD_ERR_TRUNCATED] = "device tree blob truncated",
		[FW_BOARD_ERR_NOTFOUND] = "required node or property missing",
		[FW_BOARD_ERR_BADLEN] = "property has the wrong length",
		[FW_BOARD_ERR_BADVALUE] = "property value out of range",
		[FW_BOARD_ERR_TOOMANY] = "count exceeds a firmware limit",
		[FW_BOARD_ERR_OVERLAP] = "memory banks overlap or are unsorted",
		[FW_BOARD_ERR_IO] = "cannot read device tree file",
		[FW_BOARD_ERR_NOSPACE] = "output buffer too small",
		[FW_BOARD_ERR_FLOW] = "board has no v++ flow",
	};
	_Static_assert(sizeof(msg) / sizeof(msg[0]) == FW_BOARD_ERR_MAX + 1,
		       "one message per fw_board_err");

	if (code < -FW_BOARD_ERR_MAX || code > FW_BOARD_ERR_MAX)
		return "unknown error";
	return msg[code < 0 ? -code : code];
}
