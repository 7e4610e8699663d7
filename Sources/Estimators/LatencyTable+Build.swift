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

/// One op to measure: its key, the op and its input shapes.
struct LatencyWorkItem {
    var key: String
    var op: any GraphOp
    var inputShapes: [FeatureShape]
    /// For boundary items: the output shape (then `op` is unused).
    var boundaryOutput: FeatureShape?
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
    /// and every distinct key of their nodes and boundaries is measured once.
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
        var table = LatencyTable.empty(threads: threads, batchSize: batchSize, settings: settings, naslabVersion: naslabVersion)
        try table.measureMissingEntries(for: graphs, progress: progress)
        return table
    }

    /// Measures every key `graphs` need that the table lacks and adds it.
    ///
    /// Sets the table's thread count during the measurements (restored afterwards).
    /// - Returns: the keys added, in measurement order.
    /// - Throws: `LatencyTableError.incompatibleMachine` if this machine (CPU, BLAS) differs from
    ///   the table's; `NetworkGraphError`/`EngineError` for bad graphs.
    @discardableResult
    public mutating func measureMissingEntries(for graphs: [NetworkGraph],
                                               progress: (LatencyTableProgress) -> Void = { _ in }) throws -> [String] {
        let here = LatencyMachine.current(threadCount: machine.threadCount, batchSize: machine.batchSize,
                                          naslabVersion: machine.naslabVersion)
        guard here.isCompatible(with: machine) else { throw LatencyTableError.incompatibleMachine(table: machine, current: here) }
        var items = [LatencyWorkItem]()
        var queued = Set<String>()
        for graph in graphs {
            let shapes = try graph.inferShapes()
            for node in graph.nodes {
                let inputs = node.inputs.map { shapes[$0] }
                guard let key = LatencyKey.key(for: node.op, inputShapes: inputs),
                      entries[key] == nil, queued.insert(key).inserted else { continue }
                items.append(LatencyWorkItem(key: key, op: node.op, inputShapes: inputs, boundaryOutput: nil))
            }
            let boundary = LatencyKey.boundary(input: graph.inputShape, output: shapes[graph.output])
            if entries[boundary] == nil, queued.insert(boundary).inserted {
                items.append(LatencyWorkItem(key: boundary, op: Identity(), inputShapes: [graph.inputShape],
                                             boundaryOutput: shapes[graph.output]))
            }
        }
        let context = ComputeContext(threads: machine.threadCount)
        let rounds = max(1, settings.rounds)
        var perRound = [[LatencyEntry]](repeating: [], count: items.count)
        var done = 0
        for _ in 0..<rounds {
            for (index, item) in items.enumerated() {
                let entry = try context.run { try LatencyTable.measure(item, batchSize: machine.batchSize, settings: settings) }
                perRound[index].append(entry)
                done += 1
                progress(.measured(key: item.key, done: done, total: items.count * rounds, milliseconds: entry.medianMilliseconds))
            }
        }
        for (index, item) in items.enumerated() {
            let runs = perRound[index]
            entries[item.key] = LatencyEntry(medianMilliseconds: median(runs.map(\.medianMilliseconds).sorted()),
                                             minimumMilliseconds: runs.map(\.minimumMilliseconds).min()!,
                                             sampleCount: runs.reduce(0) { $0 + $1.sampleCount })
        }
        return items.map(\.key)
    }

    /// A graph running `op` on inputs of the given shapes as its last node: node 0 holds the
    /// first shape; further inputs of the same shape are identities of it, others 1×1
    /// convolutions of it to their channel count (add and concat only need channels to differ).
    static func isolationGraph(op: any GraphOp, inputShapes: [FeatureShape]) throws -> NetworkGraph {
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
        graph.addNode("op", op, inputs: inputs)
        return graph
    }

    static func measure(_ item: LatencyWorkItem, batchSize: Int, settings: LatencyTableSettings) throws -> LatencyEntry {
        var rng = SeededGenerator(seed: 0x1A7E)
        let graph: NetworkGraph
        if let output = item.boundaryOutput {
            var g = NetworkGraph(inputShape: item.inputShapes[0])
            var x = g.input
            if output.height == item.inputShapes[0].height && output.width == item.inputShapes[0].width {
                g.add("conv", .conv2d(Conv2dAttributes(outChannels: output.channels, kernel: 1)), x)
            } else {
                // The conversion cost depends on the element count (flat outputs are exact).
                x = g.add("flatten", .flatten, x)
                g.add("linear", .linear(outFeatures: output.elementCount, bias: false), x)
            }
            graph = g
        } else {
            graph = try isolationGraph(op: item.op, inputShapes: item.inputShapes)
        }
        let network = try Network(graph: graph, rng: &rng)
        let shape = graph.inputShape
        var values = [Float](repeating: 0, count: batchSize * shape.elementCount)
        for i in values.indices { values[i] = rng.nextUnitFloat() * 2 - 1 }
        let input = Tensor(shape: [batchSize, shape.channels, shape.height, shape.width], values: values)
        let nanoseconds: [Double]
        if item.boundaryOutput != nil {
            guard network.outputShape.elementCount == item.boundaryOutput!.elementCount else {
                throw LatencyTableError.invalidArgument("cannot measure the boundary of a network with input \(shape) and output \(item.boundaryOutput!)")
            }
            nanoseconds = try network.timeBoundary(input: input, samples: settings.samples, warmup: settings.warmup)
        } else {
            nanoseconds = try network.timeNode(graph.output, input: input, samples: settings.samples, warmup: settings.warmup,
                                               iterations: settings.iterations, evictionBytes: settings.evictionBytes)
        }
        let sorted = nanoseconds.sorted()
        return LatencyEntry(medianMilliseconds: median(sorted) / 1e6, minimumMilliseconds: sorted[0] / 1e6,
                            sampleCount: sorted.count)
    }
}

/// Median of sorted values.
func median(_ sorted: [Double]) -> Double {
    precondition(!sorted.isEmpty)
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}
