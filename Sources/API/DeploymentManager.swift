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

/// The replicas of one deployment.
actor ReplicaPool {
    let artifactPath: String
    let maxReplicas: Int
    let workbench: any ModelWorkbench
    private var replicas: [ModelReplica] = []
    private var free: [ModelReplica] = []
    private var loading = 0
    private var waiters: [CheckedContinuation<ModelReplica, Never>] = []

    init(artifactPath: String, maxReplicas: Int, workbench: any ModelWorkbench) {
        self.artifactPath = artifactPath
        self.maxReplicas = maxReplicas
        self.workbench = workbench
    }

    var loadedCount: Int { replicas.count }

    /// The schema of the loaded model (`nil` before the first replica is loaded).
    var schema: InputSchema? { replicas.first?.schema }

    /// Loads `count` replicas (the first one first: a bad file fails fast).
    func load(count: Int) async throws {
        for _ in 0..<count {
            let replica = try await workbench.loadReplica(artifactPath: artifactPath)
            add(replica)
        }
    }

    private func add(_ replica: ModelReplica) {
        replicas.append(replica)
        release(replica)
    }

    /// A free replica, waiting for one (and loading one more if allowed) when all are busy.
    func acquire() async -> ModelReplica {
        if let replica = free.popLast() { return replica }
        if replicas.count + loading < maxReplicas {
            loading += 1
            let workbench = workbench, path = artifactPath
            Task {
                let replica = try? await workbench.loadReplica(artifactPath: path)
                self.scaled(replica)
            }
        }
        return await withCheckedContinuation { waiters.append($0) }
    }

    private func scaled(_ replica: ModelReplica?) {
        loading -= 1
        if let replica { add(replica) }
    }

    func release(_ replica: ModelReplica) {
        if waiters.isEmpty { free.append(replica) } else { waiters.removeFirst().resume(returning: replica) }
    }
}
