import Foundation
import HDF5Kit

/// One architecture scored by zero-cost proxies before a search (its warm start): not a
/// candidate (it costs no training and no table query), but recorded so that the ranking the
/// searcher started from, and the pre-screening threshold derived from it, can be read back.
public struct ZeroCostRow: Sendable, Equatable {
    public var architecture: String
    public var hash: String
    /// One value per proxy, in the order of the record's proxy columns (NaN: not computable).
    public var values: [Double]
    /// The rank-combined score (mean over proxies of the fraction of warm-start values below).
    public var combined: Double
    /// 0 = the best of the warm start.
    public var rank: Int64

    public init(architecture: String, hash: String, values: [Double], combined: Double, rank: Int64) {
        self.architecture = architecture
        self.hash = hash
        self.values = values
        self.combined = combined
        self.rank = rank
    }

    public static func == (a: ZeroCostRow, b: ZeroCostRow) -> Bool {
        func same(_ x: Double, _ y: Double) -> Bool { x == y || (x.isNaN && y.isNaN) }
        return a.architecture == b.architecture && a.hash == b.hash && a.rank == b.rank && same(a.combined, b.combined)
            && a.values.count == b.values.count && zip(a.values, b.values).allSatisfy(same)
    }
}

extension ExperimentRecord {
    /// Writes the `zero_cost` table (columns `architecture`, `hash`, one float64 column per proxy
    /// name, `combined`, `rank`) in one go and flushes; a record holds at most one.
    public func setZeroCostWarmStart(proxies: [String], rows: [ZeroCostRow]) throws {
        try locked {
            try requireWritable()
            guard !file.exists("zero_cost") else {
                throw RecordError.invalidValue(path: path, detail: "the record already holds a zero_cost table")
            }
            let columns = [HDF5Column("architecture", .string(capacity: layout.architectureCapacity)),
                           HDF5Column("hash", .string(capacity: layout.hashCapacity))]
                + proxies.map { HDF5Column($0, .float64) }
                + [HDF5Column("combined", .float64), HDF5Column("rank", .int64)]
            let table = try file.createTable("zero_cost", columns: columns, chunkRows: 256, compressionLevel: 4)
            defer { table.close() }
            try table.append(rows: rows.map { row in
                [.string(row.architecture), .string(row.hash)] + row.values.map { HDF5Value.double($0) }
                    + [.double(row.combined), .int(row.rank)]
            })
            try file.flush()
        }
    }

    /// The `zero_cost` table: its proxy names and rows, or `nil` when the search had no warm start.
    public func zeroCostWarmStart() throws -> (proxies: [String], rows: [ZeroCostRow])? {
        try locked {
            guard file.exists("zero_cost") else { return nil }
            let table = try file.openTable("zero_cost")
            defer { table.close() }
            let names = table.columns.map(\.name)
            guard names.count >= 4, names.prefix(2) == ["architecture", "hash"], names.suffix(2) == ["combined", "rank"] else {
                throw RecordError.corrupt(path: path, detail: "unexpected zero_cost columns \(names)")
            }
            let proxies = Array(names.dropFirst(2).dropLast(2))
            let rows = try table.readAll().map { cells -> ZeroCostRow in
                func string(_ i: Int) -> String { if case let .string(v) = cells[i] { return v }; return "" }
                func double(_ i: Int) -> Double { if case let .double(v) = cells[i] { return v }; return .nan }
                let rank: Int64
                if case let .int(v) = cells[cells.count - 1] { rank = v } else { rank = -1 }
                return ZeroCostRow(architecture: string(0), hash: string(1), values: (0..<proxies.count).map { double(2 + $0) },
                                   combined: double(cells.count - 2), rank: rank)
            }
            return (proxies, rows)
        }
    }
}
