import Dispatch
import Engine
import Foundation
import NASCore

/// Progress of a table build or of measuring missing entries.
public enum LatencyTableProgress: Sendable {
    /// Sampling and decoding architectures: `done` of `total` (space, input, classes) combinations.
    case collecting(space: String, done: Int, total: Int)
    /// Measurement `done` of `total` (entries × rounds); `key` was just measured.
    case measured(key: String, done: Int, total: Int, milliseconds: Double)
}

extension LatencyTable {
    /// An empty table for this machine.
    public static func empty(threads: Int, batchSize: Int = 1, settings: LatencyTableSettings = LatencyTableSettings(),
                             naslabVersion: String = "0.1.0") -> LatencyTable {
        LatencyTable(machine: .current(threadCount: threads, batchSize: batchSize, naslabVersion: naslabVersion),
                     settings: settings)
    }

    /// Builds a table from architectures sampled from `spaces`.
    ///
    /// For every space × input shape × class count, `samplesPerSpace` architectures are drawn
    /// (a space without decisions contributes its one architecture), decoded with `network`,
    /// and every distinct kernel (``LatencyKernel``) of them is measured once; then adaptive sampling
    /// adds neighbouring kernels where the regressors are worst (`sampleAdaptively`).
    ///
    /// - Parameters:
    ///   - spaces: the search spaces (e.g. `SearchSpace.shipped(named: "small")`).
    ///   - network: decodes an architecture: `{ space, architecture, input, classes in try space.network(for: architecture, inputShape: input, classCount: classes) }`.
    ///   - inputShapes, classCounts: all combinations are covered.
    ///   - samplesPerSpace: architectures drawn per combination (≥ 1).
    ///   - seed: seed of the sampling.
    ///   - threads: compute threads during the measurements.
    ///   - batchSize: samples per forward pass (default 1).
    ///   - settings: how entries are timed.
    ///   - progress: called after each architecture combination and after each measured key.
    /// - Example:
    /// ```swift
    /// let table = try LatencyTable.build(spaces: [small, medium], network: { s, a, i, c in try s.network(for: a, inputShape: i, classCount: c) },
    ///                                    inputShapes: [FeatureShape(channels: 1, height: 28, width: 28)], classCounts: [10],
    ///                                    samplesPerSpace: 300, seed: 1, threads: 1)
    /// try table.save(path: "Results/latency-table.h5")
    /// ```
    public static func build<Space: ArchitectureSpace>(
        spaces: [Space],
        network: (Space, Architecture, FeatureShape, Int) throws -> NetworkGraph,
        inputShapes: [FeatureShape], classCounts: [Int], samplesPerSpace: Int, seed: UInt64,
        threads: Int, batchSize: Int = 1, settings: LatencyTableSettings = LatencyTableSettings(),
        adaptiveRounds: Int = 1, adaptiveKernelsPerRound: Int = 200,
        naslabVersion: String = "0.1.0", progress: (LatencyTableProgress) -> Void = { _ in }
    ) throws -> LatencyTable {
        guard !spaces.isEmpty, !inputShapes.isEmpty, !classCounts.isEmpty else {
            throw LatencyTableError.invalidArgument("need at least one space, input shape and class count")
        }
        guard samplesPerSpace >= 1, threads >= 1, batchSize >= 1 else {
            throw LatencyTableError.invalidArgument("samplesPerSpace (\(samplesPerSpace)), threads (\(threads)) and batchSize (\(batchSize)) must be ≥ 1")
        }
        var rng = SeededGenerator(seed: seed)
        var graphs = [NetworkGraph]()
        var seen = Set<NetworkGraph>()
        for space in spaces {
            let combinations = inputShapes.count * classCounts.count
            var done = 0
            for shape in inputShapes {
                for classes in classCounts {
                    let count = space.decisions.isEmpty ? 1 : samplesPerSpace
                    for _ in 0..<count {
                        let architecture = space.decisions.isEmpty ? Architecture(choices: []) : space.sample(using: &rng)
                        let graph = try network(space, architecture, shape, classes)
                        if seen.insert(graph).inserted { graphs.append(graph) }
                    }
                    done += 1
                    progress(.collecting(space: space.name, done: done, total: combinations))
                }
            }
        }
        return try build(graphs: graphs, threads: threads, batchSize: batchSize, settings: settings,
                         adaptiveRounds: adaptiveRounds, adaptiveKernelsPerRound: adaptiveKernelsPerRound,
                         naslabVersion: naslabVersion, progress: progress)
    }

