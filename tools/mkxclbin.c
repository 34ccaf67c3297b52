/* mkxclbin — write an xclbin container that describes a board's kernels and
 * memory the way XRT reads them, without a bitstream.
 *
 * usage: mkxclbin <board.dtb> <out.xclbin>
 *
 * Sections (struct axlf, /usr/include/xrt/xclbin.h):
 *   MEM_TOPOLOGY       one mem_data per DTB bank, tag HBM[n] / DDR[n],
 *                      base = the bank's card address, size in KiB
 *   IP_LAYOUT          one IP_KERNEL per compute unit, "kernel:cu"
 *   CONNECTIVITY       (arg index, CU, bank) for every bank of every port range
 *   EMBEDDED_METADATA  the XML XRT 2.13 takes kernel arguments from
 *                      (project/platform/device/core/kernel/arg)
 *
 * The argument list of each kernel comes from the krnl_abi.h enums (table
 * below, tied to them by static asserts); pointer arguments are m_axi
 * globals (addressQualifier 1, 64-bit), scalars s_axilite (addressQualifier
 * 0, 32-bit).  The pointer argument names of every CU must equal the DTB's
 * nextcard,port-args, so the DT and the ABI are cross-checked here too.
 *
 * The result is what the XRT backend loads under XCL_EMULATION_MODE=noop in
 * the tests, and what a real `v++ -l` xclbin must agree with on a card.
 * The UUID is derived from the file's contents, so builds are reproducible.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xclbin.h>

#include "fw_board.h"
#include "krnl_abi.h"

/* One kernel's C signature: all names in order, pointers first. */
struct ksig {
	int nargs;		/* the enum's *_NARGS */
	int nptr;		/* index of the first scalar */
	const char *names;	/* space-separated parameter names */
	uint32_t fmask;		/* bit i: argument i is a float scalar */
};

#define B(i) (1u << (i))
static const struct ksig sigs[] = {
	[KRNL_EMBED_GATHER] = { EMB_NARGS, EMB_ROWS, "ids table out rows dim dt", 0 },
	[KRNL_RMSNORM] = { RMS_NARGS, RMS_ROWS, "x w y rows dim eps woff",
			   B(RMS_EPS) | B(RMS_WOFF) },
	[KRNL_RMSNORM_GATED] = { RMG_NARGS, RMG_ROWS,
				 "x z w y rows heads dim zstride eps", B(RMG_EPS) },
	[KRNL_GEMV] = { GEMV_NARGS, GEMV_ROWS,
			"x w y rows in out xstride ystride dt acc", 0 },
	[KRNL_CONV1D_STEP] = { CONV_NARGS, CONV_ROWS,
			       "x w state blocks rows ch k xstride nblk", 0 },
	[KRNL_DELTANET_STEP] = { DN_NARGS, DN_ROWS,
				 "qkv ba a_log dt_bias state blocks out rows nk nv dk dv xstride nblk", 0 },
	[KRNL_ATTN_DECODE] = { AT_NARGS, AT_ROWS,
			       "qg k v qnw knw kc vc blocks pos rope bt out part rows nh nkv hd rd eps tabw npages nblk kvdt split",
			       B(AT_EPS) },
	[KRNL_MOE_ROUTER] = { RT_NARGS, RT_ROWS, "logits count list listw rows ne topk norm", 0 },
	[KRNL_EXPERT_FFN] = { EF_NARGS, EF_ROWS,
			      "x w count list listw sw sgate y rows h ni ne si dt sdt", 0 },
	[KRNL_LM_HEAD_ARGMAX] = { LM_NARGS, LM_ROWS,
				  "x nw w logits dst argmax rows h v eps dt ls", B(LM_EPS) },
	[KRNL_SAMPLER] = { SMP_NARGS, SMP_ROWS, "logits params token logprob rows v", 0 },
};
#undef B

_Static_assert(sizeof(sigs) / sizeof(sigs[0]) == KRNL_COUNT,
	       "mkxclbin: describe every kernel of krnl_abi.h");
