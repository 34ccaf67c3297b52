/* krnl_expert_ffn.c — SwiGLU experts (routed and shared) over a batch. */
#include "krnl_common.h"
#include "krnl_expert_ffn.h"

static float xb[KRNL_MAX_BATCH][KRNL_MAX_HIDDEN];
static float act[KRNL_MAX_BATCH][KRNL_MAX_INTER];

/* One SwiGLU expert for n rows (rows[] into the batch, scale[] per row). */
static void swiglu(const uint16_t *we, uint32_t h, uint32_t ni, uint32_t dt,
		   const int32_t *rws, const float *scale, uint32_t n, float *y)
{
	float wg[KRNL_MAX_HIDDEN], wu[KRNL_MAX_HIDDEN], wd[KRNL_MAX_INTER];
	uint64_t up_off = (uint64_t)ni * h, down_off = 2ull * ni * h;

inter:
	for (uint32_t i = 0; i < KRNL_MAX_INTER; i++) {
		if (i >= ni)
			break;
		for (uint32_t c = 0; c < KRNL_MAX_HIDDEN; c++) {
#pragma HLS PIPELINE II=1
			if (c >= h)
				break;
			wg[c] = krnl_wload(we, (uint64_t)i * h + c, dt);
			wu[c] = krnl_wload(we, up_off + (uint64_t)i * h + c, dt);
		}
		for (uint32_t j = 0; j < KRNL_MAX_BATCH; j++) {
			if (j >= n)
				break;
			const float *xr = xb[rws[j]];
			float g = 0.0f, u = 0.0f;
			for (uint32_t c = 0; c < KRNL_MAX_HIDDEN; c++) {
#pragma HLS PIPELINE II=1
				if (c >= h)
					break;
				g += wg[c] * xr[c];
				u += wu[c] * xr[c];
			}
			act[j][i] = krnl_silu(g) * u;
		}
	}
down:
	for (uint32_t o = 0; o < KRNL_MAX_HIDDEN; o++) {
		if (o >= h)
			break;
		for (uint32_t i = 0; i < KRNL_MAX_INTER; i++) {
#pragma HLS PIPELINE II=1
			if (i >= ni)
				break;
			wd[i] = krnl_wload(we, down_off + (uint64_t)o * ni + i, dt);
		}
		for (uint32_t j = 0; j < KRNL_MAX_BATCH; j++) {
			if (j >= n)
				break;
			float s = 0.0f;
			for (uint32_t i = 0; i < KRNL_MAX_INTER; i++) {
#pragma HLS PIPELINE II=1
				if (i >= ni)
					break;
				s += wd[i] * act[j][i];
			}
			y[(uint64_t)rws[j] * h + o] += scale[j] * s;
		}
	}
}

void krnl_expert_ffn(const float *x, const uint16_t *w, const uint32_t *count,
		     const int32_t *list, const float *listw, const uint16_t *sw,
		     const float *sgate, float *y, uint32_t rows, uint32_t h,
		     uint32_t ni, uint32_t ne, uint32_t si, uint32_t dt)
{
#pragma HLS INTERFACE m_axi port=x bundle=gmem0
#pragma HLS INTERFACE m_axi port=w bundle=gmem1
#pragma HLS INTERFACE m_axi port=count bundle=gmem2
#pragma HLS INTERFACE m_axi port=list bundle=gmem2
#pragma HLS INTERFACE m_axi port=listw bundle=gmem2
#pragma HLS INTERFACE m_axi port=sw bundle=gmem3
#pragma HLS INTERFACE m_axi port=sgate bundle=gmem2
#pragma HLS INTERFACE m_axi port=y bundle=gmem4
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=h
#pragma HLS INTERFACE s_axilite port=ni
#pragma HLS INTERFACE s_axilite port=ne
#pragma HLS INTERFACE s_axilite port=si
#pragma HLS INTERFACE s_axilite port=dt
#pragma HLS INTERFACE s_axilite port=return
	int32_t rws[KRNL_MAX_BATCH];
	float scale[KRNL_MAX_BATCH];

load_x:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		for (uint32_t c = 0; c < KRNL_MAX_HIDDEN; c++) {
#pragma HLS PIPELINE II=1
			if (c >= h)
				break;
			xb[r][c] = x[(uint64_t)r * h + c];
		}
	}
expert:
	for (uint32_t e = 0; e < KRNL_MAX_EXPERTS; e++) {
		if (e >= ne)
			break;
		uint32_t n = count[e];
		if (n == 0)
			continue;	/* not selected: its weights are never fetched */
		for (uint32_t j = 0; j < KRNL_MAX_BATCH; j++) {
			if (j >= n)
				break;
			rws[j] = list[(uint64_t)e * KRNL_MAX_BATCH + j];
			scale[j] = listw[(uint64_t)e * KRNL_MAX_BATCH + j];
		}
		swiglu(w + (uint64_t)e * 3 * ni * h * (dt == KRNL_DT_F32 ? 2 : 1),
		       h, ni, dt, rws, scale, n, y);
	}
	if (si == 0)
		return;
shared:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		float s = 0.0f;
		for (uint32_t c = 0; c < KRNL_MAX_HIDDEN; c++) {
			if (c >= h)
				break;
			s += sgate[c] * xb[r][c];
		}
		rws[r] = (int32_t)r;
		scale[r] = krnl_sigmoid(s);
	}
	swiglu(sw, h, si, dt, rws, scale, rows, y);
}
