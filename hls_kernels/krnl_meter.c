/* krnl_meter.c — the C-simulation side of the memory accessor (krnl_mem.h):
 * the slow path that finds the port and bank of a beat the fast path's last
 * span did not cover.  Not part of any kernel; never synthesized. */
#ifndef __SYNTHESIS__
#include "krnl_mem.h"

_Thread_local struct krnl_meter *krnl_meter_cur;

static uint32_t bank_of(const struct krnl_meter *m, uintptr_t a, uintptr_t *lo, uintptr_t *hi)
{
	for (uint32_t b = 0; b < m->n_banks; b++)
		if (a >= m->bank_lo[b] && a < m->bank_hi[b]) {
			*lo = m->bank_lo[b];
			*hi = m->bank_hi[b];
			return b;
		}
	*lo = 0;
	*hi = UINTPTR_MAX;
	return KRNL_METER_BANKS - 1;	/* no bank table: all in one */
}

void krnl_meter_slow(struct krnl_meter *m, uintptr_t a, uint64_t beats, int wr)
{
	while (beats) {
		uint32_t p;
		uintptr_t blo, bhi;

		for (p = 0; p < m->n_ports; p++)
			if (a >= m->port[p].lo && a < m->port[p].hi)
				break;
		if (p == m->n_ports) {
			m->stray_beats[wr] += beats;
			return;
		}
		uint32_t b = bank_of(m, a, &blo, &bhi);
		struct krnl_meter_span *h = &m->hit[wr];

		h->lo = m->port[p].lo > blo ? m->port[p].lo : blo;
		h->hi = m->port[p].hi < bhi ? m->port[p].hi : bhi;
		h->port = (uint16_t)p;
		h->bank = (uint16_t)b;
		/* beats of this span, then go on with the rest */
		uint64_t here = (h->hi - a + KRNL_BEAT_BYTES - 1) / KRNL_BEAT_BYTES;
		if (here > beats)
			here = beats;
		m->port_beats[p][wr] += here;
		m->bank_beats[b][wr] += here;
		beats -= here;
		a += here * KRNL_BEAT_BYTES;
	}
}
#endif
