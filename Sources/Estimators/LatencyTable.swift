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
    /// `EngineConfiguration.kernelsDescription`: the BLAS and NASLab's direct kernels (revision and
    /// instruction set), stored as the `blas` attribute.
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
                              blasDescription: EngineConfiguration.kernelsDescription,
                              date: formatter.string(from: Date()), naslabVersion: naslabVersion)
    }

    /// Whether measurements made under `other` are comparable (same CPU, threads, batch, BLAS and
    /// direct kernels).
    public func isCompatible(with other: LatencyMachine) -> Bool {
        cpuModel == other.cpuModel && threadCount == other.threadCount && batchSize == other.batchSize
            && blasDescription == other.blasDescription
    }
}

/// One measured kernel of a latency table.
public struct LatencyEntry: Hashable, Codable, Sendable {
    /// Median time of the kernel alone (or of the network boundary), in milliseconds.
    public var medianMilliseconds: Double
    /// Fastest sample, in milliseconds.
    public var minimumMilliseconds: Double
    /// Number of timed samples.
    public var sampleCount: Int
    /// The kernel's regressor family (``LatencyKernel/family``; "" for entries without features).
    public var family: String
    /// The kernel's features (``LatencyKernel/features``), the regressors' training input.
    public var features: [Double]

    public init(medianMilliseconds: Double, minimumMilliseconds: Double, sampleCount: Int, family: String = "",
                features: [Double] = []) {
        self.medianMilliseconds = medianMilliseconds
        self.minimumMilliseconds = minimumMilliseconds
        self.sampleCount = sampleCount
        self.family = family
        self.features = features
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
    /// The fastest sample: the undisturbed latency (compare with `minimumMilliseconds`).
    case minimum
}

/// Where a kernel's predicted time comes from.
public enum KernelLatencySource: String, Hashable, Codable, Sendable {
    /// The table's measured entry for exactly this kernel.
    case table
    /// The family's regressor (the kernel was never measured).
    case regressor
}

/// The predicted latency of one kernel of a network.
public struct KernelLatency: Hashable, Codable, Sendable {
    /// The kernel's nodes' names joined with `+` (`conv+bn+relu`).
    public var name: String
    public var key: String
    public var milliseconds: Double
    public var source: KernelLatencySource
}

/// A predicted forward latency: per-kernel times plus the calibrated network-level terms.
public struct LatencyPrediction: Hashable, Codable, Sendable {
    /// Predicted median forward-pass latency, in milliseconds.
    public var totalMilliseconds: Double
    /// The network-boundary kernel (input loading, output conversion).
    public var boundaryMilliseconds: Double
    /// What the calibration adds to the plain sum of the kernels (may be negative).
    public var overheadMilliseconds: Double
    /// Every kernel but the boundary, in execution order.
    public var kernels: [KernelLatency]
    /// Kernels predicted by a regressor rather than looked up.
    public var regressedKernelCount: Int { kernels.filter { $0.source == .regressor }.count }
}

extension LatencyTable {
    /// Where latency tables live when none is named: a per-user cache, shared by every
    /// experiment of this user on this machine — `$NASLAB_CACHE_DIR/latency-table.h5`, else
    /// `$XDG_CACHE_HOME/naslab/latency-table.h5`, else `~/.cache/naslab/latency-table.h5`.
    /// One file holds one table per (thread count, batch size). (A server's searches use
    /// `<data-dir>/latency-table.h5` instead; the directory is ``UserCache/directory``.)
    public static var defaultPath: String { UserCache.path("latency-table.h5") }
}

/// Fitted regressors of a table, computed when first needed and dropped when entries change.
final class LatencyRegressorCache: @unchecked Sendable {
    private let lock = NSLock()
    private var models: [LatencyStatistic: [String: KernelRegressor]] = [:]
    private var network: KernelRegressor??

    /// A new cache with the same kernel regressors and no network-level model (for a table whose
    /// calibration networks changed; copies of a table share their cache).
    func keepingKernelModels() -> LatencyRegressorCache {
        lock.lock()
        defer { lock.unlock() }
        let copy = LatencyRegressorCache()
        copy.models = models
        return copy
    }

