#ifndef KRNL_MOE_ROUTER_H
#define KRNL_MOE_ROUTER_H
#include <stdint.h>
#include "krnl_mem.h"
/* Top-k routing of a batch, regrouped per expert for the expert kernel.
 *   logits: [rows][ne] f32 router outputs; p = softmax(logits) per row;
 *   top-k by p (ties: lower expert first), renormalised if norm != 0.
 *   count[e] (uint32, e < ne): rows routed to expert e; list[e][0..count-1]
 *   those rows (ascending, int32) and listw[e][..] their weights (f32), at
 *   element e*KRNL_MAX_BATCH + j.  The grouping is built on chip: count is
 *   written once for all ne experts; list and listw rows (one beat each) only
 *   for experts with count > 0, the unused tail of a row as -1 and 0. */
void krnl_moe_router(const krnl_word *logits, krnl_word *count, krnl_word *list,
		     krnl_word *listw, uint32_t rows, uint32_t ne, uint32_t topk,
		     uint32_t norm);
#endif
