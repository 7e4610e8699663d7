import Foundation
import Lab

/// The address clients reach this server at, for deployments' `endpoint_url`; set once the server
/// has bound its socket (so that `--port 0` reports the real port).
public final class ServerAddress: @unchecked Sendable {
    private let lock = NSLock()
    private var base: String

    /// - Parameter baseURL: e.g. `http://127.0.0.1:8080`.
    public init(baseURL: String) { base = baseURL }

    public var baseURL: String {
        get { lock.withLock { base } }
        set { lock.withLock { base = newValue } }
    }
}

/// Loaded deployments: for each, a pool of ``ModelReplica``s handed to one request at a time.
///
/// Provisioning loads `replicas` copies in the background (`provisioning → running`, or `failed`
/// with the reason). Auto-scaling: when every loaded replica is busy and fewer than `max_replicas`
/// are loaded, one more copy is loaded while the request waits for the first free replica.
/// Replicas are never unloaded except by deleting the deployment (no scale-down).
actor DeploymentManager {
    let store: APIStore
    let workbench: (any ModelWorkbench)?
    private var pools: [String: ReplicaPool] = [:]

    init(store: APIStore, workbench: (any ModelWorkbench)?) {
        self.store = store
        self.workbench = workbench
    }

    /// Starts loading a stored `provisioning` deployment of the model whose weights are `artifactPath`.
    func provision(_ deployment: DeploymentRecord, artifactPath: String) {
        let store = self.store
        guard let workbench else {
            Task { try? await store.updateDeployment(id: deployment.id, status: .failed, failureReason: JobRunner.noBackendReason) }
            return
        }
        let pool = ReplicaPool(artifactPath: artifactPath, maxReplicas: deployment.maxReplicas, workbench: workbench)
        pools[deployment.id] = pool
        Task {
            do {
                try await pool.load(count: deployment.replicas)
                try await store.updateDeployment(id: deployment.id, status: .running)
            } catch {
                self.remove(deployment.id)
                _ = try? await store.updateDeployment(id: deployment.id, status: .failed,
                                                  failureReason: "cannot load the model: \(error)")
            }
        }
    }

    /// Loads again every deployment that was live when the server stopped.
    func restore() async {
        guard let live = try? await store.liveDeployments() else { return }
        for deployment in live {
            let organization = deployment.organization
            guard let model = try? await store.model(id: deployment.modelID, organization: organization),
                  let path = model.artifactPath else {
                _ = try? await store.updateDeployment(id: deployment.id, status: .failed, failureReason: "the model has no trained weights")
                continue
            }
            _ = try? await store.updateDeployment(id: deployment.id, status: .provisioning)
            provision(deployment, artifactPath: path)
        }
    }

    func pool(_ id: String) -> ReplicaPool? { pools[id] }

    func remove(_ id: String) { pools[id] = nil }

    func loadedReplicas(_ id: String) async -> Int? {
        guard let pool = pools[id] else { return nil }
        return await pool.loadedCount
    }
}

/// The replicas of one deployment, handed to one prediction at a time, with a bound on the
/// predictions it holds (running or waiting) and on how long one may wait.
public actor ReplicaPool {
    let artifactPath: String
    let maxReplicas: Int
    let workbench: any ModelWorkbench
    private var replicas: [ModelReplica] = []
    private var free: [ModelReplica] = []
    private var loading = 0

    public init(artifactPath: String, maxReplicas: Int, workbench: any ModelWorkbench) {
        self.artifactPath = artifactPath
        self.maxReplicas = maxReplicas
        self.workbench = workbench
    }

    var loadedCount: Int { replicas.count }

    /// The schema of the loaded model (`nil` before the first replica is loaded).
    var schema: InputSchema? { replicas.first?.schema }

    /// Loads `count` replicas (the first one first: a bad file fails fast).
    public func load(count: Int) async throws {
        for _ in 0..<count {
            let replica = try await workbench.loadReplica(artifactPath: artifactPath)
            add(replica)
        }
    }

    private func add(_ replica: ModelReplica) {
        replicas.append(replica)
        hand(replica)
    }

    /// Requests holding a replica or waiting for one.
    private var inFlight = 0
    private var nextWaiter = 0
    private var waiters: [(id: Int, continuation: CheckedContinuation<ModelReplica, Error>)] = []

    /// A free replica, waiting for one (and loading one more if allowed) when all are busy.
    /// - Parameters:
    ///   - limit: Requests this pool holds at once (running or waiting); one more is a 429.
    ///   - timeout: Seconds a request may wait for a replica; longer is a 504.
    ///   - retryAfter: The `Retry-After` of the 429.
    public func acquire(limit: Int, timeout: Double, retryAfter: Int) async throws -> ModelReplica {
        guard inFlight < limit else {
            throw APIError.rateLimited("this deployment already holds \(limit) predictions (running or waiting for a replica); "
                                       + "retry later or deploy with more replicas", retryAfter: retryAfter)
        }
        inFlight += 1
        if let replica = free.popLast() { return replica }
        if replicas.count + loading < maxReplicas {
            loading += 1
            let workbench = workbench, path = artifactPath
            Task {
                let replica = try? await workbench.loadReplica(artifactPath: path)
                self.scaled(replica)
            }
        }
        nextWaiter += 1
        let id = nextWaiter
        Task {
            try? await Task.sleep(nanoseconds: UInt64(timeout * 1e9))
            self.expire(id, timeout: timeout)
        }
        return try await withCheckedThrowingContinuation { waiters.append((id, $0)) }
    }

    private func expire(_ id: Int, timeout: Double) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        inFlight -= 1
        waiters.remove(at: index).continuation.resume(throwing: APIError.timeout(seconds: timeout))
    }

    private func scaled(_ replica: ModelReplica?) {
        loading -= 1
        if let replica { add(replica) }
    }

    /// Returns a replica taken with `acquire`.
    public func release(_ replica: ModelReplica) {
        inFlight -= 1
        hand(replica)
    }

    /// Gives a free replica to the first waiting request, else keeps it.
    private func hand(_ replica: ModelReplica) {
        if waiters.isEmpty { free.append(replica) } else { waiters.removeFirst().continuation.resume(returning: replica) }
    }
}