    func networkModel(fit: () -> KernelRegressor?) -> KernelRegressor? {
        lock.lock()
        defer { lock.unlock() }
        if let m = network { return m }
        let m = fit()
        network = .some(m)
        return m
    }

    func models(_ statistic: LatencyStatistic, fit: () -> [String: KernelRegressor]) -> [String: KernelRegressor] {
        lock.lock()
        defer { lock.unlock() }
        if let m = models[statistic] { return m }
        let m = fit()
        models[statistic] = m
        return m
    }
}

/// This machine's kernel-level latency predictor for one thread count and batch size
/// (nn-Meter's design): the kernels of a network (``LatencyKernel``: the engine's fused
/// conv → BN → activation chains and every other node, plus the boundary) are looked up in a
/// table of measured kernels, or — for kernels never measured — predicted by a regressor of their
/// family (``KernelRegressor``, fitted on the table's entries); the network's latency is
///
///     Σ_groups scale_group × Σ kernels of the group + perKernelOverhead × kernel count
///       + perMegabyte × MB of kernel inputs and outputs + perNetworkOverhead + boundary
///
/// with the scales 1 and the overheads 0 unless calibrated on whole networks (`calibrate`); the
/// groups are convolution kernels, sequence kernels (conv1d, attention, layer norm, embedding,
/// sequence pooling) and the rest. A calibrated table also keeps its calibration networks'
/// network-level features (``networkFeatures(of:)``) and measured medians; when a
/// ``KernelRegressor`` fitted on them beats the linear terms in 5-fold cross-validation, it
/// predicts the median from those features (``networkModel()``): what kernels cost together
/// that they do not cost alone is not linear in the sums.
///
/// ```swift
/// var table = try LatencyTable.load(path: LatencyTable.defaultPath, threads: 1)
/// let ms = try table.predict(graph).totalMilliseconds            // entries, else regressors
/// try table.predict(graph, measuringMissing: true)               // measure unseen kernels first
/// ```
///
/// References:
/// - L. L. Zhang et al., "nn-Meter: towards accurate latency prediction of deep-learning model
///   inference on diverse edge devices", MobiSys 2021 (kernel detection, per-kernel regressors,
///   adaptive sampling, ±10 % accuracy metric).
/// - H. Cai et al., "ProxylessNAS: direct neural architecture search on target task and hardware",
///   ICLR 2019 (latency lookup tables for NAS).
public struct LatencyTable: Hashable, Codable, Sendable {
    public var machine: LatencyMachine
    public var settings: LatencyTableSettings
    /// Kernel key (``LatencyKernel/key``) → measured entry.
    public var entries: [String: LatencyEntry] { didSet { cache = LatencyRegressorCache() } }
    /// Calibrated factor on the sum of the kernels of each calibration group
    /// (``calibrationGroup(of:)``; a group without a factor: 1).
    public var scales: [String: Double]
    /// Calibrated cost per kernel beyond its entry (ms; may be negative).
    public var perKernelOverheadMilliseconds: Double
    /// Calibrated cost per megabyte of kernel inputs and outputs (ms/MB): inside a network the
    /// buffers are colder than when a kernel is timed alone.
    public var perMegabyteMilliseconds: Double = 0
    /// Calibrated cost per network beyond its boundary entry (ms; may be negative).
    public var perNetworkOverheadMilliseconds: Double
    /// How the calibration terms were obtained ("" when not calibrated).
    public var calibrationNote: String
    /// The machine's speed the table is expressed at: the median time (ms) of
    /// ``LatencyProtocol/referenceGraph`` on the protocol's clock for this thread count while the
    /// first entries were measured. Entries measured later and calibration medians are rescaled to
    /// it by the reference timed alongside them, and ``predict(_:statistic:useRegressors:networkLevel:slowdown:)``
    /// takes the current speed (``currentSlowdown(protocol:timings:)``). 0: unknown (no rescaling).
    public var referenceMilliseconds: Double = 0
    /// The networks the table was calibrated on: network-level features and measured medians
    /// (the network-level model's training points; empty when not calibrated).
    public var calibrationNetworks: [CalibrationNetwork] = [] { didSet { cache = cache.keepingKernelModels() } }
    /// Fewest entries of a family for its regressor (fewer: unseen kernels of it are missing).
    public static let minimumEntriesForRegressor = 6