    /// Builds a table from the kernels of `graphs`: every distinct kernel is measured, then
    /// `adaptiveRounds` rounds of adaptive sampling (`sampleAdaptively`) add neighbouring kernels
    /// where the regressors are worst.
    public static func build(graphs: [NetworkGraph], threads: Int, batchSize: Int = 1,
                             settings: LatencyTableSettings = LatencyTableSettings(),
                             adaptiveRounds: Int = 1, adaptiveKernelsPerRound: Int = 200, naslabVersion: String = "0.1.0",
                             progress: (LatencyTableProgress) -> Void = { _ in }) throws -> LatencyTable {
        guard threads >= 1, batchSize >= 1 else {
            throw LatencyTableError.invalidArgument("threads (\(threads)) and batchSize (\(batchSize)) must be ≥ 1")
        }
        var table = LatencyTable.empty(threads: threads, batchSize: batchSize, settings: settings, naslabVersion: naslabVersion)
        try table.measureMissingEntries(for: graphs, progress: progress)
        try table.sampleAdaptively(graphs: graphs, rounds: adaptiveRounds, kernelsPerRound: adaptiveKernelsPerRound, progress: progress)
        return table
    }

    /// nn-Meter's adaptive sampling: fits each family's regressor with cross-validation on the
    /// entries, and for the kernels it predicts worst (|error| > 10 %) measures neighbouring
    /// configurations (half and 1.5× the channels, half and twice the spatial size) that the
    /// table lacks, so that the regressors see more points where the cost law is hard.
    /// - Parameter graphs: networks whose kernels are the starting configurations.
    /// - Returns: the number of kernels added.
    @discardableResult
    public mutating func sampleAdaptively(graphs: [NetworkGraph], rounds: Int, kernelsPerRound: Int,
                                          progress: (LatencyTableProgress) -> Void = { _ in }) throws -> Int {
        guard rounds > 0, kernelsPerRound > 0 else { return 0 }
        var known = [String: LatencyKernel]()
        for graph in graphs { for k in try LatencyKernel.kernels(of: graph) where !k.isBoundary { known[k.key] = k } }
        var added = 0
        for _ in 0..<rounds {
            var byFamily = [String: [LatencyKernel]]()
            for key in known.keys.sorted() where entries[key] != nil { byFamily[known[key]!.family, default: []].append(known[key]!) }
            var worst = [(error: Double, kernel: LatencyKernel)]()
            for family in byFamily.keys.sorted() {
                let list = byFamily[family]!
                guard list.count >= 2 * 5 else { continue }
                let errors = KernelRegressor.crossValidatedErrors(features: list.map(\.features),
                                                                  milliseconds: list.map { entries[$0.key]!.medianMilliseconds })
                for (e, k) in zip(errors, list) where e.isFinite && abs(e) > 0.10 { worst.append((abs(e), k)) }
            }
            worst.sort { $0.error > $1.error }
            var fresh = [LatencyKernel]()
            var queued = Set<String>()
            for (_, kernel) in worst {
                for n in kernel.neighbours() where entries[n.key] == nil && known[n.key] == nil && queued.insert(n.key).inserted {
                    fresh.append(n)
                }
                if fresh.count >= kernelsPerRound { break }
            }
            fresh = Array(fresh.prefix(kernelsPerRound))
            guard !fresh.isEmpty else { break }
            try measure(fresh, progress: progress)
            for k in fresh { known[k.key] = k }
            added += fresh.count
        }
        return added
    }

