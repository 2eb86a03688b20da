/* cynet_conv_small.h: the products of a convolution whose patch is short (K = KH * KW * C at
   most a few dozen values: the first convolution of an image model, K = 3 x 3 x 1) under the
   mixed_bfloat16 policy (conv.pyx's bfloat16 team, included from conv.pyx only).

   Such a product is no GEMM worth packing: the packed kernels pad k to tiles of 32 and the
   float32 small GEMM leaves the bias and the ReLU to another pass over the output. Here the
   operands are already rounded to bfloat16 (a product of two bfloat16 values is exact in
   float32, so float32 FMAs give the rounding of the packed kernels, in another order), and each
   output vector is computed in registers from K broadcasts and written once with its bias and
   ReLU; the weight gradient keeps a (3 x 32) tile of dkernel in registers over a block of
   patches.

   AVX-512F only (a target attribute, selected at run time): cynet_cs_ok() says whether this CPU
   runs them; conv.pyx falls back to the small GEMM and the packed kernels otherwise. */
#ifndef CYNET_CONV_SMALL_H
#define CYNET_CONV_SMALL_H
#include <stdint.h>
#include <string.h>
#include "cynet_simd.h"
#include "cynet_bf16.h"   /* cynet_bf16_round_bits */

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10 && defined(__x86_64__)
#define CYNET_CS_BUILT 1
#include <immintrin.h>
#define CYNET_CS_TARGET __attribute__((target("avx512f")))
#else
#define CYNET_CS_BUILT 0
#endif

/* 1 when this build has the AVX-512 kernels and this CPU runs them */
static inline int cynet_cs_ok(void) {
#if CYNET_CS_BUILT
    static int ok = -1;
    if (ok < 0) {
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return ok;
#else
    return 0;
#endif
}

/* The fused ReLU's record for the backward: bit j of row r's mb = ceil(f / 8) bytes (little
   bit order: byte j / 8, bit j % 8) is 1 where y[r, j] > 0 (NaN and -0.0: 0), which is all the
   ReLU's gradient reads: an output's 32x fewer bytes than keeping y (and the layer no longer
   holds y to its backward). */
CYNET_CLONES CYNET_UNUSED static void cynet_relu_bits_plain(const float* y, Py_ssize_t rows, Py_ssize_t f,
                                                      unsigned char* bits, Py_ssize_t mb) {
    Py_ssize_t r, j, b;
    for (r = 0; r < rows; r++, y += f, bits += mb)
        for (b = 0; b < mb; b++) {
            unsigned int v = 0;
            for (j = 0; j < 8 && b * 8 + j < f; j++)
                v |= (unsigned int)(y[b * 8 + j] > 0.0f) << j;
            bits[b] = (unsigned char)v;
        }
}

/* g (rows, f) = dy where the bit of cynet_relu_bits is 1, else 0 (cynet_bf16_relu_grad from the
   bits instead of y) */
CYNET_CLONES CYNET_UNUSED static void cynet_relu_grad_bits_plain(float* g, const float* dy, const unsigned char* bits,
                                                           Py_ssize_t rows, Py_ssize_t f, Py_ssize_t mb) {
    Py_ssize_t r, j;
    for (r = 0; r < rows; r++, g += f, dy += f, bits += mb)
        for (j = 0; j < f; j++) {
            uint32_t u, keep = (uint32_t)0 - (uint32_t)((bits[j >> 3] >> (j & 7)) & 1u);
            float d = dy[j];
            memcpy(&u, &d, 4);
            u &= keep;
            memcpy(g + j, &u, 4);
        }
}

#if CYNET_CS_BUILT

/* masks of the two 16-lane halves of columns [f0, f0 + 32) of f */
static inline void cynet_cs_masks(Py_ssize_t f, Py_ssize_t f0, __mmask16* m0, __mmask16* m1) {
    Py_ssize_t n = f - f0;
    *m0 = n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1u);
    n -= 16;
    *m1 = n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* the 32 bits of columns [f0, f0 + 32) in a row of mb bytes of relu bits (f0 a multiple of 32;
   the bytes past the row's end read as 0) */
static inline uint32_t cynet_cs_bits_load(const unsigned char* row, Py_ssize_t mb, Py_ssize_t f0) {
    uint32_t v = 0;
    Py_ssize_t n = mb - f0 / 8;
    if (n >= 4)   /* (a constant size: one load) */
        memcpy(&v, row + f0 / 8, 4);
    else
        memcpy(&v, row + f0 / 8, (size_t)n);
    return v;
}

static inline void cynet_cs_bits_store(unsigned char* row, Py_ssize_t mb, Py_ssize_t f0, uint32_t v) {
    Py_ssize_t n = mb - f0 / 8;
    if (n >= 4)
        memcpy(row + f0 / 8, &v, 4);
    else
        memcpy(row + f0 / 8, &v, (size_t)n);
}

/* ReLU as cynet's relu_forward: v < 0 becomes 0; NaN and -0.0 pass */
CYNET_CS_TARGET static inline __m512 cynet_cs_relu(__m512 v) {
    __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mov_ps(v, neg, _mm512_setzero_ps());
}

/* the relu bits (cynet_relu_bits) of a 32-column chunk: lanes > 0 */
CYNET_CS_TARGET static inline uint32_t cynet_cs_pos_bits(__m512 a0, __m512 a1, __mmask16 m0, __mmask16 m1) {
    uint32_t lo = _mm512_mask_cmp_ps_mask(m0, a0, _mm512_setzero_ps(), _CMP_GT_OQ);
    uint32_t hi = _mm512_mask_cmp_ps_mask(m1, a1, _mm512_setzero_ps(), _CMP_GT_OQ);
    return lo | (hi << 16);
}

/* the float32 nearest to v in bfloat16 (cynet_bf16.h's cynet_bf16_round_bits, 16 lanes; a NaN
   stays a quiet NaN) */
CYNET_CS_TARGET static inline __m512 cynet_cs_round(__m512 v) {
    __m512i u = _mm512_castps_si512(v);
    __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), hi);
    __m512i q = _mm512_and_si512(_mm512_or_si512(u, _mm512_set1_epi32(0x400000)), hi);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_castsi512_ps(_mm512_mask_mov_epi32(r, nan, q));
}

