import Engine
import Foundation
import NASCore

/// The machine and settings a latency table was measured with.
public struct LatencyMachine: Hashable, Codable, Sendable {
    /// `model name` from `/proc/cpuinfo` ("unknown" elsewhere).
    public var cpuModel: String
    /// Logical processors available to the process.
    public var coreCount: Int
    /// Compute threads during the measurements (a ``ComputeContext``).
    public var threadCount: Int
    /// Samples per forward pass.
    public var batchSize: Int
    /// `EngineConfiguration.blasDescription`.
    public var blasDescription: String
    /// When the table was measured (ISO 8601, UTC).
    public var date: String
    public var naslabVersion: String

    public init(cpuModel: String, coreCount: Int, threadCount: Int, batchSize: Int, blasDescription: String,
                date: String, naslabVersion: String) {
        self.cpuModel = cpuModel
        self.coreCount = coreCount
        self.threadCount = threadCount
        self.batchSize = batchSize
        self.blasDescription = blasDescription
        self.date = date
        self.naslabVersion = naslabVersion
    }

    /// This machine, now.
    public static func current(threadCount: Int, batchSize: Int, naslabVersion: String = "0.1.0") -> LatencyMachine {
        var cpu = "unknown"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            cpu = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return LatencyMachine(cpuModel: cpu, coreCount: ProcessInfo.processInfo.activeProcessorCount,
                              threadCount: threadCount, batchSize: batchSize,
                              blasDescription: EngineConfiguration.blasDescription,
                              date: formatter.string(from: Date()), naslabVersion: naslabVersion)
    }

    /// Whether measurements made under `other` are comparable (same CPU, threads, batch, BLAS).
    public func isCompatible(with other: LatencyMachine) -> Bool {
        cpuModel == other.cpuModel && threadCount == other.threadCount && batchSize == other.batchSize
            && blasDescription == other.blasDescription
    }
}

/// One measured entry of a latency table.
public struct LatencyEntry: Hashable, Codable, Sendable {
    /// Median time of the operation alone (or of the network boundary), in milliseconds.
    public var medianMilliseconds: Double
    /// Fastest sample, in milliseconds.
    public var minimumMilliseconds: Double
    /// Number of timed samples.
    public var sampleCount: Int

    public init(medianMilliseconds: Double, minimumMilliseconds: Double, sampleCount: Int) {
        self.medianMilliseconds = medianMilliseconds
        self.minimumMilliseconds = minimumMilliseconds
        self.sampleCount = sampleCount
    }
}

/// How each table entry is timed (see `Network.timeNode`).
public struct LatencyTableSettings: Hashable, Codable, Sendable {
    /// Timed samples per entry; the entry is their median.
    public var samples: Int
    /// Untimed samples first.
    public var warmup: Int
    /// Operation runs per timed sample (their mean is the sample).
    public var iterations: Int
    /// Bytes written between samples to cool the caches (0: warm caches).
    public var evictionBytes: Int
    /// Passes over all entries, in round-robin order; an entry is the median of its passes'
    /// medians, so a transient slowdown of a shared machine during one pass does not bias it.
    public var rounds: Int

    /// Defaults: 31 samples, 3 warm-up samples, 1 run per sample, warm caches, 3 rounds.
    public init(samples: Int = 31, warmup: Int = 3, iterations: Int = 1, evictionBytes: Int = 0, rounds: Int = 3) {
        self.samples = samples
        self.warmup = warmup
        self.iterations = iterations
        self.evictionBytes = evictionBytes
        self.rounds = rounds
    }
}

/// Errors of the latency table.
public enum LatencyTableError: Error, Equatable, CustomStringConvertible {
    /// The network needs keys the table lacks (measure them with `measureMissingEntries(for:)`).
    case missingKeys([String])
    /// The file is not a latency table or lacks a field.
    case invalidFile(path: String, reason: String)
    /// A table built under other conditions (CPU, threads, batch size, BLAS) cannot absorb entries
    /// measured here.
    case incompatibleMachine(table: LatencyMachine, current: LatencyMachine)
    /// Bad arguments to `build`.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case let .missingKeys(keys):
            let shown = keys.prefix(5).joined(separator: "\n  ")
            let more = keys.count > 5 ? "\n  … and \(keys.count - 5) more" : ""
            return "the latency table has no entry for \(keys.count) key(s) of this network:\n  \(shown)\(more)\n"
                + "measure them on this machine (LatencyTable.measureMissingEntries, or rebuild the table)"
        case let .invalidFile(path, reason): return "latency table '\(path)': \(reason)"
        case let .incompatibleMachine(table, current):
            return "latency table measured on '\(table.cpuModel)' with \(table.threadCount) thread(s), batch \(table.batchSize), "
                + "\(table.blasDescription); here: '\(current.cpuModel)', \(current.threadCount) thread(s), "
                + "batch \(current.batchSize), \(current.blasDescription)"
        case let .invalidArgument(m): return "latency table: \(m)"
        }
    }
}

/// Which statistic of the timed samples a prediction uses.
public enum LatencyStatistic: String, Hashable, Codable, Sendable, CaseIterable {
    /// The median: the typical latency (compare with `LatencyMeasurement.medianMilliseconds`).
    case median
    /// The fastest sample: the undisturbed latency (compare with `minimumMilliseconds`), more
    /// stable than the median on a busy machine.
    case minimum
}

/// The latency of one node as predicted by a table.
public struct NodeLatency: Hashable, Codable, Sendable {
    public var name: String
    public var key: String
    public var milliseconds: Double
}

