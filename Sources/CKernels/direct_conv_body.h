// One definition of the direct-convolution kernels, included once per instruction set by
// direct_conv.c with these macros set (and undefined again at the end):
//   VW       floats per vector          R, NV   output rows × vectors of the forward block
//   RT       output rows of the forward block over the last positions (× 2 vectors)
//   RC, RI   output rows × input channels of the weight-gradient block
//   TARGET   the function attribute (target("…") or nothing)   SUFFIX   the name suffix
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define VEC CAT(vf, SUFFIX)
typedef float VEC __attribute__((ext_vector_type(VW)));

TARGET static inline VEC CAT(load, SUFFIX)(const float *p) { VEC v; __builtin_memcpy(&v, p, sizeof v); return v; }
TARGET static inline void CAT(store, SUFFIX)(float *p, VEC v) { __builtin_memcpy(p, &v, sizeof v); }
typedef float CAT(vf4, SUFFIX) __attribute__((ext_vector_type(4)));
typedef float CAT(vf8, SUFFIX) __attribute__((ext_vector_type(8)));
TARGET static inline float CAT(hsum4, SUFFIX)(CAT(vf4, SUFFIX) v) {
    __attribute__((ext_vector_type(2))) float h = v.lo + v.hi;
    return h.x + h.y;
}
TARGET static inline float CAT(hsum8, SUFFIX)(CAT(vf8, SUFFIX) v) { return CAT(hsum4, SUFFIX)(v.lo + v.hi); }
TARGET static inline float CAT(hsum, SUFFIX)(VEC v) {
#if VW == 16
    return CAT(hsum8, SUFFIX)(v.lo + v.hi);
#elif VW == 8
    return CAT(hsum4, SUFFIX)(v.lo + v.hi);
#else
    return CAT(hsum4, SUFFIX)(v);
#endif
}

// y rows [0, RR) × positions [q0, min(q0 + NVV·VW, end)) over channels [0, channels): accumulators
// stay in registers; they start from y when `accumulate` (a later channel block), else from 0. A
// last vector that passes `end` is computed in full (x has VW floats of slack) and stored in part.
// TT > 0 fixes the tap count at compile time (3×3 kernels), so the tap loop unrolls.
#define FORWARD_BLOCK(NAME, RR, NVV, TT)                                                                  \
TARGET static void CAT(NAME, SUFFIX)(const float *x, long ldx, int channels, const float *w, long wstride, \
                                      int taps_, const long *offsets, float *y, long ldy, long q0, long end,  \
                                      int accumulate) {                                                    \
    const int taps = TT > 0 ? TT : taps_;                                                                  \
    VEC acc[RR][NVV];                                                                                      \
    const int full = q0 + NVV * VW <= end;                                                                 \
    _Pragma("clang loop unroll(full)") for (int r = 0; r < RR; r++)                                                                           \
        _Pragma("clang loop unroll(full)") for (int j = 0; j < NVV; j++) {                                                                    \
            if (!accumulate) { acc[r][j] = (VEC)0; continue; }                                             \
            float part[VW] = {0};                                                                          \
            long n = end - (q0 + j * VW);                                                                  \
            if (full || n >= VW) acc[r][j] = CAT(load, SUFFIX)(y + r * ldy + q0 + j * VW);                 \
            else {                                                                                         \
                for (long i = 0; i < n; i++) part[i] = y[r * ldy + q0 + j * VW + i];                       \
                acc[r][j] = CAT(load, SUFFIX)(part);                                                       \
            }                                                                                              \
        }                                                                                                  \
    for (int c = 0; c < channels; c++) {                                                                   \
        const float *xc = x + c * ldx + q0;                                                                \
        const float *wc = w + (long)c * taps;                                                              \
        for (int t = 0; t < taps; t++) {                                                                   \
            VEC xv[NVV];                                                                                   \
            _Pragma("clang loop unroll(full)") for (int j = 0; j < NVV; j++) xv[j] = CAT(load, SUFFIX)(xc + offsets[t] + j * VW);            \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < RR; r++) {                                                                 \
                VEC wv = (VEC)wc[r * wstride + t];                                                         \
                _Pragma("clang loop unroll(full)") for (int j = 0; j < NVV; j++) acc[r][j] += wv * xv[j];                                     \
            }                                                                                              \
        }                                                                                                  \
    }                                                                                                      \
    _Pragma("clang loop unroll(full)") for (int r = 0; r < RR; r++)                                                                           \
        _Pragma("clang loop unroll(full)") for (int j = 0; j < NVV; j++) {                                                                    \
            long n = end - (q0 + j * VW);                                                                  \
            if (full || n >= VW) CAT(store, SUFFIX)(y + r * ldy + q0 + j * VW, acc[r][j]);                 \
            else {                                                                                         \
                float part[VW];                                                                            \
                CAT(store, SUFFIX)(part, acc[r][j]);                                                       \
                for (long i = 0; i < n; i++) y[r * ldy + q0 + j * VW + i] = part[i];                       \
            }                                                                                              \
        }                                                                                                  \
}
FORWARD_BLOCK(fwd_full, R, NV, 0)
FORWARD_BLOCK(fwd_full3, R, NV, 3)
FORWARD_BLOCK(fwd_full5, R, NV, 5)
FORWARD_BLOCK(fwd_full7, R, NV, 7)
FORWARD_BLOCK(fwd_full9, R, NV, 9)
FORWARD_BLOCK(fwd_tail, RT, 2, 0)
FORWARD_BLOCK(fwd_tail9, RT, 2, 9)
FORWARD_BLOCK(fwd_row, 1, NV, 0)
FORWARD_BLOCK(fwd_row9, 1, NV, 9)
FORWARD_BLOCK(fwd_one, 1, 1, 0)

