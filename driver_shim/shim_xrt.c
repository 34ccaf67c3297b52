/* shim_xrt.c — a real card through XRT's native C API (libxrt_coreutil).
 *
 * The firmware still runs as a host thread (U55C, U280 and F2 have no
 * embedded CPU we use), so the control block (struct fw_ctrl) is plain host
 * memory.  What becomes real is the register/BO layer:
 *
 *   card memory  one buffer object per bank group, allocated in the memory
 *                XRT names for it and mapped.  The firmware's card addresses
 *                (the DTB's bank numbering) are offsets into these BOs; a
 *                write is memcpy + xrtBOSync(TO_DEVICE), a read is
 *                xrtBOSync(FROM_DEVICE) + memcpy.
 *   kernels      one kernel handle and one reusable run per compute unit
 *                ("krnl_gemv:{gemv_1}"), so each CU's connectivity is its own
 *                and a call goes to a CU whose ports reach its buffers.
 *
 * Bank groups.  v++ connects a port to a range of banks (sp=cu.w:HBM[0:3]);
 * XRT then reports one memory group per argument (xrtKernelArgGroupId) and
 * a BO allocated in that group may span the whole range.  Banks joined by
 * some port range form one group here and get one BO, allocated in the group
 * id XRT gives for a port that spans exactly those banks.  Without driver
 * groups (XCL_EMULATION_MODE=noop, or an xclbin without group sections) XRT
 * answers with the highest bank index of the range; on a card the driver adds
 * group entries after the banks.  At open every pointer argument of every CU
 * is checked against the DTB's range this way; a mismatch refuses the card.
 *
 * Pointer arguments.  The C API sets a global argument by BO handle only, so
 * an address inside a group becomes a sub-buffer (xrtBOSubAlloc) of the
 * group's BO from that offset to the group's end: the kernel's m_axi offset
 * register gets the device address of exactly that byte, and XRT keeps the
 * BO's bank bookkeeping.  (A 64-bit scalar "device address" would need the
 * metadata to lie about the argument and loses xrtKernelArgGroupId.)  The
 * token step uses the same addresses every step, so sub-buffers are cached by
 * address: steady state allocates nothing.  Before a run each used pointer
 * must lie in a bank the CU's port reaches; otherwise the run is refused
 * with a one-line reason (noop and the C xrtRunSetArg never check this).
 *
 * Environment:
 *   XILINX_XRT       required (XRT aborts the process without it): a folder
 *                    whose lib/ holds the XRT shims.  Checked before any XRT
 *                    call.
 *   NEXTCARD_XCLBIN  the xclbin to load; default build/xclbin/<board>.xclbin,
 *                    <board> from the DTB's compatible ("amd,alveo-u55c" ->
 *                    u55c, "aws,f2-vu47p" -> f2), as `make xclbin BOARD=`
 *                    names it.
 *   NEXTCARD_FW_CPU  a CPU number: the firmware thread pins itself there
 *                    (sched_setaffinity) at its first kernel run.  Unset: no
 *                    pinning.
 */
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xrt/xrt_bo.h>
#include <xrt/xrt_device.h>
#include <xrt/xrt_kernel.h>
#include <experimental/xrt_error.h>
#include <xclbin.h>
#include "shim_card.h"
#include "krnl_state.h"

#define SUB_SLOTS 4096		/* sub-buffer cache entries (power of two) */
#define SUB_PROBE 8

