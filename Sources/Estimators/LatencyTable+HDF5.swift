import Engine
import Foundation
import HDF5Kit

/// HDF5 file layout of latency tables (format `naslab-latency-table`, version 3). One file holds
/// one table per (thread count, batch size) of one machine:
///
/// ```
/// /                         attributes: format, format_version = 3, table_count
/// /threads_<t>_batch_<b>/   attributes: cpu_model, core_count, thread_count, batch_size, blas, date,
///                           naslab_version, settings_samples, settings_warmup, settings_iterations,
///                           settings_eviction_bytes, settings_rounds, scales ("group=factor,…"), per_kernel_overhead_ms,
///                           per_network_overhead_ms, per_megabyte_ms, calibration_note, entry_count,
///                           reference_ms (the reference network's time the table is expressed at)
///     entries/key           string [n]   (sorted; see `LatencyKernel`)
///     entries/median_ms     float64 [n]
///     entries/minimum_ms    float64 [n]
///     entries/sample_count  int64 [n]
///     entries/family        string [n]   (the kernel's regressor family)
///     entries/features      string [n]   (the kernel's features, comma-separated)
///     calibration_networks/features   float64 [m, k]   (calibrated tables: `LatencyTable.networkFeatures(of:)`)
///     calibration_networks/median_ms  float64 [m]      (their measured medians)
/// ```
///
/// Older files (version 1: per-op tables, one per file; version 2: no reference time) are refused
/// with a request to rebuild.
extension LatencyTable {
    public static let fileFormat = "naslab-latency-table"
    public static let fileFormatVersion = 3

    /// The group of this table in a file.
    public var groupName: String { "threads_\(machine.threadCount)_batch_\(machine.batchSize)" }

    /// How ``save(path:mode:)`` treats the file's table of the same thread count and batch size.
    public enum SaveMode: Sendable {
        /// This table replaces it (a built or recalibrated table).
        case replace
        /// When it is of a compatible machine, the entries this table has and it lacks are added to
        /// it (rescaled to its reference time) and its calibration is kept; otherwise this table
        /// replaces it. Searches and `naslab estimate` grow the table by the kernels they measure:
        /// two of them saving at once both keep theirs.
        case addEntries
    }

    /// Writes the table to `path`, keeping the file's tables of other thread counts or batch sizes
    /// (a file that is not a readable table file is replaced). Saves are serialised by a lock
    /// (``FileLock``; across processes and threads) and replace the file atomically, so readers
    /// never see a half-written file and concurrent savers lose nothing.
    public func save(path: String, mode: SaveMode = .replace) throws {
        try FileLock.withExclusiveLock(for: path) {
            var tables = (try? LatencyTable.loadAll(path: path)) ?? []
            var saved = self
            if mode == .addEntries, let onFile = tables.first(where: { $0.groupName == groupName }), onFile.machine.isCompatible(with: machine) {
                saved = onFile.adding(entriesOf: self)
            }
            tables.removeAll { $0.groupName == groupName }
            tables.append(saved)
            tables.sort { $0.groupName < $1.groupName }
            let file = try H5File.create(path: path, truncate: true, persistence: .atomicReplace)
            defer { try? file.close() }
            try file.setAttribute("format", LatencyTable.fileFormat)
            try file.setAttribute("format_version", LatencyTable.fileFormatVersion)
            try file.setAttribute("table_count", tables.count)
            for table in tables { try table.write(into: try file.createGroup(table.groupName)) }
            try file.flush()
        }
    }

    private func write(into g: H5Group) throws {
        try g.setAttribute("cpu_model", machine.cpuModel)
        try g.setAttribute("core_count", machine.coreCount)
        try g.setAttribute("thread_count", machine.threadCount)
        try g.setAttribute("batch_size", machine.batchSize)
        try g.setAttribute("blas", machine.blasDescription)
        try g.setAttribute("date", machine.date)
        try g.setAttribute("naslab_version", machine.naslabVersion)
        try g.setAttribute("settings_samples", settings.samples)
        try g.setAttribute("settings_warmup", settings.warmup)
        try g.setAttribute("settings_iterations", settings.iterations)
        try g.setAttribute("settings_eviction_bytes", settings.evictionBytes)
        try g.setAttribute("settings_rounds", settings.rounds)
        try g.setAttribute("scales", scales.keys.sorted().map { "\($0)=\(scales[$0]!)" }.joined(separator: ","))
        try g.setAttribute("per_kernel_overhead_ms", perKernelOverheadMilliseconds)
        try g.setAttribute("per_network_overhead_ms", perNetworkOverheadMilliseconds)
        try g.setAttribute("per_megabyte_ms", perMegabyteMilliseconds)
        try g.setAttribute("calibration_note", calibrationNote)
        try g.setAttribute("reference_ms", referenceMilliseconds)
        try g.setAttribute("entry_count", entries.count)
        if let width = calibrationNetworks.first?.features.count {
            let calibration = try g.createGroup("calibration_networks")
            guard calibrationNetworks.allSatisfy({ $0.features.count == width }) else {
                throw LatencyTableError.invalidArgument("calibration networks with features of different lengths")
            }
            try calibration.write("features", values: calibrationNetworks.flatMap(\.features), shape: [calibrationNetworks.count, width])
            try calibration.write("median_ms", values: calibrationNetworks.map(\.milliseconds))
        }
        let group = try g.createGroup("entries")
        let keys = entries.keys.sorted()
        guard !keys.isEmpty else { return }
        try group.writeStrings("key", keys)
        try group.write("median_ms", values: keys.map { entries[$0]!.medianMilliseconds })
        try group.write("minimum_ms", values: keys.map { entries[$0]!.minimumMilliseconds })
        try group.write("sample_count", values: keys.map { Int64(entries[$0]!.sampleCount) })
        try group.writeStrings("family", keys.map { entries[$0]!.family })
        try group.writeStrings("features", keys.map { entries[$0]!.features.map { "\($0)" }.joined(separator: ",") })
    }

