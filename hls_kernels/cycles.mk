# hls_kernels/cycles.mk — the kernels' cycle model over a model's decode step
# (hls_kernels/krnl_cycles.h, docs/performance.md "Kernel cycle model").
# Included by the top-level Makefile.
#   build/tools/cycles [--model DIR|config.json] [--quant SPEC] [--rows N] [--pos P]
EXTRA_UNIT += build/tools/cycles

build/tools/cycles: tools/cycles.c build/rel/libnextcard.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)
