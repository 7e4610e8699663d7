import CBLAS

extension EngineConfiguration {
    /// OpenBLAS's build description and the kernel it chose, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH … (Cooperlake)`.
    public static var blasDescription: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return "\(config) (\(core))"
    }

    /// Everything that decides how fast the engine's kernels run: the BLAS (``blasDescription``)
    /// and NASLab's own direct-convolution kernels with their revision and instruction set, e.g.
    /// `OpenBLAS 0.3.21 … (Haswell); direct convolution r2 (avx512)`. Latency tables measured under
    /// another description are not reused.
    public static var kernelsDescription: String {
        "\(blasDescription); direct convolution r\(DirectConvolution.revision) (\(DirectConvolution.instructionSet))"
    }
}