    /// Reads every table of a file written by `save(path:)`.
    /// - Throws: `HDF5Error` if the file cannot be read; `LatencyTableError.invalidFile` if it is
    ///   not a latency table file (or an old version) or its datasets disagree.
    public static func loadAll(path: String) throws -> [LatencyTable] {
        let file = try H5File.open(path: path, mode: .readOnly)
        defer { try? file.close() }
        func invalid(_ reason: String) -> LatencyTableError { .invalidFile(path: path, reason: reason) }
        guard file.hasAttribute("format"), try file.stringAttribute("format") == fileFormat else {
            throw invalid("not a latency table (attribute 'format' is not '\(fileFormat)')")
        }
        let version = try file.intAttribute("format_version")
        guard version == fileFormatVersion else {
            throw invalid("format version \(version), this NASLab reads \(fileFormatVersion) (kernel-level tables with a reference time): rebuild it with "
                          + "`naslab latency build-table --overwrite`")
        }
        var tables = [LatencyTable]()
        for name in try file.children().sorted() where name.hasPrefix("threads_") {
            let g = try file.openGroup(name)
            let machine = LatencyMachine(
                cpuModel: try g.stringAttribute("cpu_model"), coreCount: try g.intAttribute("core_count"),
                threadCount: try g.intAttribute("thread_count"), batchSize: try g.intAttribute("batch_size"),
                blasDescription: try g.stringAttribute("blas"), date: try g.stringAttribute("date"),
                naslabVersion: try g.stringAttribute("naslab_version"))
            let settings = LatencyTableSettings(
                samples: try g.intAttribute("settings_samples"), warmup: try g.intAttribute("settings_warmup"),
                iterations: try g.intAttribute("settings_iterations"),
                evictionBytes: try g.intAttribute("settings_eviction_bytes"), rounds: try g.intAttribute("settings_rounds"))
            let count = try g.intAttribute("entry_count")
            var entries = [String: LatencyEntry]()
            if count > 0 {
                let group = try g.openGroup("entries")
                let keys = try group.readStrings("key")
                let medians = try group.read("median_ms", as: Double.self).values
                let minima = try group.read("minimum_ms", as: Double.self).values
                let samples = try group.read("sample_count", as: Int64.self).values
                let families = try group.readStrings("family")
                let features = try group.readStrings("features")
                guard [keys.count, medians.count, minima.count, samples.count, families.count, features.count].allSatisfy({ $0 == count }) else {
                    throw invalid("\(name): entry_count is \(count) but the entry datasets disagree")
                }
                for i in 0..<count {
                    let values = features[i].isEmpty ? [] : features[i].split(separator: ",").compactMap { Double(String($0)) }
                    entries[keys[i]] = LatencyEntry(medianMilliseconds: medians[i], minimumMilliseconds: minima[i],
                                                    sampleCount: Int(samples[i]), family: families[i], features: values)
                }
                guard entries.count == count else { throw invalid("\(name): duplicate keys") }
            }
            var table = LatencyTable(machine: machine, settings: settings, entries: entries, scales: try parseScales(try g.stringAttribute("scales")),
                                       perKernelOverheadMilliseconds: try g.doubleAttribute("per_kernel_overhead_ms"),
                                       perNetworkOverheadMilliseconds: try g.doubleAttribute("per_network_overhead_ms"),
                                       calibrationNote: try g.stringAttribute("calibration_note"))
            table.perMegabyteMilliseconds = try g.doubleAttribute("per_megabyte_ms")
            table.referenceMilliseconds = try g.doubleAttribute("reference_ms")
            if g.exists("calibration_networks") {
                let calibration = try g.openGroup("calibration_networks")
                let features = try calibration.read("features", as: Double.self)
                let medians = try calibration.read("median_ms", as: Double.self).values
                guard features.shape.count == 2, features.shape[0] == medians.count else {
                    throw invalid("\(name): calibration_networks/features has shape \(features.shape), median_ms \(medians.count) values")
                }
                let width = features.shape[1]
                table.calibrationNetworks = medians.indices.map {
                    CalibrationNetwork(features: Array(features.values[$0 * width ..< ($0 + 1) * width]), milliseconds: medians[$0])
                }
            }
            tables.append(table)
        }
        return tables
    }

    private static func parseScales(_ text: String) throws -> [String: Double] {
        var scales = [String: Double]()
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=")
            guard parts.count == 2, let v = Double(String(parts[1])) else { throw LatencyTableError.invalidArgument("bad scales attribute '\(text)'") }
            scales[String(parts[0])] = v
        }
        return scales
    }

    /// Reads the table for `threads` compute threads and batch size `batchSize` from a file
    /// written by `save(path:)`; `nil` when the file holds none for them.
    public static func load(path: String, threads: Int, batchSize: Int = 1) throws -> LatencyTable? {
        try loadAll(path: path).first { $0.machine.threadCount == threads && $0.machine.batchSize == batchSize }
    }

    /// Reads a table written by `save(path:)`: the file's only table, else the one for the current
    /// ``ComputeContext``'s thread count (batch 1), else the first.
    /// - Throws: as `loadAll(path:)`; `.invalidFile` when the file holds no table.
    public static func load(path: String) throws -> LatencyTable {
        let tables = try loadAll(path: path)
        guard let first = tables.first else { throw LatencyTableError.invalidFile(path: path, reason: "the file holds no table") }
        return tables.first { $0.machine.threadCount == ComputeContext.current.threads && $0.machine.batchSize == 1 } ?? first
    }
}
