#ifndef KRNL_MOE_ROUTER_H
#define KRNL_MOE_ROUTER_H
#include <stdint.h>
/* Top-k routing of a batch, regrouped per expert for the expert kernel.
 *   logits: [rows][ne] router outputs; p = softmax(logits) per row;
 *   top-k by p (ties: lower expert first), renormalised if norm != 0.
 *   count[e]: rows routed to expert e; list[e][0..count-1] those rows
 *   (ascending) and listw[e][..] their weights.  list/listw: [ne][KRNL_MAX_BATCH]. */
void krnl_moe_router(const float *logits, uint32_t *count, int32_t *list,
		     float *listw, uint32_t rows, uint32_t ne, uint32_t topk,
		     uint32_t norm);
#endif
