/* krnl_types.h — element formats of card memory, defined once.
 *
 * The kernels, the firmware's placement and the host's image builder all size
 * and lay out tensors with these functions; nothing else knows how many bytes
 * an element takes.
 *
 * A weight matrix [rows][cols] is stored row by row; each row starts on a
 * 64-byte beat and is padded with zeros to a whole beat:
 *   f32, bf16, f16   the values, 16 / 32 / 32 per beat
 *   int8, int4       symmetric group quantization along cols, groups of
 *                    32, 64 or 128: first the row's group scales (f32, 16 per
 *                    beat, padded to a beat), then the values, two's
 *                    complement, 64 int8 or 128 int4 per beat (int4: element
 *                    2i in the low nibble of byte i).  w = q * scale.
 * Vectors (norm weights, biases, conv taps) are plain f32 arrays.
 *
 * A kernel's dt register carries the format and the group: fmt | group << 8.
 */
#ifndef KRNL_TYPES_H
#define KRNL_TYPES_H

#include <stdint.h>

#define KRNL_BEAT_BYTES 64u	/* one 512-bit HBM beat */

enum krnl_fmt {
	KRNL_FMT_F32 = 0,
	KRNL_FMT_BF16 = 1,
	KRNL_FMT_F16 = 2,
	KRNL_FMT_INT8 = 3,
	KRNL_FMT_INT4 = 4,
	KRNL_FMT_COUNT
};

#define KRNL_MAX_EPB   128u	/* elements per beat, the most of any format */
#define KRNL_MIN_GROUP 32u
#define KRNL_MAX_GROUP 128u

#define KRNL_DT(fmt, group) ((uint32_t)(fmt) | (uint32_t)(group) << 8)
#define KRNL_DT_FMT(dt)     ((dt) & 0xffu)
#define KRNL_DT_GROUP(dt)   (((dt) >> 8) & 0xffffu)

static inline int krnl_fmt_quant(uint32_t fmt)
{
	return fmt == KRNL_FMT_INT8 || fmt == KRNL_FMT_INT4;
}

/* Elements per beat. */
static inline uint32_t krnl_fmt_epb(uint32_t fmt)
{
	switch (fmt) {
	case KRNL_FMT_F32:  return 16;
	case KRNL_FMT_BF16:
	case KRNL_FMT_F16:  return 32;
	case KRNL_FMT_INT8: return 64;
	default:            return 128;
	}
}

static inline const char *krnl_fmt_name(uint32_t fmt)
{
	static const char *const n[KRNL_FMT_COUNT] = { "f32", "bf16", "f16", "int8", "int4" };

	return fmt < KRNL_FMT_COUNT ? n[fmt] : "?";
}

/* A dt register value the kernels accept: known format, and for the quantized
 * ones a group of 32, 64 or 128 that divides nothing in particular. */
static inline int krnl_dt_valid(uint32_t dt)
{
	uint32_t f = KRNL_DT_FMT(dt), g = KRNL_DT_GROUP(dt);

	if (dt >> 24 || f >= KRNL_FMT_COUNT)
		return 0;
	if (!krnl_fmt_quant(f))
		return g == 0;
	return g == 32 || g == 64 || g == 128;
}

/* Beats of the scales that open a row of cols elements (0 if not quantized). */
static inline uint32_t krnl_scale_beats(uint32_t dt, uint32_t cols)
{
	uint32_t g = KRNL_DT_GROUP(dt);

	if (!krnl_fmt_quant(KRNL_DT_FMT(dt)) || g == 0)
		return 0;
	return ((cols + g - 1) / g + 15) / 16;
}

/* Beats of one row of cols elements. */
static inline uint32_t krnl_row_beats(uint32_t dt, uint32_t cols)
{
	uint32_t epb = krnl_fmt_epb(KRNL_DT_FMT(dt));

	return krnl_scale_beats(dt, cols) + (cols + epb - 1) / epb;
}

/* Bytes of a [rows][cols] matrix. */
static inline uint64_t krnl_matrix_bytes(uint32_t dt, uint64_t rows, uint32_t cols)
{
	return rows * krnl_row_beats(dt, cols) * (uint64_t)KRNL_BEAT_BYTES;
}

/* Bytes of one SwiGLU expert [gate (ni x h) | up (ni x h) | down (h x ni)]. */
static inline uint64_t krnl_expert_bytes(uint32_t dt, uint32_t h, uint32_t ni)
{
	return 2 * krnl_matrix_bytes(dt, ni, h) + krnl_matrix_bytes(dt, h, ni);
}

/* Bytes of a plain f32 vector, padded to whole beats. */
static inline uint64_t krnl_vec_bytes(uint64_t n)
{
	return (n * 4 + KRNL_BEAT_BYTES - 1) / KRNL_BEAT_BYTES * KRNL_BEAT_BYTES;
}

#endif
