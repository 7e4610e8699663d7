import HDF5Kit

/// Everything that can go wrong while loading or splitting a dataset; every file error names the file.
public enum DatasetError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    /// A gzip stream is corrupt or ends early.
    case gzip(path: String, detail: String)
    /// An IDX file starts with the wrong magic number.
    case badMagic(path: String, expected: UInt32, found: UInt32)
    /// The file's structure is wrong (header, dimensions, counts, CSV fields …).
    case malformed(path: String, detail: String)
    /// A label is negative or not below the class count.
    case labelOutOfRange(path: String, index: Int, label: Int64, classCount: Int)
    /// A required dataset (e.g. `/y`) is missing from an HDF5 file.
    case missingDataset(path: String, name: String)
    /// An HDF5 error while reading a dataset file.
    case hdf5(HDF5Error)
    /// A name that is neither a built-in dataset nor an existing file or directory.
    case unknownDataset(name: String)
    /// Invalid split fractions, empty inputs and the like.
    case invalidArgument(detail: String)
    /// A problem in a CSV file at a 1-based `line` (physical line of the file) and `column` (the
    /// 1-based CSV column, i.e. field number, not a character offset).
    case csv(path: String, line: Int, column: Int, message: String)
    /// A built-in dataset whose files are not installed at `path`; `hint` says how to install them.
    case notInstalled(dataset: String, path: String, hint: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path): return "dataset file '\(path)': no such file"
        case let .gzip(path, detail): return "dataset file '\(path)': gzip: \(detail)"
        case let .badMagic(path, expected, found):
            return "dataset file '\(path)': wrong magic number 0x\(String(found, radix: 16)), expected 0x\(String(expected, radix: 16))"
        case let .malformed(path, detail): return "dataset file '\(path)': \(detail)"
        case let .labelOutOfRange(path, index, label, classCount):
            return "dataset file '\(path)': label \(label) of sample \(index) is outside 0..<\(classCount)"
        case let .missingDataset(path, name): return "dataset file '\(path)': missing dataset '\(name)'"
        case let .hdf5(error): return error.description
        case let .unknownDataset(name):
            return "unknown dataset '\(name)': expected 'digits', 'fashion-mnist', 'fortunes', 'fashion-scenes', a CSV file (.csv), an HDF5 file or a directory with IDX files"
        case let .invalidArgument(detail): return "dataset: \(detail)"
        case let .csv(path, line, column, message): return "\(path):\(line):\(column): \(message)"
        case let .notInstalled(dataset, path, hint): return "dataset '\(dataset)': '\(path)' not found; \(hint)"
        }
    }
}
