/// Everything that can go wrong in HDF5Kit, with the file and object it concerns.
///
/// Every case names the file path, so a message like
/// `HDF5 file '/data/x.h5': dataset '/y' has element type string, expected a number`
/// tells the user what to fix without a stack trace.
public enum HDF5Error: Error, CustomStringConvertible, Equatable {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// The file exists but is not an HDF5 file.
    case notHDF5(path: String)
    /// Opening or creating the file failed (permissions, lock held by another writer, corrupt file …).
    case openFailed(path: String, reason: String)
    /// The file was already closed.
    case fileClosed(path: String)
    /// A group, dataset or attribute does not exist.
    case objectNotFound(path: String, object: String)
    /// An object exists but is of another kind (e.g. a group where a dataset was expected).
    case wrongObjectKind(path: String, object: String, expected: String, found: String)
    /// A dataset or attribute holds another element type than the one requested.
    case typeMismatch(path: String, object: String, expected: String, found: String)
    /// Values and shape disagree, or a dataset has an unexpected rank or shape.
    case shapeMismatch(path: String, object: String, detail: String)
    /// An argument is invalid (empty name, string longer than its fixed-length field …).
    case invalidArgument(path: String, object: String, detail: String)
    /// An HDF5 library call failed; `reason` carries the library's own error stack, condensed.
    case operationFailed(path: String, object: String, operation: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path):
            return "HDF5 file '\(path)': no such file"
        case let .notHDF5(path):
            return "HDF5 file '\(path)': not an HDF5 file"
        case let .openFailed(path, reason):
            return "HDF5 file '\(path)': cannot open: \(reason)"
        case let .fileClosed(path):
            return "HDF5 file '\(path)': file is already closed"
        case let .objectNotFound(path, object):
            return "HDF5 file '\(path)': '\(object)' does not exist"
        case let .wrongObjectKind(path, object, expected, found):
            return "HDF5 file '\(path)': '\(object)' is a \(found), expected a \(expected)"
        case let .typeMismatch(path, object, expected, found):
            return "HDF5 file '\(path)': '\(object)' has element type \(found), expected \(expected)"
        case let .shapeMismatch(path, object, detail):
            return "HDF5 file '\(path)': '\(object)': shape mismatch: \(detail)"
        case let .invalidArgument(path, object, detail):
            return "HDF5 file '\(path)': '\(object)': \(detail)"
        case let .operationFailed(path, object, operation, reason):
            return "HDF5 file '\(path)': \(operation) '\(object)' failed: \(reason)"
        }
    }
}