typedef void (*CAT(fwd_block, SUFFIX))(const float *, long, int, const float *, long, int, const long *, float *, long,
                                       long, long, int);

// Channel blocks of CB keep the x lines of one position block in the first-level cache while all
// output-row blocks use them; a later channel block continues each output's sum from y, in the
// same order as one pass would, so every output is the same sequence of fused multiply-adds
// whichever block shape computed it.
#define CB 32
TARGET static void CAT(direct_conv, SUFFIX)(const float *x, long ldx, int channels, const float *w, int rows, int taps,
                                            const long *offsets, float *y, long ldy, long length) {
    const long wstride = (long)channels * taps;
    const long step = NV * VW;
    const long blocked = length / step * step;
    // Tap counts of common windows (3×3; 3, 5, 7 in one dimension) unroll at compile time.
    CAT(fwd_block, SUFFIX) full = taps == 9 ? CAT(fwd_full9, SUFFIX) : taps == 3 ? CAT(fwd_full3, SUFFIX)
        : taps == 5 ? CAT(fwd_full5, SUFFIX) : taps == 7 ? CAT(fwd_full7, SUFFIX) : CAT(fwd_full, SUFFIX);
    CAT(fwd_block, SUFFIX) row = taps == 9 ? CAT(fwd_row9, SUFFIX) : CAT(fwd_row, SUFFIX);
    CAT(fwd_block, SUFFIX) tail = taps == 9 ? CAT(fwd_tail9, SUFFIX) : CAT(fwd_tail, SUFFIX);
    for (int c0 = 0; c0 < channels; c0 += CB) {
        const int cn = channels - c0 < CB ? channels - c0 : CB;
        const float *xc = x + c0 * ldx;
        const float *wc = w + (long)c0 * taps;
        const int acc = c0 > 0;
        for (long q = 0; q < blocked; q += step) {
            int o = 0;
            for (; o + R <= rows; o += R) full(xc, ldx, cn, wc + o * wstride, wstride, taps, offsets, y + o * ldy, ldy, q, length, acc);
            for (; o < rows; o++) row(xc, ldx, cn, wc + o * wstride, wstride, taps, offsets, y + o * ldy, ldy, q, length, acc);
        }
        // The positions after the last full block (all of them in short images: 7×7 has 61):
        // blocks of RT rows × 2 vectors, the last vector in part; leftover rows one vector at a time.
        for (long q = blocked; q < length; q += 2 * VW) {
            int o = 0;
            for (; o + RT <= rows; o += RT) tail(xc, ldx, cn, wc + o * wstride, wstride, taps, offsets, y + o * ldy, ldy, q, length, acc);
            for (; o < rows; o++)
                for (long v = q; v < q + 2 * VW && v < length; v += VW)
                    CAT(fwd_one, SUFFIX)(xc, ldx, cn, wc + o * wstride, wstride, taps, offsets, y + o * ldy, ldy, v, length, acc);
        }
    }
}
#undef CB

