import HDF5Kit

/// Errors of the Records module; each names the record file.
public enum RecordError: Error, CustomStringConvertible, Equatable {
    /// An HDF5 error (missing file, not HDF5, lock held by another writer …).
    case hdf5(HDF5Error)
    /// The file is HDF5 but not a NASLab experiment record (or of an unsupported format version).
    case notARecord(path: String, detail: String)
    /// A stored value is invalid (e.g. an unknown candidate status).
    case corrupt(path: String, detail: String)
    /// A value does not fit the record (e.g. architecture text longer than its column).
    case invalidValue(path: String, detail: String)
    /// Writing to a record opened read-only.
    case readOnly(path: String)
    /// Export or parse of CSV/JSON failed.
    case export(detail: String)

    public var description: String {
        switch self {
        case let .hdf5(error): return error.description
        case let .notARecord(path, detail): return "record '\(path)': not a NASLab experiment record: \(detail)"
        case let .corrupt(path, detail): return "record '\(path)': \(detail)"
        case let .invalidValue(path, detail): return "record '\(path)': \(detail)"
        case let .readOnly(path): return "record '\(path)': opened read-only"
        case let .export(detail): return "export: \(detail)"
        }
    }
}

/// Runs `body`, wrapping HDF5 errors.
@inline(__always)
func wrappingHDF5<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as HDF5Error { throw RecordError.hdf5(error) }
}
