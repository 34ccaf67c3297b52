/* kernel_ref.h — plain scalar references of the HLS kernels, in double.
 *
 * Written from QWEN3NEXT.md (the project math sheet) and the contract comment of
 * each hls_kernels/krnl_*.h, as the obvious textbook loops: no on-chip
 * buffers, no online softmax, no fused loops.  Inputs are the very float
 * values the kernel sees (bf16 weights already rounded, see ref_bf16_round);
 * everything is computed and returned in double.  Carried state (conv window,
 * DeltaNet state, KV cache) is kept by the caller in double, per slot.
 *
 * Included by tests/unit/test_kernels.c only; every function is static.
 */
#ifndef KERNEL_REF_H
#define KERNEL_REF_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- bf16 -------------------------------------------------------------- */

static inline uint32_t ref_f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static inline float ref_bits_f32(uint32_t u)
{
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* f32 -> bf16, round to nearest, ties to even; NaN stays a (quiet) NaN. */
static inline uint16_t ref_f32_to_bf16(float f)
{
	uint32_t u = ref_f32_bits(f);

	if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu))
		return (uint16_t)((u >> 16) | 0x0040u);
	uint32_t lsb = (u >> 16) & 1u;
	u += 0x7fffu + lsb;
	return (uint16_t)(u >> 16);
}

static inline float ref_bf16_to_f32(uint16_t b)
{
	return ref_bits_f32((uint32_t)b << 16);
}

static inline float ref_bf16_round(float f)
{
	return ref_bf16_to_f32(ref_f32_to_bf16(f));
}

/* ---- scalar helpers ---------------------------------------------------- */

static inline double ref_sigmoid(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

static inline double ref_silu(double x)
{
	return x * ref_sigmoid(x);
}

/* log(1 + e^x), stable for both signs. */
static inline double ref_softplus(double x)
{
	if (x > 0.0)
		return x + log1p(exp(-x));
	return log1p(exp(x));
}

/* ---- embed_gather: out[r][i] = table[ids[r]][i]                          */
/* table: [vocab][dim] as float values; out: [rows][dim]                     */
static inline void ref_embed_gather(double *out, const int32_t *ids,
				    const float *table, int rows, int dim)
{
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < dim; i++)
			out[(size_t)r * dim + i] = table[(size_t)ids[r] * dim + i];
}

/* ---- rmsnorm: y = x / sqrt(mean(x^2) + eps) * (woff + w), per row         */
static inline void ref_rmsnorm(double *y, const float *x, const float *w,
			       int rows, int dim, double eps, double woff)
{
	for (int r = 0; r < rows; r++) {
		const float *xr = x + (size_t)r * dim;
		double ms = 0.0;

		for (int i = 0; i < dim; i++)
			ms += (double)xr[i] * xr[i];
		ms /= dim;
		double rinv = 1.0 / sqrt(ms + eps);
		for (int i = 0; i < dim; i++)
			y[(size_t)r * dim + i] = xr[i] * rinv * (woff + w[i]);
	}
}

/* ---- rmsnorm_gated: per head, y = x / rms(x) * w * silu(z)               */
/* x, y: [rows][heads*dim]; z row r at z + r*zstride                         */
static inline void ref_rmsnorm_gated(double *y, const float *x, const float *z,
				     const float *w, int rows, int heads,
				     int dim, int zstride, double eps)
{
	for (int r = 0; r < rows; r++) {
		for (int h = 0; h < heads; h++) {
			const float *xh = x + ((size_t)r * heads + h) * dim;
			const float *zh = z + (size_t)r * zstride + (size_t)h * dim;
			double ms = 0.0;

			for (int i = 0; i < dim; i++)
				ms += (double)xh[i] * xh[i];
			ms /= dim;
			for (int i = 0; i < dim; i++)
				y[((size_t)r * heads + h) * dim + i] =
					xh[i] / sqrt(ms + eps) * w[i] * ref_silu(zh[i]);
		}
	}
}

/* ---- gemv: y[r][o] (+)= sum_i W[o][i] x[r][i]                            */
/* W: [out][in]; x row r at x + r*xstride; y: dense [rows][out] in double    */
static inline void ref_gemv(double *y, const float *x, const float *w,
			    int rows, int in, int out, int xstride, int acc)
{
	for (int r = 0; r < rows; r++) {
		for (int o = 0; o < out; o++) {
			double s = 0.0;

			for (int i = 0; i < in; i++)
				s += (double)w[(size_t)o * in + i] * x[(size_t)r * xstride + i];
			if (acc)
				y[(size_t)r * out + o] += s;
			else
				y[(size_t)r * out + o] = s;
		}
	}
}