    /// Measures every kernel `graphs` need that the table lacks and adds it.
    ///
    /// Uses the table's thread count during the measurements.
    /// - Returns: the keys added, in measurement order.
    /// - Throws: `LatencyTableError.incompatibleMachine` if this machine (CPU, BLAS) differs from
    ///   the table's; `NetworkGraphError`/`EngineError` for bad graphs.
    @discardableResult
    public mutating func measureMissingEntries(for graphs: [NetworkGraph],
                                               progress: (LatencyTableProgress) -> Void = { _ in }) throws -> [String] {
        let kernels = try Self.distinctKernels(of: graphs) { entries[$0.key] == nil }
        try measure(kernels, progress: progress)
        return kernels.map(\.key)
    }

    /// The distinct kernels (by key, in first-seen order) of `graphs` that `keep` admits.
    static func distinctKernels(of graphs: [NetworkGraph], where keep: (LatencyKernel) -> Bool) throws -> [LatencyKernel] {
        var kernels = [LatencyKernel]()
        var queued = Set<String>()
        for graph in graphs {
            for kernel in try LatencyKernel.kernels(of: graph) where keep(kernel) && queued.insert(kernel.key).inserted {
                kernels.append(kernel)
            }
        }
        return kernels
    }

    /// Kernels timed between two timings of the reference network while measuring entries.
    static let kernelsPerReferenceTiming = 50

    /// Measures `kernels` (all of them, `settings.rounds` round-robin passes) and stores their entries.
    ///
    /// The reference network (``NetworkTimer/reference(threads:protocol:)``, the measurement protocol's clock) is timed before
    /// each round and after every ``kernelsPerReferenceTiming`` kernels. A table without a
    /// ``referenceMilliseconds`` takes the median of these timings as its own; every entry's
    /// timings are rescaled by the table's reference time over the median reference time of their
    /// round, so that kernels measured while the machine ran faster or slower (later additions by a
    /// search included) are expressed at the table's speed.
    public mutating func measure(_ kernels: [LatencyKernel], progress: (LatencyTableProgress) -> Void = { _ in }) throws {
        guard !kernels.isEmpty else { return }
        let here = LatencyMachine.current(threadCount: machine.threadCount, batchSize: machine.batchSize,
                                          naslabVersion: machine.naslabVersion)
        guard here.isCompatible(with: machine) else { throw LatencyTableError.incompatibleMachine(table: machine, current: here) }
        let context = ComputeContext(threads: machine.threadCount)
        let reference = try NetworkTimer.reference(threads: machine.threadCount)
        let rounds = max(1, settings.rounds)
        var perRound = [[LatencyEntry]](repeating: [], count: kernels.count)
        var roundReferences = [[Double]](repeating: [], count: rounds)
        var done = 0
        for round in 0..<rounds {
            roundReferences[round].append(try context.run { try reference.referenceTime() })
            for (index, kernel) in kernels.enumerated() {
                let entry = try context.run { try LatencyTable.measure(kernel, batchSize: machine.batchSize, settings: settings) }
                perRound[index].append(entry)
                done += 1
                if (index + 1) % Self.kernelsPerReferenceTiming == 0 || index == kernels.count - 1 {
                    roundReferences[round].append(try context.run { try reference.referenceTime() })
                }
                progress(.measured(key: kernel.key, done: done, total: kernels.count * rounds, milliseconds: entry.medianMilliseconds))
            }
        }
        let references = roundReferences.map { median($0.sorted()) }
        if referenceMilliseconds <= 0 { referenceMilliseconds = median(roundReferences.flatMap { $0 }.sorted()) }
        let factors = references.map { referenceMilliseconds / $0 }
        var updated = entries
        for (index, kernel) in kernels.enumerated() {
            let runs = perRound[index]
            updated[kernel.key] = LatencyEntry(medianMilliseconds: median(zip(runs, factors).map { $0.medianMilliseconds * $1 }.sorted()),
                                               minimumMilliseconds: zip(runs, factors).map { $0.minimumMilliseconds * $1 }.min()!,
                                               sampleCount: runs.reduce(0) { $0 + $1.sampleCount },
                                               family: kernel.family, features: kernel.features)
        }
        entries = updated
    }

