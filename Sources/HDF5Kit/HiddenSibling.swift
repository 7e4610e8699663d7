import Foundation

/// The files HDF5Kit keeps beside a file (its lock, the temporary file of an atomic replace): one
/// naming rule, `.<name>.<suffix>` in the file's own directory — hidden from listings of records,
/// and on the file's file system, so a rename over the file is atomic.
enum HiddenSibling {
    /// `.<name>.<suffix>` beside `path`.
    static func path(beside path: String, suffix: String) -> String {
        let (directory, prefix) = parts(beside: path)
        return directory.appendingPathComponent(prefix + suffix).path
    }

    /// The directory of `path` and the prefix `.<name>.` every hidden sibling's name starts with.
    static func parts(beside path: String) -> (directory: URL, prefix: String) {
        let url = URL(fileURLWithPath: path)
        return (url.deletingLastPathComponent(), ".\(url.lastPathComponent).")
    }
}
