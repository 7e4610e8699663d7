import Estimators
import Foundation
import NASCore
import Spaces

/// `naslab latency build-table`: measures every op that appears in sampled architectures of the
/// given spaces and writes this machine's lookup table (HDF5, see `docs/latency.md`).
public enum LatencyTableBuilding {
    public struct Summary: Sendable {
        public var path: String
        public var entries: Int
        public var seconds: Double
        public var machine: String
    }

    public static func build(spaces names: [String], inputShapes: [String], classCounts: [Int], samplesPerSpace: Int,
                             seed: UInt64, threads: Int, output: String,
                             progress: @escaping (String) -> Void = { _ in }) throws -> Summary {
        let spaces = try names.map { try SpaceReference.resolve($0).space }
        let shapes = try inputShapes.map { try FeatureShapeParser.parseChecked($0) }
        let start = Date()
        var lastReport = Date.distantPast
        let table = try LatencyTable.build(
            spaces: spaces, network: { s, a, i, c in try s.network(for: a, inputShape: i, classCount: c) },
            inputShapes: shapes, classCounts: classCounts, samplesPerSpace: samplesPerSpace, seed: seed,
            threads: threads, naslabVersion: NASLabVersion.current,
            progress: { event in
                if case let .measured(_, done, total, _) = event, Date().timeIntervalSince(lastReport) > 0.5 || done == total {
                    lastReport = Date()
                    progress("measured \(done)/\(total) op keys")
                }
            })
        let directory = (output as NSString).deletingLastPathComponent
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try table.save(path: output)
        return Summary(path: output, entries: table.entries.count, seconds: Date().timeIntervalSince(start),
                       machine: "\(table.machine.cpuModel), \(table.machine.threadCount) thread(s), batch \(table.machine.batchSize)")
    }
}
