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

/* Fill the placement from the checkpoint through dma().  Returns 0 or -1. */
int nc_image_fill(const struct st_set *st, const struct fw_model_cfg *cfg,
		  const struct fw_place *pl, uint32_t n, nc_dma_fn dma, void *ctx,
		  char *err, size_t errlen);

#endif