_Static_assert(KRNL_MAX_ARGS <= 32, "fmask holds 32 arguments");

#define CU_BASE   0x1000000ull	/* AXI-lite address of the first CU */
#define CU_RANGE  0x10000ull	/* control window per CU */
#define ARG0      0x10u		/* first argument register (HLS ap_ctrl_hs map) */

/* Growable output buffer; any failure sticks in ->bad. */
struct buf {
	char *p;
	size_t len, cap;
	int bad;
};

static void put(struct buf *b, const void *src, size_t n)
{
	if (b->bad)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->bad = 1;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void putf(struct buf *b, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		b->bad = 1;
		return;
	}
	put(b, line, (size_t)n);
}

static void pad8(struct buf *b)
{
	static const char z[8];

	put(b, z, (8 - b->len % 8) % 8);
}

/* The i-th space-separated word of s into out. */
static int word(const char *s, int i, char *out, size_t len)
{
	while (*s) {
		size_t n = strcspn(s, " ");

		if (i-- == 0) {
			if (n >= len)
				return -1;
			memcpy(out, s, n);
			out[n] = 0;
			return 0;
		}
		s += n;
		s += strspn(s, " ");
	}
	return -1;
}

static int kernel_id(const char *name)
{
	for (int k = 0; k < KRNL_COUNT; k++)
		if (!strcmp(krnl_names[k], name))
			return k;
	return -1;
}

/* Check every CU against the ABI table; fill cu_k[] with kernel ids. */
static int check_board(const struct fw_board *b, int *cu_k, char *err, size_t errlen)
{
	if (strcmp(b->flow, "xclbin")) {
		snprintf(err, errlen, "board '%s' has flow '%s', not xclbin", b->model, b->flow);
		return -1;
	}
	for (int k = 0; k < KRNL_COUNT; k++) {
		char w[32];
		int n = 0;

		while (!word(sigs[k].names, n, w, sizeof(w)))
			n++;
		if (n != sigs[k].nargs || sigs[k].nptr > n) {
			snprintf(err, errlen, "%s: %d names for %d arguments (update mkxclbin's table)",
				 krnl_names[k], n, sigs[k].nargs);
			return -1;
		}
	}
	for (uint32_t c = 0; c < b->n_cus; c++) {
		const struct fw_cu *cu = &b->cus[c];
		int k = kernel_id(cu->kernel);

		if (k < 0) {
			snprintf(err, errlen, "/kernels/%s: unknown kernel '%s'", cu->name, cu->kernel);
			return -1;
		}
		if ((int)cu->n_ports != sigs[k].nptr) {
			snprintf(err, errlen, "/kernels/%s: %u ports, %s has %d pointer arguments",
				 cu->name, cu->n_ports, cu->kernel, sigs[k].nptr);
			return -1;
		}
		for (uint32_t p = 0; p < cu->n_ports; p++) {
			char w[32];

			word(sigs[k].names, (int)p, w, sizeof(w));
			if (strcmp(w, cu->ports[p].arg)) {
				snprintf(err, errlen, "/kernels/%s: port %u is '%s', argument %u of %s is '%s'",
					 cu->name, p, cu->ports[p].arg, p, cu->kernel, w);
				return -1;
			}
		}
		cu_k[c] = k;
	}
	return 0;
}

static void mem_topology(struct buf *o, const struct fw_board *b)
{
	int32_t n = (int32_t)b->n_banks;

	put(o, &n, sizeof(n));
	pad8(o);
	for (uint32_t i = 0; i < b->n_banks; i++) {
		const struct fw_bank *bk = &b->banks[i];
		struct mem_data m;

		memset(&m, 0, sizeof(m));
		m.m_type = strcmp(bk->type, "hbm") ? MEM_DDR4 : MEM_HBM;
		m.m_used = 1;
		m.m_size = bk->size >> 10;
		m.m_base_address = bk->base;
		snprintf((char *)m.m_tag, sizeof(m.m_tag), "%s[%u]",
			 strcmp(bk->type, "hbm") ? "DDR" : "HBM", bk->type_index);
		put(o, &m, sizeof(m));
	}
}