    private var cache = LatencyRegressorCache()

    private enum CodingKeys: String, CodingKey {
        case machine, settings, entries, scales, perKernelOverheadMilliseconds, perMegabyteMilliseconds, perNetworkOverheadMilliseconds, calibrationNote
        case calibrationNetworks, referenceMilliseconds
    }

    public static func == (a: LatencyTable, b: LatencyTable) -> Bool {
        a.machine == b.machine && a.settings == b.settings && a.entries == b.entries && a.scales == b.scales
            && a.perKernelOverheadMilliseconds == b.perKernelOverheadMilliseconds && a.perMegabyteMilliseconds == b.perMegabyteMilliseconds
            && a.perNetworkOverheadMilliseconds == b.perNetworkOverheadMilliseconds && a.calibrationNote == b.calibrationNote
            && a.calibrationNetworks == b.calibrationNetworks && a.referenceMilliseconds == b.referenceMilliseconds
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(machine)
        hasher.combine(entries.count)
        hasher.combine(scales)
    }

    public init(machine: LatencyMachine, settings: LatencyTableSettings = LatencyTableSettings(),
                entries: [String: LatencyEntry] = [:], scales: [String: Double] = [:], perKernelOverheadMilliseconds: Double = 0,
                perNetworkOverheadMilliseconds: Double = 0, calibrationNote: String = "") {
        self.machine = machine
        self.settings = settings
        self.entries = entries
        self.scales = scales
        self.perKernelOverheadMilliseconds = perKernelOverheadMilliseconds
        self.perNetworkOverheadMilliseconds = perNetworkOverheadMilliseconds
        self.calibrationNote = calibrationNote
    }

    /// This table with the entries of `other` it lacks, each rescaled from `other`'s reference time
    /// to this table's (the same kernel at this table's speed); this table's own entries,
    /// calibration and machine stay. What a search adds to the table on file (``SaveMode/addEntries``).
    public func adding(entriesOf other: LatencyTable) -> LatencyTable {
        var merged = self
        let factor = referenceMilliseconds > 0 && other.referenceMilliseconds > 0
            ? referenceMilliseconds / other.referenceMilliseconds : 1
        for (key, entry) in other.entries where entries[key] == nil {
            var rescaled = entry
            rescaled.medianMilliseconds *= factor
            rescaled.minimumMilliseconds *= factor
            merged.entries[key] = rescaled
        }
        return merged
    }

    /// The per-family regressors fitted on the entries (families with at least
    /// ``minimumEntriesForRegressor`` entries), for the given statistic.
    public func regressors(statistic: LatencyStatistic = .median) -> [String: KernelRegressor] {
        let entries = self.entries
        return cache.models(statistic) {
            var byFamily = [String: [LatencyEntry]]()
            for key in entries.keys.sorted() {
                let e = entries[key]!
                guard !e.family.isEmpty, !e.features.isEmpty else { continue }
                byFamily[e.family, default: []].append(e)
            }
            var models = [String: KernelRegressor]()
            for (family, list) in byFamily {
                let width = list[0].features.count
                let points = list.filter { $0.features.count == width }
                guard points.count >= Self.minimumEntriesForRegressor else { continue }
                models[family] = KernelRegressor.fit(
                    features: points.map(\.features),
                    milliseconds: points.map { statistic == .median ? $0.medianMilliseconds : $0.minimumMilliseconds })
            }
            return models
        }
    }

    /// The kernels of `graph` that the table has no entry for (boundary included), by key, sorted.
    public func missingKeys(for graph: NetworkGraph) throws -> [String] {
        Set(try LatencyKernel.kernels(of: graph).map(\.key).filter { entries[$0] == nil }).sorted()
    }

    /// The kernels of `graph` that neither an entry nor a regressor covers, by key, sorted.
    public func unpredictableKeys(for graph: NetworkGraph) throws -> [String] {
        let models = regressors()
        return Set(try LatencyKernel.kernels(of: graph).filter { entries[$0.key] == nil && models[$0.family] == nil }.map(\.key)).sorted()
    }

