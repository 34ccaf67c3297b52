/* krnl_deltanet_step.c — the Gated DeltaNet recurrence, decode form.
 * The state tile of one head ([dk][dv], 64 KiB at 128x128) is brought on chip,
 * updated and written back once per token. */
#include "krnl_common.h"
#include "krnl_deltanet_step.h"

#define DN_MAX_DK 256
#define DN_MAX_DV 256

static void l2norm(float *v, uint32_t n, float scale)
{
	float ss = 0.0f;

	for (uint32_t i = 0; i < DN_MAX_DK; i++) {
		if (i >= n)
			break;
		ss += v[i] * v[i];
	}
	float inv = scale / sqrtf(ss + 1e-6f);
	for (uint32_t i = 0; i < DN_MAX_DK; i++) {
		if (i >= n)
			break;
		v[i] *= inv;
	}
}

void krnl_deltanet_step(const float *qkv, const float *ba, const float *a_log,
			const float *dt_bias, float *state, const int32_t *slots,
			float *out, uint32_t rows, uint32_t nk, uint32_t nv,
			uint32_t dk, uint32_t dv, uint32_t xstride)
{
#pragma HLS INTERFACE m_axi port=qkv bundle=gmem0
#pragma HLS INTERFACE m_axi port=ba bundle=gmem1
#pragma HLS INTERFACE m_axi port=a_log bundle=gmem1
#pragma HLS INTERFACE m_axi port=dt_bias bundle=gmem1
#pragma HLS INTERFACE m_axi port=state bundle=gmem2
#pragma HLS INTERFACE m_axi port=slots bundle=gmem3
#pragma HLS INTERFACE m_axi port=out bundle=gmem4
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=nk
#pragma HLS INTERFACE s_axilite port=nv
#pragma HLS INTERFACE s_axilite port=dk
#pragma HLS INTERFACE s_axilite port=dv
#pragma HLS INTERFACE s_axilite port=xstride
#pragma HLS INTERFACE s_axilite port=return
	static float s[DN_MAX_DK][DN_MAX_DV];
	float q[DN_MAX_DK], k[DN_MAX_DK], u[DN_MAX_DV];
	uint32_t ratio = nv / nk;

row:
	for (uint32_t r = 0; r < KRNL_MAX_BATCH; r++) {
		if (r >= rows)
			break;
		const float *xr = qkv + (uint64_t)r * xstride;
		float *st = state + (uint64_t)(uint32_t)slots[r] * nv * dk * dv;
head:
		for (uint32_t j = 0; j < KRNL_MAX_HEADS; j++) {
			if (j >= nv)
				break;
			uint32_t kh = j / ratio;
			const float *v = xr + 2u * nk * dk + (uint64_t)j * dv;
			float *sh = st + (uint64_t)j * dk * dv;

			for (uint32_t i = 0; i < DN_MAX_DK; i++) {
				if (i >= dk)
					break;
				q[i] = xr[(uint64_t)kh * dk + i];
				k[i] = xr[(uint64_t)nk * dk + (uint64_t)kh * dk + i];
			}
			l2norm(q, dk, 1.0f / sqrtf((float)dk));
			l2norm(k, dk, 1.0f);

			float beta = krnl_sigmoid(ba[(uint64_t)r * 2 * nv + j]);
			float a = ba[(uint64_t)r * 2 * nv + nv + j];
			float g = -expf(a_log[j]) * krnl_softplus(a + dt_bias[j]);
			float decay = expf(g);

			/* decay the state while loading it; u = beta (v - S^T k) */
			for (uint32_t c = 0; c < DN_MAX_DV; c++) {
				if (c >= dv)
					break;
				u[c] = 0.0f;
			}
load:
			for (uint32_t i = 0; i < DN_MAX_DK; i++) {
				if (i >= dk)
					break;
				for (uint32_t c = 0; c < DN_MAX_DV; c++) {
#pragma HLS PIPELINE II=1
					if (c >= dv)
						break;
					s[i][c] = sh[(uint64_t)i * dv + c] * decay;
					u[c] += s[i][c] * k[i];
				}
			}
			for (uint32_t c = 0; c < DN_MAX_DV; c++) {
				if (c >= dv)
					break;
				u[c] = beta * (v[c] - u[c]);
			}
			/* S += k u^T, o = S^T q, write back */
			float *o = out + (uint64_t)r * nv * dv + (uint64_t)j * dv;
			for (uint32_t c = 0; c < DN_MAX_DV; c++) {
				if (c >= dv)
					break;
				o[c] = 0.0f;
			}
update:
			for (uint32_t i = 0; i < DN_MAX_DK; i++) {
				if (i >= dk)
					break;
				for (uint32_t c = 0; c < DN_MAX_DV; c++) {
#pragma HLS PIPELINE II=1
					if (c >= dv)
						break;
					float sv = s[i][c] + k[i] * u[c];
					sh[(uint64_t)i * dv + c] = sv;
					o[c] += sv * q[i];
				}
			}
		}
	}
}