/* ---- conv1d_step, one row ------------------------------------------------
 * hist: [ch][k-1] the previous k-1 inputs of each channel, oldest first
 * (zeros at sequence start).  y[c] = silu(sum_j w[c][j] * window[j]) where
 * window = hist[c][0..k-2] followed by x[c]; hist then drops its oldest.   */
static inline void ref_conv1d_step(double *y, const float *x, const float *w,
				   float *hist, int ch, int k)
{
	for (int c = 0; c < ch; c++) {
		float *hc = hist + (size_t)c * (k - 1);
		double s = 0.0;

		for (int j = 0; j < k; j++) {
			double in = j < k - 1 ? hc[j] : x[c];
			s += (double)w[(size_t)c * k + j] * in;
		}
		y[c] = ref_silu(s);
		if (k > 1) {
			memmove(hc, hc + 1, sizeof(*hc) * (size_t)(k - 2));
			hc[k - 2] = x[c];
		}
	}
}

/* ---- deltanet_step, one row ----------------------------------------------
 * qkv: [q (nk*dk) | k (nk*dk) | v (nv*dv)]; ba: [b (nv) | a (nv)]
 * S: [nv][dk][dv] in double, updated; o: [nv*dv]                            */
static inline void ref_deltanet_step(double *o, const float *qkv, const float *ba,
				     const float *a_log, const float *dt_bias,
				     double *S, int nk, int nv, int dk, int dv)
{
	double *q = malloc(sizeof(*q) * (size_t)dk);
	double *kk = malloc(sizeof(*kk) * (size_t)dk);
	double *u = malloc(sizeof(*u) * (size_t)dv);
	int ratio = nv / nk;

	for (int j = 0; j < nv; j++) {
		int kh = j / ratio;
		const float *qs = qkv + (size_t)kh * dk;
		const float *ks = qkv + (size_t)nk * dk + (size_t)kh * dk;
		const float *vs = qkv + 2 * (size_t)nk * dk + (size_t)j * dv;
		double *Sj = S + (size_t)j * dk * dv;
		double qn = 0.0, kn = 0.0;

		for (int i = 0; i < dk; i++) {
			qn += (double)qs[i] * qs[i];
			kn += (double)ks[i] * ks[i];
		}
		qn = sqrt(qn + 1e-6);
		kn = sqrt(kn + 1e-6);
		for (int i = 0; i < dk; i++) {
			q[i] = qs[i] / qn / sqrt((double)dk);
			kk[i] = ks[i] / kn;
		}
		double beta = ref_sigmoid(ba[j]);
		double g = -exp((double)a_log[j]) * ref_softplus((double)ba[nv + j] + dt_bias[j]);

		/* S <- exp(g) S */
		for (int i = 0; i < dk * dv; i++)
			Sj[i] *= exp(g);
		/* u = beta (v - S^T k) */
		for (int c = 0; c < dv; c++) {
			double stk = 0.0;

			for (int i = 0; i < dk; i++)
				stk += Sj[(size_t)i * dv + c] * kk[i];
			u[c] = beta * (vs[c] - stk);
		}
		/* S <- S + k u^T */
		for (int i = 0; i < dk; i++)
			for (int c = 0; c < dv; c++)
				Sj[(size_t)i * dv + c] += kk[i] * u[c];
		/* o = S^T q */
		for (int c = 0; c < dv; c++) {
			double s = 0.0;

			for (int i = 0; i < dk; i++)
				s += Sj[(size_t)i * dv + c] * q[i];
			o[(size_t)j * dv + c] = s;
		}
	}
	free(q);
	free(kk);
	free(u);
}

/* ---- attention pieces ---------------------------------------------------- */

/* Zero-centred RMSNorm of one head, then rotate-half RoPE on the first rd
 * dims at position p: inv_f_i = theta^(-2i/rd), x' = x cos + rotate_half(x) sin. */