/// A latency predicted from a lookup table: per-node entries plus fixed overheads.
public struct LatencyPrediction: Hashable, Codable, Sendable {
    /// Predicted median forward-pass latency, in milliseconds.
    public var totalMilliseconds: Double
    /// The network-boundary entry (input loading, output conversion).
    public var boundaryMilliseconds: Double
    /// The table's calibrated overhead terms for this network (per node × node count + per network).
    public var overheadMilliseconds: Double
    /// Every computing node (the input node excluded), in graph order.
    public var nodes: [NodeLatency]
}

extension LatencyTable {
    /// Where a latency table lives when none is named: a per-user cache, shared by every
    /// experiment of this user on this machine — `$NASLAB_CACHE_DIR/latency-table.h5`, else
    /// `$XDG_CACHE_HOME/naslab/latency-table.h5`, else `~/.cache/naslab/latency-table.h5`.
    /// (A server's searches use `<data-dir>/latency-table.h5` instead.)
    /// (The directory is ``UserCache/directory``, shared with generated datasets.)
    public static var defaultPath: String { UserCache.path("latency-table.h5") }
}

/// A per-operation latency lookup table for one machine, thread count and batch size
/// (nn-Meter's kernel-level prediction, at the granularity of single IR nodes).
///
/// The prediction of a network is the sum of its nodes' entries, plus the boundary entry for its
/// input and output shapes, plus two calibrated constants (`perNodeOverheadMilliseconds` ×
/// computing nodes + `perNetworkOverheadMilliseconds`; 0 unless calibrated).
///
/// ```swift
/// var table = try LatencyTable.load(path: "Results/latency-table.h5")
/// let ms = try table.predict(graph).totalMilliseconds          // throws .missingKeys if incomplete
/// try table.measureMissingEntries(for: [graph])                  // or measure what is missing
/// ```
///
/// References:
/// - L. L. Zhang et al., "nn-Meter: towards accurate latency prediction of deep-learning model
///   inference on diverse edge devices", MobiSys 2021 (kernel-level lookup, ±10 % accuracy metric).
/// - H. Cai et al., "ProxylessNAS: direct neural architecture search on target task and hardware",
///   ICLR 2019 (per-operation latency lookup tables for NAS).
public struct LatencyTable: Hashable, Codable, Sendable {
    public var machine: LatencyMachine
    public var settings: LatencyTableSettings
    /// Key (see `LatencyKey`) → measured entry.
    public var entries: [String: LatencyEntry]
    /// Calibrated cost per computing node beyond its entry (ms; may be negative).
    public var perNodeOverheadMilliseconds: Double
    /// Calibrated cost per network beyond its boundary entry (ms; may be negative).
    public var perNetworkOverheadMilliseconds: Double
    /// How the overhead terms were obtained ("" when not calibrated).
    public var calibrationNote: String

    public init(machine: LatencyMachine, settings: LatencyTableSettings = LatencyTableSettings(),
                entries: [String: LatencyEntry] = [:], perNodeOverheadMilliseconds: Double = 0,
                perNetworkOverheadMilliseconds: Double = 0, calibrationNote: String = "") {
        self.machine = machine
        self.settings = settings
        self.entries = entries
        self.perNodeOverheadMilliseconds = perNodeOverheadMilliseconds
        self.perNetworkOverheadMilliseconds = perNetworkOverheadMilliseconds
        self.calibrationNote = calibrationNote
    }

    /// The keys `graph` needs (nodes and boundary) that the table lacks, sorted.
    public func missingKeys(for graph: NetworkGraph) throws -> [String] {
        let needed = try LatencyKey.keys(for: graph).compactMap { $0 } + [LatencyKey.boundary(for: graph)]
        return Set(needed.filter { entries[$0] == nil }).sorted()
    }

    /// Predicts the forward latency of `graph` (batch size and threads of the table).
    /// - Parameter statistic: sum the entries' medians (default) or minima.
    /// - Throws: `LatencyTableError.missingKeys` listing every key the table lacks;
    ///   `NetworkGraphError` for inconsistent graphs.
    public func predict(_ graph: NetworkGraph, statistic: LatencyStatistic = .median) throws -> LatencyPrediction {
        func value(_ entry: LatencyEntry) -> Double {
            statistic == .median ? entry.medianMilliseconds : entry.minimumMilliseconds
        }
        let keys = try LatencyKey.keys(for: graph)
        let boundaryKey = try LatencyKey.boundary(for: graph)
        let missing = try missingKeys(for: graph)
        guard missing.isEmpty else { throw LatencyTableError.missingKeys(missing) }
        var nodes = [NodeLatency]()
        nodes.reserveCapacity(graph.nodes.count)
        for (node, key) in zip(graph.nodes, keys) {
            guard let key else { continue }
            nodes.append(NodeLatency(name: node.name, key: key, milliseconds: value(entries[key]!)))
        }
        let boundary = value(entries[boundaryKey]!)
        let overhead = perNodeOverheadMilliseconds * Double(nodes.count) + perNetworkOverheadMilliseconds
        let sum = nodes.reduce(0) { $0 + $1.milliseconds }
        return LatencyPrediction(totalMilliseconds: sum + boundary + overhead, boundaryMilliseconds: boundary,
                                 overheadMilliseconds: overhead, nodes: nodes)
    }

    /// Measures the keys `graphs` need that the table lacks, adds them, and predicts each graph.
    ///
    /// Uses the table's settings; sets the table's thread count during the measurements.
    /// - Throws: `LatencyTableError.incompatibleMachine` if this machine differs from the table's.
    @discardableResult
    public mutating func predict(_ graph: NetworkGraph, measuringMissing: Bool) throws -> LatencyPrediction {
        if measuringMissing { try measureMissingEntries(for: [graph]) }
        return try predict(graph)
    }
}
