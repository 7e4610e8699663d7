import CBLAS
import Foundation

/// The compute resources one job may use: how many threads the engine's parallel loops split work
/// over. It is injected, not process-wide: a job runs inside `context.run { … }` and everything the
/// engine does inside (training, inference, latency measurement) reads ``ComputeContext/current``,
/// so two jobs in one process (a server's concurrent jobs, a search's parallel workers) each keep
/// their own thread count and their own deterministic results.
///
/// ```swift
/// let perWorker = ComputeContext(threads: 4).split(among: 2)   // 2 threads each
/// try perWorker.run { try trainer.fit(network, train: data, rng: &rng) }
/// ```
///
/// The context is a task-local value: it follows structured concurrency (child tasks inherit it)
/// and, outside any task, the thread that called `run`. Threads started by other means (e.g.
/// `DispatchQueue.concurrentPerform`) start from ``machine`` and must `run` their own context.
///
/// Results are bit-identical between runs with the same thread count; OpenBLAS itself always runs
/// single-threaded (`openblas_set_num_threads(1)`) because the engine splits work itself, which
/// avoids OpenBLAS's spin-waiting and keeps results independent of its scheduling.
public struct ComputeContext: Hashable, Sendable, CustomStringConvertible {
    /// Threads of the engine's own parallel loops, at least 1.
    public let threads: Int

    public init(threads: Int) {
        _ = Self.blasSingleThreaded
        self.threads = max(1, threads)
    }

    /// All of this machine's active processors (the default outside any `run`).
    public static var machine: ComputeContext { ComputeContext(threads: ProcessInfo.processInfo.activeProcessorCount) }

    @TaskLocal private static var scoped: ComputeContext?

    /// The context of the running job (``machine`` outside any `run`).
    public static var current: ComputeContext { scoped ?? machine }

    /// Runs `body` with this context as ``current``.
    public func run<R>(_ body: () throws -> R) rethrows -> R {
        try Self.$scoped.withValue(self, operation: body)
    }

    /// Runs `body` with this context as ``current`` (child tasks inherit it).
    public func run<R: Sendable>(_ body: () async throws -> R) async rethrows -> R {
        try await Self.$scoped.withValue(self, operation: body)
    }

    /// The share of one of `jobs` jobs that run at once: `threads / jobs` threads (at least 1).
    public func split(among jobs: Int) -> ComputeContext {
        ComputeContext(threads: threads / max(1, jobs))
    }

    public var description: String { "\(threads) thread\(threads == 1 ? "" : "s")" }

    private static let blasSingleThreaded: Void = { openblas_set_num_threads(1) }()
}