/* g (rows, f) = dy where y > 0, else 0 (or where the relu bits of cynet_relu_bits are 1, rows
   mb bytes apart; both NULL: dy; cynet's relu_backward), rounded to
   bfloat16; colsum[:f] += the unrounded values' column sums (float32; the caller adds them into
   float64 every few hundred rows). One pass over a block of a convolution's output gradient:
   the ReLU's gradient, the bias gradient and the rounded operand of the weight gradient. */
CYNET_CS_TARGET CYNET_UNUSED static void cynet_cs_grad_block(float* g, const float* dy, const float* y,
                                                            const unsigned char* bits, Py_ssize_t mb,
                                                            Py_ssize_t rows, Py_ssize_t f, float* colsum) {
    Py_ssize_t f0, r;
    for (f0 = 0; f0 < f; f0 += 32) {
        __mmask16 m0, m1;
        __m512 s0, s1;
        cynet_cs_masks(f, f0, &m0, &m1);
        s0 = _mm512_maskz_loadu_ps(m0, colsum + f0);
        s1 = _mm512_maskz_loadu_ps(m1, colsum + f0 + 16);
        for (r = 0; r < rows; r++) {
            Py_ssize_t o = r * f + f0;
            __mmask16 k0 = m0, k1 = m1;
            __m512 v0, v1;
            if (bits != NULL) {
                uint32_t v = cynet_cs_bits_load(bits + r * mb, mb, f0);
                k0 = m0 & (__mmask16)v;
                k1 = m1 & (__mmask16)(v >> 16);
            } else if (y != NULL) {
                k0 = _mm512_mask_cmp_ps_mask(m0, _mm512_maskz_loadu_ps(m0, y + o), _mm512_setzero_ps(), _CMP_GT_OQ);
                k1 = _mm512_mask_cmp_ps_mask(m1, _mm512_maskz_loadu_ps(m1, y + o + 16), _mm512_setzero_ps(), _CMP_GT_OQ);
            }
            v0 = _mm512_maskz_loadu_ps(k0, dy + o);
            v1 = _mm512_maskz_loadu_ps(k1, dy + o + 16);
            s0 = _mm512_add_ps(s0, v0);
            s1 = _mm512_add_ps(s1, v1);
            _mm512_mask_storeu_ps(g + o, m0, cynet_cs_round(v0));
            _mm512_mask_storeu_ps(g + o + 16, m1, cynet_cs_round(v1));
        }
        _mm512_mask_storeu_ps(colsum + f0, m0, s0);
        _mm512_mask_storeu_ps(colsum + f0 + 16, m1, s1);
    }
}

/* The patches: patch p of row r is the k values x[r * rs + p * ps + off[i]], i < k (x: the
   input rounded to bfloat16, read in place where the windows lie inside it; or an im2col
   block, rs = ow * k, ps = k, off[i] = i). */

/* y (rows * ow, f) = patches @ w (k, f) + bias (NULL: none), then ReLU when relu. The patches
   and w hold bfloat16 values (rounded by the caller); the sums run in float32. */
