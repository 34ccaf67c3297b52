# hls_kernels/hls.mk — checks and the real Vitis flow for the HLS kernels.
# Included by the top-level Makefile.
.PHONY: hls-lint xclbin

# hls-lint: constructs Vitis HLS cannot synthesize (tools/hls_lint.c says which).
EXTRA_UNIT += build/tools/hls_lint

build/tools/hls_lint: tools/hls_lint.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $<

hls-lint: build/tools/hls_lint
	build/tools/hls_lint $(filter-out hls_kernels/krnl_names.c hls_kernels/krnl_meter.c hls_kernels/krnl_cycles.c,$(wildcard hls_kernels/*.c))

# xclbin: v++ -c per kernel, v++ -l with board/<BOARD>.cfg, for a card.
#   make xclbin BOARD=u55c [VPP_TARGET=hw|hw_emu] [PLATFORM=<xpfm or name>]
# Output: build/xclbin/<BOARD>.xclbin, the XRT backend's default path.
BOARD      ?= u55c
VPP        ?= v++
VPP_TARGET ?= hw
HLS_KERNEL_SRCS = $(filter-out hls_kernels/krnl_names.c hls_kernels/krnl_meter.c hls_kernels/krnl_cycles.c,$(wildcard hls_kernels/krnl_*.c))
HLS_XO_DIR = build/xo/$(BOARD)
XCLBIN_OUT = build/xclbin/$(BOARD).xclbin
# platform= from the cfg (generated from the DTB), unless given
PLATFORM  ?= $(shell sed -n 's/^platform=//p' board/$(BOARD).cfg 2>/dev/null)

xclbin:
	@command -v $(VPP) >/dev/null 2>&1 || { echo "make xclbin: $(VPP) not found: install AMD Vitis (2022.1 or later) and source its settings64.sh, plus the $(if $(PLATFORM),$(PLATFORM),board) platform" >&2; exit 1; }
	@[ -f board/$(BOARD).cfg ] || { echo "make xclbin: board/$(BOARD).cfg missing: BOARD=$(BOARD) has no v++ (xclbin) flow" >&2; exit 1; }
	@[ -n "$(PLATFORM)" ] || { echo "make xclbin: no platform= in board/$(BOARD).cfg; pass PLATFORM=" >&2; exit 1; }
	@mkdir -p $(HLS_XO_DIR) $(dir $(XCLBIN_OUT))
	@set -e; for src in $(HLS_KERNEL_SRCS); do \
		k=$$(basename $$src .c); \
		echo "v++ -c $$k"; \
		$(VPP) -c -t $(VPP_TARGET) --platform $(PLATFORM) -k $$k \
			-I hls_kernels --temp_dir $(HLS_XO_DIR)/tmp -o $(HLS_XO_DIR)/$$k.xo $$src; \
	done
	$(VPP) -l -t $(VPP_TARGET) --platform $(PLATFORM) --config board/$(BOARD).cfg \
		--temp_dir $(HLS_XO_DIR)/link -o $(XCLBIN_OUT) $(HLS_XO_DIR)/*.xo
