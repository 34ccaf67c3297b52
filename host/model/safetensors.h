/* safetensors.h — read-only access to Hugging Face safetensors files.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}),
 * then the data section the offsets index.  Files are mmapped read-only;
 * tensors point straight into the mapping; __metadata__ strings are kept
 * (st_meta).  FP8 weights are read through their block scales
 * (st_read_f32_fp8).
 *
 * Errors follow libfdt: int returns, 0 ok, a negative -ST_ERR_* code on
 * failure, plus a one-line message in the caller's buffer (err may be NULL).
 * Memory belongs to the set; st_close() releases everything.
 */
#ifndef HOST_MODEL_SAFETENSORS_H
#define HOST_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum st_dtype {
	ST_F32, ST_BF16, ST_F16, ST_F64, ST_I64, ST_I32, ST_U8, ST_I8, ST_BOOL,
	ST_I16, ST_U16, ST_U32, ST_U64, ST_F8_E4M3, ST_F8_E5M2,
	ST_NDTYPES
};

enum st_err {
	ST_ERR_IO = 1,		/* open/stat/mmap/read failed, file missing */
	ST_ERR_NOMEM,		/* allocation failed */
	ST_ERR_HEADER,		/* header length or JSON malformed */
	ST_ERR_TENSOR,		/* a tensor entry is invalid */
	ST_ERR_DUP,		/* a tensor name appears twice in the set */
	ST_ERR_INDEX,		/* model.safetensors.index.json inconsistent */
	ST_ERR_DTYPE,		/* conversion asked of a non-float tensor */
	ST_ERR_RANGE,		/* element range outside the tensor */
	ST_ERR_SCALE,		/* FP8 weight without a usable block scale */
};

#define ST_MAX_DIMS 8
/* Largest JSON header accepted (the reference implementation's limit). */
#define ST_MAX_HEADER (100u << 20)

struct st_tensor {
	char *name;		/* owned by the set */
	enum st_dtype dtype;
	int ndim;
	uint64_t shape[ST_MAX_DIMS];
	uint64_t nbytes;
	const void *data;	/* into the mmap, not necessarily aligned */
	int file;		/* index into the set's files */
};

struct st_file {
	char *path;		/* as opened */
	void *map;		/* read-only mapping, NULL if none */
	size_t len;
};

/* One "__metadata__" string of one file. */
struct st_meta_ent {
	char *key, *val;	/* owned by the set */
	int file;
};

/* Zero-initialise before first use: struct st_set s = {0}; */
struct st_set {
	struct st_file *files;
	int nfiles;
	struct st_tensor *tensors;	/* sorted by name (strcmp) */
	size_t count;
	struct st_meta_ent *meta;	/* every file's __metadata__, sorted by key,
					 * then file, then order in the header */
	size_t nmeta;
};

size_t st_dtype_size(enum st_dtype dt);		/* 0 for an unknown value */
const char *st_dtype_name(enum st_dtype dt);	/* "F32", ...; "?" if unknown */
const char *st_strerror(int err);		/* accepts err or -err */

/* Parse one file image held in buf[0..len).  No I/O.  On success the file's
 * tensors are merged into s (tagged with index `file`); on failure s is left
 * as it was.  Tensor data points into buf, which must outlive the set.
 * fname only names the file in messages.  Pointers from st_find()/st_at()
 * are invalidated by the next successful parse.
 * Returns 0, -ST_ERR_HEADER, -ST_ERR_TENSOR, -ST_ERR_DUP or -ST_ERR_NOMEM. */
int st_parse(struct st_set *s, const uint8_t *buf, size_t len, int file,
	     const char *fname, char *err, size_t errlen);

/* Open DIR/model.safetensors.index.json and its shards (every mapped name
 * must be found in the shard it is mapped to), or else DIR/model.safetensors.
 * On failure the set may hold part of the directory: st_close() it.
 * Returns 0 or any -ST_ERR_* except DTYPE/RANGE. */
int st_open_dir(struct st_set *s, const char *dir, char *err, size_t errlen);

/* Map and parse one file, adding it to the set (e.g. reference.safetensors). */
int st_open_file(struct st_set *s, const char *path, char *err, size_t errlen);

const struct st_tensor *st_find(const struct st_set *s, const char *name);
size_t st_count(const struct st_set *s);
const struct st_tensor *st_at(const struct st_set *s, size_t i); /* sorted */
uint64_t st_numel(const struct st_tensor *t);
void st_close(struct st_set *s);	/* safe on a zeroed or partial set */

/* Copy n elements from element `off` of a F32/BF16/F16/F64 tensor into dst
 * as float.  Returns 0, -ST_ERR_DTYPE or -ST_ERR_RANGE. */
int st_read_f32(const struct st_tensor *t, uint64_t off, uint64_t n,
		float *dst);

/* The __metadata__ value of key in the first file (lowest index) that has
 * it, or NULL.  Valid until st_close(). */
const char *st_meta(const struct st_set *s, const char *key);

/* FP8 checkpoints (e.g. Qwen3-Next-...-FP8): a 2-D F8_E4M3 (or F8_E5M2)
 * tensor NAME [rows, cols] comes with NAME_scale_inv, F32/BF16/F16, shape
 * [ceil(rows/block), ceil(cols/block)]; the value at (r, c) is
 * fp8 * scale_inv[r / block][c / block].  Copy n elements from element `off`
 * of t (row-major) into dst as float, dequantized; t of any other dtype is
 * read as st_read_f32() reads it.  block 0 means 128 (the usual
 * quantization_config.weight_block_size).
 * Returns 0, -ST_ERR_DTYPE, -ST_ERR_RANGE, -ST_ERR_NOMEM, or -ST_ERR_SCALE
 * (the FP8 tensor is not 2-D, or its scale is missing, not a float type or
 * of the wrong shape). */
int st_read_f32_fp8(const struct st_set *s, const struct st_tensor *t, uint64_t off,
		    uint64_t n, float *dst, uint32_t block);

#define ST_FP8_SCALE_SUFFIX "_scale_inv"
#define ST_FP8_DEFAULT_BLOCK 128u

float st_f8e4m3_to_f32(uint8_t b);	/* bias 7, no infinities, 0x7f/0xff NaN */
float st_f8e5m2_to_f32(uint8_t b);	/* bias 15, IEEE-like: the top byte of a half */

/* Format a message into err (if any) and return -code: the error path of
 * the safetensors reader and writer. */
int st_fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

float st_bf16_to_f32(uint16_t h);
uint16_t st_f32_to_bf16(float f);	/* round to nearest, ties to even */
float st_f16_to_f32(uint16_t h);

#endif