CYNET_CS_TARGET CYNET_UNUSED static void cynet_cs_forward(const float* x, Py_ssize_t rows, Py_ssize_t rs,
                                                         Py_ssize_t ow, Py_ssize_t ps, const Py_ssize_t* off,
                                                         Py_ssize_t k, const float* w, Py_ssize_t f,
                                                         const float* bias, float* y, int relu,
                                                         unsigned char* bits, Py_ssize_t mb) {
    Py_ssize_t f0, r, p, i;
    for (f0 = 0; f0 < f; f0 += 32) {
        __mmask16 m0, m1;
        __m512 b0, b1;
        cynet_cs_masks(f, f0, &m0, &m1);
        b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + f0) : _mm512_setzero_ps();
        b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + f0 + 16) : _mm512_setzero_ps();
        for (r = 0; r < rows; r++) {
            const float* xr = x + r * rs;
            float* yr = y + r * ow * f + f0;
            unsigned char* br = bits ? bits + r * ow * mb : NULL;
            for (p = 0; p + 4 <= ow; p += 4) {   /* four patches: 8 independent sums */
                const float* c0p = xr + p * ps;
                const float* c1p = c0p + ps;
                const float* c2p = c1p + ps;
                const float* c3p = c2p + ps;
                __m512 a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1;
                float* o = yr + p * f;
                for (i = 0; i < k; i++) {
                    Py_ssize_t j = off[i];
                    __m512 w0 = _mm512_maskz_loadu_ps(m0, w + i * f + f0);
                    __m512 w1 = _mm512_maskz_loadu_ps(m1, w + i * f + f0 + 16);
                    __m512 c0 = _mm512_set1_ps(c0p[j]), c1 = _mm512_set1_ps(c1p[j]);
                    __m512 c2 = _mm512_set1_ps(c2p[j]), c3 = _mm512_set1_ps(c3p[j]);
                    a00 = _mm512_fmadd_ps(c0, w0, a00); a01 = _mm512_fmadd_ps(c0, w1, a01);
                    a10 = _mm512_fmadd_ps(c1, w0, a10); a11 = _mm512_fmadd_ps(c1, w1, a11);
                    a20 = _mm512_fmadd_ps(c2, w0, a20); a21 = _mm512_fmadd_ps(c2, w1, a21);
                    a30 = _mm512_fmadd_ps(c3, w0, a30); a31 = _mm512_fmadd_ps(c3, w1, a31);
                }
                if (br != NULL) {
                    cynet_cs_bits_store(br + p * mb, mb, f0, cynet_cs_pos_bits(a00, a01, m0, m1));
                    cynet_cs_bits_store(br + (p + 1) * mb, mb, f0, cynet_cs_pos_bits(a10, a11, m0, m1));
                    cynet_cs_bits_store(br + (p + 2) * mb, mb, f0, cynet_cs_pos_bits(a20, a21, m0, m1));
                    cynet_cs_bits_store(br + (p + 3) * mb, mb, f0, cynet_cs_pos_bits(a30, a31, m0, m1));
                }
                if (relu) {
                    a00 = cynet_cs_relu(a00); a01 = cynet_cs_relu(a01); a10 = cynet_cs_relu(a10);
                    a11 = cynet_cs_relu(a11); a20 = cynet_cs_relu(a20); a21 = cynet_cs_relu(a21);
                    a30 = cynet_cs_relu(a30); a31 = cynet_cs_relu(a31);
                }
                _mm512_mask_storeu_ps(o, m0, a00); _mm512_mask_storeu_ps(o + 16, m1, a01); o += f;
                _mm512_mask_storeu_ps(o, m0, a10); _mm512_mask_storeu_ps(o + 16, m1, a11); o += f;
                _mm512_mask_storeu_ps(o, m0, a20); _mm512_mask_storeu_ps(o + 16, m1, a21); o += f;
                _mm512_mask_storeu_ps(o, m0, a30); _mm512_mask_storeu_ps(o + 16, m1, a31);
            }
            for (; p < ow; p++) {
                const float* c = xr + p * ps;
                __m512 a0 = b0, a1 = b1;
                for (i = 0; i < k; i++) {
                    __m512 ci = _mm512_set1_ps(c[off[i]]);
                    a0 = _mm512_fmadd_ps(ci, _mm512_maskz_loadu_ps(m0, w + i * f + f0), a0);
                    a1 = _mm512_fmadd_ps(ci, _mm512_maskz_loadu_ps(m1, w + i * f + f0 + 16), a1);
                }
                if (br != NULL)
                    cynet_cs_bits_store(br + p * mb, mb, f0, cynet_cs_pos_bits(a0, a1, m0, m1));
                if (relu) {
                    a0 = cynet_cs_relu(a0);
                    a1 = cynet_cs_relu(a1);
                }
                _mm512_mask_storeu_ps(yr + p * f, m0, a0);
                _mm512_mask_storeu_ps(yr + p * f + 16, m1, a1);
            }
        }
    }
}

/* dk (k, f) += patches^T @ g (rows * ow, f): both hold bfloat16 values (rounded by the
   caller), the sums run in float32. Tiles of 3 rows of dk x 32 columns stay in registers over
   all the patches, two patches at a time (a last partial tile repeats its last row and stores
   only the real ones). */