/* Pointer/scalar split of each kernel's argument registers (krnl_abi.h). */
static const struct { uint8_t nptr, nargs; } abi[] = {
	[KRNL_EMBED_GATHER] = { EMB_ROWS, EMB_NARGS },
	[KRNL_RMSNORM] = { RMS_ROWS, RMS_NARGS },
	[KRNL_RMSNORM_GATED] = { RMG_ROWS, RMG_NARGS },
	[KRNL_GEMV] = { GEMV_ROWS, GEMV_NARGS },
	[KRNL_CONV1D_STEP] = { CONV_ROWS, CONV_NARGS },
	[KRNL_DELTANET_STEP] = { DN_ROWS, DN_NARGS },
	[KRNL_ATTN_DECODE] = { AT_ROWS, AT_NARGS },
	[KRNL_MOE_ROUTER] = { RT_ROWS, RT_NARGS },
	[KRNL_EXPERT_FFN] = { EF_ROWS, EF_NARGS },
	[KRNL_LM_HEAD_ARGMAX] = { LM_ROWS, LM_NARGS },
	[KRNL_SAMPLER] = { SMP_ROWS, SMP_NARGS },
};
_Static_assert(sizeof(abi) / sizeof(abi[0]) == KRNL_COUNT,
	       "shim_xrt: give every kernel its pointer/scalar split");

struct xgroup {			/* banks lo..hi, one BO */
	uint32_t lo, hi;
	uint64_t base, size;
	int gid;		/* XRT memory group the BO lives in */
	xrtBufferHandle bo;
	uint8_t *map;
};

struct xcu {
	const struct fw_cu *dt;	/* the DTB's description */
	int kid;
	xrtKernelHandle k;
	xrtRunHandle run;
	int gid[FW_MAX_PORTS];
	_Atomic uint64_t runs;
};

struct xsub {
	uint64_t addr;
	xrtBufferHandle bo;
};

struct xrt {
	xrtDeviceHandle dev;
	char xclbin[512];
	int memidx[FW_MAX_BANKS];	/* DTB bank -> xclbin mem_topology index */
	uint32_t n_groups;
	struct xgroup group[FW_MAX_BANKS];
	uint8_t bank_group[FW_MAX_BANKS];
	uint32_t n_cus;
	struct xcu cu[FW_MAX_CUS];
	struct xsub sub[SUB_SLOTS];	/* firmware thread only */
	int pin_cpu, pinned;
	char last_err[256];
	_Atomic uint64_t sync_to, sync_from, bytes_to, bytes_from;
	_Atomic uint64_t runs, subbufs, refused;
	struct fw_ctrl ctrl;		/* host-visible control block */
};

static struct xrt *X(struct shim_card *c)
{
	return c->priv;
}

/* xrtErrorGetLast/GetString are exported with C++ linkage by XRT 2.13 (its
 * header lacks extern "C"); look them up under either name. */
typedef int (*get_last_fn)(xrtDeviceHandle, enum xrtErrorClass, xrtErrorCode *, uint64_t *);
typedef int (*get_string_fn)(xrtDeviceHandle, xrtErrorCode, char *, size_t, size_t *);

static void *xrt_sym(const char *c_name, const char *cxx_name)
{
	void *p = dlsym(RTLD_DEFAULT, c_name);

	return p ? p : dlsym(RTLD_DEFAULT, cxx_name);
}

/* "<what>: <errno text>[; <newest asynchronous XRT error>]" */
static void xerr(struct xrt *x, char *err, size_t errlen, const char *what)
{
	get_last_fn last = (get_last_fn)xrt_sym("xrtErrorGetLast",
						"_Z15xrtErrorGetLastPv13xrtErrorClassPmS1_");
	get_string_fn str = (get_string_fn)xrt_sym("xrtErrorGetString",
						   "_Z17xrtErrorGetStringPvmPcmPm");
	int e = errno;
	char async[160] = "";

	if (x && x->dev && last && str) {
		xrtErrorCode code = 0, best = 0;
		uint64_t ts = 0, best_ts = 0;

		for (int cl = XRT_ERROR_CLASS_FIRST_ENTRY; cl <= XRT_ERROR_CLASS_LAST_ENTRY; cl++)
			if (!last(x->dev, (enum xrtErrorClass)cl, &code, &ts) && code && ts >= best_ts) {
				best = code;
				best_ts = ts;
			}
		if (best && str(x->dev, best, async, sizeof(async), NULL))
			async[0] = 0;
	}
	snprintf(err, errlen, "%s: %s%s%s", what, e ? strerror(e) : "failed",
		 async[0] ? "; " : "", async);
}