    /// Predicts the forward latency of `graph` (batch size and threads of the table).
    /// - Parameters:
    ///   - statistic: predict the median (default) or the minimum.
    ///   - useRegressors: kernels without an entry are predicted by their family's regressor
    ///     (default); `false`: they are missing.
    /// - Throws: `LatencyTableError.missingKeys` listing every kernel neither an entry nor a
    ///   regressor covers; `NetworkGraphError` for inconsistent graphs.
    ///   - networkLevel: use the network-level model when the table has one (default); `false`:
    ///     the linear calibration terms only.
    ///   - slowdown: the machine's current reference time over the table's
    ///     (``currentSlowdown(protocol:timings:)``; 1: predict at the table's speed, 1.1: the machine
    ///     runs 10 % slower now). Every part of the prediction is multiplied by it.
    public func predict(_ graph: NetworkGraph, statistic: LatencyStatistic = .median,
                        useRegressors: Bool = true, networkLevel: Bool = true, slowdown: Double = 1) throws -> LatencyPrediction {
        let kernels = try LatencyKernel.kernels(of: graph)
        let models = useRegressors ? regressors(statistic: statistic) : [:]
        var missing = Set<String>()
        var parts = [KernelLatency]()
        var boundary = 0.0
        for kernel in kernels {
            let ms: Double
            let source: KernelLatencySource
            if let e = entries[kernel.key] {
                ms = statistic == .median ? e.medianMilliseconds : e.minimumMilliseconds
                source = .table
            } else if let model = models[kernel.family] {
                ms = model.predict(kernel.features)
                source = .regressor
            } else {
                missing.insert(kernel.key)
                continue
            }
            if kernel.isBoundary {
                boundary = ms
            } else {
                parts.append(KernelLatency(name: kernel.nodes.map { graph.nodes[$0].name }.joined(separator: "+"),
                                           key: kernel.key, milliseconds: ms, source: source))
            }
        }
        guard missing.isEmpty else { throw LatencyTableError.missingKeys(missing.sorted()) }
        let sum = parts.reduce(0) { $0 + $1.milliseconds }
        let operations = kernels.filter { !$0.isBoundary }
        let scaled = zip(parts, operations).reduce(0.0) { $0 + (scales[Self.calibrationGroup(of: $1.1.family)] ?? 1) * $1.0.milliseconds }
        let megabytes = perMegabyteMilliseconds == 0 ? 0 : Self.megabytes(operations)
        var total = scaled + perKernelOverheadMilliseconds * Double(parts.count) + perMegabyteMilliseconds * megabytes
            + perNetworkOverheadMilliseconds + boundary
        if networkLevel, statistic == .median, let model = networkModel() {
            total = model.predict(Self.networkFeatures(linear: total, boundary: boundary, parts: parts, kernels: kernels))
        }
        return LatencyPrediction(totalMilliseconds: slowdown * total, boundaryMilliseconds: slowdown * boundary,
                                 overheadMilliseconds: slowdown * (total - sum - boundary),
                                 kernels: parts.map { var k = $0; k.milliseconds *= slowdown; return k })
    }

    /// The network-level features of `graph` under this table (see ``networkFeatures(linear:boundary:parts:kernels:)``).
    public func networkFeatures(of graph: NetworkGraph) throws -> [Double] {
        let p = try predict(graph, networkLevel: false)
        return Self.networkFeatures(linear: p.totalMilliseconds, boundary: p.boundaryMilliseconds, parts: p.kernels,
                                    kernels: try LatencyKernel.kernels(of: graph))
    }

    /// A network's features for the network-level model: the linearly calibrated prediction
    /// (first: the model's cost law is mostly a factor on it), kernel count, megabytes moved, the
    /// boundary, the uncalibrated sums of the convolution, sequence and other kernels, the MACs,
    /// the largest kernel's share and the input elements.
    static func networkFeatures(linear: Double, boundary: Double, parts: [KernelLatency], kernels: [LatencyKernel]) -> [Double] {
        let operations = kernels.filter { !$0.isBoundary }
        var groups = [Double](repeating: 0, count: calibrationGroups.count)
        for (part, kernel) in zip(parts, operations) { groups[calibrationGroups.firstIndex(of: calibrationGroup(of: kernel.family))!] += part.milliseconds }
        let sum = parts.reduce(0) { $0 + $1.milliseconds }
        let inputElements = kernels.first(where: \.isBoundary)?.features.first ?? 0
        return [linear, Double(parts.count), megabytes(operations), boundary] + groups
            + [operations.reduce(0) { $0 + ($1.features.first ?? 0) }, sum > 0 ? (parts.map(\.milliseconds).max() ?? 0) / sum : 0, inputElements]
    }