CYNET_CS_TARGET CYNET_UNUSED static void cynet_cs_weight_grad(const float* x, Py_ssize_t rows, Py_ssize_t rs,
                                                             Py_ssize_t ow, Py_ssize_t ps, const Py_ssize_t* off,
                                                             Py_ssize_t k, const float* g, Py_ssize_t f,
                                                             float* dk) {
    Py_ssize_t f0, k0, r, p, j0, j1, j2;
    for (f0 = 0; f0 < f; f0 += 32) {
        __mmask16 m0, m1;
        cynet_cs_masks(f, f0, &m0, &m1);
        for (k0 = 0; k0 < k; k0 += 3) {
            __m512 a00 = _mm512_setzero_ps(), a01 = _mm512_setzero_ps(), a10 = _mm512_setzero_ps();
            __m512 a11 = _mm512_setzero_ps(), a20 = _mm512_setzero_ps(), a21 = _mm512_setzero_ps();
            __m512 b00 = _mm512_setzero_ps(), b01 = _mm512_setzero_ps(), b10 = _mm512_setzero_ps();
            __m512 b11 = _mm512_setzero_ps(), b20 = _mm512_setzero_ps(), b21 = _mm512_setzero_ps();
            float* d;
            j0 = off[k0];
            j1 = off[k0 + 1 < k ? k0 + 1 : k - 1];
            j2 = off[k0 + 2 < k ? k0 + 2 : k - 1];
            for (r = 0; r < rows; r++) {
                const float* xr = x + r * rs;
                const float* gr = g + r * ow * f + f0;
                for (p = 0; p + 2 <= ow; p += 2) {   /* two patches: 12 independent sums */
                    const float* c = xr + p * ps;
                    const float* e = c + ps;
                    const float* gp = gr + p * f;
                    __m512 g0 = _mm512_maskz_loadu_ps(m0, gp), g1 = _mm512_maskz_loadu_ps(m1, gp + 16);
                    __m512 h0 = _mm512_maskz_loadu_ps(m0, gp + f), h1 = _mm512_maskz_loadu_ps(m1, gp + f + 16);
                    __m512 c0 = _mm512_set1_ps(c[j0]), c1 = _mm512_set1_ps(c[j1]), c2 = _mm512_set1_ps(c[j2]);
                    __m512 e0 = _mm512_set1_ps(e[j0]), e1 = _mm512_set1_ps(e[j1]), e2 = _mm512_set1_ps(e[j2]);
                    a00 = _mm512_fmadd_ps(c0, g0, a00); a01 = _mm512_fmadd_ps(c0, g1, a01);
                    a10 = _mm512_fmadd_ps(c1, g0, a10); a11 = _mm512_fmadd_ps(c1, g1, a11);
                    a20 = _mm512_fmadd_ps(c2, g0, a20); a21 = _mm512_fmadd_ps(c2, g1, a21);
                    b00 = _mm512_fmadd_ps(e0, h0, b00); b01 = _mm512_fmadd_ps(e0, h1, b01);
                    b10 = _mm512_fmadd_ps(e1, h0, b10); b11 = _mm512_fmadd_ps(e1, h1, b11);
                    b20 = _mm512_fmadd_ps(e2, h0, b20); b21 = _mm512_fmadd_ps(e2, h1, b21);
                }
                for (; p < ow; p++) {
                    const float* c = xr + p * ps;
                    __m512 g0 = _mm512_maskz_loadu_ps(m0, gr + p * f);
                    __m512 g1 = _mm512_maskz_loadu_ps(m1, gr + p * f + 16);
                    __m512 c0 = _mm512_set1_ps(c[j0]), c1 = _mm512_set1_ps(c[j1]), c2 = _mm512_set1_ps(c[j2]);
                    a00 = _mm512_fmadd_ps(c0, g0, a00); a01 = _mm512_fmadd_ps(c0, g1, a01);
                    a10 = _mm512_fmadd_ps(c1, g0, a10); a11 = _mm512_fmadd_ps(c1, g1, a11);
                    a20 = _mm512_fmadd_ps(c2, g0, a20); a21 = _mm512_fmadd_ps(c2, g1, a21);
                }
            }
            a00 = _mm512_add_ps(a00, b00); a01 = _mm512_add_ps(a01, b01); a10 = _mm512_add_ps(a10, b10);
            a11 = _mm512_add_ps(a11, b11); a20 = _mm512_add_ps(a20, b20); a21 = _mm512_add_ps(a21, b21);
            d = dk + k0 * f + f0;
            _mm512_mask_storeu_ps(d, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), a00));
            _mm512_mask_storeu_ps(d + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), a01));
            if (k0 + 1 < k) {
                d += f;
                _mm512_mask_storeu_ps(d, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), a10));
                _mm512_mask_storeu_ps(d + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), a11));
            }
            if (k0 + 2 < k) {
                d += f;
                _mm512_mask_storeu_ps(d, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), a20));
                _mm512_mask_storeu_ps(d + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), a21));
            }
        }
    }
}


/* a0[i] += c[o[i]] v0 and a1[i] += c[o[i]] v1 for the kt values of a patch c (kt a constant
   where it is inlined: the tiles stay in registers) */
CYNET_CS_TARGET static inline void cynet_cs_taps(__m512* a0, __m512* a1, const float* c, const Py_ssize_t* o,
                                                 Py_ssize_t kt, __m512 v0, __m512 v1) {
    Py_ssize_t i;
    for (i = 0; i < kt; i++) {
        __m512 b = _mm512_set1_ps(c[o[i]]);
        a0[i] = _mm512_fmadd_ps(b, v0, a0[i]);
        a1[i] = _mm512_fmadd_ps(b, v1, a1[i]);
    }
}

/* db[f0 + j] += the float32 partial sums s0, s1 of columns [f0, f0 + nf) (none when db is NULL) */
CYNET_CS_TARGET static inline void cynet_cs_flush_db(double* db, Py_ssize_t f0, Py_ssize_t nf, __m512 s0, __m512 s1) {
    float part[32] __attribute__((aligned(64)));
    Py_ssize_t j;
    if (db == NULL)
        return;
    _mm512_store_ps(part, s0);
    _mm512_store_ps(part + 16, s1);
    for (j = 0; j < nf; j++)
        db[f0 + j] += part[j];
}

/* dk (rows f apart) rows [0, n) x columns [f0, f0 + 32) += the register tiles a0[i] | a1[i] */
CYNET_CS_TARGET static inline void cynet_cs_add_dk(float* dk, Py_ssize_t f, Py_ssize_t f0, Py_ssize_t n, __mmask16 m0,
                                                   __mmask16 m1, const __m512* a0, const __m512* a1) {
    Py_ssize_t i;
    for (i = 0; i < n; i++) {
        float* d = dk + i * f + f0;
        _mm512_mask_storeu_ps(d, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, d), a0[i]));
        _mm512_mask_storeu_ps(d + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, d + 16), a1[i]));
    }
}

/* The first convolution's whole backward when no input gradient is needed (k <= KT): per
   output position, g = dy where the relu bits are 1 (or y > 0; or dy), its column sums into
   db (float32 over at most 256 positions, then float64), g rounded to bfloat16, and
   dk (k, f) += patch^T g with KT x 32 sums in registers: dy is read once and nothing is
   written per position. The patches as cynet_cs_forward's (x rounded by the caller); a tile
   of fewer than KT rows repeats its last row and stores only the real ones. */
