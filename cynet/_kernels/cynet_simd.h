/* cynet_simd.h: the C shared by the compiled kernels (included from the .pyx modules).

   CYNET_CLONES: one build for all x86-64 CPUs, fast on new ones. GCC clones a function for the
   baseline, AVX2+FMA and AVX-512 and picks one at load time (ifunc, glibc only); elsewhere the
   same C compiles once for the baseline.

   Branch-free select and Cephes-style exp and tanh (~1 ulp, NaN-propagating) for float (f)
   and double (d): under GCC's default -ftrapping-math a float ?: is not if-converted and libm
   calls are scalar, so loops built from these stay vectorisable. */
#ifndef CYNET_SIMD_H
#define CYNET_SIMD_H
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__x86_64__) \
    && defined(__linux__) && defined(__GLIBC__)
#define CYNET_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define CYNET_CLONES
#endif

/* Before a loop whose pointers are known not to overlap: GCC gives up vectorising a loop that
   needs more than a few runtime alias checks (one per pair of pointers) otherwise. */
#if defined(__GNUC__) && !defined(__clang__)
#define CYNET_IVDEP _Pragma("GCC ivdep")
#else
#define CYNET_IVDEP
#endif


/* Prefetch n elements of size sz at p (rw 0: read, 1: write). The recurrent step kernels read
   and write rows of one unit's N samples, a whole sequence (T * N elements) apart, which no
   hardware prefetcher follows, so the kernels fetch the rows of the unit CYNET_AHEAD units
   ahead (the gain: bench/README.md, "Recurrent layers"). */
#if defined(__GNUC__)
#define CYNET_PREFETCH(p, n, sz, rw) do {                                                   \
        const char* cynet_pf_ = (const char*)(p); Py_ssize_t cynet_pq_;                     \
        for (cynet_pq_ = 0; cynet_pq_ < (Py_ssize_t)(n) * (Py_ssize_t)(sz); cynet_pq_ += 64) \
            __builtin_prefetch(cynet_pf_ + cynet_pq_, rw);                                  \
    } while (0)
#else
#define CYNET_PREFETCH(p, n, sz, rw) do { } while (0)
#endif

/* The same row in each of the four gate blocks of a step buffer: rows p, p + sk, p + 2 sk,
   p + 3 sk (sk: elements between blocks). */
#define CYNET_PREFETCH_GATES(p, sk, n, sz, rw) do {                                          \
        CYNET_PREFETCH(p, n, sz, rw); CYNET_PREFETCH((p) + (sk), n, sz, rw);                \
        CYNET_PREFETCH((p) + 2 * (sk), n, sz, rw); CYNET_PREFETCH((p) + 3 * (sk), n, sz, rw); \
    } while (0)

/* For static helpers that not every including module calls: no -Wunused-function warning. */
#if defined(__GNUC__)
#define CYNET_UNUSED __attribute__((unused))
#else
#define CYNET_UNUSED
#endif

/* exp and tanh below must be inlined into the loops that call them, or those loops stay scalar
   (a function call per element): GCC stops inlining once a kernel's body grows past its limits. */
#if defined(__GNUC__)
#define CYNET_INLINE static inline __attribute__((always_inline))
#else
#define CYNET_INLINE static inline
#endif

/* The bits of a float and back (type punning through memcpy: no aliasing issue, one move). */
static inline int32_t cynet_f32_bits(float x) { int32_t i; memcpy(&i, &x, sizeof i); return i; }
static inline float cynet_f32_from_bits(int32_t i) { float x; memcpy(&x, &i, sizeof x); return x; }

/* c ? a : b without a branch. Under GCC's default -ftrapping-math a float ?: is not
   if-converted and the whole loop stays scalar; integer masks are. */
static inline float cynet_self(int c, float a, float b) {
    int32_t ai, bi, m = -(int32_t)(c != 0), r; float f;
    memcpy(&ai, &a, 4); memcpy(&bi, &b, 4); r = (ai & m) | (bi & ~m); memcpy(&f, &r, 4);
    return f;
}
static inline double cynet_seld(int c, double a, double b) {
    int64_t ai, bi, m = -(int64_t)(c != 0), r; double f;
    memcpy(&ai, &a, 8); memcpy(&bi, &b, 8); r = (ai & m) | (bi & ~m); memcpy(&f, &r, 8);
    return f;
}

/* exp: clamp to the normal range, n = round(x / ln2) by the 1.5*2^mantissa trick,
   Cody-Waite reduction, Cephes polynomial (float) / Pade form (double), 2^n from bits.
   Underflow gives the smallest normal instead of 0; NaN stays NaN. */
CYNET_INLINE float cynet_expf(float x) {
    float t, n, r, p, s; int32_t ti;
    x = cynet_self(x > 88.3762626647949f, 88.3762626647949f, x);
    x = cynet_self(x < -87.3365478515625f, -87.3365478515625f, x);
    t = x * 1.44269504088896341f + 12582912.0f;
    n = t - 12582912.0f;
    r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    p = 1.9875691500E-4f;
    p = p * r + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r * r + r + 1.0f;
    memcpy(&ti, &t, 4);
    ti = (int32_t)((uint32_t)(ti - 0x4B400000 + 127) << 23);
    memcpy(&s, &ti, 4);
    return p * s;
}
CYNET_INLINE double cynet_expd(double x) {
    double t, n, r, xx, px, qx, s; int64_t ti;
    x = cynet_seld(x > 709.08, 709.08, x);
    x = cynet_seld(x < -708.39, -708.39, x);
    t = x * 1.4426950408889634073599 + 6755399441055744.0;
    n = t - 6755399441055744.0;
    r = x - n * 6.93145751953125E-1;
    r = r - n * 1.42860682030941723212E-6;
    xx = r * r;
    px = ((1.26177193074810590878E-4 * xx + 3.02994407707441961300E-2) * xx
          + 9.99999999999999999910E-1) * r;
    qx = ((3.00198505138664455042E-6 * xx + 2.52448340349684104192E-3) * xx
          + 2.27265548208155028766E-1) * xx + 2.00000000000000000009E0;
    r = 1.0 + 2.0 * (px / (qx - px));
    memcpy(&ti, &t, 8);
    ti = (int64_t)((uint64_t)(ti - 0x4338000000000000LL + 1023) << 52);
    memcpy(&s, &ti, 8);
    return r * s;
}
/* tanh: odd polynomial (float) / rational (double) below 0.625, 1 - 2/(exp(2|x|)+1) above. */
CYNET_INLINE float cynet_tanhf(float x) {
    float ax = cynet_self(x < 0.0f, -x, x), z = x * x, small, big;
    small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z
              + 1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
    big = 1.0f - 2.0f / (cynet_expf(2.0f * ax) + 1.0f);
    big = cynet_self(x < 0.0f, -big, big);
    return cynet_self(ax < 0.625f, small, big);
}
CYNET_INLINE double cynet_tanhd(double x) {
    double ax = cynet_seld(x < 0.0, -x, x), z = x * x, small, big;
    small = x + x * z * (((-9.64399179425052238628E-1 * z - 9.92877231001918586564E1) * z
                          - 1.61468768441708447952E3)
                         / (((z + 1.12811678491632931402E2) * z + 2.23548839060100448583E3) * z
                            + 4.84406305325125486048E3));
    big = 1.0 - 2.0 / (cynet_expd(2.0 * ax) + 1.0);
    big = cynet_seld(x < 0.0, -big, big);
    return cynet_seld(ax < 0.625, small, big);
}

#endif  /* CYNET_SIMD_H */
