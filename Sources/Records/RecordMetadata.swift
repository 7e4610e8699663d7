import Foundation
import HDF5Kit

/// Where and with what an experiment ran.
public struct RecordEnvironment: Codable, Sendable, Equatable {
    public var naslabVersion: String
    /// The git commit of the NASLab checkout, or "" if unknown.
    public var gitCommit: String
    public var cpuModel: String
    public var threadCount: Int
    public var openBLASVersion: String
    public var hdf5Version: String

    public init(naslabVersion: String, gitCommit: String, cpuModel: String, threadCount: Int,
                openBLASVersion: String, hdf5Version: String) {
        self.naslabVersion = naslabVersion
        self.gitCommit = gitCommit
        self.cpuModel = cpuModel
        self.threadCount = threadCount
        self.openBLASVersion = openBLASVersion
        self.hdf5Version = hdf5Version
    }

    /// Detects the CPU model (`/proc/cpuinfo`), the HDF5 version and, if not given, the thread
    /// count (active processors); the caller supplies what Records cannot know.
    /// - Parameters:
    ///   - naslabVersion: e.g. `"0.1.0"`.
    ///   - gitCommit: the commit hash, or "" if unknown.
    ///   - openBLASVersion: e.g. from `openblas_get_config()`.
    ///   - threadCount: threads used for compute (default: active processor count).
    public static func detect(naslabVersion: String, gitCommit: String = "", openBLASVersion: String = "",
                              threadCount: Int? = nil) -> RecordEnvironment {
        var cpu = "unknown"
        if let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
           let colon = line.firstIndex(of: ":") {
            cpu = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return RecordEnvironment(naslabVersion: naslabVersion, gitCommit: gitCommit, cpuModel: cpu,
                                 threadCount: threadCount ?? ProcessInfo.processInfo.activeProcessorCount,
                                 openBLASVersion: openBLASVersion, hdf5Version: HDF5Library.version)
    }
}

/// Everything a record stores about the experiment itself (written once, at creation).
public struct RecordMetadata: Codable, Sendable, Equatable {
    /// The experiment name (usually the record's file name without `.h5`).
    public var name: String
    /// The full experiment configuration, as YAML text.
    public var configYAML: String
    /// The search-space file, as YAML text.
    public var searchSpaceYAML: String
    public var seed: UInt64
    /// Creation time, ISO 8601 in UTC with seconds (e.g. `2026-11-29T15:00:00Z`).
    public var createdAt: String
    public var environment: RecordEnvironment

    public init(name: String, configYAML: String, searchSpaceYAML: String, seed: UInt64,
                createdAt: String = RecordMetadata.timestamp(), environment: RecordEnvironment) {
        self.name = name
        self.configYAML = configYAML
        self.searchSpaceYAML = searchSpaceYAML
        self.seed = seed
        self.createdAt = createdAt
        self.environment = environment
    }

    /// `date` as ISO 8601 UTC (`yyyy-MM-ddTHH:mm:ssZ`).
    public static func timestamp(_ date: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}
