import Engine
import Foundation
import NASCore

/// How forward latencies are measured so that the numbers hold on a shared machine
/// (docs/latency.md, "Measurement protocol"):
///
/// 1. every network is built once and warmed up (`warmup` untimed passes) before each timing;
/// 2. each timing is the median of `repeats` passes — on the calling thread's CPU clock with one
///    compute thread (descheduled time left out), on the wall clock with more (the other threads'
///    work is only visible there), unless `clock` says otherwise;
/// 3. the networks are measured in `rounds` round-robin passes (the order rotated each round), and a
///    network's latency is the median of its round medians, so a slow phase of the machine hits one
///    round only;
/// 4. a **reference network** is timed just before and after every timing; when it is more than
///    `referenceTolerance` slower than its quietest timing so far, the machine's load changed and
///    the timing is repeated (up to `retries` times; the least disturbed attempt is kept and the
///    disturbance reported).
/// 5. the reference's time around each kept timing is returned with the latency
///    (``ProtocolLatency/referenceMilliseconds``): a latency table expresses every timing at its
///    own reference time, so that timings taken while the machine ran faster or slower compare
///    (``LatencyTable/referenceMilliseconds``).
public struct LatencyProtocol: Hashable, Sendable {
    public var warmup: Int
    public var repeats: Int
    public var rounds: Int
    /// `nil`: thread-CPU time with 1 thread, wall time with more.
    public var clock: LatencyMeasurement.Clock?
    /// Relative slowdown of the reference that marks a timing as disturbed.
    public var referenceTolerance: Double
    public var retries: Int
    /// Passes per reference timing.
    public var referenceRepeats: Int

    /// Defaults: 5 warm-up passes, 31 timed passes, 3 rounds, reference within 5 %, 3 retries, 15 reference passes.
    public init(warmup: Int = 5, repeats: Int = 31, rounds: Int = 3, clock: LatencyMeasurement.Clock? = nil,
                referenceTolerance: Double = 0.05, retries: Int = 3, referenceRepeats: Int = 15) {
        self.warmup = warmup
        self.repeats = repeats
        self.rounds = rounds
        self.clock = clock
        self.referenceTolerance = referenceTolerance
        self.retries = retries
        self.referenceRepeats = referenceRepeats
    }

    /// The clock used with `threads` compute threads.
    public func clock(threads: Int) -> LatencyMeasurement.Clock { clock ?? (threads == 1 ? .threadCPU : .wall) }

    /// The reference network: a small CNN on 1×28×28 (conv 3×3 16 + BN + ReLU, max pool,
    /// conv 3×3 32 + BN + ReLU, global average pool, linear 10), about 0.1–0.3 ms.
    public static var referenceGraph: NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 28, width: 28))
        var x = g.add("conv1", .conv2d(Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1)), g.input)
        x = g.add("bn1", .batchNorm(affine: true), x)
        x = g.add("relu1", .activation(.relu), x)
        x = g.add("pool", .maxPool(PoolAttributes(kernel: 2, stride: 2)), x)
        x = g.add("conv2", .conv2d(Conv2dAttributes(outChannels: 32, kernel: 3, padding: 1)), x)
        x = g.add("bn2", .batchNorm(affine: true), x)
        x = g.add("relu2", .activation(.relu), x)
        x = g.add("gap", .globalAvgPool, x)
        g.add("fc", .linear(outFeatures: 10, bias: true), x)
        return g
    }
}

/// A forward latency measured with ``LatencyProtocol``.
public struct ProtocolLatency: Hashable, Codable, Sendable {
    /// Median of the round medians (ms).
    public var medianMilliseconds: Double
    /// Fastest single pass over all rounds (ms).
    public var minimumMilliseconds: Double
    /// Each round's median (ms).
    public var roundMedians: [Double]
    /// Each round's reference slowdown (reference time / quietest reference time; 1 = undisturbed).
    public var referenceRatios: [Double]
    /// Rounds still disturbed after the retries.
    public var disturbedRounds: Int
    /// Timings repeated because the reference showed a load change.
    public var retries: Int
    public var clock: LatencyMeasurement.Clock
    public var threads: Int
    /// The reference network's time around the kept timings (median over the rounds of the mean of
    /// the reference timings just before and after; ms): the machine's speed when this network was
    /// measured (``LatencyTable/referenceMilliseconds``).
    public var referenceMilliseconds: Double

    /// The median expressed at the machine speed whose reference time is `reference` (ms): scaled
    /// by `reference` over the reference's time around this measurement (a table's speed:
    /// ``LatencyTable/referenceMilliseconds``).
    public func medianMilliseconds(atReference reference: Double) -> Double {
        medianMilliseconds * reference / referenceMilliseconds
    }
}

/// One network timed on the measurement protocol's clock: built from its graph with seeded weights
/// and a seeded batch-1 input, each timing `warmup` untimed passes then `repeats` timed ones. The
/// protocol times every network with it, and the reference network (``reference(threads:protocol:)``)
/// tells how fast the machine runs right now. Call ``time(repeats:)`` inside a ``ComputeContext`` of
/// the thread count being measured.
public struct NetworkTimer {
    let network: Network
    let input: Tensor
    let settings: LatencyProtocol
    let clock: LatencyMeasurement.Clock

