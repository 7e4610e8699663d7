import CHDF5
import Foundation

/// A column of an ``HDF5Table``.
public struct HDF5Column: Sendable, Equatable {
    /// The stored type of a column.
    public enum Kind: Sendable, Equatable {
        case int64, int32, float64, float32
        /// A fixed-length UTF-8 string of at most `capacity` bytes (null-padded; h5py reads `bytes`).
        case string(capacity: Int)

        var size: Int {
            switch self {
            case .int64, .float64: return 8
            case .int32, .float32: return 4
            case let .string(capacity): return capacity
            }
        }
    }

    public var name: String
    public var kind: Kind

    public init(_ name: String, _ kind: Kind) {
        self.name = name
        self.kind = kind
    }
}

/// One cell of an ``HDF5Table`` row.
public enum HDF5Value: Sendable, Hashable, CustomStringConvertible {
    case int(Int64)
    case double(Double)
    case string(String)

    public var description: String {
        switch self {
        case let .int(v): return String(v)
        case let .double(v): return String(v)
        case let .string(v): return v
        }
    }
}

/// An appendable table: a chunked 1-D dataset of a compound type with an unlimited first dimension.
///
/// Each row is written with one extend + write; call ``flush()`` after an append to make the row
/// survive a crash of the writing process. Strings are fixed-length fields (safe for SWMR readers
/// and read by h5py/pandas as `bytes`). h5py reads the whole table with `f["table"][:]`, a NumPy
/// structured array; `pandas.DataFrame(f["table"][:])` gives one column per field.
///
/// ```swift
/// let table = try file.createTable("epochs", columns: [HDF5Column("id", .int64), HDF5Column("loss", .float64)])
/// try table.append([.int(1), .double(0.5)])
/// try table.flush()
/// ```
public final class HDF5Table: @unchecked Sendable {
    public let file: H5File
    public let objectPath: String
    public let columns: [HDF5Column]
    /// The number of rows in the table.
    public private(set) var rowCount: Int
    private var dataset: hid_t
    private let memoryType: hid_t
    private let offsets: [Int]
    private let rowSize: Int

    init(file: H5File, objectPath: String, dataset: hid_t, columns: [HDF5Column], rowCount: Int) {
        self.file = file
        self.objectPath = objectPath
        self.dataset = dataset
        self.columns = columns
        self.rowCount = rowCount
        var offsets = [Int]()
        var offset = 0
        for column in columns {
            offsets.append(offset)
            offset += column.kind.size
        }
        self.offsets = offsets
        self.rowSize = offset
        self.memoryType = HDF5Table.makeType(columns, offsets: offsets, size: offset)
    }

    deinit {
        HDF5Library.locked {
            H5Tclose(memoryType)
            if dataset >= 0 { H5Dclose(dataset) }
        }
    }

    /// A packed compound type for `columns`. Caller closes it.
    static func makeType(_ columns: [HDF5Column], offsets: [Int], size: Int) -> hid_t {
        let type = H5Tcreate(H5T_COMPOUND, size)
        for (column, offset) in zip(columns, offsets) {
            switch column.kind {
            case .int64: H5Tinsert(type, column.name, offset, naslab_H5T_NATIVE_INT64())
            case .int32: H5Tinsert(type, column.name, offset, naslab_H5T_NATIVE_INT32())
            case .float64: H5Tinsert(type, column.name, offset, naslab_H5T_NATIVE_DOUBLE())
            case .float32: H5Tinsert(type, column.name, offset, naslab_H5T_NATIVE_FLOAT())
            case let .string(capacity):
                let stringType = H5Tcopy(naslab_H5T_C_S1())
                H5Tset_size(stringType, capacity)
                H5Tset_strpad(stringType, H5T_STR_NULLPAD)
                H5Tset_cset(stringType, H5T_CSET_UTF8)
                H5Tinsert(type, column.name, offset, stringType)
                H5Tclose(stringType)
            }
        }
        return type
    }