#define CYNET_CS_FUSED_BACKWARD(KT)                                                                    \
CYNET_CS_TARGET CYNET_UNUSED static void cynet_cs_fused_backward_##KT(                                  \
        const float* x, Py_ssize_t rows, Py_ssize_t rs, Py_ssize_t ow, Py_ssize_t ps, const Py_ssize_t* off, \
        Py_ssize_t k, const float* dy, const unsigned char* bits, Py_ssize_t mb, const float* y,         \
        Py_ssize_t f, float* dk, double* db) {                                                          \
    Py_ssize_t f0, r, p, p0, pe, i, o[KT];                                                             \
    for (i = 0; i < KT; i++) o[i] = off[i < k ? i : k - 1];                                            \
    for (f0 = 0; f0 < f; f0 += 32) {                                                                   \
        __mmask16 m0, m1;                                                                              \
        __m512 a0[KT], a1[KT];                                                                         \
        Py_ssize_t nf = f - f0 < 32 ? f - f0 : 32;                                                     \
        cynet_cs_masks(f, f0, &m0, &m1);                                                               \
        for (i = 0; i < KT; i++) { a0[i] = _mm512_setzero_ps(); a1[i] = _mm512_setzero_ps(); }         \
        for (r = 0; r < rows; r++) {                                                                   \
            const float* xr = x + r * rs;                                                              \
            for (p0 = 0; p0 < ow; p0 = pe) {                                                           \
                __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                             \
                pe = ow - p0 < 256 ? ow : p0 + 256;                                                    \
                for (p = p0; p < pe; p++) {                                                            \
                    Py_ssize_t q = r * ow + p;                                                         \
                    const float* c = xr + p * ps;                                                      \
                    __mmask16 k0 = m0, k1 = m1;                                                        \
                    __m512 v0, v1;                                                                     \
                    if (bits != NULL) {                                                                \
                        uint32_t v = cynet_cs_bits_load(bits + q * mb, mb, f0);                        \
                        k0 = m0 & (__mmask16)v;                                                        \
                        k1 = m1 & (__mmask16)(v >> 16);                                                \
                    } else if (y != NULL) {                                                            \
                        k0 = _mm512_mask_cmp_ps_mask(m0, _mm512_maskz_loadu_ps(m0, y + q * f + f0),    \
                                                     _mm512_setzero_ps(), _CMP_GT_OQ);                 \
                        k1 = _mm512_mask_cmp_ps_mask(m1, _mm512_maskz_loadu_ps(m1, y + q * f + f0 + 16), \
                                                     _mm512_setzero_ps(), _CMP_GT_OQ);                 \
                    }                                                                                  \
                    v0 = _mm512_maskz_loadu_ps(k0, dy + q * f + f0);                                   \
                    v1 = _mm512_maskz_loadu_ps(k1, dy + q * f + f0 + 16);                              \
                    s0 = _mm512_add_ps(s0, v0);                                                        \
                    s1 = _mm512_add_ps(s1, v1);                                                        \
                    v0 = cynet_cs_round(v0);                                                           \
                    v1 = cynet_cs_round(v1);                                                           \
                    cynet_cs_taps(a0, a1, c, o, KT, v0, v1);                                           \
                }                                                                                      \
                cynet_cs_flush_db(db, f0, nf, s0, s1);                                                 \
            }                                                                                          \
        }                                                                                              \
        cynet_cs_add_dk(dk, f, f0, KT < k ? KT : k, m0, m1, a0, a1);                                   \
    }                                                                                                  \
}

CYNET_CS_FUSED_BACKWARD(9)
CYNET_CS_FUSED_BACKWARD(12)

/* the longest patch cynet_cs_fused_backward takes */
#define CYNET_CS_FUSED_MAX_K 12

CYNET_UNUSED static void cynet_cs_fused_backward(const float* x, Py_ssize_t rows, Py_ssize_t rs, Py_ssize_t ow,
        Py_ssize_t ps, const Py_ssize_t* off, Py_ssize_t k, const float* dy, const unsigned char* bits,
        Py_ssize_t mb, const float* y, Py_ssize_t f, float* dk, double* db) {
    if (k <= 9)
        cynet_cs_fused_backward_9(x, rows, rs, ow, ps, off, k, dy, bits, mb, y, f, dk, db);
    else
        cynet_cs_fused_backward_12(x, rows, rs, ow, ps, off, k, dy, bits, mb, y, f, dk, db);
}

/* The first convolution, its ReLU and a 2x2 / stride 2 / valid max pooling of its output in one
   pass (a classic image model's conv -> pool; under mixed_bfloat16 x and w hold rounded values, in
   float32 the layer's own): the four outputs of a pooling window are computed
   in registers as cynet_cs_forward computes them (same sums in the same order, so the same
   values), and only their max is written, with the window's record: 4 masks of mb bytes (bit j
   of mask q: channel j's first maximum is window cell q, cells (0,0), (0,1), (1,0), (1,1), and
   it is > 0), all the backward reads. The pooled max is MaxPooling2D's on the ReLU's output: a
   NaN wins over a number, the first maximum wins. The patches as cynet_cs_forward's: pooled row
   r reads the patch rows at x + 2r * rs and x + (2r + 1) * rs; pooled column p the patches 2p
   and 2p + 1 of each (ps apart). y: (prows * pw, f); sel: 4 * mb bytes per pooled output. */