static void ip_layout(struct buf *o, const struct fw_board *b)
{
	int32_t n = (int32_t)b->n_cus;

	put(o, &n, sizeof(n));
	pad8(o);
	for (uint32_t c = 0; c < b->n_cus; c++) {
		struct ip_data ip;

		memset(&ip, 0, sizeof(ip));
		ip.m_type = IP_KERNEL;
		/* interrupt enabled, id 0 for all (CUs sorted by address), ap_ctrl_hs */
		ip.properties = 1u | ((uint32_t)AP_CTRL_HS << IP_CONTROL_SHIFT);
		ip.m_base_address = CU_BASE + c * CU_RANGE;
		snprintf((char *)ip.m_name, sizeof(ip.m_name), "%s:%s",
			 b->cus[c].kernel, b->cus[c].name);
		put(o, &ip, sizeof(ip));
	}
}

static void connectivity(struct buf *o, const struct fw_board *b)
{
	int32_t n = 0;

	for (uint32_t c = 0; c < b->n_cus; c++)
		for (uint32_t p = 0; p < b->cus[c].n_ports; p++)
			n += (int32_t)(b->cus[c].ports[p].bank_hi - b->cus[c].ports[p].bank_lo + 1);
	put(o, &n, sizeof(n));
	for (uint32_t c = 0; c < b->n_cus; c++) {
		for (uint32_t p = 0; p < b->cus[c].n_ports; p++) {
			const struct fw_port *pt = &b->cus[c].ports[p];

			for (uint32_t m = pt->bank_lo; m <= pt->bank_hi; m++) {
				struct connection cx = {
					.arg_index = (int32_t)p,
					.m_ip_layout_index = (int32_t)c,
					.mem_data_index = (int32_t)m,
				};
				put(o, &cx, sizeof(cx));
			}
		}
	}
}

static void upper(char *dst, const char *src, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len && src[i]; i++)
		dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? (char)(src[i] - 32) : src[i];
	dst[i] = 0;
}

static void xml_kernel(struct buf *o, const struct fw_board *b, const int *cu_k, int k)
{
	const struct ksig *s = &sigs[k];
	uint32_t off = ARG0;
	char w[32], W[32];

	putf(o, "      <kernel name=\"%s\" language=\"c\" vlnv=\"nextcard:hls:%s:1.0\" "
	     "type=\"pl\" hwControlProtocol=\"ap_ctrl_hs\" interrupt=\"true\" "
	     "preferredWorkGroupSizeMultiple=\"0\" workGroupSize=\"1\" debug=\"false\">\n",
	     krnl_names[k], krnl_names[k]);
	putf(o, "        <port name=\"S_AXI_CONTROL\" mode=\"slave\" range=\"0x%llx\" "
	     "dataWidth=\"32\" portType=\"addressable\" base=\"0x0\"/>\n",
	     (unsigned long long)CU_RANGE);
	for (int i = 0; i < s->nptr; i++) {
		word(s->names, i, w, sizeof(w));
		upper(W, w, sizeof(W));
		putf(o, "        <port name=\"M_AXI_%s\" mode=\"master\" range=\"0xFFFFFFFFFFFFFFFF\" "
		     "dataWidth=\"32\" portType=\"addressable\" base=\"0x0\"/>\n", W);
	}
	for (int i = 0; i < s->nargs; i++) {
		int ptr = i < s->nptr;

		word(s->names, i, w, sizeof(w));
		upper(W, w, sizeof(W));
		if (ptr)
			putf(o, "        <arg name=\"%s\" addressQualifier=\"1\" id=\"%d\" "
			     "port=\"M_AXI_%s\" size=\"0x8\" offset=\"0x%x\" hostOffset=\"0x0\" "
			     "hostSize=\"0x8\" type=\"void*\"/>\n", w, i, W, off);
		else
			putf(o, "        <arg name=\"%s\" addressQualifier=\"0\" id=\"%d\" "
			     "port=\"S_AXI_CONTROL\" size=\"0x4\" offset=\"0x%x\" hostOffset=\"0x0\" "
			     "hostSize=\"0x4\" type=\"%s\"/>\n", w, i, off,
			     (s->fmask >> i) & 1 ? "float" : "unsigned int");
		off += ptr ? 12 : 8;	/* 64-bit pointer + pad, 32-bit scalar + pad */
	}
	putf(o, "        <compileWorkGroupSize x=\"1\" y=\"1\" z=\"1\"/>\n"
	     "        <maxWorkGroupSize x=\"1\" y=\"1\" z=\"1\"/>\n");
	for (uint32_t c = 0; c < b->n_cus; c++) {
		if (cu_k[c] != k)
			continue;
		putf(o, "        <instance name=\"%s\">\n"
		     "          <addrRemap base=\"0x%llx\" range=\"0x%llx\" port=\"S_AXI_CONTROL\"/>\n"
		     "        </instance>\n", b->cus[c].name,
		     (unsigned long long)(CU_BASE + c * CU_RANGE), (unsigned long long)CU_RANGE);
	}
	putf(o, "      </kernel>\n");
}