    /// Fitting settings of the network-level model: few points, so shallow trees and large leaves.
    public static let networkModelSettings: KernelRegressor.Settings = {
        var s = KernelRegressor.Settings()
        s.rounds = 80
        s.depth = 2
        s.minimumLeaf = 8
        return s
    }()

    /// Fewest calibration networks for a network-level model.
    public static let minimumNetworksForNetworkModel = 30

    /// The network-level model fitted on ``calibrationNetworks``, or `nil` when there are fewer
    /// than ``minimumNetworksForNetworkModel`` of them or its 5-fold cross-validated mean
    /// |relative error| is not clearly below the linear calibration's on the same networks
    /// (``networkModelCrossValidation()``).
    public func networkModel() -> KernelRegressor? {
        let points = calibrationNetworks
        return cache.networkModel {
            guard let check = Self.networkModelCrossValidation(points), check.modelIsBetter else { return nil }
            return KernelRegressor.fit(features: points.map(\.features), milliseconds: points.map(\.milliseconds),
                                       settings: Self.networkModelSettings)
        }
    }

    /// How much lower (absolute, in relative-error units) the network-level model's cross-validated
    /// mean |error| must be than the linear calibration's for the model to be used: half a
    /// percentage point — less is within what repeated timings of one network differ by.
    public static let requiredNetworkModelGain = 0.005

    /// The relative errors on the calibration networks of the network-level model in 5-fold
    /// cross-validation and of the linear calibration, and whether the model's mean |error| is
    /// lower by at least ``requiredNetworkModelGain``; `nil` below ``minimumNetworksForNetworkModel`` networks.
    public func networkModelCrossValidation() -> (model: [Double], linear: [Double], modelIsBetter: Bool)? {
        Self.networkModelCrossValidation(calibrationNetworks)
    }

    static func networkModelCrossValidation(_ points: [CalibrationNetwork]) -> (model: [Double], linear: [Double], modelIsBetter: Bool)? {
        guard points.count >= minimumNetworksForNetworkModel else { return nil }
        let x = points.map(\.features), y = points.map(\.milliseconds)
        let model = KernelRegressor.crossValidatedErrors(features: x, milliseconds: y, folds: 5, settings: networkModelSettings)
        let linear = zip(x, y).map { ($0[0] - $1) / $1 }
        func meanAbsolute(_ e: [Double]) -> Double { e.reduce(0) { $0 + abs($1) } / Double(e.count) }
        return (model, linear, meanAbsolute(model) < meanAbsolute(linear) - requiredNetworkModelGain)
    }

    /// Measures the kernels of `graph` the table lacks, adds them, and predicts it (at `slowdown`).
    ///
    /// Uses the table's settings and thread count.
    /// - Throws: `LatencyTableError.incompatibleMachine` if this machine differs from the table's.
    @discardableResult
    public mutating func predict(_ graph: NetworkGraph, measuringMissing: Bool, slowdown: Double = 1) throws -> LatencyPrediction {
        if measuringMissing { try measureMissingEntries(for: [graph]) }
        return try predict(graph, slowdown: slowdown)
    }

    /// Megabytes of float32 inputs and outputs of `kernels` (features 2 and 3).
    static func megabytes(_ kernels: [LatencyKernel]) -> Double {
        kernels.reduce(0) { $0 + ($1.features[2] + $1.features[3]) * 4 / 1e6 }
    }

    /// The calibration groups, in a fixed order.
    public static let calibrationGroups = ["convolution", "sequence", "other"]

