# driver_shim/xrt.mk — the XRT backend (shim_xrt.c), the xclbin container tool
# and what the tests need from them.  Included by the top-level Makefile.
#
# XRT 2.13 on Debian: headers under /usr/include/xrt; link libxrt_coreutil
# only (libxrt_core would make the noop shim unreachable; xrt.pc is wrong).
# -idirafter, not -I: XRT's headers (types.h, version.h, ...) come after the
# system's, so they can never shadow one.
XRT_INC     = -idirafter /usr/include/xrt
REL_FLAGS  += $(XRT_INC)
ASAN_FLAGS += $(XRT_INC)
FUZZ_FLAGS += $(XRT_INC)
EXTRA_LIBS += -lxrt_coreutil -luuid

# mkxclbin: board DTB -> xclbin container (MEM_TOPOLOGY, IP_LAYOUT,
# CONNECTIVITY, EMBEDDED_METADATA); test_xrt runs it.
EXTRA_UNIT += build/tools/mkxclbin

build/tools/mkxclbin: tools/mkxclbin.c firmware/fw_board.c hls_kernels/krnl_names.c hls_kernels/krnl_abi.h firmware/fw_board.h
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $(filter %.c,$^) -lfdt

# The xclbin of a board built without Vitis, for noop runs and inspection:
# make build/xclbin/noop-u55c.xclbin
build/xclbin/noop-%.xclbin: build/board/%.dtb build/tools/mkxclbin
	@mkdir -p $(dir $@)
	build/tools/mkxclbin $< $@