static const char *bank_tag(const struct fw_bank *b, char *buf, size_t len)
{
	snprintf(buf, len, "%s[%u]", strcmp(b->type, "hbm") ? "DDR" : "HBM", b->type_index);
	return buf;
}

/* Default xclbin: build/xclbin/<board>.xclbin, <board> from the compatible. */
static void xclbin_path(const struct fw_board *b, char *out, size_t len)
{
	const char *env = getenv("NEXTCARD_XCLBIN");
	const char *n = strchr(b->compatible, ',');
	char name[64];
	size_t k;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return;
	}
	n = n ? n + 1 : b->compatible;
	if (!strncmp(n, "alveo-", 6))
		n += 6;
	k = strcspn(n, "-");
	snprintf(name, sizeof(name), "%.*s", (int)(k < 63 ? k : 63), n);
	snprintf(out, len, "build/xclbin/%s.xclbin", name);
}

/* Read the xclbin's MEM_TOPOLOGY and find each DTB bank by its tag. */
static int map_banks(struct xrt *x, const struct fw_board *b, char *err, size_t errlen)
{
	FILE *f = fopen(x->xclbin, "rb");
	struct axlf top;
	struct axlf_section_header sh;
	struct mem_topology *mt = NULL;
	uint64_t mt_len = 0;
	int rc = -1;

	if (!f) {
		snprintf(err, errlen, "xclbin %s: %s (set NEXTCARD_XCLBIN or run make xclbin)",
			 x->xclbin, strerror(errno));
		return -1;
	}
	if (fread(&top, sizeof(top), 1, f) != 1 || memcmp(top.m_magic, "xclbin2", 8) ||
	    top.m_header.m_numSections == 0 || top.m_header.m_numSections > XCLBIN_MAX_NUM_SECTION) {
		snprintf(err, errlen, "xclbin %s: not an xclbin2 container", x->xclbin);
		goto out;
	}
	for (uint32_t i = 0; i < top.m_header.m_numSections && !mt; i++) {
		if (i == 0)
			sh = top.m_sections[0];
		else if (fseek(f, (long)(offsetof(struct axlf, m_sections) + i * sizeof(sh)), SEEK_SET) ||
			 fread(&sh, sizeof(sh), 1, f) != 1)
			break;
		if (sh.m_sectionKind != MEM_TOPOLOGY)
			continue;
		if (sh.m_sectionSize < sizeof(int32_t) || sh.m_sectionSize > (1u << 20) ||
		    !(mt = malloc(sh.m_sectionSize)) ||
		    fseek(f, (long)sh.m_sectionOffset, SEEK_SET) ||
		    fread(mt, sh.m_sectionSize, 1, f) != 1) {
			snprintf(err, errlen, "xclbin %s: unreadable MEM_TOPOLOGY", x->xclbin);
			goto out;
		}
		mt_len = sh.m_sectionSize;
	}
	if (!mt || mt->m_count < 0 ||
	    offsetof(struct mem_topology, m_mem_data) + (uint64_t)mt->m_count * sizeof(struct mem_data) > mt_len) {
		snprintf(err, errlen, "xclbin %s: no valid MEM_TOPOLOGY section", x->xclbin);
		goto out;
	}
	for (uint32_t i = 0; i < b->n_banks; i++) {
		char tag[16];

		bank_tag(&b->banks[i], tag, sizeof(tag));
		x->memidx[i] = -1;
		for (int32_t m = 0; m < mt->m_count; m++)
			if (mt->m_mem_data[m].m_used &&
			    !strncmp((const char *)mt->m_mem_data[m].m_tag, tag, sizeof(tag)))
				x->memidx[i] = m;
		if (x->memidx[i] < 0) {
			snprintf(err, errlen, "xclbin %s has no used memory %s (DTB bank %u)",
				 x->xclbin, tag, i);
			goto out;
		}
	}
	rc = 0;
out:
	free(mt);
	fclose(f);
	return rc;
}

static int kernel_id(const char *name)
{
	for (int k = 0; k < KRNL_COUNT; k++)
		if (!strcmp(krnl_names[k], name))
			return k;
	return -1;
}