    /// The calibration group of a kernel family: `convolution` (2-D convolutions and their fused
    /// chains, transposed convolutions), `sequence` (conv1d, self-attention, layer norm, embedding,
    /// sequence pooling) or `other`.
    public static func calibrationGroup(of family: String) -> String {
        let first = family.split(separator: "+").first.map { String($0.split(separator: "[").first ?? "") } ?? ""
        // The ops' own kind names (a spelled-out list had drifted: the sequence poolings fell into "other").
        if [Conv2d.kind, ConvTranspose2d.kind].contains(first) { return "convolution" }
        if [Conv1d.kind, SelfAttention.kind, LayerNorm.kind, Embedding.kind, SequenceMaxPool.kind, SequenceMeanPool.kind].contains(first) {
            return "sequence"
        }
        return "other"   // every other op, by definition of the group
    }

    /// Architectures per space measured whole to calibrate a table when none is said
    /// (`naslab latency build-table --calibration`, `naslab-bench latency`).
    public static let defaultCalibrationNetworksPerSpace = 40

    /// Fits the calibration terms on whole networks: weighted least squares (relative errors) of
    /// `measured − boundary ≈ Σ_g scale_g · Σ kernels of group g + perKernel · kernels + perMB · MB + perNetwork`
    /// (MB: megabytes of the kernels' inputs and outputs),
    /// with a weak prior towards the uncalibrated model and the scales kept in [0.5, 2]. A group
    /// that none of the networks has keeps scale 1.
    /// - Returns: the calibrated table's relative errors on the given networks.
    @discardableResult
    public mutating func calibrate(on networks: [(graph: NetworkGraph, milliseconds: Double)], note: String) throws -> [Double] {
        guard networks.count >= 3 else { throw LatencyTableError.invalidArgument("calibration needs at least 3 networks, got \(networks.count)") }
        scales = [:]; perKernelOverheadMilliseconds = 0; perNetworkOverheadMilliseconds = 0; perMegabyteMilliseconds = 0
        calibrationNetworks = []
        let groups = Self.calibrationGroups
        let width = groups.count + 3
        var rows = [[Double]](), targets = [Double]()
        for n in networks {
            let p = try predict(n.graph)
            let kernels = try LatencyKernel.kernels(of: n.graph).filter { !$0.isBoundary }
            var row = [Double](repeating: 0, count: width)
            for (part, kernel) in zip(p.kernels, kernels) { row[groups.firstIndex(of: Self.calibrationGroup(of: kernel.family))!] += part.milliseconds }
            row[groups.count] = Double(p.kernels.count)
            row[groups.count + 1] = 1
            row[groups.count + 2] = Self.megabytes(kernels)
            rows.append(row)
            targets.append(n.milliseconds - p.boundaryMilliseconds)
        }
        var m = [[Double]](repeating: [Double](repeating: 0, count: width), count: width), b = [Double](repeating: 0, count: width)
        for (row, (target, n)) in zip(rows, zip(targets, networks)) {
            let w = 1 / (n.milliseconds * n.milliseconds)
            for p in 0..<width {
                b[p] += w * row[p] * target
                for q in 0..<width { m[p][q] += w * row[p] * row[q] }
            }
        }
        // A weak prior towards the uncalibrated model (scales 1, overheads 0) keeps the fit sane on few networks.
        for p in 0..<width {
            let prior = 1e-3 * (m[p][p] + 1e-12)
            m[p][p] += prior
            if p < groups.count { b[p] += prior }
        }
        if let w = KernelRegressor.solve(m, b) {
            for (g, group) in groups.enumerated() where rows.contains(where: { $0[g] > 0 }) { scales[group] = min(2, max(0.5, w[g])) }
            perKernelOverheadMilliseconds = w[groups.count]
            perNetworkOverheadMilliseconds = w[groups.count + 1]
            perMegabyteMilliseconds = w[groups.count + 2]
        }
        calibrationNote = note
        calibrationNetworks = try networks.map { CalibrationNetwork(features: try networkFeatures(of: $0.graph), milliseconds: $0.milliseconds) }
        return try networks.map { (try predict($0.graph).totalMilliseconds - $0.milliseconds) / $0.milliseconds }
    }
}

/// A whole network a latency table was calibrated on (``LatencyTable/calibrationNetworks``).
public struct CalibrationNetwork: Hashable, Codable, Sendable {
    /// ``LatencyTable/networkFeatures(of:)`` at calibration.
    public var features: [Double]
    /// The measured median (ms).
    public var milliseconds: Double

    public init(features: [Double], milliseconds: Double) {
        self.features = features
        self.milliseconds = milliseconds
    }
}
