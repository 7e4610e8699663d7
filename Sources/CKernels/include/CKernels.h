// NASLab's own SIMD kernels, compiled for AVX-512, AVX2+FMA and a portable baseline and picked at
// run time for the CPU (one definition in direct_conv_body.h, instantiated per instruction set).
#ifndef NASLAB_CKERNELS_H
#define NASLAB_CKERNELS_H

/// Direct convolution over "padded-row" buffers (stride 1): for every output row `o < rows` and
/// position `q < length`
///   y[o·ldy + q] = Σ_{c < channels} Σ_{t < taps} w[(o·channels + c)·taps + t] · x[c·ldx + q + offsets[t]]
/// (overwrites y). Reads x at indices `c·ldx + q + offsets[t]` with `q < length` rounded up to a
/// multiple of 16: the last row of x needs 15 readable floats of slack after its last used one
/// (their values only reach discarded lanes). Each output
/// element is summed in the same order (c, then t) whatever `rows` and the pointers are, so a
/// caller may split the rows among threads without changing any bit of the result.
void naslab_direct_conv(const float *x, long ldx, int channels,
                        const float *w, int rows, int taps, const long *offsets,
                        float *y, long ldy, long length);

/// The weight gradient of `naslab_direct_conv`: for o < rows, c < channels, t < taps
///   dw[(o·channels + c)·taps + t] += Σ_{q < length} dy[o·lddy + q] · x[c·ldx + q + offsets[t]].
/// Reads x like `naslab_direct_conv` (the same slack); the lanes past `length` meet zeros of dy,
/// so x must hold finite values there (padded rows and zeroed slack do).
void naslab_direct_conv_weight_gradient(const float *dy, long lddy, int rows,
                                        const float *x, long ldx, int channels,
                                        int taps, const long *offsets, long length, float *dw);

/// The instruction set the kernels run with on this CPU: "avx512", "avx2" or "baseline".
const char *naslab_kernel_isa(void);

/// Makes the kernels use `name` ("avx512", "avx2", "baseline"; NULL: the best this CPU has) —
/// for tests of every variant. Returns 0 (and changes nothing) when the CPU lacks it.
int naslab_force_kernel_isa(const char *name);

/// A hint to the CPU that the caller is spin-waiting (x86 `pause`, ARM `yield`): frees the core's
/// resources for its sibling hyperthread and lowers the cost of the spin.
static inline void naslab_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