static void metadata(struct buf *o, const struct fw_board *b, const int *cu_k)
{
	putf(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	     "<project name=\"nextcard\">\n"
	     "  <platform vendor=\"xilinx\" boardid=\"%s\" name=\"%s\" featureRomTime=\"0\">\n"
	     "    <version major=\"1\" minor=\"0\"/>\n"
	     "    <description/>\n"
	     "    <board name=\"%s\" vendor=\"nextcard\"/>\n"
	     "    <device name=\"fpga0\" fpgaDevice=\"%s\" addrWidth=\"0\">\n"
	     "      <core name=\"OCL_REGION_0\" target=\"bitstream\" type=\"clc_region\" "
	     "clockFreq=\"%uMHz\" numComputeUnits=\"%u\">\n",
	     b->compatible, b->platform, b->model, b->compatible, b->kernel_clock_mhz, b->n_cus);
	putf(o, "      <kernelClocks>\n"
	     "        <clock port=\"KERNEL_CLK\" frequency=\"%uMHz\"/>\n"
	     "      </kernelClocks>\n", b->kernel_clock_mhz);
	for (int k = 0; k < KRNL_COUNT; k++) {
		int used = 0;

		for (uint32_t c = 0; c < b->n_cus; c++)
			used |= cu_k[c] == k;
		if (used)
			xml_kernel(o, b, cu_k, k);
	}
	putf(o, "      </core>\n    </device>\n  </platform>\n</project>\n");
	put(o, "", 1);	/* NUL-terminated, as v++ writes it */
}

/* Two FNV-1a streams over the bytes: a content-derived 128-bit id. */
static void content_uuid(const char *p, size_t n, unsigned char out[16])
{
	uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;

	for (size_t i = 0; i < n; i++) {
		h1 = (h1 ^ (uint8_t)p[i]) * 0x100000001b3ull;
		h2 = (h2 ^ (uint8_t)p[n - 1 - i]) * 0x100000001b3ull;
	}
	memcpy(out, &h1, 8);
	memcpy(out + 8, &h2, 8);
	out[6] = (uint8_t)((out[6] & 0x0f) | 0x80);	/* RFC 9562 version 8: custom */
	out[8] = (uint8_t)((out[8] & 0x3f) | 0x80);
}

struct section {
	uint32_t kind;
	const char *name;
	struct buf data;
};