static inline void ref_norm_rope(double *out, const float *x, const float *w,
				 int hd, int rd, double theta, double eps, int p)
{
	double ms = 0.0;
	double *t = malloc(sizeof(*t) * (size_t)hd);

	for (int i = 0; i < hd; i++)
		ms += (double)x[i] * x[i];
	ms /= hd;
	for (int i = 0; i < hd; i++)
		t[i] = x[i] / sqrt(ms + eps) * (1.0 + w[i]);
	int half = rd / 2;
	for (int i = 0; i < hd; i++) {
		if (i >= rd) {
			out[i] = t[i];
			continue;
		}
		int fi = i < half ? i : i - half;	/* cos/sin repeated over halves */
		double ang = (double)p * pow(theta, -2.0 * fi / rd);
		double rot = i < half ? -t[i + half] : t[i - half];
		out[i] = t[i] * cos(ang) + rot * sin(ang);
	}
	free(t);
}

/* ---- attn_decode, one row ------------------------------------------------
 * kh, vh: this slot's history in double, [nkv][maxctx][hd]; the new token's
 * normed+roped key and its value are stored at position p, then each query
 * head attends over 0..p with a plain (two-pass) softmax.
 * qg: [query (nh*hd) | gate (nh*hd)]; k, v: [nkv*hd]; out: [nh*hd].        */
static inline double ref_round_bf16(double x)
{
	union { float f; uint32_t u; } v = { .f = (float)x };

	v.u = (v.u + 0x7fffu + ((v.u >> 16) & 1u)) & 0xffff0000u;	/* nearest even */
	return v.f;
}

/* kv_bf16: the cache keeps keys and values as bf16, the new entry included. */
static inline void ref_attn_decode(double *out, const float *qg, const float *k,
				   const float *v, const float *qnw, const float *knw,
				   double *kh, double *vh, int p, int nh, int nkv,
				   int hd, int rd, double theta, double eps, int maxctx,
				   int kv_bf16)
{
	double *q = malloc(sizeof(*q) * (size_t)hd);
	double *sc = malloc(sizeof(*sc) * (size_t)(p + 1));
	int group = nh / nkv;

	for (int h = 0; h < nkv; h++) {
		size_t at = ((size_t)h * maxctx + p) * hd;

		ref_norm_rope(kh + at, k + (size_t)h * hd, knw, hd, rd, theta, eps, p);
		for (int i = 0; i < hd; i++)
			vh[at + i] = v[(size_t)h * hd + i];
		for (int i = 0; kv_bf16 && i < hd; i++) {
			kh[at + i] = ref_round_bf16(kh[at + i]);
			vh[at + i] = ref_round_bf16(vh[at + i]);
		}
	}
	for (int h = 0; h < nh; h++) {
		int g = h / group;
		const double *kg = kh + (size_t)g * maxctx * hd;
		const double *vg = vh + (size_t)g * maxctx * hd;
		const float *gate = qg + (size_t)nh * hd + (size_t)h * hd;
		double mx = -INFINITY, sum = 0.0;

		ref_norm_rope(q, qg + (size_t)h * hd, qnw, hd, rd, theta, eps, p);
		for (int t = 0; t <= p; t++) {
			double d = 0.0;

			for (int i = 0; i < hd; i++)
				d += q[i] * kg[(size_t)t * hd + i];
			sc[t] = d / sqrt((double)hd);
			if (sc[t] > mx)
				mx = sc[t];
		}
		for (int t = 0; t <= p; t++) {
			sc[t] = exp(sc[t] - mx);
			sum += sc[t];
		}
		for (int i = 0; i < hd; i++) {
			double a = 0.0;

			for (int t = 0; t <= p; t++)
				a += sc[t] / sum * vg[(size_t)t * hd + i];
			out[(size_t)h * hd + i] = a * ref_sigmoid(gate[i]);
		}
	}
	free(q);
	free(sc);
}

/* ---- moe_router ------------------------------------------------------------
 * p = softmax(logits) per row; expert e is chosen by row r iff fewer than
 * topk experts rank before it (larger p, or equal p and lower index).
 * Outputs the same per-expert grouping as the kernel: count[e], list[e][]
 * (rows ascending) and weights (renormalised over the chosen if norm).
 * list/listw: [ne][lstride].                                                */
