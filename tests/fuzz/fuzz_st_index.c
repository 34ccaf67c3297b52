/* fuzz_st_index.c — a sharded checkpoint's model.safetensors.index.json from
 * arbitrary bytes, opened with st_open_dir() beside two small valid shards
 * (a.safetensors holds "x", b.safetensors holds "y").  Shard names that leave
 * the directory, missing shards, tensors in the wrong shard, duplicates and
 * malformed JSON must all be refused with a message, never followed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "host/model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char ipath[96];

/* A shard of one f32 [2] tensor. */
static void shard(const char *name, const char *tensor)
{
	char path[128], hdr[128];
	float v[2] = { 1.0f, -2.0f };
	uint64_t n;
	FILE *f;

	n = (uint64_t)snprintf(hdr, sizeof(hdr),
			       "{\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
			       tensor);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(&n, 8, 1, f) != 1 || fwrite(hdr, 1, n, f) != n ||
	    fwrite(v, sizeof(v), 1, f) != 1)
		abort();
	fclose(f);
}

static void cleanup(void)
{
	static const char *const names[] = { "a.safetensors", "b.safetensors",
					     "model.safetensors.index.json" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/nextcard-fuzz-index.%d", (int)getpid());
	snprintf(ipath, sizeof(ipath), "%s/model.safetensors.index.json", dir);
	if (mkdir(dir, 0700) && access(dir, F_OK))
		abort();
	shard("a.safetensors", "x");
	shard("b.safetensors", "y");
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_set s = { 0 };
	char err[256];
	FILE *f;

	if (!dir[0])
		setup();
	f = fopen(ipath, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	if (st_open_dir(&s, dir, err, sizeof(err)) == 0) {
		/* accepted: every tensor is one of the shards' own */
		for (size_t i = 0; i < st_count(&s); i++) {
			const struct st_tensor *t = st_at(&s, i);

			if (strcmp(t->name, "x") && strcmp(t->name, "y"))
				abort();
		}
	} else if (!err[0]) {
		abort();	/* a refusal says why */
	}
	st_close(&s);
	return 0;
}
