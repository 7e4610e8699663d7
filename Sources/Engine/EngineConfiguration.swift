import CBLAS
import Dispatch
import Foundation

/// Facts about the engine's BLAS library (the thread count of a job is a ``ComputeContext``).
public enum EngineConfiguration {}

extension EngineConfiguration {
    /// The kernel family OpenBLAS selected (`openblas_get_corename`), e.g. `Cooperlake`, `Haswell`.
    ///
    /// On virtual machines whose CPU model is unknown to OpenBLAS 0.3.21 (e.g. a generic
    /// "Intel Xeon Processor" with AVX-512) it falls back to `Prescott` (SSE3) kernels, about
    /// 4–5× slower, and on AVX-512 AMD EPYCs it uses 256-bit `Haswell` kernels; set
    /// `OPENBLAS_CORETYPE` before the process starts, or call
    /// `relaunchWithOptimizedOpenBLASIfNeeded()` first thing in `main`.
    public static var openBLASCoreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The best OpenBLAS core type for this CPU from its `/proc/cpuinfo` flags
    /// (`Cooperlake` with AVX-512 BF16, `SkylakeX` with AVX-512F, `Haswell` with AVX2), or nil.
    public static var preferredOpenBLASCoreType: String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return nil }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        if flags.contains("avx512f") && flags.contains("avx512_bf16") { return "Cooperlake" }
        if flags.contains("avx512f") && flags.contains("avx512vl") { return "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// The vector width of an OpenBLAS kernel family for ranking them: 512-bit (SkylakeX,
    /// Cooperlake, SapphireRapids) above 256-bit (Haswell, Zen, SandyBridge) above the rest.
    static func kernelRank(_ coreName: String) -> Int {
        switch coreName.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": return 2
        case "haswell", "zen", "sandybridge": return 1
        default: return 0
        }
    }

    /// If OpenBLAS chose narrower kernels than the CPU supports — generic ones on a CPU model it
    /// does not know, or its 256-bit Haswell/Zen kernels on an AVX-512 AMD EPYC (0.3.21 maps every
    /// Zen to them; ResNet-18 batch-1 inference measured ~25 % slower with them there) — and
    /// `OPENBLAS_CORETYPE` is unset, re-executes the current program with `OPENBLAS_CORETYPE` set
    /// (same arguments). Call it first thing in an executable's `main`, never from a library or a
    /// test. Returns only if no relaunch was needed or possible.
    public static func relaunchWithOptimizedOpenBLASIfNeeded() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil,
              let preferred = preferredOpenBLASCoreType,
              kernelRank(openBLASCoreName) < kernelRank(preferred) else { return }
        setenv("OPENBLAS_CORETYPE", preferred, 1)
        let arguments = CommandLine.arguments
        var cArguments = arguments.map { strdup($0) }
        cArguments.append(nil)
        execv("/proc/self/exe", &cArguments)
        // execv only returns on failure: continue with the generic kernels.
    }
}

/// Runs `body(range)` over `0..<count` split into at most `ComputeContext.current.threads`
/// contiguous chunks, in parallel when worthwhile. The split depends only on `count` and the
/// thread count, so results are deterministic.
@inline(__always)
func parallelChunks(_ count: Int, minimumPerChunk: Int = 1, work: Int, _ body: (Range<Int>) -> Void) {
    let threads = ComputeContext.current.threads
    if threads <= 1 || count < 2 || work < 32_768 {
        body(0..<count)
        return
    }
    let chunks = min(threads, max(1, count / max(1, minimumPerChunk)))
    if chunks <= 1 {
        body(0..<count)
        return
    }
    parallelFor(iterations: chunks) { c in
        let start = count * c / chunks
        let end = count * (c + 1) / chunks
        if start < end { body(start..<end) }
    }
}

/// Row-major single-precision GEMM: C = alpha·op(A)·op(B) + beta·C.
@inline(__always)
func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
          a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
          beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Measures `cblas_sgemm` throughput (row-major, no transposes) in GFLOP/s: the best of
/// `repetitions` timed calls after one warm-up call, with OpenBLAS using `threads` threads
/// (restored to 1 afterwards, the engine's setting).
///
/// - Parameters: m, n, k: GEMM dimensions (C is m×n).
public func measureGEMM(m: Int, n: Int, k: Int, threads: Int = ComputeContext.current.threads, repetitions: Int = 5) -> Double {
    openblas_set_num_threads(Int32(max(1, threads)))
    defer { openblas_set_num_threads(1) }
    var rng = SeededGenerator(seed: 1)
    let a = (0..<(m * k)).map { _ in rng.nextUnitFloat() }
    let b = (0..<(k * n)).map { _ in rng.nextUnitFloat() }
    var c = [Float](repeating: 0, count: m * n)
    var best = Double.infinity
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            c.withUnsafeMutableBufferPointer { cp in
                for r in 0...max(1, repetitions) {
                    let start = DispatchTime.now().uptimeNanoseconds
                    gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, a: ap.baseAddress!, lda: k,
                         b: bp.baseAddress!, ldb: n, beta: 0, c: cp.baseAddress!, ldc: n)
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                    if r > 0 { best = min(best, seconds) }
                }
            }
        }
    }
    return 2.0 * Double(m) * Double(n) * Double(k) / best * 1e-9
}

import NASCore