/* Is gid what XRT must say for an argument connected to banks lo..hi? */
static int gid_matches(const struct xrt *x, const struct fw_board *b, int gid,
		       uint32_t lo, uint32_t hi)
{
	if (gid < 0)
		return 0;
	if (gid == x->memidx[hi])
		return 1;	/* one bank, or no group sections: the highest */
	if (lo == hi)
		return 0;
	for (uint32_t i = 0; i < b->n_banks; i++)
		if (gid == x->memidx[i])
			return 0;	/* some other single bank */
	return 1;		/* a group entry the driver made for the range */
}

static int open_cus(struct xrt *x, const struct fw_board *b, char *err, size_t errlen)
{
	xuid_t uuid;

	if (xrtDeviceGetXclbinUUID(x->dev, uuid)) {
		xerr(x, err, errlen, "xrtDeviceGetXclbinUUID");
		return -1;
	}
	for (uint32_t i = 0; i < b->n_cus; i++) {
		const struct fw_cu *dt = &b->cus[i];
		struct xcu *cu = &x->cu[i];
		char name[80], what[128];

		cu->dt = dt;
		cu->kid = kernel_id(dt->kernel);
		if (cu->kid < 0 || dt->n_ports != abi[cu->kid].nptr) {
			snprintf(err, errlen, "/kernels/%s: '%s' with %u ports does not match krnl_abi.h",
				 dt->name, dt->kernel, dt->n_ports);
			return -1;
		}
		snprintf(name, sizeof(name), "%s:{%s}", dt->kernel, dt->name);
		cu->k = xrtPLKernelOpen(x->dev, uuid, name);
		x->n_cus = i + 1;
		if (!cu->k) {
			snprintf(what, sizeof(what), "xrtPLKernelOpen(%s)", name);
			xerr(x, err, errlen, what);
			return -1;
		}
		cu->run = xrtRunOpen(cu->k);
		if (!cu->run) {
			snprintf(what, sizeof(what), "xrtRunOpen(%s)", name);
			xerr(x, err, errlen, what);
			return -1;
		}
		for (uint32_t p = 0; p < dt->n_ports; p++) {
			const struct fw_port *pt = &dt->ports[p];
			char tag[16];

			cu->gid[p] = xrtKernelArgGroupId(cu->k, (int)p);
			if (!gid_matches(x, b, cu->gid[p], pt->bank_lo, pt->bank_hi)) {
				snprintf(err, errlen, "xclbin and DTB disagree: %s.%s: XRT group %d, "
					 "DTB banks %u..%u (%s..)", dt->name, pt->arg, cu->gid[p],
					 pt->bank_lo, pt->bank_hi,
					 bank_tag(&b->banks[pt->bank_lo], tag, sizeof(tag)));
				return -1;
			}
		}
	}
	return 0;
}

