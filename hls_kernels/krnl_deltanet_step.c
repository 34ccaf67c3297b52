/* krnl_deltanet_step.c — the Gated DeltaNet recurrence, decode form.
 * The state tile of one head ([dk][dv], 64 KiB at 128x128) is brought on chip
 * in one burst, decayed and updated there and written back in one burst per
 * token.  The matrix-vector products run with the dk dimension outermost and
 * the dv lanes (independent accumulators) in the pipelined inner loop, so no
 * float addition is carried from one pipelined iteration to the next. */
#include "krnl_common.h"
#include "krnl_deltanet_step.h"
#include "krnl_state.h"

#define DN_MAX_DK 256
#define DN_MAX_DV 256

/* v[0..n) *= scale / sqrt(sum v^2 + 1e-6) */
static void l2norm(float *v, uint32_t n, float scale)
{
	float ss = krnl_dot_f32(v, v, n);
	float inv = scale / sqrtf(ss + 1e-6f);
scale:
	for (uint32_t i = 0; i < n; i++) {
#pragma HLS loop_tripcount max=256
#pragma HLS PIPELINE II=1
		v[i] *= inv;
	}
}

void krnl_deltanet_step(const krnl_word *qkv, const krnl_word *ba, const krnl_word *a_log,
			const krnl_word *dt_bias, krnl_word *state, const krnl_word *blocks,
			krnl_word *out, uint32_t rows, uint32_t nk, uint32_t nv,
			uint32_t dk, uint32_t dv, uint32_t xstride, uint32_t nblk)
{
#pragma HLS INTERFACE m_axi port=qkv bundle=gmem0
#pragma HLS INTERFACE m_axi port=ba bundle=gmem1
#pragma HLS INTERFACE m_axi port=a_log bundle=gmem2
#pragma HLS INTERFACE m_axi port=dt_bias bundle=gmem3
#pragma HLS INTERFACE m_axi port=state bundle=gmem4
#pragma HLS INTERFACE m_axi port=blocks bundle=gmem5
#pragma HLS INTERFACE m_axi port=out bundle=gmem6
#pragma HLS INTERFACE s_axilite port=rows
#pragma HLS INTERFACE s_axilite port=nk
#pragma HLS INTERFACE s_axilite port=nv
#pragma HLS INTERFACE s_axilite port=dk
#pragma HLS INTERFACE s_axilite port=dv
#pragma HLS INTERFACE s_axilite port=xstride
#pragma HLS INTERFACE s_axilite port=nblk
#pragma HLS INTERFACE s_axilite port=return
	float s[DN_MAX_DK * DN_MAX_DV];	/* one head's state, [dk][dv] */
	float xb[KRNL_MAX_CHAN];		/* the qkv row */
	float ob[KRNL_MAX_CHAN];		/* the out row */
	float alog[KRNL_MAX_HEADS], dtb[KRNL_MAX_HEADS];
	float bab[KRNL_MAX_BATCH * 2 * KRNL_MAX_HEADS];	/* ba of every row */
	float q[DN_MAX_DK], k[DN_MAX_DK], u[DN_MAX_DV];
	int32_t sl[2 * KRNL_MAX_BATCH];	/* handles: rows' state in, then out */
	uint32_t ratio = nv / nk;
	uint32_t width = 2 * nk * dk + nv * dv;
	uint64_t tile = (uint64_t)dk * dv;

	krnl_rd_i32(sl, blocks, 0, 2 * rows);
	krnl_rd_f32(alog, a_log, 0, nv);
	krnl_rd_f32(dtb, dt_bias, 0, nv);
	krnl_rd_f32(bab, ba, 0, rows * 2 * nv);
row:
	for (uint32_t r = 0; r < rows; r++) {
#pragma HLS loop_tripcount max=16
		uint32_t b = (uint32_t)sl[r] < nblk ? (uint32_t)sl[r] : 0;
		uint32_t bo = (uint32_t)sl[rows + r] < nblk ? (uint32_t)sl[rows + r] : 0;
		uint64_t st = (uint64_t)b * krnl_dn_block(nv, dk, dv);
		uint64_t sto = (uint64_t)bo * krnl_dn_block(nv, dk, dv);

		krnl_rd_f32(xb, qkv, (uint64_t)r * xstride, width);
		const float *br = bab + r * 2 * nv;
head:
		for (uint32_t j = 0; j < nv; j++) {
#pragma HLS loop_tripcount max=128
			uint32_t kh = j / ratio;
			const float *v = xb + 2 * nk * dk + j * dv;
			float *o = ob + j * dv;
			uint64_t sh = st + (uint64_t)j * tile;
			uint64_t sho = sto + (uint64_t)j * tile;

			for (uint32_t i = 0; i < dk; i++) {
#pragma HLS loop_tripcount max=256
#pragma HLS PIPELINE II=1
				q[i] = xb[kh * dk + i];
				k[i] = xb[nk * dk + kh * dk + i];
			}
			l2norm(q, dk, 1.0f / sqrtf((float)dk));
			l2norm(k, dk, 1.0f);

			float beta = krnl_sigmoid(br[j]);
			float g = -expf(alog[j]) * krnl_softplus(br[nv + j] + dtb[j]);
			float decay = expf(g);

			krnl_rd_f32(s, state, sh, (uint32_t)tile);
			for (uint32_t c = 0; c < dv; c++) {
#pragma HLS loop_tripcount max=256
				u[c] = 0.0f;
				o[c] = 0.0f;
			}
			/* decay the state; u = S^T k (dk outer, dv lanes inner) */
decay:
			for (uint32_t i = 0; i < dk; i++) {
#pragma HLS loop_tripcount max=256
				float *si = s + i * dv;
				float ki = k[i];
decay_lane:
				for (uint32_t c = 0; c < dv; c++) {
#pragma HLS loop_tripcount max=256
#pragma HLS PIPELINE II=1
					float sv = si[c] * decay;
					si[c] = sv;
					u[c] += sv * ki;
				}
			}
			for (uint32_t c = 0; c < dv; c++) {
#pragma HLS loop_tripcount max=256
#pragma HLS PIPELINE II=1
				u[c] = beta * (v[c] - u[c]);
			}
			/* S += k u^T;  o = S^T q */
update:
			for (uint32_t i = 0; i < dk; i++) {
#pragma HLS loop_tripcount max=256
				float *si = s + i * dv;
				float ki = k[i], qi = q[i];
update_lane:
				for (uint32_t c = 0; c < dv; c++) {
#pragma HLS loop_tripcount max=256
#pragma HLS PIPELINE II=1
					float sv = si[c] + ki * u[c];
					si[c] = sv;
					o[c] += sv * qi;
				}
			}
			krnl_wr_f32(state, sho, s, (uint32_t)tile);
		}
		krnl_wr_f32(out, (uint64_t)r * nv * dv, ob, nv * dv);
	}
}
