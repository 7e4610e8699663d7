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
    /// Training jobs and searches that run at the same time, each in its own compute context of
    /// the workbench's threads (`naslab serve` splits `--threads` among them); the others wait as
    /// `pending`, first come first served. Default 1. With a Slurm workbench (``SlurmCluster``) it
    /// bounds the searches and training jobs coordinated at once (`--max-concurrent-searches`).
    public var maxConcurrentJobs: Int = 1
    /// Jobs (training jobs and searches) that may wait as `pending` on the whole server; one more is
    /// a 429 with `Retry-After`. Default 64.
    public var maxQueuedJobs: Int = 64
    /// Jobs that may wait as `pending` per organisation (429 beyond). Default 16.
    public var maxQueuedJobsPerOrganization: Int = 16
    /// Predictions a deployment holds at once, running or waiting for a free replica (429 beyond,
    /// so memory stays bounded however many clients call). Default 32.
    public var maxPredictionsPerDeployment: Int = 32
    /// A request that has not been answered after this many seconds gets a 504 `timeout_error`
    /// (uploads excepted: `POST /v1/datasets` streams up to `maxUploadBytes`). Default 60.
    public var requestTimeoutSeconds: Double = 60
    /// On SIGTERM/SIGINT, how long a running candidate or epoch may take to finish before the
    /// server exits anyway (its work then resumes from the last finished one). Default 30.
    public var shutdownGraceSeconds: Double = 30
    /// The `Retry-After` of 429 and 503 answers, in seconds. Default 30.
    public var retryAfterSeconds: Int = 30

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
