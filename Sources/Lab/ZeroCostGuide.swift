import Datasets
import Engine
import Foundation
import NASCore
import Records
import Search
import Spaces

/// Zero-cost guidance of a search (the `searcher` keys `proxies`, `warm_start`,
/// `prescreen_quantile`; docs/zero-cost.md "Proxy-guided search"), for every searcher:
///
/// - **Warm start**: `warm_start` = M random architectures (drawn by a generator of the
///   experiment's seed) are scored and ranked; the searcher's random draws then take them best
///   first (``SearchLedger/setWarmStart(_:)``) — random search proposes in proxy order, evolution
///   starts from the best P, local search from the best n0 and restarts from the next ones.
/// - **Pre-screening**: a proposal whose score is below the `prescreen_quantile` of the warm-start
///   scores is rejected before it costs a training or a table query (like a constraint).
///
/// Several proxies are combined by rank: an architecture's score is the mean over the proxies of
/// the fraction of warm-start values below its value (ties count half; a non-finite value counts
/// as the lowest). With one proxy this orders architectures exactly as the proxy does.
///
/// Proxy evaluations cost no query: the warm start is recorded in the record's `zero_cost` table,
/// and each candidate's proxy values in its reported values (`zero_cost_<proxy>`).
public final class ZeroCostGuide {
    public struct Settings: Equatable, Sendable {
        public var proxies: [ZeroCostProxy]
        public var warmStart: Int
        public var prescreenQuantile: Double?
        /// Mini-batch of the data-dependent proxies (from the experiment's training split).
        public var batchSize: Int
        /// Seeds the networks' weights and the mini-batch (fixed, so scores are a function of the
        /// architecture alone and can be cached across searches).
        public var seed: UInt64

        public init(proxies: [ZeroCostProxy], warmStart: Int, prescreenQuantile: Double? = nil, batchSize: Int = 64, seed: UInt64 = 0) {
            self.proxies = proxies
            self.warmStart = warmStart
            self.prescreenQuantile = prescreenQuantile
            self.batchSize = batchSize
            self.seed = seed
        }
    }

    /// One architecture's proxy values (in `settings.proxies` order) and combined score.
    public struct Evaluation: Sendable {
        public var architecture: Architecture
        public var text: String
        public var values: [Double]
        public var combined: Double
    }

    public let settings: Settings
    public let space: SearchSpace
    let inputShape: FeatureShape
    let inputKind: InputKind
    let classCount: Int
    let batch: ZeroCostBatch?
    private var cache: ZeroCostCache
    /// The warm-start values of each proxy, sorted (the reference of the combined score).
    public private(set) var reference: [[Double]] = []
    /// The combined score below which proposals are pre-screened out, once the warm start is known.
    public private(set) var threshold: Double?

    /// - Parameters:
    ///   - spaceYAML: the space's definition (part of the cache key).
    ///   - batchData: the training split the data-dependent proxies draw their mini-batch from.
    ///   - datasetName: names the data in the cache key (`nil` without data-dependent proxies).
    public init(settings: Settings, space: SearchSpace, spaceYAML: String, inputShape: FeatureShape, inputKind: InputKind, classCount: Int,
                batchData: LabeledArrays?, datasetName: String?) throws {
        guard !settings.proxies.isEmpty else { throw LabError.invalid("zero-cost guidance needs at least one proxy") }
        if let needing = settings.proxies.first(where: \.needsData), batchData == nil {
            throw LabError.invalid("proxy '\(needing.rawValue)' needs data, and this search has none (a tabular benchmark): use synflow, params or flops")
        }
        self.settings = settings
        self.space = space
        self.inputShape = inputShape
        self.inputKind = inputKind
        self.classCount = classCount
        if let batchData, settings.proxies.contains(where: \.needsData) {
            batch = try ZeroCostBatch(data: batchData, size: min(settings.batchSize, batchData.count), seed: settings.seed)
        } else {
            batch = nil
        }
        let key = [spaceYAML, "\(inputShape)", inputKind.name, "\(classCount)", "seed \(settings.seed)",
                   batch == nil ? "" : "\(datasetName ?? "") batch \(settings.batchSize)"].joined(separator: "\n")
        cache = ZeroCostCache(key: key)
    }

