/* image.h — build the card's model image from a checkpoint.
 *
 * The firmware publishes where each tensor goes (struct fw_place table); this
 * fills every entry from the safetensors set in the card format the entry
 * names, validating names and shapes first.  The caller moves the bytes
 * (a DMA callback), so this never touches card memory directly.
 */
#ifndef HOST_MODEL_IMAGE_H
#define HOST_MODEL_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include "firmware/fw_model.h"
#include "firmware/fw_place.h"
#include "model/safetensors.h"

typedef int (*nc_dma_fn)(void *ctx, uint64_t addr, const void *src, uint64_t n);

/* Check every tensor the placement needs exists with the expected shape and a
 * float dtype.  Returns 0, or -1 with "tensor 'name': problem" in err. */
int nc_image_check(const struct st_set *st, const struct fw_model_cfg *cfg,
		   const struct fw_place *pl, uint32_t n, char *err, size_t errlen);

struct nc_image_opts {
	int round;		/* enum nc_round of the integer formats */
	/* called now and then with bytes written so far (may be NULL) */
	void (*progress)(void *ctx, uint64_t done, uint64_t total);
	void *pctx;
};

/* Fill the placement from the checkpoint through dma(), converting or
 * quantizing each matrix to the format its entry names.  Returns 0 or -1. */
int nc_image_fill(const struct st_set *st, const struct fw_model_cfg *cfg,
		  const struct fw_place *pl, uint32_t n, const struct nc_image_opts *o,
		  nc_dma_fn dma, void *ctx, char *err, size_t errlen);

/* 1 if tensor name is stored pre-quantized (`nextcard quantize`), with its
 * card format in *dt. */
int nc_image_prequant(const struct st_set *st, const char *name, uint32_t *dt);

/* Bytes of weights one decoded token reads at least: every dense matrix and
 * vector, one embedding row, top_k routed experts and the shared expert per
 * layer, lm_head; in the formats of cfg.  The floor `generate --stats` and
 * the benchmarks compare the measured traffic with. */
double nc_active_floor(const struct fw_model_cfg *cfg);

/* Bytes of all the weights in the formats of cfg (every expert, the whole
 * embedding table). */
double nc_weight_bytes(const struct fw_model_cfg *cfg);

/* Weights of decoder layer l a step reads when its rows route to k distinct
 * experts there. */
double nc_layer_bytes(const struct fw_model_cfg *cfg, uint32_t l, double k);

/* Expected distinct experts per layer for `rows` rows routed independently
 * (top_k of n_experts each): E (1 - (1 - k/E)^rows).  Consecutive tokens of
 * one sequence route alike more often than that, so it is an upper bound. */
double nc_distinct_experts(const struct fw_model_cfg *cfg, double rows);

/* Weight bytes of one decode step of `rows` sequences, each verifying
 * `drafts` MTP drafts (0: plain decoding): the layers with the expected
 * distinct experts of rows * (1 + drafts) rows, the lm_head, and with drafts
 * the MTP head (its layer, fc, norms and the lm_head a second time). */
double nc_step_floor(const struct fw_model_cfg *cfg, uint32_t rows, uint32_t drafts);

/* Bytes of sequence state one decoded token at position pos must read at
 * least: each Gated DeltaNet layer's conv and delta-rule state, each attention
 * layer's keys and values of positions 0..pos (in dt_kv). */
double nc_state_floor(const struct fw_model_cfg *cfg, uint32_t pos);

#endif