/* Banks joined by any port range form one group; one BO each. */
static int alloc_groups(struct xrt *x, const struct fw_board *b, char *err, size_t errlen)
{
	uint8_t join[FW_MAX_BANKS] = { 0 };	/* bank i shares a group with i+1 */

	for (uint32_t i = 0; i < x->n_cus; i++)
		for (uint32_t p = 0; p < x->cu[i].dt->n_ports; p++)
			for (uint32_t m = x->cu[i].dt->ports[p].bank_lo; m < x->cu[i].dt->ports[p].bank_hi; m++)
				join[m] = 1;
	for (uint32_t lo = 0; lo < b->n_banks;) {
		struct xgroup *g = &x->group[x->n_groups];
		uint32_t hi = lo;

		while (join[hi] && hi + 1 < b->n_banks)
			hi++;
		g->lo = lo;
		g->hi = hi;
		g->base = b->banks[lo].base;
		g->size = b->banks[hi].base + b->banks[hi].size - g->base;
		g->gid = lo == hi ? x->memidx[lo] : -1;
		for (uint32_t i = 0; i < x->n_cus && g->gid < 0; i++)
			for (uint32_t p = 0; p < x->cu[i].dt->n_ports; p++)
				if (x->cu[i].dt->ports[p].bank_lo == lo && x->cu[i].dt->ports[p].bank_hi == hi)
					g->gid = x->cu[i].gid[p];
		if (g->gid < 0) {
			snprintf(err, errlen, "banks %u..%u: port ranges overlap but none spans them "
				 "all, so XRT has no memory group for one buffer", lo, hi);
			return -1;
		}
		for (uint32_t m = lo; m <= hi; m++)
			x->bank_group[m] = (uint8_t)x->n_groups;
		x->n_groups++;
		g->bo = xrtBOAlloc(x->dev, g->size, XRT_BO_FLAGS_NONE, (xrtMemoryGroup)g->gid);
		if (!g->bo) {
			char what[96];

			snprintf(what, sizeof(what), "xrtBOAlloc(%llu MiB, group %d, banks %u..%u)",
				 (unsigned long long)(g->size >> 20), g->gid, lo, hi);
			xerr(x, err, errlen, what);
			return -1;
		}
		g->map = xrtBOMap(g->bo);
		if (!g->map) {
			xerr(x, err, errlen, "xrtBOMap");
			return -1;
		}
		lo = hi + 1;
	}
	return 0;
}

static void xrt_close(struct shim_card *c)
{
	struct xrt *x = X(c);

	if (!x)
		return;
	for (uint32_t i = 0; i < SUB_SLOTS; i++)
		if (x->sub[i].bo)
			xrtBOFree(x->sub[i].bo);
	for (uint32_t i = 0; i < x->n_cus; i++) {
		if (x->cu[i].run)
			xrtRunClose(x->cu[i].run);
		if (x->cu[i].k)
			xrtKernelClose(x->cu[i].k);
	}
	for (uint32_t i = 0; i < x->n_groups; i++)
		if (x->group[i].bo)
			xrtBOFree(x->group[i].bo);
	if (x->dev)
		xrtDeviceClose(x->dev);
	free(x);
	c->priv = NULL;
}

static int xrt_open(struct shim_card *c, const char *arg, char *err, size_t errlen)
{
	const struct fw_board *b = &c->board;
	const char *home = getenv("XILINX_XRT");
	const char *cpu = getenv("NEXTCARD_FW_CPU");
	struct stat st;
	struct xrt *x;
	char *end, e2[1024];
	unsigned long idx;

	errno = 0;
	idx = strtoul(arg, &end, 10);
	if (!*arg || *end || errno || idx > 255) {
		snprintf(err, errlen, "card xrt:%s: want a device index (xrt:0)", arg);
		return -1;
	}
	/* XRT aborts the whole process when XILINX_XRT is missing. */
	if (!home || !*home || stat(home, &st) || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "card xrt:%lu: XILINX_XRT %s (source XRT's setup.sh, or "
			 "point it at a folder whose lib/ holds the XRT libraries)", idx,
			 home && *home ? "is not a folder" : "is not set");
		return -1;
	}
	if (b->n_banks == 0 || b->n_banks > FW_MAX_BANKS) {
		snprintf(err, errlen, "card xrt:%lu: board has no memory banks", idx);
		return -1;
	}
	x = calloc(1, sizeof(*x));
	if (!x) {
		snprintf(err, errlen, "card xrt:%lu: out of memory", idx);
		return -1;
	}
	c->priv = x;
	x->pin_cpu = cpu && *cpu ? atoi(cpu) : -1;
	x->dev = xrtDeviceOpen((unsigned)idx);
	if (!x->dev) {
		xerr(NULL, e2, sizeof(e2), "xrtDeviceOpen");
		snprintf(err, errlen, "card xrt:%lu: no device (%s)", idx, e2);
		goto fail;
	}
	xclbin_path(b, x->xclbin, sizeof(x->xclbin));
	if (map_banks(x, b, e2, sizeof(e2)))
		goto fail_msg;
	if (xrtDeviceLoadXclbinFile(x->dev, x->xclbin)) {
		char what[600];

		snprintf(what, sizeof(what), "xrtDeviceLoadXclbinFile(%s)", x->xclbin);
		xerr(x, e2, sizeof(e2), what);
		goto fail_msg;
	}
	if (open_cus(x, b, e2, sizeof(e2)) || alloc_groups(x, b, e2, sizeof(e2)))
		goto fail_msg;
	c->ctrl = &x->ctrl;
	return 0;
