/* st_write.h — write Hugging Face safetensors files, streaming the data.
 *
 * Tensors are declared first (name, dtype, shape); the writer then lays them
 * out in the order they were added, writes the 8-byte little-endian header
 * length, the JSON header (__metadata__ first, then the tensors in insertion
 * order, padded with spaces to a multiple of 8 bytes) and asks a callback for
 * each tensor's bytes a chunk at a time, so a file of any size is written
 * with one chunk of memory.  st_open_file() reads what this writes.
 *
 * Errors follow safetensors.h: int returns, >= 0 ok (a value where stated),
 * a negative -ST_ERR_* code on failure, plus a one-line message in the
 * caller's buffer (err may be NULL).  st_writer_free() releases everything.
 */
#ifndef HOST_MODEL_ST_WRITE_H
#define HOST_MODEL_ST_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "host/model/safetensors.h"

#define ST_WRITE_MAX_DIMS 4
/* Bytes the writer asks of the fill callback at most per call. */
#define ST_WRITE_CHUNK (4u << 20)

struct st_wtensor {
	char *name;		/* owned by the writer */
	enum st_dtype dtype;
	int ndim;
	uint64_t shape[ST_WRITE_MAX_DIMS];
	uint64_t nbytes;	/* numel x dtype size */
	uint64_t begin;		/* offset in the data section */
};

struct st_wmeta {
	char *key, *val;	/* owned by the writer */
};

/* Zero-initialise before first use: struct st_writer w = {0}; */
struct st_writer {
	struct st_wtensor *t;	/* in insertion order = file order */
	size_t count, cap;
	struct st_wmeta *meta;	/* __metadata__, in insertion order */
	size_t nmeta, mcap;
	uint64_t data_bytes;	/* size of the data section so far */
};

/* Produce bytes [off, off + n) of tensor t into buf.  Called for every
 * tensor in file order, with off rising from 0 in steps of the previous n;
 * n is at most ST_WRITE_CHUNK and off is a multiple of ST_WRITE_CHUNK.
 * Return 0, or a negative value to abort the write (the writer reports
 * -ST_ERR_IO naming the tensor). */
typedef int (*st_fill_fn)(void *ctx, const struct st_wtensor *t, uint64_t off,
			  void *buf, uint64_t n);

/* Declare a tensor: name non-empty, not "__metadata__", not already added
 * (duplicates are caught by st_writer_write); dt one of enum st_dtype;
 * ndim 0..ST_WRITE_MAX_DIMS.  Returns the tensor's index (>= 0),
 * -ST_ERR_TENSOR (bad argument or size overflow) or -ST_ERR_NOMEM. */
int st_writer_add(struct st_writer *w, const char *name, enum st_dtype dt,
		  int ndim, const uint64_t *shape, char *err, size_t errlen);

/* Set a __metadata__ string (a key set twice keeps the last value).
 * Returns 0, -ST_ERR_HEADER (empty key) or -ST_ERR_NOMEM. */
int st_writer_meta(struct st_writer *w, const char *key, const char *val,
		   char *err, size_t errlen);

/* Write the file: to PATH.tmp, then renamed to path, so a failed write never
 * leaves a file that looks complete.  fill may be NULL for a file of
 * zero-filled tensors.  Returns 0, -ST_ERR_DUP (a name added twice),
 * -ST_ERR_HEADER (header over ST_MAX_HEADER), -ST_ERR_IO or -ST_ERR_NOMEM. */
int st_writer_write(const struct st_writer *w, const char *path,
		    st_fill_fn fill, void *ctx, char *err, size_t errlen);

/* Bytes st_writer_write() will produce: header and data.  0 on error. */
uint64_t st_writer_file_bytes(const struct st_writer *w);

void st_writer_free(struct st_writer *w);	/* safe on a zeroed writer */

/* float -> IEEE half, round to nearest, ties to even; overflow gives inf. */
uint16_t st_f32_to_f16(float f);

#endif