    /// How much slower the machine runs now than when the table was measured: the reference network's current time
    /// (median of `timings` timings spread over ~50 ms, ``NetworkTimer/measureReference(threads:protocol:timings:spacing:)``) over
    /// ``referenceMilliseconds``; 1 for a table without a reference time. Pass it to `predict` to
    /// predict what the protocol would measure now.
    public func currentSlowdown(protocol p: LatencyProtocol = LatencyProtocol(), timings: Int = 15) throws -> Double {
        guard referenceMilliseconds > 0 else { return 1 }
        return try NetworkTimer.measureReference(threads: machine.threadCount, protocol: p, timings: timings) / referenceMilliseconds
    }

    /// Measures `networks` whole with the measurement protocol (``LatencyMeasurement/measure(_:threads:protocol:reference:seed:progress:)``),
    /// expresses each median at the table's speed (its reference time over the reference's time
    /// around that timing) and calibrates on them (``calibrate(on:note:)``). Kernels of them that
    /// neither an entry nor a regressor covers are measured into the table first.
    /// - Returns: the calibrated table's relative errors on the networks, at the table's speed.
    @discardableResult
    public mutating func calibrate(measuring networks: [NetworkGraph], protocol p: LatencyProtocol = LatencyProtocol(), note: String,
                                   progress: (Int, Int) -> Void = { _, _ in }) throws -> [Double] {
        // Kernels neither an entry nor a regressor covers (a small table) are measured first.
        let models = regressors()
        try measure(try Self.distinctKernels(of: networks) { entries[$0.key] == nil && models[$0.family] == nil })
        let measured = try LatencyMeasurement.measure(networks, threads: machine.threadCount, protocol: p, progress: progress)
        if referenceMilliseconds <= 0 { referenceMilliseconds = median(measured.map(\.referenceMilliseconds).sorted()) }
        let reference = referenceMilliseconds
        return try calibrate(on: zip(networks, measured).map { ($0, $1.medianMilliseconds(atReference: reference)) },
                             note: note + ", \(p.clock(threads: machine.threadCount).rawValue) clock, protocol medians at the table's reference time")
    }

    /// A graph running `op` on inputs of the given shapes as its last node: node 0 holds the
    /// first shape; further inputs of the same shape are identities of it, others 1×1
    /// convolutions of it to their channel count (add and concat only need channels to differ).
    static func isolationGraph(ops: [any GraphOp], inputShapes: [FeatureShape]) throws -> NetworkGraph {
        guard let first = inputShapes.first else {
            throw LatencyTableError.invalidArgument("an operation needs at least one input shape")
        }
        var graph = NetworkGraph(inputShape: first)
        var inputs = [graph.input]
        for (index, shape) in inputShapes.enumerated().dropFirst() {
            if shape == first {
                inputs.append(graph.add("aux\(index)", .identity, graph.input))
            } else if shape.height == first.height && shape.width == first.width {
                inputs.append(graph.add("aux\(index)", .conv2d(Conv2dAttributes(outChannels: shape.channels, kernel: 1)), graph.input))
            } else {
                throw LatencyTableError.invalidArgument("cannot build inputs \(inputShapes) for one operation")
            }
        }
        var last = graph.addNode("op0", ops[0], inputs: inputs)
        for (index, op) in ops.enumerated().dropFirst() { last = graph.addNode("op\(index)", op, inputs: [last]) }
        _ = last
        return graph
    }