fail_msg:
	snprintf(err, errlen, "card xrt:%lu: %s", idx, e2);
fail:
	xrt_close(c);
	return -1;
}

/* Copy between host and card memory, group by group. */
static int xfer(struct shim_card *c, uint64_t addr, void *host, const void *src,
		int v, uint64_t n)
{
	struct xrt *x = X(c);

	while (n) {
		int bank = fw_board_bank_of(&c->board, addr, 1);
		struct xgroup *g;
		uint64_t off, len;

		if (bank < 0)
			return -1;
		g = &x->group[x->bank_group[bank]];
		off = addr - g->base;
		len = n < g->size - off ? n : g->size - off;
		if (host) {		/* card -> host */
			if (xrtBOSync(g->bo, XCL_BO_SYNC_BO_FROM_DEVICE, len, off))
				return -1;
			atomic_fetch_add(&x->sync_from, 1);
			atomic_fetch_add(&x->bytes_from, len);
			memcpy(host, g->map + off, len);
			host = (uint8_t *)host + len;
		} else {
			if (src) {
				memcpy(g->map + off, src, len);
				src = (const uint8_t *)src + len;
			} else {
				memset(g->map + off, v, len);
			}
			if (xrtBOSync(g->bo, XCL_BO_SYNC_BO_TO_DEVICE, len, off))
				return -1;
			atomic_fetch_add(&x->sync_to, 1);
			atomic_fetch_add(&x->bytes_to, len);
		}
		addr += len;
		n -= len;
	}
	return 0;
}

static int xrt_read(struct shim_card *c, uint64_t addr, void *dst, uint64_t n)
{
	return xfer(c, addr, dst, NULL, 0, n);
}

static int xrt_write(struct shim_card *c, uint64_t addr, const void *src, uint64_t n)
{
	return src || !n ? xfer(c, addr, NULL, src, 0, n) : -1;
}

static int xrt_fill(struct shim_card *c, uint64_t addr, uint8_t v, uint64_t n)
{
	return xfer(c, addr, NULL, NULL, v, n);
}

/* A pointer the kernel will not dereference for this call. */
static int unused_ptr(const struct krnl_call *k, int i)
{
	return (k->id == KRNL_EXPERT_FFN && (i == EF_SW || i == EF_SGATE) && k->arg[EF_SI] == 0) ||
	       (k->id == KRNL_ATTN_DECODE && i == AT_PART &&
		k->arg[AT_SPLIT] == krnl_attn_split(KRNL_ATTN_WHOLE, 0, 0));
}

/* Does cu reach every used pointer of k?  If not, say why in msg. */
static int reaches(struct shim_card *c, const struct xcu *cu, const struct krnl_call *k,
		   char *msg, size_t len)
{
	for (int i = 0; i < abi[k->id].nptr; i++) {
		const struct fw_port *pt = &cu->dt->ports[i];
		int bank = fw_board_bank_of(&c->board, k->arg[i], 1);
		char tag[16];

		if (unused_ptr(k, i))
			continue;
		if (bank >= 0 && (uint32_t)bank >= pt->bank_lo && (uint32_t)bank <= pt->bank_hi)
			continue;
		if (bank < 0)
			snprintf(msg, len, "%s: %s=0x%llx is outside card memory", krnl_names[k->id],
				 pt->arg, (unsigned long long)k->arg[i]);
		else
			snprintf(msg, len, "%s: %s=0x%llx is in bank %d (%s); %s.%s reaches banks %u..%u",
				 krnl_names[k->id], pt->arg, (unsigned long long)k->arg[i], bank,
				 bank_tag(&c->board.banks[bank], tag, sizeof(tag)), cu->dt->name,
				 pt->arg, pt->bank_lo, pt->bank_hi);
		return 0;
	}
	return 1;
}