// Partial sums of dw for rows [0, RR) × channels [0, CI) × every tap over positions [q0, q1): each
// lane of part[(t·RR + r)·CI + i] sums every VW-th position; the sums stay vectors until the end.
#define GRAD_BLOCK(NAME, RR, CI)                                                                          \
TARGET static void CAT(NAME, SUFFIX)(const float *dy, long lddy, const float *x, long ldx, int taps,        \
                                      const long *offsets, long q0, long q1, long tail, VEC *part) {       \
    for (int t = 0; t < taps; t++) {                                                                       \
        VEC acc[RR][CI];                                                                                   \
        VEC *pt = part + (long)t * RR * CI;                                                                \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < RR; r++) _Pragma("clang loop unroll(full)") for (int i = 0; i < CI; i++) acc[r][i] = pt[r * CI + i];              \
        const float *xt = x + offsets[t];                                                                  \
        for (long q = q0; q < q1; q += VW) {                                                               \
            VEC xv[CI];                                                                                    \
            _Pragma("clang loop unroll(full)") for (int i = 0; i < CI; i++) xv[i] = CAT(load, SUFFIX)(xt + i * ldx + q);                      \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < RR; r++) {                                                                 \
                VEC d = CAT(load, SUFFIX)(dy + r * lddy + q);                                              \
                _Pragma("clang loop unroll(full)") for (int i = 0; i < CI; i++) acc[r][i] += d * xv[i];                                       \
            }                                                                                              \
        }                                                                                                  \
        if (tail > 0) { /* positions q1 ..< q1 + tail: dy's other lanes are zero, x's are finite */       \
            VEC xv[CI];                                                                                    \
            _Pragma("clang loop unroll(full)") for (int i = 0; i < CI; i++) xv[i] = CAT(load, SUFFIX)(xt + i * ldx + q1);                     \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < RR; r++) {                                                                 \
                float part_dy[VW] = {0};                                                                   \
                for (long p = 0; p < tail; p++) part_dy[p] = dy[r * lddy + q1 + p];                        \
                VEC d = CAT(load, SUFFIX)(part_dy);                                                        \
                _Pragma("clang loop unroll(full)") for (int i = 0; i < CI; i++) acc[r][i] += d * xv[i];                                       \
            }                                                                                              \
        }                                                                                                  \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < RR; r++) _Pragma("clang loop unroll(full)") for (int i = 0; i < CI; i++) pt[r * CI + i] = acc[r][i];              \
    }                                                                                                      \
}
GRAD_BLOCK(grad_full, RC, RI)
GRAD_BLOCK(grad_row, 1, RI)
GRAD_BLOCK(grad_col, RC, 1)
GRAD_BLOCK(grad_one, 1, 1)

// Positions in blocks of GQ keep the block's dy and x lines in the first-level cache across taps.
#define GQ 512
TARGET static void CAT(grad_tile, SUFFIX)(const float *dy, long lddy, int rr, const float *x, long ldx, int ci,
                                          int channels, int taps, const long *offsets, long vectors, long length,
                                          float *dw) {
    VEC part[taps * RC * RI];
    for (long i = 0; i < (long)taps * rr * ci; i++) part[i] = (VEC)0;
    for (long q0 = 0; q0 < vectors || q0 == 0; q0 += GQ) {
        long q1 = q0 + GQ < vectors ? q0 + GQ : vectors;
        long tail = q1 == vectors ? length - vectors : 0;
        if (rr == RC && ci == RI) CAT(grad_full, SUFFIX)(dy, lddy, x, ldx, taps, offsets, q0, q1, tail, part);
        else if (rr == 1 && ci == RI) CAT(grad_row, SUFFIX)(dy, lddy, x, ldx, taps, offsets, q0, q1, tail, part);
        else if (rr == RC && ci == 1) CAT(grad_col, SUFFIX)(dy, lddy, x, ldx, taps, offsets, q0, q1, tail, part);
        else CAT(grad_one, SUFFIX)(dy, lddy, x, ldx, taps, offsets, q0, q1, tail, part);
    }
    for (int t = 0; t < taps; t++)
        for (int r = 0; r < rr; r++)
            for (int i = 0; i < ci; i++) {
                dw[((long)r * channels + i) * taps + t] += CAT(hsum, SUFFIX)(part[((long)t * rr + r) * ci + i]);
            }
}
#undef GQ

TARGET static void CAT(direct_conv_weight_gradient, SUFFIX)(const float *dy, long lddy, int rows, const float *x, long ldx,
                                                            int channels, int taps, const long *offsets, long length,
                                                            float *dw) {
    const long vectors = length / VW * VW;
    for (int o = 0; o < rows; o += RC) {
        const int rr = rows - o < RC ? 1 : RC;
        for (int c = 0; c < channels; c += RI) {
            const int ci = channels - c < RI ? 1 : RI;
            // Leftover rows and channels go one at a time (rr or ci = 1).
            for (int r = o; r < (rr == 1 ? rows : o + RC); r += rr)
                for (int i = c; i < (ci == 1 ? channels : c + RI); i += ci)
                    CAT(grad_tile, SUFFIX)(dy + r * lddy, lddy, rr, x + i * ldx, ldx, ci, channels, taps, offsets,
                                           vectors, length, dw + ((long)r * channels + i) * taps);
            if (ci == 1) break;
        }
        if (rr == 1) break;
    }
}

#undef VEC
#undef CAT
#undef CAT_
// The instruction set's parameters end with it (direct_conv.c sets them anew for the next one).
#undef VW
#undef R
#undef NV
#undef RT
#undef RC
#undef RI
#undef TARGET
#undef SUFFIX
