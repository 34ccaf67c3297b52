# host/net/dpdk.mk — the DPDK data plane (host/net/dp/) and its tools.
#
# DPDK code compiles only here, outside LIB_DIRS: the core library and the
# unit tests never need DPDK.  `nextcard serve` lives in host/net/dp/; its
# objects are added to the links of build/nextcard and build/asan/nextcard
# (main.c reaches cmd_serve through a weak symbol, so a tree without
# libdpdk-dev still builds, and `serve` says it is missing).

DPDK_CFLAGS := $(shell pkg-config --cflags libdpdk 2>/dev/null)
DPDK_LIBS   := $(shell pkg-config --libs libdpdk 2>/dev/null)

ifneq ($(strip $(DPDK_LIBS)),)
DP_SRCS      = $(wildcard host/net/dp/*.c)
DP_REL_OBJS  = $(patsubst %.c,build/rel/%.o,$(DP_SRCS))
DP_ASAN_OBJS = $(patsubst %.c,build/asan/%.o,$(DP_SRCS))
# DPDK's headers use typeof and GNU statement expressions: gnu11 for dp/ only.
DP_CFLAGS    = -std=gnu11 $(DPDK_CFLAGS)

$(DP_REL_OBJS) $(DP_ASAN_OBJS): EXTRA = $(DP_CFLAGS)

# The dp objects come after libnextcard.a on the command line, so the
# archive is named once more (with the DPDK libraries) after them.
build/nextcard: $(DP_REL_OBJS)
build/nextcard: EXTRA_LIBS += build/rel/libnextcard.a $(DPDK_LIBS)
build/asan/nextcard: $(DP_ASAN_OBJS)
build/asan/nextcard: EXTRA_LIBS += build/asan/libnextcard.a $(DPDK_LIBS)
endif

# Test tools: craft request pcaps and decode what the appliance sent.
build/tools/ncpcap: tools/ncpcap.c build/rel/libnextcard.a
	@mkdir -p $(dir $@)
	$(CC) $(REL_FLAGS) -o $@ $^ $(LIBS)

unit: build/tools/ncpcap