    public init(_ graph: NetworkGraph, threads: Int, protocol p: LatencyProtocol = LatencyProtocol(), seed: UInt64 = 0) throws {
        var rng = SeededGenerator(seed: seed)
        network = try Network(graph: graph, rng: &rng)
        let s = graph.inputShape
        input = Tensor(shape: [1, s.channels, s.height, s.width], values: (0..<s.elementCount).map { _ in rng.nextUnitFloat() * 2 - 1 })
        settings = p
        clock = p.clock(threads: threads)
    }

    /// The timer of ``LatencyProtocol/referenceGraph``.
    public static func reference(threads: Int, protocol p: LatencyProtocol = LatencyProtocol()) throws -> NetworkTimer {
        try NetworkTimer(LatencyProtocol.referenceGraph, threads: threads, protocol: p)
    }

    /// One timing: the median and the fastest of `repeats` passes after the warm-up (ms).
    public func time(repeats: Int) throws -> (median: Double, minimum: Double) {
        for _ in 0..<settings.warmup { _ = try network.forward(input, training: false) }
        var samples = [Double]()
        samples.reserveCapacity(repeats)
        for _ in 0..<max(1, repeats) {
            let t0 = clock.nanoseconds()
            _ = try network.forward(input, training: false)
            samples.append(Double(clock.nanoseconds() - t0) / 1e6)
        }
        let sorted = samples.sorted()
        return (median(sorted), sorted[0])
    }

    /// One reference timing: the median of the protocol's `referenceRepeats` passes (ms).
    public func referenceTime() throws -> Double { try time(repeats: settings.referenceRepeats).median }

    /// The median of `timings` timings on `threads` compute threads, `spacing` seconds apart (ms):
    /// the machine's current reference time, compared with a table's
    /// ``LatencyTable/referenceMilliseconds`` by ``LatencyTable/currentSlowdown(protocol:timings:)``.
    /// Spread out, a disturbance of a few milliseconds hits one timing, not the median (five
    /// back-to-back timings once came out 1.41× the table's for a moment's disturbance).
    public static func measureReference(threads: Int, protocol p: LatencyProtocol = LatencyProtocol(), timings: Int = 15,
                               spacing: TimeInterval = 0.002) throws -> Double {
        let timer = try NetworkTimer.reference(threads: threads, protocol: p)
        return try ComputeContext(threads: threads).run {
            var values = [Double]()
            for i in 0..<max(1, timings) {
                if i > 0, spacing > 0 { Thread.sleep(forTimeInterval: spacing) }
                values.append(try timer.referenceTime())
            }
            return median(values.sorted())
        }
    }
}

extension LatencyMeasurement {
    /// Measures the batch-1 forward latency of every graph with `protocol` on `threads` compute threads.
    ///
    /// - Parameter progress: called after each timing with (timings done, total).
    public static func measure(_ graphs: [NetworkGraph], threads: Int, protocol p: LatencyProtocol = LatencyProtocol(),
                               reference: NetworkGraph = LatencyProtocol.referenceGraph, seed: UInt64 = 0,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> [ProtocolLatency] {
        precondition(threads >= 1 && p.repeats >= 1 && p.rounds >= 1)
        let clock = p.clock(threads: threads)
        return try ComputeContext(threads: threads).run {
            let referenceTimer = try NetworkTimer(reference, threads: threads, protocol: p, seed: seed)
            var quiet = try referenceTimer.referenceTime()
            var results = [(rounds: [Double], ratios: [Double], references: [Double], minimum: Double, disturbed: Int, retries: Int)](
                repeating: ([], [], [], .infinity, 0, 0), count: graphs.count)
            var done = 0
            for round in 0..<p.rounds {
                for step in graphs.indices {
                    let i = (step + round * max(1, graphs.count / p.rounds)) % graphs.count
                    let network = try NetworkTimer(graphs[i], threads: threads, protocol: p, seed: seed)
                    var best: (median: Double, minimum: Double, ratio: Double, reference: Double)?
                    for attempt in 0...max(0, p.retries) {
                        let before = try referenceTimer.referenceTime()
                        let m = try network.time(repeats: p.repeats)
                        let after = try referenceTimer.referenceTime()
                        quiet = min(quiet, before, after)
                        let ratio = max(before, after) / quiet
                        if best == nil || ratio < best!.ratio { best = (m.median, m.minimum, ratio, (before + after) / 2) }
                        results[i].minimum = min(results[i].minimum, m.minimum)
                        if ratio <= 1 + p.referenceTolerance { break }
                        if attempt < p.retries { results[i].retries += 1 }
                    }
                    results[i].rounds.append(best!.median)
                    results[i].ratios.append(best!.ratio)
                    results[i].references.append(best!.reference)
                    if best!.ratio > 1 + p.referenceTolerance { results[i].disturbed += 1 }
                    done += 1
                    progress(done, graphs.count * p.rounds)
                }
            }
            return results.map { r in
                ProtocolLatency(medianMilliseconds: median(r.rounds.sorted()), minimumMilliseconds: r.minimum, roundMedians: r.rounds,
                                referenceRatios: r.ratios, disturbedRounds: r.disturbed, retries: r.retries, clock: clock, threads: threads,
                                referenceMilliseconds: median(r.references.sorted()))
            }
        }
    }
}