/* the first maximum of the four cells (a[0..3]: one 16-lane half of each cell's ReLU output) in
   *m, and where it lies: s[q] the lanes whose maximum is cell q */
CYNET_CS_TARGET static inline void cynet_cs_max4(const __m512* a, __m512* m, __mmask16* s) {
    __mmask16 t[4];
    __m512 v = a[0];
    int q;
    for (q = 1; q < 4; q++) {
        __mmask16 mnum = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
        t[q] = _mm512_cmp_ps_mask(a[q], v, _CMP_GT_OQ)
             | (_mm512_cmp_ps_mask(a[q], a[q], _CMP_UNORD_Q) & mnum);
        v = _mm512_mask_mov_ps(v, t[q], a[q]);
    }
    s[3] = t[3];
    s[2] = t[2] & (__mmask16)~t[3];
    s[1] = t[1] & (__mmask16)~(t[2] | t[3]);
    s[0] = (__mmask16)~(t[1] | t[2] | t[3]);
    *m = v;
}

CYNET_CS_TARGET CYNET_UNUSED static void cynet_cs_pool_forward(const float* x, Py_ssize_t prows, Py_ssize_t rs,
                                                              Py_ssize_t pw, Py_ssize_t ps, const Py_ssize_t* off,
                                                              Py_ssize_t k, const float* w, Py_ssize_t f,
                                                              const float* bias, float* y, unsigned char* sel,
                                                              Py_ssize_t mb) {
    Py_ssize_t f0, r, p, i;
    int q;
    for (f0 = 0; f0 < f; f0 += 32) {
        __mmask16 m0, m1;
        __m512 b0, b1;
        cynet_cs_masks(f, f0, &m0, &m1);
        b0 = bias ? _mm512_maskz_loadu_ps(m0, bias + f0) : _mm512_setzero_ps();
        b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + f0 + 16) : _mm512_setzero_ps();
        for (r = 0; r < prows; r++) {
            const float* top = x + 2 * r * rs;
            const float* bot = top + rs;
            for (p = 0; p < pw; p++) {
                const float* c0p = top + 2 * p * ps;
                const float* c1p = c0p + ps;
                const float* c2p = bot + 2 * p * ps;
                const float* c3p = c2p + ps;
                __m512 lo[4], hi[4], y0, y1;
                __mmask16 s0[4], s1[4], pos0, pos1;
                unsigned char* sr = sel + (r * pw + p) * 4 * mb;
                float* o = y + (r * pw + p) * f + f0;
                for (q = 0; q < 4; q++) {
                    lo[q] = b0;
                    hi[q] = b1;
                }
                for (i = 0; i < k; i++) {
                    Py_ssize_t j = off[i];
                    __m512 w0 = _mm512_maskz_loadu_ps(m0, w + i * f + f0);
                    __m512 w1 = _mm512_maskz_loadu_ps(m1, w + i * f + f0 + 16);
                    __m512 c0 = _mm512_set1_ps(c0p[j]), c1 = _mm512_set1_ps(c1p[j]);
                    __m512 c2 = _mm512_set1_ps(c2p[j]), c3 = _mm512_set1_ps(c3p[j]);
                    lo[0] = _mm512_fmadd_ps(c0, w0, lo[0]); hi[0] = _mm512_fmadd_ps(c0, w1, hi[0]);
                    lo[1] = _mm512_fmadd_ps(c1, w0, lo[1]); hi[1] = _mm512_fmadd_ps(c1, w1, hi[1]);
                    lo[2] = _mm512_fmadd_ps(c2, w0, lo[2]); hi[2] = _mm512_fmadd_ps(c2, w1, hi[2]);
                    lo[3] = _mm512_fmadd_ps(c3, w0, lo[3]); hi[3] = _mm512_fmadd_ps(c3, w1, hi[3]);
                }
                for (q = 0; q < 4; q++) {
                    lo[q] = cynet_cs_relu(lo[q]);
                    hi[q] = cynet_cs_relu(hi[q]);
                }
                cynet_cs_max4(lo, &y0, s0);
                cynet_cs_max4(hi, &y1, s1);
                pos0 = _mm512_mask_cmp_ps_mask(m0, y0, _mm512_setzero_ps(), _CMP_GT_OQ);
                pos1 = _mm512_mask_cmp_ps_mask(m1, y1, _mm512_setzero_ps(), _CMP_GT_OQ);
                for (q = 0; q < 4; q++)
                    cynet_cs_bits_store(sr + q * mb, mb, f0,
                                        (uint32_t)(s0[q] & pos0) | ((uint32_t)(s1[q] & pos1) << 16));
                _mm512_mask_storeu_ps(o, m0, y0);
                _mm512_mask_storeu_ps(o + 16, m1, y1);
            }
        }
    }
}

/* The backward of cynet_cs_pool_forward when no input gradient is needed: per pooled output,
   its gradient dp goes to the window cell of its record's masks (dp rounded to bfloat16 when
   round, as cynet_cs_fused_backward rounds dy; float32 column sums of the unrounded values into db, in
   float64 every CYNET_CS_POOL_SUM outputs), and dk (k, f) += that cell's patch^T dp, KT x 32
   sums in registers: dp and the record are read once, nothing the size of the convolution's
   output is written or read. */
