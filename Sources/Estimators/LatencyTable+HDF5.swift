import Foundation
import HDF5Kit

/// HDF5 file layout of a latency table (format `naslab-latency-table`, version 1):
///
/// ```
/// /                      attributes: format, format_version, cpu_model, core_count, thread_count,
///                        batch_size, blas, date, naslab_version, settings_samples, settings_warmup,
///                        settings_iterations, settings_eviction_bytes, per_node_overhead_ms,
///                        per_network_overhead_ms, calibration_note, entry_count
/// /entries/key           string [n]   (sorted; see `LatencyKey`)
/// /entries/median_ms     float64 [n]
/// /entries/minimum_ms    float64 [n]
/// /entries/sample_count  int64 [n]
/// ```
extension LatencyTable {
    public static let fileFormat = "naslab-latency-table"
    public static let fileFormatVersion = 1

    /// Writes the table to `path` (replacing any file there).
    public func save(path: String) throws {
        let file = try H5File.create(path: path, truncate: true)
        defer { try? file.close() }
        try file.setAttribute("format", LatencyTable.fileFormat)
        try file.setAttribute("format_version", LatencyTable.fileFormatVersion)
        try file.setAttribute("cpu_model", machine.cpuModel)
        try file.setAttribute("core_count", machine.coreCount)
        try file.setAttribute("thread_count", machine.threadCount)
        try file.setAttribute("batch_size", machine.batchSize)
        try file.setAttribute("blas", machine.blasDescription)
        try file.setAttribute("date", machine.date)
        try file.setAttribute("naslab_version", machine.naslabVersion)
        try file.setAttribute("settings_samples", settings.samples)
        try file.setAttribute("settings_warmup", settings.warmup)
        try file.setAttribute("settings_iterations", settings.iterations)
        try file.setAttribute("settings_eviction_bytes", settings.evictionBytes)
        try file.setAttribute("settings_rounds", settings.rounds)
        try file.setAttribute("per_node_overhead_ms", perNodeOverheadMilliseconds)
        try file.setAttribute("per_network_overhead_ms", perNetworkOverheadMilliseconds)
        try file.setAttribute("calibration_note", calibrationNote)
        try file.setAttribute("entry_count", entries.count)
        let group = try file.createGroup("entries")
        let keys = entries.keys.sorted()
        guard !keys.isEmpty else { return }
        try group.writeStrings("key", keys)
        try group.write("median_ms", values: keys.map { entries[$0]!.medianMilliseconds })
        try group.write("minimum_ms", values: keys.map { entries[$0]!.minimumMilliseconds })
        try group.write("sample_count", values: keys.map { Int64(entries[$0]!.sampleCount) })
        try file.flush()
    }

    /// Reads a table written by `save(path:)`.
    /// - Throws: `HDF5Error` if the file cannot be read; `LatencyTableError.invalidFile` if it is
    ///   not a latency table or its datasets disagree.
    public static func load(path: String) throws -> LatencyTable {
        let file = try H5File.open(path: path, mode: .readOnly)
        defer { try? file.close() }
        func invalid(_ reason: String) -> LatencyTableError { .invalidFile(path: path, reason: reason) }
        guard file.hasAttribute("format"), try file.stringAttribute("format") == fileFormat else {
            throw invalid("not a latency table (attribute 'format' is not '\(fileFormat)')")
        }
        let version = try file.intAttribute("format_version")
        guard version == fileFormatVersion else { throw invalid("format version \(version), this NASLab reads \(fileFormatVersion)") }
        let machine = LatencyMachine(
            cpuModel: try file.stringAttribute("cpu_model"), coreCount: try file.intAttribute("core_count"),
            threadCount: try file.intAttribute("thread_count"), batchSize: try file.intAttribute("batch_size"),
            blasDescription: try file.stringAttribute("blas"), date: try file.stringAttribute("date"),
            naslabVersion: try file.stringAttribute("naslab_version"))
        let settings = LatencyTableSettings(
            samples: try file.intAttribute("settings_samples"), warmup: try file.intAttribute("settings_warmup"),
            iterations: try file.intAttribute("settings_iterations"),
            evictionBytes: try file.intAttribute("settings_eviction_bytes"), rounds: try file.intAttribute("settings_rounds"))
        let count = try file.intAttribute("entry_count")
        var entries = [String: LatencyEntry]()
        if count > 0 {
            let group = try file.openGroup("entries")
            let keys = try group.readStrings("key")
            let medians = try group.read("median_ms", as: Double.self).values
            let minima = try group.read("minimum_ms", as: Double.self).values
            let samples = try group.read("sample_count", as: Int64.self).values
            guard keys.count == count, medians.count == count, minima.count == count, samples.count == count else {
                throw invalid("entry_count is \(count) but the entry datasets hold \(keys.count), \(medians.count), \(minima.count), \(samples.count) values")
            }
            for i in 0..<count {
                entries[keys[i]] = LatencyEntry(medianMilliseconds: medians[i], minimumMilliseconds: minima[i],
                                                sampleCount: Int(samples[i]))
            }
            guard entries.count == count else { throw invalid("duplicate keys") }
        }
        return LatencyTable(machine: machine, settings: settings, entries: entries,
                            perNodeOverheadMilliseconds: try file.doubleAttribute("per_node_overhead_ms"),
                            perNetworkOverheadMilliseconds: try file.doubleAttribute("per_network_overhead_ms"),
                            calibrationNote: try file.stringAttribute("calibration_note"))
    }
}
