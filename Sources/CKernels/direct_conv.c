#include "CKernels.h"

#if defined(__x86_64__)
#define VW 16
#define R 4
#define NV 6
#define RT 12
#define RC 4
#define RI 4
#define TARGET __attribute__((target("avx512f,avx512vl,fma")))
#define SUFFIX avx512
#include "direct_conv_body.h"

#define VW 8
#define R 4
#define NV 3
#define RT 6
#define RC 2
#define RI 4
#define TARGET __attribute__((target("avx2,fma")))
#define SUFFIX avx2
#include "direct_conv_body.h"
#endif

#define VW 4
#define R 4
#define NV 2
#define RT 4
#define RC 2
#define RI 4
#define TARGET
#define SUFFIX baseline
#include "direct_conv_body.h"

enum isa { ISA_UNKNOWN, ISA_BASELINE, ISA_AVX2, ISA_AVX512 };
static enum isa detected = ISA_UNKNOWN;

static enum isa current_isa(void) {
    if (detected == ISA_UNKNOWN) {
        enum isa found = ISA_BASELINE;
#if defined(__x86_64__)
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")) found = ISA_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) found = ISA_AVX2;
#endif
        detected = found;
    }
    return detected;
}

int naslab_force_kernel_isa(const char *name) {
    enum isa best = (detected = ISA_UNKNOWN, current_isa());
    enum isa wanted = ISA_UNKNOWN;
    if (name == 0) wanted = best;
    else if (__builtin_strcmp(name, "avx512") == 0) wanted = ISA_AVX512;
    else if (__builtin_strcmp(name, "avx2") == 0) wanted = ISA_AVX2;
    else if (__builtin_strcmp(name, "baseline") == 0) wanted = ISA_BASELINE;
    if (wanted == ISA_UNKNOWN || wanted > best) return 0;
    detected = wanted;
    return 1;
}

const char *naslab_kernel_isa(void) {
    switch (current_isa()) {
    case ISA_AVX512: return "avx512";
    case ISA_AVX2: return "avx2";
    default: return "baseline";
    }
}

void naslab_direct_conv(const float *x, long ldx, int channels, const float *w, int rows, int taps, const long *offsets,
                        float *y, long ldy, long length) {
    switch (current_isa()) {
#if defined(__x86_64__)
    case ISA_AVX512: direct_conv_avx512(x, ldx, channels, w, rows, taps, offsets, y, ldy, length); return;
    case ISA_AVX2: direct_conv_avx2(x, ldx, channels, w, rows, taps, offsets, y, ldy, length); return;
#endif
    default: direct_conv_baseline(x, ldx, channels, w, rows, taps, offsets, y, ldy, length);
    }
}

void naslab_direct_conv_weight_gradient(const float *dy, long lddy, int rows, const float *x, long ldx, int channels,
                                        int taps, const long *offsets, long length, float *dw) {
    switch (current_isa()) {
#if defined(__x86_64__)
    case ISA_AVX512: direct_conv_weight_gradient_avx512(dy, lddy, rows, x, ldx, channels, taps, offsets, length, dw); return;
    case ISA_AVX2: direct_conv_weight_gradient_avx2(dy, lddy, rows, x, ldx, channels, taps, offsets, length, dw); return;
#endif
    default: direct_conv_weight_gradient_baseline(dy, lddy, rows, x, ldx, channels, taps, offsets, length, dw);
    }
}