#define CYNET_CS_POOL_SUM 64
#define CYNET_CS_POOL_BACKWARD(KT)                                                                     \
CYNET_CS_TARGET CYNET_UNUSED static void cynet_cs_pool_backward_##KT(                                   \
        const float* x, Py_ssize_t prows, Py_ssize_t rs, Py_ssize_t pw, Py_ssize_t ps, const Py_ssize_t* off, \
        Py_ssize_t k, const float* dp, const unsigned char* sel, Py_ssize_t mb, Py_ssize_t f, float* dk,   \
        double* db, int round) {                                                                       \
    Py_ssize_t f0, r, p, p0, pe, i, o[KT];                                                             \
    int q;                                                                                             \
    for (i = 0; i < KT; i++) o[i] = off[i < k ? i : k - 1];                                            \
    for (f0 = 0; f0 < f; f0 += 32) {                                                                   \
        __mmask16 m0, m1;                                                                              \
        __m512 a0[KT], a1[KT];                                                                         \
        Py_ssize_t nf = f - f0 < 32 ? f - f0 : 32;                                                     \
        cynet_cs_masks(f, f0, &m0, &m1);                                                               \
        for (i = 0; i < KT; i++) { a0[i] = _mm512_setzero_ps(); a1[i] = _mm512_setzero_ps(); }         \
        for (r = 0; r < prows; r++) {                                                                  \
            const float* top = x + 2 * r * rs;                                                         \
            const float* bot = top + rs;                                                               \
            for (p0 = 0; p0 < pw; p0 = pe) {                                                           \
                __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();                             \
                pe = pw - p0 < CYNET_CS_POOL_SUM ? pw : p0 + CYNET_CS_POOL_SUM;                        \
                for (p = p0; p < pe; p++) {                                                            \
                    Py_ssize_t u = r * pw + p;                                                         \
                    const unsigned char* sr = sel + u * 4 * mb;                                        \
                    const float* cell[4];                                                              \
                    __m512 g0 = _mm512_maskz_loadu_ps(m0, dp + u * f + f0);                            \
                    __m512 g1 = _mm512_maskz_loadu_ps(m1, dp + u * f + f0 + 16);                       \
                    uint32_t any = 0;                                                                  \
                    cell[0] = top + 2 * p * ps;                                                        \
                    cell[1] = cell[0] + ps;                                                            \
                    cell[2] = bot + 2 * p * ps;                                                        \
                    cell[3] = cell[2] + ps;                                                            \
                    for (q = 0; q < 4; q++)                                                            \
                        any |= cynet_cs_bits_load(sr + q * mb, mb, f0);                                \
                    s0 = _mm512_add_ps(s0, _mm512_maskz_mov_ps(m0 & (__mmask16)any, g0));              \
                    s1 = _mm512_add_ps(s1, _mm512_maskz_mov_ps(m1 & (__mmask16)(any >> 16), g1));      \
                    if (round) {                                                                       \
                        g0 = cynet_cs_round(g0);                                                       \
                        g1 = cynet_cs_round(g1);                                                       \
                    }                                                                                  \
                    for (q = 0; q < 4; q++) {                                                          \
                        uint32_t v = cynet_cs_bits_load(sr + q * mb, mb, f0);                          \
                        __m512 v0 = _mm512_maskz_mov_ps(m0 & (__mmask16)v, g0);                        \
                        __m512 v1 = _mm512_maskz_mov_ps(m1 & (__mmask16)(v >> 16), g1);                \
                        cynet_cs_taps(a0, a1, cell[q], o, KT, v0, v1);                                 \
                    }                                                                                  \
                }                                                                                      \
                cynet_cs_flush_db(db, f0, nf, s0, s1);                                                 \
            }                                                                                          \
        }                                                                                              \
        cynet_cs_add_dk(dk, f, f0, KT < k ? KT : k, m0, m1, a0, a1);                                   \
    }                                                                                                  \
}

CYNET_CS_POOL_BACKWARD(9)
CYNET_CS_POOL_BACKWARD(12)

CYNET_UNUSED static void cynet_cs_pool_backward(const float* x, Py_ssize_t prows, Py_ssize_t rs, Py_ssize_t pw,
        Py_ssize_t ps, const Py_ssize_t* off, Py_ssize_t k, const float* dp, const unsigned char* sel,
        Py_ssize_t mb, Py_ssize_t f, float* dk, double* db, int round) {
    if (k <= 9)
        cynet_cs_pool_backward_9(x, prows, rs, pw, ps, off, k, dp, sel, mb, f, dk, db, round);
    else
        cynet_cs_pool_backward_12(x, prows, rs, pw, ps, off, k, dp, sel, mb, f, dk, db, round);
}

CYNET_CS_TARGET static void cynet_relu_bits_avx512(float* y, Py_ssize_t rows, Py_ssize_t f,
                                                   unsigned char* bits, Py_ssize_t mb, int relu) {
    Py_ssize_t r, f0;
    for (r = 0; r < rows; r++, y += f, bits += mb)
        for (f0 = 0; f0 < f; f0 += 32) {
            __mmask16 m0, m1;
            __m512 v0, v1;
            cynet_cs_masks(f, f0, &m0, &m1);
            v0 = _mm512_maskz_loadu_ps(m0, y + f0);
            v1 = _mm512_maskz_loadu_ps(m1, y + f0 + 16);
            cynet_cs_bits_store(bits, mb, f0, cynet_cs_pos_bits(v0, v1, m0, m1));
            if (relu) {
                _mm512_mask_storeu_ps(y + f0, m0, cynet_cs_relu(v0));
                _mm512_mask_storeu_ps(y + f0 + 16, m1, cynet_cs_relu(v1));
            }
        }
}

