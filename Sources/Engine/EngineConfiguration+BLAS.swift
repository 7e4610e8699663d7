import CBLAS

extension EngineConfiguration {
    /// OpenBLAS's build description and the kernel it chose, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH … (Cooperlake)`.
    public static var blasDescription: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return "\(config) (\(core))"
    }
}