    private func failure(_ operation: String) -> HDF5Error {
        .operationFailed(path: file.path, object: objectPath, operation: operation, reason: HDF5Library.lastErrorMessage())
    }

    /// Packs `row` into `buffer` at `base`.
    private func pack(_ row: [HDF5Value], into buffer: UnsafeMutableRawBufferPointer, at base: Int) throws {
        guard row.count == columns.count else {
            throw HDF5Error.invalidArgument(path: file.path, object: objectPath,
                                            detail: "row has \(row.count) values, table has \(columns.count) columns")
        }
        for (index, (column, value)) in zip(columns, row).enumerated() {
            let at = base + offsets[index]
            switch (column.kind, value) {
            case let (.int64, .int(v)): buffer.storeBytes(of: v, toByteOffset: at, as: Int64.self)
            case let (.int32, .int(v)):
                guard let narrow = Int32(exactly: v) else {
                    throw HDF5Error.invalidArgument(path: file.path, object: objectPath, detail: "column '\(column.name)': \(v) does not fit in int32")
                }
                buffer.storeBytes(of: narrow, toByteOffset: at, as: Int32.self)
            case let (.float64, .double(v)): buffer.storeBytes(of: v, toByteOffset: at, as: Double.self)
            case let (.float64, .int(v)): buffer.storeBytes(of: Double(v), toByteOffset: at, as: Double.self)
            case let (.float32, .double(v)): buffer.storeBytes(of: Float(v), toByteOffset: at, as: Float.self)
            case let (.float32, .int(v)): buffer.storeBytes(of: Float(v), toByteOffset: at, as: Float.self)
            case let (.string(capacity), .string(v)):
                let bytes = Array(v.utf8)
                guard bytes.count <= capacity else {
                    throw HDF5Error.invalidArgument(path: file.path, object: objectPath,
                                                    detail: "column '\(column.name)': string of \(bytes.count) bytes exceeds the field's capacity of \(capacity) bytes")
                }
                for (k, byte) in bytes.enumerated() { buffer[at + k] = byte }
            default:
                throw HDF5Error.invalidArgument(path: file.path, object: objectPath,
                                                detail: "column '\(column.name)' (\(column.kind)) cannot hold \(value)")
            }
        }
    }

    /// Appends one row (values in column order). Not flushed: call ``flush()`` when the row must be durable.
    public func append(_ row: [HDF5Value]) throws { try append(rows: [row]) }