static int build(const struct fw_board *b, struct buf *out, char *err, size_t errlen)
{
	static int cu_k[FW_MAX_CUS];
	struct section sec[] = {
		{ MEM_TOPOLOGY, "mem_topology", { 0 } },
		{ IP_LAYOUT, "ip_layout", { 0 } },
		{ CONNECTIVITY, "connectivity", { 0 } },
		{ EMBEDDED_METADATA, "metadata", { 0 } },
	};
	const uint32_t ns = sizeof(sec) / sizeof(sec[0]);
	struct axlf top;
	size_t hdr = sizeof(struct axlf) + (ns - 1) * sizeof(struct axlf_section_header);
	size_t at;
	int rc = -1;

	if (check_board(b, cu_k, err, errlen))
		return -1;
	mem_topology(&sec[0].data, b);
	ip_layout(&sec[1].data, b);
	connectivity(&sec[2].data, b);
	metadata(&sec[3].data, b, cu_k);

	memset(&top, 0, sizeof(top));
	memcpy(top.m_magic, "xclbin2", 8);
	top.m_signature_length = -1;
	memset(top.reserved, 0xff, sizeof(top.reserved));
	memset(top.m_keyBlock, 0xff, sizeof(top.m_keyBlock));
	top.m_header.m_timeStamp = 0;	/* reproducible */
	top.m_header.m_versionMajor = 2;
	top.m_header.m_versionMinor = 13;
	top.m_header.m_mode = XCLBIN_FLAT;
	/* VBNV holds 63 characters; longer platform names are cut there */
	memcpy(top.m_header.m_platformVBNV, b->platform,
	       strnlen(b->platform, sizeof(top.m_header.m_platformVBNV) - 1));
	top.m_header.m_numSections = ns;

	/* header, section headers, then the sections, each 8-byte aligned */
	struct axlf_section_header sh[4];
	at = (hdr + 7) & ~(size_t)7;
	for (uint32_t i = 0; i < ns; i++) {
		if (sec[i].data.bad) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		memset(&sh[i], 0, sizeof(sh[i]));
		sh[i].m_sectionKind = sec[i].kind;
		snprintf(sh[i].m_sectionName, sizeof(sh[i].m_sectionName), "%s", sec[i].name);
		sh[i].m_sectionOffset = at;
		sh[i].m_sectionSize = sec[i].data.len;
		at = (at + sec[i].data.len + 7) & ~(size_t)7;
	}
	top.m_header.m_length = at;
	top.m_sections[0] = sh[0];

	/* first pass with a zero uuid, hash it, then write the final header */
	for (int pass = 0; pass < 2; pass++) {
		out->len = 0;
		put(out, &top, sizeof(top));
		put(out, &sh[1], (ns - 1) * sizeof(sh[0]));
		pad8(out);
		for (uint32_t i = 0; i < ns; i++) {
			put(out, sec[i].data.p, sec[i].data.len);
			pad8(out);
		}
		if (out->bad || out->len != at) {
			snprintf(err, errlen, out->bad ? "out of memory" : "internal layout error");
			goto out;
		}
		if (pass == 0) {
			content_uuid(out->p, out->len, top.m_header.uuid);
			memcpy(&top.m_uniqueId, top.m_header.uuid, sizeof(top.m_uniqueId));
		}
	}
	rc = 0;
out:
	for (uint32_t i = 0; i < ns; i++)
		free(sec[i].data.p);
	return rc;
}

int main(int argc, char **argv)
{
	static struct fw_board b;
	struct buf out = { 0 };
	char err[256];
	FILE *f;

	if (argc != 3) {
		fprintf(stderr, "usage: %s <board.dtb> <out.xclbin>\n", argv[0]);
		return 2;
	}
	if (fw_board_load(argv[1], &b, err, sizeof(err)) < 0 || build(&b, &out, err, sizeof(err))) {
		fprintf(stderr, "mkxclbin: %s: %s\n", argv[1], err);
		free(out.p);
		return 1;
	}
	f = fopen(argv[2], "wb");
	if (f) {
		int bad = fwrite(out.p, 1, out.len, f) != out.len;

		if (fclose(f) || bad)
			f = NULL;
	}
	if (!f) {
		fprintf(stderr, "mkxclbin: %s: cannot write\n", argv[2]);
		free(out.p);
		return 1;
	}
	free(out.p);
	return 0;
}
