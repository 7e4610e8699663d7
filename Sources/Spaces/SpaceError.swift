/// An error found while loading a search-space file, or while using a loaded space.
///
/// Loading errors point at the offending YAML node and print as `file:line:column: message`,
/// like compiler diagnostics.
public enum SpaceError: Error, Hashable, CustomStringConvertible {
    /// A problem in a search-space file at a given position (1-based line and column).
    case invalid(file: String, line: Int, column: Int, message: String)
    /// A file that could not be read.
    case unreadable(path: String, reason: String)
    /// No shipped space of that name was found.
    case notFound(name: String, searched: [String])
    /// An architecture text that does not parse in this space.
    case badArchitectureText(text: String, message: String)
    /// An architecture that does not belong to this space (wrong length or option index).
    case badArchitecture(message: String)
    /// The architecture cannot be decoded for the given input shape or class count.
    case undecodable(message: String)

    public var description: String {
        switch self {
        case let .invalid(file, line, column, message): return "\(file):\(line):\(column): \(message)"
        case let .unreadable(path, reason): return "cannot read search space '\(path)': \(reason)"
        case let .notFound(name, searched):
            return "no search space named '\(name)' (looked in: \(searched.joined(separator: ", ")))"
        case let .badArchitectureText(text, message): return "cannot parse architecture '\(text)': \(message)"
        case let .badArchitecture(message): return "invalid architecture: \(message)"
        case let .undecodable(message): return "cannot decode architecture: \(message)"
        }
    }
}
