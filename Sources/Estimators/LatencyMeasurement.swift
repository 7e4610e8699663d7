import Engine
import Foundation
import NASCore

/// Measured forward-pass latency of a network on this machine.
///
/// The engine's network is built with seeded random weights, run `warmup` times, then timed
/// `repeats` times; the median is reported (robust against the odd slow run on a shared machine).
///
/// ```swift
/// let ms = try LatencyMeasurement.measure(graph, batchSize: 1, threads: 1).medianMilliseconds
/// ```
public struct LatencyMeasurement: Hashable, Codable, Sendable {
    /// Which clock times the passes.
    public enum Clock: String, Hashable, Codable, Sendable, CaseIterable {
        /// Monotonic wall-clock time: the latency a user sees, including time the process waits
        /// for a CPU on a busy machine.
        case wall
        /// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`): excludes time the thread
        /// was descheduled, so it estimates the latency on an idle machine. Meaningful for one
        /// compute thread only (work of other threads is not counted).
        case threadCPU = "thread-cpu"

        /// The current time of this clock, in nanoseconds.
        public func nanoseconds() -> UInt64 {
            switch self {
            case .wall: return DispatchTime.now().uptimeNanoseconds
            case .threadCPU:
                var t = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
                return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
            }
        }
    }

    public var medianMilliseconds: Double
    public var minimumMilliseconds: Double
    public var samples: [Double]
    public var batchSize: Int
    public var threads: Int
    /// The clock used (`.wall` unless asked otherwise).
    public var clock: Clock = .wall

    /// Times `graph`'s forward pass (evaluation mode).
    ///
    /// - Parameters:
    ///   - batchSize: samples per forward pass (default 1, the deployment case).
    ///   - threads: compute threads during the measurement (default: the current ``ComputeContext``'s).
    ///   - warmup: untimed runs first (default 3).
    ///   - repeats: timed runs (default 15).
    ///   - clock: wall-clock time (default) or the thread's CPU time (see `Clock`).
    public static func measure(_ graph: NetworkGraph, batchSize: Int = 1, threads: Int? = nil,
                               warmup: Int = 3, repeats: Int = 15, seed: UInt64 = 0,
                               clock: Clock = .wall) throws -> LatencyMeasurement {
        precondition(batchSize >= 1 && repeats >= 1 && warmup >= 0)
        var rng = SeededGenerator(seed: seed)
        let network = try Network(graph: graph, rng: &rng)
        let shape = graph.inputShape
        var values = [Float](repeating: 0, count: batchSize * shape.elementCount)
        for i in values.indices { values[i] = rng.nextUnitFloat() * 2 - 1 }
        let input = Tensor(shape: [batchSize, shape.channels, shape.height, shape.width], values: values)
        let context = threads.map { ComputeContext(threads: $0) } ?? ComputeContext.current
        return try context.run {
            try timeForward(network, input: input, warmup: warmup, repeats: repeats, batchSize: batchSize, clock: clock)
        }
    }

    private static func timeForward(_ network: Network, input: Tensor, warmup: Int, repeats: Int, batchSize: Int,
                                    clock: Clock) throws -> LatencyMeasurement {
        for _ in 0..<warmup { _ = try network.forward(input, training: false) }
        var samples = [Double]()
        samples.reserveCapacity(repeats)
        for _ in 0..<repeats {
            let t0 = clock.nanoseconds()
            _ = try network.forward(input, training: false)
            samples.append(Double(clock.nanoseconds() - t0) / 1e6)
        }
        let sorted = samples.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2]
            : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        return LatencyMeasurement(medianMilliseconds: median, minimumMilliseconds: sorted[0], samples: samples,
                                  batchSize: batchSize, threads: ComputeContext.current.threads, clock: clock)
    }
}