static inline void ref_moe_router(uint32_t *count, int32_t *list, double *listw,
				  const float *logits, int rows, int ne, int topk,
				  int norm, int lstride)
{
	double *p = malloc(sizeof(*p) * (size_t)ne);
	char *chosen = malloc((size_t)ne);

	for (int e = 0; e < ne; e++)
		count[e] = 0;
	for (int r = 0; r < rows; r++) {
		const float *l = logits + (size_t)r * ne;
		double mx = -INFINITY, sum = 0.0, tot = 0.0;

		for (int e = 0; e < ne; e++)
			mx = l[e] > mx ? l[e] : mx;
		for (int e = 0; e < ne; e++) {
			p[e] = exp((double)l[e] - mx);
			sum += p[e];
		}
		for (int e = 0; e < ne; e++)
			p[e] /= sum;
		for (int e = 0; e < ne; e++) {
			int before = 0;

			for (int f = 0; f < ne; f++)
				if (p[f] > p[e] || (p[f] == p[e] && f < e))
					before++;
			chosen[e] = before < topk;
			if (chosen[e])
				tot += p[e];
		}
		for (int e = 0; e < ne; e++) {
			if (!chosen[e])
				continue;
			size_t at = (size_t)e * lstride + count[e];
			list[at] = r;
			listw[at] = norm ? p[e] / tot : p[e];
			count[e]++;
		}
	}
	free(p);
	free(chosen);
}

/* One SwiGLU expert on one row: down(silu(gate x) * up x), added as s * (.)
 * into y.  we: [gate (ni x h) | up (ni x h) | down (h x ni)].               */
static inline void ref_swiglu_add(double *y, const float *x, const float *we,
				  int h, int ni, double s)
{
	const float *wg = we, *wu = we + (size_t)ni * h, *wd = we + 2 * (size_t)ni * h;
	double *act = malloc(sizeof(*act) * (size_t)ni);

	for (int i = 0; i < ni; i++) {
		double g = 0.0, u = 0.0;

		for (int c = 0; c < h; c++) {
			g += (double)wg[(size_t)i * h + c] * x[c];
			u += (double)wu[(size_t)i * h + c] * x[c];
		}
		act[i] = ref_silu(g) * u;
	}
	for (int o = 0; o < h; o++) {
		double d = 0.0;

		for (int i = 0; i < ni; i++)
			d += (double)wd[(size_t)o * ni + i] * act[i];
		y[o] += s * d;
	}
	free(act);
}

/* ---- expert_ffn ------------------------------------------------------------
 * y[r] += sum over (e, j) with list[e][j] == r of listw[e][j] * expert_e(x[r])
 *       + sigmoid(sgate . x[r]) * shared(x[r])       (si == 0: no shared)
 * w: experts back to back, each 3*ni*h; y: [rows][h] in double.             */
static inline void ref_expert_ffn(double *y, const float *x, const float *w,
				  const uint32_t *count, const int32_t *list,
				  const float *listw, const float *sw,
				  const float *sgate, int rows, int h, int ni,
				  int ne, int si, int lstride)
{
	for (int r = 0; r < rows; r++) {
		const float *xr = x + (size_t)r * h;

		for (int e = 0; e < ne; e++)
			for (uint32_t j = 0; j < count[e]; j++)
				if (list[(size_t)e * lstride + j] == r)
					ref_swiglu_add(y + (size_t)r * h, xr,
						       w + (size_t)e * 3 * ni * h, h, ni,
						       listw[(size_t)e * lstride + j]);
		if (si == 0)
			continue;
		double gs = 0.0;
		for (int c = 0; c < h; c++)
			gs += (double)sgate[c] * xr[c];
		ref_swiglu_add(y + (size_t)r * h, xr, sw, h, si, ref_sigmoid(gs));
	}
}

/* ---- lm_head_argmax --------------------------------------------------------
 * logits[r][o] = lm_head(RMSNorm_final(x[r]))[o] (zero-centred, 1 + nw);
 * argmax[r] = lowest index of the row's largest logit.                      */
static inline void ref_lm_head_argmax(double *logits, int32_t *argmax,
				      const float *x, const float *nw,
				      const float *w, int rows, int h, int v,
				      double eps)
{
	double *xn = malloc(sizeof(*xn) * (size_t)h);

	for (int r = 0; r < rows; r++) {
		ref_rmsnorm(xn, x + (size_t)r * h, nw, 1, h, eps, 1.0);
		argmax[r] = 0;
		for (int o = 0; o < v; o++) {
			double s = 0.0;

			for (int c = 0; c < h; c++)
				s += (double)w[(size_t)o * h + c] * xn[c];
			logits[(size_t)r * v + o] = s;
			if (s > logits[(size_t)r * v + argmax[r]])
				argmax[r] = o;
		}
	}
	free(xn);
}

#endif