    /// The proxy values of `architecture` (from the per-user cache when computed before).
    public func values(of architecture: Architecture) throws -> [Double] {
        let text = space.text(of: architecture)
        var known = cache.values(text)
        let missing = settings.proxies.filter { known[$0.rawValue] == nil }
        if !missing.isEmpty {
            // One thread, whatever the search's: a score must not depend on the thread count
            // (it is cached across searches), and one forward/backward pass gains little from more.
            let scores = try ComputeContext(threads: 1).run {
                try ZeroCost.scores(space: space, architecture: architecture, inputShape: inputShape,
                                    inputKind: inputKind, classCount: classCount, proxies: missing,
                                    batch: batch, seed: settings.seed)
            }
            var fresh = [String: Double]()
            for proxy in missing { fresh[proxy.rawValue] = scores[proxy] ?? .nan }
            cache.store(text, fresh)
            known.merge(fresh) { _, new in new }
        }
        return settings.proxies.map { known[$0.rawValue]! }
    }

    /// The combined score of proxy values against the warm start (see the type's documentation).
    public func combined(_ values: [Double]) -> Double {
        guard !reference.isEmpty else { return .nan }
        var total = 0.0
        for (value, sorted) in zip(values, reference) {
            guard value.isFinite, !sorted.isEmpty else { continue }
            total += (Double(lowerBound(sorted, value)) + Double(upperBound(sorted, value))) / 2 / Double(sorted.count)
        }
        return total / Double(values.count)
    }

    public func evaluate(_ architecture: Architecture) throws -> Evaluation {
        let v = try values(of: architecture)
        return Evaluation(architecture: architecture, text: space.text(of: architecture), values: v, combined: combined(v))
    }

    /// Scores `settings.warmStart` distinct random architectures and returns them best first
    /// (ties: the first proxy's value, then drawing order); sets the reference and the threshold.
    public func warmStart(seed: UInt64, progress: (Int, Int) -> Void = { _, _ in }) throws -> [Evaluation] {
        var rng = SeededGenerator(seed: seed).derived(stream: 0x2E80_5EED)
        var drawn = [Architecture]()
        var seen = Set<Architecture>()
        var attempts = 0
        while drawn.count < settings.warmStart, attempts < settings.warmStart * 20 {
            attempts += 1
            let a = space.sample(using: &rng)
            if seen.insert(a).inserted { drawn.append(a) }
        }
        var rows = [(Architecture, [Double])]()
        for (i, a) in drawn.enumerated() {
            rows.append((a, try values(of: a)))
            progress(i + 1, drawn.count)
        }
        cache.save()
        setReference(rows.map(\.1))
        let evaluations = rows.map { Evaluation(architecture: $0.0, text: space.text(of: $0.0), values: $0.1, combined: combined($0.1)) }
        return Self.ranked(evaluations)
    }

    /// Restores the reference and threshold from a record's warm start (resume).
    public func restore(warmStartValues: [[Double]]) {
        setReference(warmStartValues)
    }

    /// Whether `evaluation` passes pre-screening (always, without `prescreen_quantile`).
    public func passes(_ evaluation: Evaluation) -> Bool {
        guard let threshold else { return true }
        return evaluation.combined >= threshold
    }

    /// Whether `architecture` passes pre-screening (`false` when its proxies cannot be computed).
    public func admits(_ architecture: Architecture) -> Bool {
        (try? passes(evaluate(architecture))) ?? false
    }

    /// What a searcher's warm start gets from a ranked warm start: the architectures that pass
    /// pre-screening, best first (the others would only be rejected).
    public func searcherStart(_ ranked: [Evaluation]) -> [Architecture] {
        ranked.filter(passes).map(\.architecture)
    }