/* Sub-buffer of the group holding addr, from addr to the group's end. */
static xrtBufferHandle sub_bo(struct shim_card *c, uint64_t addr)
{
	struct xrt *x = X(c);
	uint32_t h = (uint32_t)((addr >> 12) * 2654435761u) & (SUB_SLOTS - 1);
	int bank = fw_board_bank_of(&c->board, addr, 1);
	struct xgroup *g;
	struct xsub *s = NULL;

	if (bank < 0)
		return NULL;
	for (uint32_t i = 0; i < SUB_PROBE; i++) {
		struct xsub *e = &x->sub[(h + i) & (SUB_SLOTS - 1)];

		if (e->bo && e->addr == addr)
			return e->bo;
		if (!e->bo && !s)
			s = e;
	}
	if (!s) {		/* full around here: drop the first; its runs are done */
		s = &x->sub[h];
		xrtBOFree(s->bo);
		s->bo = NULL;
	}
	g = &x->group[x->bank_group[bank]];
	s->bo = xrtBOSubAlloc(g->bo, g->size - (addr - g->base), addr - g->base);
	s->addr = addr;
	if (s->bo)
		atomic_fetch_add(&x->subbufs, 1);
	return s->bo;
}

static void pin_once(struct shim_card *c, struct xrt *x)
{
	cpu_set_t set;

	if (x->pinned || x->pin_cpu < 0 || !pthread_equal(pthread_self(), c->thread))
		return;
	x->pinned = 1;
	CPU_ZERO(&set);
	CPU_SET(x->pin_cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		snprintf(x->last_err, sizeof(x->last_err), "NEXTCARD_FW_CPU=%d: %s",
			 x->pin_cpu, strerror(errno));
}

static int run_fail(struct shim_card *c, const char *msg)
{
	struct xrt *x = X(c);

	snprintf(x->last_err, sizeof(x->last_err), "%s", msg);
	/* the firmware appends its err to ctrl->error when the step fails */
	snprintf(c->fw.err, sizeof(c->fw.err), "%s", msg);
	return -1;
}

static int xrt_run(struct shim_card *c, const struct krnl_call *k)
{
	struct xrt *x = X(c);
	struct xcu *cu = NULL;
	char msg[256] = "", what[96];
	enum ert_cmd_state st;

	pin_once(c, x);
	if (k->id >= KRNL_COUNT)
		return run_fail(c, "kernel id out of range");
	/* the first CU of the kernel whose ports reach every buffer; else the
	 * first CU's reason */
	for (uint32_t i = 0; i < x->n_cus && !cu; i++) {
		char why[256];

		if (x->cu[i].kid != (int)k->id)
			continue;
		if (reaches(c, &x->cu[i], k, why, sizeof(why)))
			cu = &x->cu[i];
		else if (!msg[0])
			memcpy(msg, why, sizeof(msg));
	}
	if (!cu) {
		atomic_fetch_add(&x->refused, 1);
		if (!msg[0])
			snprintf(msg, sizeof(msg), "%s: no compute unit in this board's DTB/xclbin",
				 krnl_names[k->id]);
		return run_fail(c, msg);
	}
	for (int i = 0; i < abi[k->id].nargs; i++) {
		int rc;

		if (i < abi[k->id].nptr) {
			uint64_t a = unused_ptr(k, i) ? c->board.banks[cu->dt->ports[i].bank_lo].base
						     : k->arg[i];
			xrtBufferHandle bo = sub_bo(c, a);

			if (!bo) {
				xerr(x, msg, sizeof(msg), "xrtBOSubAlloc");
				return run_fail(c, msg);
			}
			rc = xrtRunSetArg(cu->run, i, bo);
		} else {
			rc = xrtRunSetArg(cu->run, i, (uint32_t)k->arg[i]);
		}
		if (rc) {
			snprintf(what, sizeof(what), "%s: xrtRunSetArg(%d)", cu->dt->name, i);
			xerr(x, msg, sizeof(msg), what);
			return run_fail(c, msg);
		}
	}
	if (xrtRunStart(cu->run)) {
		snprintf(what, sizeof(what), "%s: xrtRunStart", cu->dt->name);
		xerr(x, msg, sizeof(msg), what);
		return run_fail(c, msg);
	}
	st = xrtRunWait(cu->run);
	if (st != ERT_CMD_STATE_COMPLETED) {
		snprintf(what, sizeof(what), "%s: run ended in state %d", cu->dt->name, (int)st);
		errno = 0;
		xerr(x, msg, sizeof(msg), what);
		return run_fail(c, msg);
	}
	atomic_fetch_add(&cu->runs, 1);
	atomic_fetch_add(&x->runs, 1);
	return 0;
}

const struct shim_backend shim_xrt_backend = {
	.name = "xrt",
	.open = xrt_open,
	.close = xrt_close,
	.run = xrt_run,
	.read = xrt_read,
	.write = xrt_write,
	.fill = xrt_fill,
};

/* Test and diagnostics hook: what the backend did that noop cannot show.
 * Keys (i: index where one is needed):
 *   groups, group.lo/hi/gid/bytes (i: group), bank.group (i: bank),
 *   sync.to_device, sync.from_device, bytes.to_device, bytes.from_device,
 *   runs, subbufs, refused, cus, cu.runs (i: CU), cu.gid (i: CU * 16 + port).
 * Returns 0, or -1 for an unknown key, a bad index or a card not on XRT. */
int shim_xrt_query(struct shim_card *c, const char *key, uint32_t i, uint64_t *v);
const char *shim_xrt_last_error(struct shim_card *c);

int shim_xrt_query(struct shim_card *c, const char *key, uint32_t i, uint64_t *v)
{
	struct xrt *x = c && c->be == &shim_xrt_backend ? X(c) : NULL;
	const struct xgroup *g;

	if (!x || !key || !v)
		return -1;
	g = i < x->n_groups ? &x->group[i] : NULL;
	if (!strcmp(key, "groups"))
		*v = x->n_groups;
	else if (!strcmp(key, "group.lo") && g)
		*v = g->lo;
	else if (!strcmp(key, "group.hi") && g)
		*v = g->hi;
	else if (!strcmp(key, "group.gid") && g)
		*v = (uint64_t)g->gid;
	else if (!strcmp(key, "group.bytes") && g)
		*v = xrtBOSize(g->bo);
	else if (!strcmp(key, "bank.group") && i < c->board.n_banks)
		*v = x->bank_group[i];
	else if (!strcmp(key, "sync.to_device"))
		*v = atomic_load(&x->sync_to);
	else if (!strcmp(key, "sync.from_device"))
		*v = atomic_load(&x->sync_from);
	else if (!strcmp(key, "bytes.to_device"))
		*v = atomic_load(&x->bytes_to);
	else if (!strcmp(key, "bytes.from_device"))
		*v = atomic_load(&x->bytes_from);
	else if (!strcmp(key, "runs"))
		*v = atomic_load(&x->runs);
	else if (!strcmp(key, "subbufs"))
		*v = atomic_load(&x->subbufs);
	else if (!strcmp(key, "refused"))
		*v = atomic_load(&x->refused);
	else if (!strcmp(key, "cus"))
		*v = x->n_cus;
	else if (!strcmp(key, "cu.runs") && i < x->n_cus)
		*v = atomic_load(&x->cu[i].runs);
	else if (!strcmp(key, "cu.gid") && i / FW_MAX_PORTS < x->n_cus &&
		 i % FW_MAX_PORTS < x->cu[i / FW_MAX_PORTS].dt->n_ports)
		*v = (uint64_t)x->cu[i / FW_MAX_PORTS].gid[i % FW_MAX_PORTS];
	else
		return -1;
	return 0;
}

const char *shim_xrt_last_error(struct shim_card *c)
{
	struct xrt *x = c && c->be == &shim_xrt_backend ? X(c) : NULL;

	return x ? x->last_err : "";
}