CYNET_CS_TARGET static void cynet_relu_grad_bits_avx512(float* g, const float* dy, const unsigned char* bits,
                                                        Py_ssize_t rows, Py_ssize_t f, Py_ssize_t mb) {
    Py_ssize_t r, f0;
    for (r = 0; r < rows; r++, g += f, dy += f, bits += mb)
        for (f0 = 0; f0 < f; f0 += 32) {
            __mmask16 m0, m1;
            uint32_t v = cynet_cs_bits_load(bits, mb, f0);
            cynet_cs_masks(f, f0, &m0, &m1);
            _mm512_mask_storeu_ps(g + f0, m0, _mm512_maskz_loadu_ps(m0 & (__mmask16)v, dy + f0));
            _mm512_mask_storeu_ps(g + f0 + 16, m1, _mm512_maskz_loadu_ps(m1 & (__mmask16)(v >> 16), dy + f0 + 16));
        }
}

#else   /* not built: never called (cynet_cs_ok() is 0) */

static void cynet_cs_forward(const float* x, Py_ssize_t rows, Py_ssize_t rs, Py_ssize_t ow, Py_ssize_t ps,
                             const Py_ssize_t* off, Py_ssize_t k, const float* w, Py_ssize_t f,
                             const float* bias, float* y, int relu, unsigned char* bits, Py_ssize_t mb) {
    (void)x; (void)rows; (void)rs; (void)ow; (void)ps; (void)off; (void)k; (void)w; (void)f; (void)bias;
    (void)y; (void)relu; (void)bits; (void)mb;
}
static void cynet_cs_weight_grad(const float* x, Py_ssize_t rows, Py_ssize_t rs, Py_ssize_t ow, Py_ssize_t ps,
                                 const Py_ssize_t* off, Py_ssize_t k, const float* g, Py_ssize_t f, float* dk) {
    (void)x; (void)rows; (void)rs; (void)ow; (void)ps; (void)off; (void)k; (void)g; (void)f; (void)dk;
}
static void cynet_cs_grad_block(float* g, const float* dy, const float* y, const unsigned char* bits,
                                Py_ssize_t mb, Py_ssize_t rows, Py_ssize_t f, float* colsum) {
    (void)g; (void)dy; (void)y; (void)bits; (void)mb; (void)rows; (void)f; (void)colsum;
}
#define CYNET_CS_FUSED_MAX_K 0
static void cynet_cs_fused_backward(const float* x, Py_ssize_t rows, Py_ssize_t rs, Py_ssize_t ow,
        Py_ssize_t ps, const Py_ssize_t* off, Py_ssize_t k, const float* dy, const unsigned char* bits,
        Py_ssize_t mb, const float* y, Py_ssize_t f, float* dk, double* db) {
    (void)x; (void)rows; (void)rs; (void)ow; (void)ps; (void)off; (void)k; (void)dy; (void)bits; (void)mb;
    (void)y; (void)f; (void)dk; (void)db;
}

static void cynet_cs_pool_forward(const float* x, Py_ssize_t prows, Py_ssize_t rs, Py_ssize_t pw, Py_ssize_t ps,
                                  const Py_ssize_t* off, Py_ssize_t k, const float* w, Py_ssize_t f,
                                  const float* bias, float* y, unsigned char* sel, Py_ssize_t mb) {
    (void)x; (void)prows; (void)rs; (void)pw; (void)ps; (void)off; (void)k; (void)w; (void)f; (void)bias;
    (void)y; (void)sel; (void)mb;
}
static void cynet_cs_pool_backward(const float* x, Py_ssize_t prows, Py_ssize_t rs, Py_ssize_t pw,
        Py_ssize_t ps, const Py_ssize_t* off, Py_ssize_t k, const float* dp, const unsigned char* sel,
        Py_ssize_t mb, Py_ssize_t f, float* dk, double* db, int round) {
    (void)x; (void)prows; (void)rs; (void)pw; (void)ps; (void)off; (void)k; (void)dp; (void)sel; (void)mb;
    (void)f; (void)dk; (void)db; (void)round;
}

#endif


/* the relu bits of y (cynet_relu_bits_plain), then y = ReLU(y) when relu (cynet_bf16_bias_relu's),
   in one pass on AVX-512 when avx512 and the CPU runs it */
CYNET_UNUSED static void cynet_relu_bits(float* y, Py_ssize_t rows, Py_ssize_t f, unsigned char* bits,
                                         Py_ssize_t mb, int relu, int avx512) {
#if CYNET_CS_BUILT
    if (avx512 && cynet_cs_ok()) {
        cynet_relu_bits_avx512(y, rows, f, bits, mb, relu);
        return;
    }
#endif
    cynet_relu_bits_plain(y, rows, f, bits, mb);
    if (relu)
        cynet_bf16_bias_relu(y, rows, f, NULL, 1);
}

/* g = dy where the relu bits are 1 (cynet_relu_grad_bits_plain), on AVX-512 when avx512 and the
   CPU runs it */
CYNET_UNUSED static void cynet_relu_grad_bits(float* g, const float* dy, const unsigned char* bits, Py_ssize_t rows,
                                              Py_ssize_t f, Py_ssize_t mb, int avx512) {
#if CYNET_CS_BUILT
    if (avx512 && cynet_cs_ok()) {
        cynet_relu_grad_bits_avx512(g, dy, bits, rows, f, mb);
        return;
    }
#endif
    cynet_relu_grad_bits_plain(g, dy, bits, rows, f, mb);
}

#endif  /* CYNET_CONV_SMALL_H */