    /// Appends rows (each in column order) with one extend and one write.
    public func append(rows: [[HDF5Value]]) throws {
        guard !rows.isEmpty else { return }
        try HDF5Library.locked {
            guard dataset >= 0, file.isOpen else { throw HDF5Error.fileClosed(path: file.path) }
            guard file.isWritable else {
                throw HDF5Error.invalidArgument(path: file.path, object: objectPath, detail: "file is open read-only")
            }
            var buffer = [UInt8](repeating: 0, count: rowSize * rows.count)
            try buffer.withUnsafeMutableBytes { raw in
                for (i, row) in rows.enumerated() { try pack(row, into: raw, at: i * rowSize) }
            }
            var newSize = [hsize_t(rowCount + rows.count)]
            if H5Dset_extent(dataset, &newSize) < 0 { throw failure("extend") }
            let fileSpace = H5Dget_space(dataset)
            defer { H5Sclose(fileSpace) }
            var start = [hsize_t(rowCount)]
            var count = [hsize_t(rows.count)]
            H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil)
            let memorySpace = H5Screate_simple(1, &count, nil)
            defer { H5Sclose(memorySpace) }
            let status = buffer.withUnsafeBytes {
                H5Dwrite(dataset, memoryType, memorySpace, fileSpace, defaultProperties, $0.baseAddress)
            }
            if status < 0 { throw failure("append rows to") }
            rowCount += rows.count
        }
    }

    /// Overwrites row `index` (values in column order). Not flushed.
    public func write(_ row: [HDF5Value], at index: Int) throws {
        try HDF5Library.locked {
            guard dataset >= 0, file.isOpen else { throw HDF5Error.fileClosed(path: file.path) }
            guard file.isWritable else {
                throw HDF5Error.invalidArgument(path: file.path, object: objectPath, detail: "file is open read-only")
            }
            guard index >= 0, index < rowCount else {
                throw HDF5Error.invalidArgument(path: file.path, object: objectPath, detail: "row \(index) of \(rowCount)")
            }
            var buffer = [UInt8](repeating: 0, count: rowSize)
            try buffer.withUnsafeMutableBytes { try pack(row, into: $0, at: 0) }
            let fileSpace = H5Dget_space(dataset)
            defer { H5Sclose(fileSpace) }
            var start = [hsize_t(index)]
            var count = [hsize_t(1)]
            H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil)
            let memorySpace = H5Screate_simple(1, &count, nil)
            defer { H5Sclose(memorySpace) }
            let status = buffer.withUnsafeBytes {
                H5Dwrite(dataset, memoryType, memorySpace, fileSpace, defaultProperties, $0.baseAddress)
            }
            if status < 0 { throw failure("overwrite a row of") }
        }
    }

    /// Shrinks (or grows, with zero-filled rows) the table to `rowCount` rows.
    public func resize(rowCount newCount: Int) throws {
        try HDF5Library.locked {
            guard dataset >= 0, file.isOpen else { throw HDF5Error.fileClosed(path: file.path) }
            guard newCount >= 0 else {
                throw HDF5Error.invalidArgument(path: file.path, object: objectPath, detail: "negative row count \(newCount)")
            }
            var size = [hsize_t(newCount)]
            if H5Dset_extent(dataset, &size) < 0 { throw failure("resize") }
            rowCount = newCount
        }
    }

    /// Closes the table's dataset (the file closes once it and all its objects are closed). Harmless twice.
    public func close() {
        HDF5Library.locked {
            if dataset >= 0 { H5Dclose(dataset) }
            dataset = -1
        }
    }

    /// Flushes the whole file (see ``H5File/flush()``).
    public func flush() throws { try file.flush() }

    /// Reads all rows, each in column order.
    public func readAll() throws -> [[HDF5Value]] {
        try HDF5Library.locked {
            guard dataset >= 0 else { throw HDF5Error.fileClosed(path: file.path) }
            let space = H5Dget_space(dataset)
            defer { H5Sclose(space) }
            let count = Int(H5Sget_simple_extent_npoints(space))
            rowCount = count
            if count == 0 { return [] }
            var buffer = [UInt8](repeating: 0, count: rowSize * count)
            let status = buffer.withUnsafeMutableBytes {
                H5Dread(dataset, memoryType, naslab_H5S_ALL(), naslab_H5S_ALL(), defaultProperties, $0.baseAddress)
            }
            if status < 0 { throw failure("read") }
            return buffer.withUnsafeBytes { raw in
                (0..<count).map { i in
                    columns.indices.map { c -> HDF5Value in
                        let at = i * rowSize + offsets[c]
                        switch columns[c].kind {
                        case .int64: return .int(raw.loadUnaligned(fromByteOffset: at, as: Int64.self))
                        case .int32: return .int(Int64(raw.loadUnaligned(fromByteOffset: at, as: Int32.self)))
                        case .float64: return .double(raw.loadUnaligned(fromByteOffset: at, as: Double.self))
                        case .float32: return .double(Double(raw.loadUnaligned(fromByteOffset: at, as: Float.self)))
                        case let .string(capacity):
                            let field = raw[at ..< at + capacity]
                            let end = field.firstIndex(of: 0) ?? field.endIndex
                            return .string(String(decoding: field[field.startIndex ..< end], as: UTF8.self))
                        }
                    }
                }
            }
        }
    }
}

