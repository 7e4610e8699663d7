import CBLAS
import Dispatch
import Foundation

/// Process-wide compute settings of the engine.
///
/// ```swift
/// EngineConfiguration.setThreadCount(2)
/// ```
public enum EngineConfiguration {
    nonisolated(unsafe) private static var storedThreadCount = ProcessInfo.processInfo.activeProcessorCount

    /// The number of threads used by OpenBLAS and by the engine's own parallel loops.
    public static var threadCount: Int { storedThreadCount }

    /// Sets the thread count for OpenBLAS (`openblas_set_num_threads`, process-wide) and for the
    /// engine's own loops (im2col, col2im, element-wise kernels).
    ///
    /// - Parameter count: number of threads, at least 1. Results are bit-identical between runs
    ///   with the same thread count.
    public static func setThreadCount(_ count: Int) {
        let n = max(1, count)
        storedThreadCount = n
        openblas_set_num_threads(Int32(n))
    }
}

/// Runs `body(chunkIndex, range)` over `0..<count` split into at most `threadCount` contiguous
/// chunks, in parallel when worthwhile. The split depends only on `count` and the thread count,
/// so results are deterministic.
@inline(__always)
func parallelChunks(_ count: Int, minimumPerChunk: Int = 1, work: Int, _ body: (Range<Int>) -> Void) {
    let threads = EngineConfiguration.threadCount
    if threads <= 1 || count < 2 || work < 32_768 {
        body(0..<count)
        return
    }
    let chunks = min(threads, max(1, count / max(1, minimumPerChunk)))
    if chunks <= 1 {
        body(0..<count)
        return
    }
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
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
