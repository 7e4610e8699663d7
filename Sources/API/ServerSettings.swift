import Foundation

/// Settings of `naslab serve`.
///
/// ```swift
/// let settings = ServerSettings(host: "127.0.0.1", port: 8080, dataDirectory: URL(fileURLWithPath: "data"))
/// let app = try makeApplication(settings: settings)
/// try await app.runService()
/// ```
public struct ServerSettings: Sendable {
    /// Address to bind; default `127.0.0.1`.
    public var host: String
    /// Port to bind; default `8080` (`0` picks a free port).
    public var port: Int
    /// Where the SQLite database and uploaded files live; default `./naslab-data`.
    public var dataDirectory: URL
    /// Largest JSON request body, in bytes; larger bodies are a 413. Default 1 MiB.
    public var maxJSONBodyBytes: Int
    /// Largest dataset upload, in bytes; larger uploads are a 413. Default 512 MiB.
    public var maxUploadBytes: Int
    /// Directories from which `POST /v1/datasets` may register server-side files (`path`); a path
    /// outside all of them is refused. Default: `<data-dir>/imports`.
    public var datasetImportRoots: [URL]
    /// Whether this host has GPUs (deployments on `gpu-*` instances are refused without). Default `false`.
    public var hasGPU: Bool
    /// The ML backend (``LabWorkbench`` in `naslab serve`); `nil`: jobs fail with "no training backend".
    public var workbench: (any ModelWorkbench)?
    /// The base URL clients use to reach this server (`http://host:port`) for deployments'
    /// `endpoint_url`; default `http://<host>:<bound port>`.
    public var publicBaseURL: String?

    public init(host: String = "127.0.0.1", port: Int = 8080,
                dataDirectory: URL = URL(fileURLWithPath: "naslab-data"),
                maxJSONBodyBytes: Int = 1 << 20, maxUploadBytes: Int = 512 << 20,
                datasetImportRoots: [URL]? = nil, hasGPU: Bool = false, workbench: (any ModelWorkbench)? = nil,
                publicBaseURL: String? = nil) {
        self.publicBaseURL = publicBaseURL
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
        self.maxJSONBodyBytes = maxJSONBodyBytes
        self.maxUploadBytes = maxUploadBytes
        self.datasetImportRoots = datasetImportRoots ?? [dataDirectory.appendingPathComponent("imports")]
        self.hasGPU = hasGPU
        self.workbench = workbench
    }
}
