import Dispatch
import Engine
import Foundation

/// Evaluates candidates in this process, `workers` at a time.
///
/// Each candidate trains in its own ``ComputeContext`` of `spec.threads` threads (the runner gives
/// each of the `workers` a `threads / workers` share). Results do not depend on which worker ran a
/// candidate or what runs beside it: every candidate's training is seeded by its id.
public final class LocalExecutor: CandidateExecutor {
    public let workers: Int
    public let datasets: DatasetCache
    /// Where trained weights go (`candidate-<id>.h5`), or `nil` to keep none.
    public let weightsDirectory: String?
    /// Training observers for a candidate (e.g. a progress display); called once per candidate.
    public var observers: (CandidateSpec) -> [TrainingObserver] = { _ in [] }

    public init(workers: Int, datasets: DatasetCache = DatasetCache(), weightsDirectory: String?) {
        precondition(workers >= 1)
        self.workers = workers
        self.datasets = datasets
        self.weightsDirectory = weightsDirectory
    }

    public func evaluate(_ specs: [CandidateSpec]) throws -> [CandidateResult] {
        if specs.count <= 1 || workers == 1 {
            return specs.map { CandidateTraining.evaluate($0, datasets: datasets, weightsDirectory: weightsDirectory,
                                                          worker: "local-0", observers: observers($0)) }
        }
        var results = [CandidateResult?](repeating: nil, count: specs.count)
        let lock = NSLock()
        var next = 0
        DispatchQueue.concurrentPerform(iterations: min(workers, specs.count)) { worker in
            while true {
                lock.lock()
                let i = next
                next += 1
                lock.unlock()
                if i >= specs.count { return }
                let r = CandidateTraining.evaluate(specs[i], datasets: datasets, weightsDirectory: weightsDirectory,
                                                   worker: "local-\(worker)", observers: observers(specs[i]))
                lock.lock()
                results[i] = r
                lock.unlock()
            }
        }
        return results.map { $0! }
    }
}
