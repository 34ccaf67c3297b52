# nextcard — top-level build.  `make demo` and `make test` are the two entry points.
#
# Variants: build/rel (optimised), build/asan (ASan+UBSan, used by the tests too),
# build/fuzz (clang libFuzzer targets).  Sources are found by directory, so adding
# a file never needs a Makefile edit.

CC       ?= gcc
CLANG    ?= clang
DTC      ?= dtc
WARN      = -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CSTD      = -std=c11 -D_GNU_SOURCE
INC       = -I. -Ihls_kernels -Ifirmware -Idriver_shim -Ihost
LIBS      = -lcjson -lfdt -lpcre2-8 -lutf8proc -lpthread -lm $(EXTRA_LIBS)
REL_FLAGS = -O2 -g $(WARN) $(CSTD) $(INC)
ASAN_FLAGS= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
            -fno-sanitize-recover=undefined $(WARN) $(CSTD) $(INC)

# Everything but the entry points goes into one library per variant.
LIB_DIRS  = hls_kernels firmware driver_shim host/model host/text host/net host/api host/cli
LIB_SRCS  = $(filter-out host/cli/main.c host/cli/nextcard_cli.c,$(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c)))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
DTS       = $(wildcard board/*.dts)
DTBS      = $(patsubst board/%.dts,build/board/%.dtb,$(DTS))

REL_OBJS  = $(patsubst %.c,build/rel/%.o,$(LIB_SRCS))
ASAN_OBJS = $(patsubst %.c,build/asan/%.o,$(LIB_SRCS))
REL_TESTS = $(patsubst tests/unit/%.c,build/rel/tests/%,$(UNIT_SRCS))
ASAN_TESTS= $(patsubst tests/unit/%.c,build/asan/tests/%,$(UNIT_SRCS))
FUZZERS   = $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))

# HLS sources carry #pragma HLS and loop labels that gcc does not use.
HLS_QUIET = -Wno-unknown-pragmas -Wno-unused-label
FUZZ_FLAGS = -O1 -g -fsanitize=fuzzer,address,undefined $(CSTD) $(INC) -Wall -Wextra -Werror \
	     -Wno-unused-parameter $(HLS_QUIET)

.PHONY: all deps demo test unit fuzz dtbs clean bench
.DEFAULT_GOAL := all

# Parts that need more than the core packages (XRT, DPDK, npm) add their
# rules, EXTRA_UNIT prerequisites and EXTRA_LIBS in a fragment of their own.
# Included before any rule so their variables reach every prerequisite list.
-include $(wildcard driver_shim/*.mk hls_kernels/*.mk host/*/*.mk tests/*.mk board/*.mk)

all: build/nextcard build/nextcard-cli $(DTBS)

deps:
	@bash scripts/deps.sh core

dtbs: $(DTBS)

build/board/%.dtb: board/%.dts
	@mkdir -p $(dir $@)
	$(DTC) -q -I dts -O dtb -o $@ $<

# The emulated card is the C simulation of the kernels: on a CPU with them,
# let gcc use 256-bit vectors, FMA and the f16 conversion instructions (and
# AVX-512 where the CPU has it: 32 registers hold a row's partial sums).
KRNL_CPU := $(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && \
		grep -qw f16c /proc/cpuinfo && echo -mavx2 -mfma -mf16c)
KRNL_CPU += $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx512bw /proc/cpuinfo && \
		grep -qw avx512vl /proc/cpuinfo && echo -mavx512f -mavx512bw -mavx512vl)
build/rel/hls_kernels/%.o build/asan/hls_kernels/%.o: EXTRA = $(HLS_QUIET) $(KRNL_CPU)
build/rel/hls_kernels/%.o: EXTRA += -fvect-cost-model=dynamic

build/rel/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) $(EXTRA) -MMD -MP -c -o $@ $<

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(EXTRA) -MMD -MP -c -o $@ $<

build/rel/libnextcard.a: $(REL_OBJS)
	@rm -f $@; ar rcs $@ $^

build/asan/libnextcard.a: $(ASAN_OBJS)
	@rm -f $@; ar rcs $@ $^

build/nextcard: build/rel/host/cli/main.o build/rel/libnextcard.a
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)

build/asan/nextcard: build/asan/host/cli/main.o build/asan/libnextcard.a
	$(CC) $(ASAN_FLAGS) -o $@ $^ $(LIBS)

build/rel/tests/%: tests/unit/%.c build/rel/libnextcard.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) $(EXTRA) -Itests -o $@ $^ -lcmocka $(LIBS)

build/asan/tests/%: tests/unit/%.c build/asan/libnextcard.a
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_FLAGS) $(EXTRA) -Itests -o $@ $^ -lcmocka $(LIBS)

# test_wfmt compares the kernels' CPU vector path with their HLS loop.
build/rel/tests/test_wfmt build/asan/tests/test_wfmt: private EXTRA = $(KRNL_CPU)

# libFuzzer targets: the whole library rebuilt by clang with the fuzzer's coverage.
build/fuzz/%: tests/fuzz/%.c $(LIB_SRCS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_FLAGS) -o $@ $< $(LIB_SRCS) $(LIBS)

# make fuzz builds the targets; make fuzz FUZZ_TIME=S also runs each for S
# seconds and merges what found new coverage into tests/fuzz/corpus.
fuzz: $(FUZZERS)
	@if [ -n "$(FUZZ_TIME)" ]; then bash scripts/fuzz.sh $(FUZZ_TIME); fi

unit: build/tools/gen_connectivity build/tools/bench_batch build/tools/bench_ctx build/tools/bench_spec $(REL_TESTS) $(ASAN_TESTS) build/nextcard build/asan/nextcard build/nextcard-cli $(DTBS) $(EXTRA_UNIT)

# The test suite: unit tests (optimised and sanitized), CLI checks, fuzz smoke runs.
test: deps
	@$(MAKE) --no-print-directory -j2 unit fuzz
	@bash tests/run.sh

demo: deps
	@$(MAKE) --no-print-directory -j2 all
	@bash scripts/demo.sh

clean:
	rm -rf build

# build/tools: host-side generators (v++ connectivity from the board DTB).
build/tools/gen_connectivity: tools/gen_connectivity.c firmware/fw_board.c
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $^ -lfdt

# Benchmarks: print ratios measured side by side in one run (docs/performance.md).
build/tools/bench_batch: tools/bench_batch.c build/rel/libnextcard.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)

build/tools/bench_cpu: tools/bench_cpu.c build/rel/libnextcard.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)

build/tools/bench_ctx: tools/bench_ctx.c build/rel/libnextcard.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)

build/tools/bench_spec: tools/bench_spec.c build/rel/libnextcard.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)

# A random model of the real layer mix with a 256K context, for bench_ctx.
build/bench/long/config.json: tests/data/long/config.json build/nextcard
	@mkdir -p build/bench
	build/nextcard synth --config $< --out build/bench/long --seed 3

bench: build/tools/bench_batch build/tools/bench_cpu build/tools/bench_ctx build/tools/bench_spec \
       build/nextcard build/bench/long/config.json $(DTBS)
	build/tools/bench_batch
	build/tools/bench_ctx
	build/tools/bench_spec
	build/tools/bench_cpu


-include $(shell find build -name '*.d' 2>/dev/null)

build/nextcard-cli: build/rel/host/cli/nextcard_cli.o build/rel/libnextcard.a
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)