    /// Writes newly computed values to the per-user cache.
    public func saveCache() { cache.save() }

    /// Best first: combined score, then the first proxy's value, then the given order.
    static func ranked(_ evaluations: [Evaluation]) -> [Evaluation] {
        evaluations.enumerated().sorted { x, y in
            let a = x.element, b = y.element
            if a.combined != b.combined { return a.combined > b.combined }
            let va = a.values[0].isFinite ? a.values[0] : -.infinity, vb = b.values[0].isFinite ? b.values[0] : -.infinity
            if va != vb { return va > vb }
            return x.offset < y.offset
        }.map(\.element)
    }

    private func setReference(_ rows: [[Double]]) {
        reference = settings.proxies.indices.map { p in rows.map { $0[p] }.filter(\.isFinite).sorted() }
        if let q = settings.prescreenQuantile, !rows.isEmpty {
            let scores = rows.map(combined).sorted()
            let position = q * Double(scores.count - 1)
            let low = Int(position.rounded(.down)), high = Int(position.rounded(.up))
            threshold = scores[low] + (scores[high] - scores[low]) * (position - Double(low))
        } else {
            threshold = nil
        }
    }

    private func lowerBound(_ sorted: [Double], _ value: Double) -> Int {
        var low = 0, high = sorted.count
        while low < high { let m = (low + high) / 2; if sorted[m] < value { low = m + 1 } else { high = m } }
        return low
    }

    private func upperBound(_ sorted: [Double], _ value: Double) -> Int {
        var low = 0, high = sorted.count
        while low < high { let m = (low + high) / 2; if sorted[m] <= value { low = m + 1 } else { high = m } }
        return low
    }
}

/// Proxy values already computed, kept per user (`UserCache`, `zero-cost/<key hash>.jsonl`: one
/// JSON object per architecture, values as exact decimal strings, e.g. `{"architecture": "…",
/// "values": {"synflow": "13.869150622544355"}}`) so that repeated searches of a space (e.g. 500 seeds on
/// NAS-Bench-201) score each architecture once. The key covers everything a value depends on
/// (space, input, classes, seed, data); a file that cannot be read is ignored and rewritten.
struct ZeroCostCache {
    private struct Entry: Codable {
        var architecture: String
        var values: [String: String]
    }

    let path: String
    private var entries: [String: [String: Double]] = [:]
    private var unsaved: [(String, [String: Double])] = []

    init(key: String) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        path = UserCache.path("zero-cost/\(String(hash, radix: 16)).jsonl")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        for line in text.split(separator: "\n") {
            guard let entry = try? JSONDecoder().decode(Entry.self, from: Data(line.utf8)) else { continue }
            for (name, value) in entry.values {
                if let number = Double(value) { entries[entry.architecture, default: [:]][name] = number }
            }
        }
    }

    func values(_ architecture: String) -> [String: Double] { entries[architecture] ?? [:] }

    mutating func store(_ architecture: String, _ values: [String: Double]) {
        entries[architecture, default: [:]].merge(values) { _, new in new }
        unsaved.append((architecture, values))
        if unsaved.count >= 256 { save() }
    }

    /// Appends the unsaved values to the file (best effort: a read-only cache only costs time).
    mutating func save() {
        guard !unsaved.isEmpty else { return }
        var text = ""
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        for (architecture, values) in unsaved {
            // Swift's description of a Double is the shortest text that reads back to the same bits.
            let entry = Entry(architecture: architecture, values: values.mapValues { "\($0)" })
            if let data = try? encoder.encode(entry) { text += String(decoding: data, as: UTF8.self) + "\n" }
        }
        unsaved = []
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(Data(text.utf8))
            try? handle.close()
        } else {
            // A cache: when it cannot be written the scores are computed again next time.
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        }
    }
}