extension HDF5Location {
    /// Creates an empty appendable table `name` (see ``HDF5Table``).
    /// - Parameters:
    ///   - columns: the fields, in order; names must be unique.
    ///   - chunkRows: rows per chunk (default 64).
    ///   - compressionLevel: deflate level 1–9, or `nil` (default) for none.
    public func createTable(_ name: String, columns: [HDF5Column], chunkRows: Int = 64,
                            compressionLevel: Int? = nil) throws -> HDF5Table {
        try HDF5Library.locked {
            try validate(name: name)
            guard !columns.isEmpty, Set(columns.map(\.name)).count == columns.count,
                  columns.allSatisfy({ $0.kind.size > 0 && !$0.name.isEmpty }) else {
                throw HDF5Error.invalidArgument(path: file.path, object: fullPath(name),
                                                detail: "a table needs at least one column, unique non-empty names and positive string capacities")
            }
            if exists(name) {
                throw HDF5Error.invalidArgument(path: file.path, object: fullPath(name), detail: "already exists")
            }
            var offsets = [Int]()
            var size = 0
            for column in columns { offsets.append(size); size += column.kind.size }
            let type = HDF5Table.makeType(columns, offsets: offsets, size: size)
            defer { H5Tclose(type) }
            var dims = [hsize_t(0)]
            var maxDims = [naslab_H5S_UNLIMITED()]
            let space = H5Screate_simple(1, &dims, &maxDims)
            defer { H5Sclose(space) }
            let dcpl = H5Pcreate(naslab_H5P_DATASET_CREATE())
            defer { H5Pclose(dcpl) }
            var chunk = [hsize_t(max(1, chunkRows))]
            H5Pset_chunk(dcpl, 1, &chunk)
            if let compressionLevel { H5Pset_deflate(dcpl, UInt32(min(max(compressionLevel, 1), 9))) }
            let lcpl = intermediateGroupProperties()
            defer { H5Pclose(lcpl) }
            let dataset = H5Dcreate2(try identifier(), name, type, space, lcpl, dcpl, defaultProperties)
            guard dataset >= 0 else { throw failure("create table", name) }
            return HDF5Table(file: file, objectPath: fullPath(name), dataset: dataset, columns: columns, rowCount: 0)
        }
    }

    /// Opens an existing table (a 1-D compound dataset, e.g. written by ``createTable(_:columns:chunkRows:compressionLevel:)`` or h5py).
    ///
    /// Integer members become `.int64`/`.int32`, floats `.float64`/`.float32`, fixed-length strings
    /// `.string(capacity:)`; other member types are a ``HDF5Error/typeMismatch(path:object:expected:found:)``.
    public func openTable(_ name: String) throws -> HDF5Table {
        try HDF5Library.locked {
            let info = try datasetInfo(name)
            guard info.elementType == .compound, info.shape.count == 1 else {
                throw HDF5Error.typeMismatch(path: file.path, object: fullPath(name),
                                             expected: "1-D compound table", found: "\(info.shape.count)-D \(info.elementType)")
            }
            let dataset = H5Dopen2(try identifier(), name, defaultProperties)
            guard dataset >= 0 else { throw failure("open table", name) }
            let type = H5Dget_type(dataset)
            defer { H5Tclose(type) }
            var columns = [HDF5Column]()
            for member in 0..<UInt32(max(0, H5Tget_nmembers(type))) {
                guard let rawName = H5Tget_member_name(type, member) else { continue }
                let memberName = String(cString: rawName)
                H5free_memory(rawName)
                let memberType = H5Tget_member_type(type, member)
                defer { H5Tclose(memberType) }
                let kind: HDF5Column.Kind
                switch HDF5ElementType(typeIdentifier: memberType) {
                case let .integer(bytes, _): kind = bytes > 4 ? .int64 : .int32
                case let .float(bytes): kind = bytes > 4 ? .float64 : .float32
                case .string(variableLength: false): kind = .string(capacity: H5Tget_size(memberType))
                case let other:
                    H5Dclose(dataset)
                    throw HDF5Error.typeMismatch(path: file.path, object: fullPath(name) + "." + memberName,
                                                 expected: "number or fixed-length string", found: other.description)
                }
                columns.append(HDF5Column(memberName, kind))
            }
            return HDF5Table(file: file, objectPath: fullPath(name), dataset: dataset, columns: columns, rowCount: info.shape[0])
        }
    }
}
