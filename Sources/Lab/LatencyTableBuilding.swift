import Engine
import Estimators
import Foundation
import NASCore
import Spaces

/// `naslab latency build-table` and the latency columns of `naslab estimate`: this machine's
/// kernel-level latency tables (HDF5, one table per thread count in one file; see `docs/latency.md`).
public enum LatencyTableBuilding {
    public struct Summary: Sendable {
        public var path: String
        public var entries: Int
        /// Kernels added by adaptive sampling.
        public var adaptiveEntries: Int
        public var seconds: Double
        public var machine: String
        /// Relative errors of the calibrated predictor on the calibration networks (empty: not calibrated).
        public var calibrationErrors: [Double]
    }

    /// A network of `space` for the space task's default input (or `inputShape`) and input kind.
    public static func network(_ space: SearchSpace, _ architecture: Architecture, inputShape: FeatureShape?,
                               classCount: Int, vocabulary: Int? = nil) throws -> NetworkGraph {
        try space.network(for: architecture, inputShape: inputShape ?? CostEstimate.defaultInputShape(for: space.task),
                          inputKind: CostEstimate.defaultInputKind(for: space.task, vocabulary: vocabulary), classCount: classCount)
    }

    /// `samples` random architectures of every space (a fixed space: its one architecture) for
    /// every input shape (none given: the space task's default), decoded; duplicates dropped.
    public static func sampleNetworks(spaces names: [String], inputShapes: [String], classCounts: [Int], samples: Int,
                                      seed: UInt64) throws -> [NetworkGraph] {
        let spaces = try names.map { try SpaceReference.resolve($0).space }
        let shapes: [FeatureShape?] = inputShapes.isEmpty ? [nil] : try inputShapes.map { try FeatureShapeParser.parseChecked($0) }
        var graphs = [NetworkGraph]()
        var seen = Set<NetworkGraph>()
        for (offset, space) in spaces.enumerated() {
            var rng = SeededGenerator(seed: seed).derived(stream: UInt64(offset))
            for shape in shapes {
                for classes in classCounts {
                    for _ in 0..<(space.isFixed ? 1 : samples) {
                        let a = space.isFixed ? try space.parse(SearchSpace.fixedArchitectureText) : space.sample(using: &rng)
                        let graph = try network(space, a, inputShape: shape, classCount: classes)
                        if seen.insert(graph).inserted { graphs.append(graph) }
                    }
                }
            }
        }
        return graphs
    }

    /// Measures every kernel of `samples` architectures per space and input, adds neighbouring
    /// kernels by adaptive sampling, optionally calibrates on `calibration` further architectures
    /// per space (seed + 1, measured with ``LatencyProtocol``), and saves the table into `output`
    /// (other thread counts' tables in that file are kept).
    public static func build(spaces names: [String], inputShapes: [String], classCounts: [Int], samplesPerSpace: Int,
                             seed: UInt64, threads: Int, output: String, adaptiveRounds: Int = 1, adaptiveKernels: Int = 200,
                             calibration: Int = LatencyTable.defaultCalibrationNetworksPerSpace,
                             progress: @escaping (String) -> Void = { _ in }) throws -> Summary {
        let start = Date()
        let graphs = try sampleNetworks(spaces: names, inputShapes: inputShapes, classCounts: classCounts, samples: samplesPerSpace, seed: seed)
        var lastReport = Date.distantPast
        let report: (LatencyTableProgress) -> Void = { event in
            if case let .measured(_, done, total, _) = event, Date().timeIntervalSince(lastReport) > 0.5 || done == total {
                lastReport = Date()
                progress("\(threads) thread(s): measured \(done)/\(total) kernel timings")
            }
        }
        var table = LatencyTable.empty(threads: threads, naslabVersion: NASLabVersion.current)
        try table.measureMissingEntries(for: graphs, progress: report)
        let measured = table.entries.count
        try table.sampleAdaptively(graphs: graphs, rounds: adaptiveRounds, kernelsPerRound: adaptiveKernels, progress: report)
        var errors = [Double]()
        if calibration > 0 {
            let networks = try sampleNetworks(spaces: names, inputShapes: inputShapes, classCounts: classCounts,
                                              samples: calibration, seed: seed + 1)
            errors = try table.calibrate(measuring: networks, note: "\(networks.count) networks (seed \(seed + 1))", progress: { done, total in
                progress("\(threads) thread(s): calibration timing \(done)/\(total)")
            })
        }
        let directory = (output as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try table.save(path: output)
        return Summary(path: output, entries: table.entries.count, adaptiveEntries: table.entries.count - measured,
                       seconds: Date().timeIntervalSince(start),
                       machine: "\(table.machine.cpuModel), \(table.machine.threadCount) thread(s), batch \(table.machine.batchSize)",
                       calibrationErrors: errors)
    }

    /// The table `path` holds for this machine and `threads` (batch 1), or an empty one when the
    /// file is absent, unreadable, an old version or of another machine.
    public static func table(path: String, threads: Int) -> LatencyTable {
        let here = LatencyMachine.current(threadCount: threads, batchSize: 1, naslabVersion: NASLabVersion.current)
        if FileManager.default.fileExists(atPath: path), let loaded = try? LatencyTable.load(path: path, threads: threads),
           loaded.machine.isCompatible(with: here) {
            return loaded
        }
        return LatencyTable.empty(threads: threads, naslabVersion: NASLabVersion.current)
    }

    /// Predicted and measured batch-1 latencies of architectures of a space, the way searches
    /// screen `max_latency_ms` (predicted: the table at `tablePath` for this thread count, kernels it
    /// lacks measured once and saved into it, at the machine's current speed) next to
    /// ``LatencyProtocol`` measurements.
    public static func latencies(space name: String, architectures texts: [String], inputShape: FeatureShape?, classCount: Int,
                                 vocabulary: Int?, threads: Int, tablePath: String, measure: Bool,
                                 progress: @escaping (String) -> Void = { _ in }) throws -> [(predicted: Double, measured: Double?, slowdown: Double)] {
        let space = try SpaceReference.resolve(name).space
        let graphs = try texts.map { try network(space, try space.parse($0), inputShape: inputShape, classCount: classCount, vocabulary: vocabulary) }
        var table = table(path: tablePath, threads: threads)
        let added = try table.measureMissingEntries(for: graphs, progress: { event in
            if case let .measured(_, done, total, _) = event {
                progress("latency table (\(threads) thread(s), \(tablePath)): measuring kernel timing \(done)/\(total)")
            }
        })
        if !added.isEmpty {
            let directory = (tablePath as NSString).deletingLastPathComponent
            if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
            try table.save(path: tablePath, mode: .addEntries)
        }
        let slowdown = try table.currentSlowdown()
        let predicted = try graphs.map { try table.predict($0, slowdown: slowdown).totalMilliseconds }
        var measured = [Double?](repeating: nil, count: graphs.count)
        if measure {
            let results = try LatencyMeasurement.measure(graphs, threads: threads, progress: { done, total in
                progress("measuring latency: timing \(done)/\(total)")
            })
            measured = results.map(\.medianMilliseconds)
        }
        return zip(predicted, measured).map { ($0, $1, slowdown) }
    }
}