    /// Times one kernel alone on this thread's `ComputeContext`.
    ///
    /// - A kernel of one node: `Network.timeNode` in a graph that ends with it (its inputs computed
    ///   just before each sample, as in a real pass).
    /// - A fused chain: whole forward passes of the graph input → chain (which the engine runs as
    ///   one kernel) minus the median boundary time of that graph (`Network.timeBoundary`).
    /// - The boundary: `Network.timeBoundary` of a one-node network with the same input and output sizes.
    static func measure(_ kernel: LatencyKernel, batchSize: Int, settings: LatencyTableSettings) throws -> LatencyEntry {
        var rng = SeededGenerator(seed: 0x1A7E)
        let graph: NetworkGraph
        if kernel.isBoundary {
            let input = kernel.inputShapes[0], output = kernel.outputShape
            var g = NetworkGraph(inputShape: input)
            var x = g.input
            if output.height == input.height && output.width == input.width {
                g.add("conv", .conv2d(Conv2dAttributes(outChannels: output.channels, kernel: 1)), x)
            } else {
                // The conversion cost depends on the element count (flat outputs are exact).
                x = g.add("flatten", .flatten, x)
                g.add("linear", .linear(outFeatures: output.elementCount, bias: false), x)
            }
            graph = g
        } else {
            graph = try isolationGraph(ops: kernel.ops, inputShapes: kernel.inputShapes)
        }
        let network = try Network(graph: graph, rng: &rng)
        let shape = graph.inputShape
        var values = [Float](repeating: 0, count: batchSize * shape.elementCount)
        for i in values.indices { values[i] = rng.nextUnitFloat() * 2 - 1 }
        let input = Tensor(shape: [batchSize, shape.channels, shape.height, shape.width], values: values)
        var nanoseconds: [Double]
        if kernel.isBoundary {
            guard network.outputShape.elementCount == kernel.outputShape.elementCount else {
                throw LatencyTableError.invalidArgument("cannot measure the boundary of a network with input \(shape) and output \(kernel.outputShape)")
            }
            nanoseconds = try network.timeBoundary(input: input, samples: settings.samples, warmup: settings.warmup)
        } else if kernel.ops.count == 1 {
            nanoseconds = try network.timeNode(graph.output, input: input, samples: settings.samples, warmup: settings.warmup,
                                               iterations: settings.iterations, evictionBytes: settings.evictionBytes)
        } else {
            let boundary = median(try network.timeBoundary(input: input, samples: settings.samples, warmup: settings.warmup).sorted())
            let overhead = Network.timerOverheadNanoseconds()
            for _ in 0..<settings.warmup { _ = try network.forward(input, training: false) }
            nanoseconds = []
            for _ in 0..<settings.samples {
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try network.forward(input, training: false)
                let elapsed = Double(DispatchTime.now().uptimeNanoseconds - t0)
                nanoseconds.append(max(0, elapsed - overhead - boundary))
            }
        }
        let sorted = nanoseconds.sorted()
        return LatencyEntry(medianMilliseconds: median(sorted) / 1e6, minimumMilliseconds: sorted[0] / 1e6,
                            sampleCount: sorted.count, family: kernel.family, features: kernel.features)
    }
}

extension LatencyTable {
    /// The share (percent) of relative errors within ±`tolerance` — nn-Meter's accuracy metric
    /// ("within 10 %"), used wherever NASLab reports a predictor's or a measurement's agreement.
    public static func percentWithin(_ relativeErrors: [Double], tolerance: Double = 0.1) -> Double {
        relativeErrors.isEmpty ? 0 : 100 * Double(relativeErrors.filter { abs($0) <= tolerance }.count) / Double(relativeErrors.count)
    }
}

/// Median of sorted values.
func median(_ sorted: [Double]) -> Double {
    precondition(!sorted.isEmpty)
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
