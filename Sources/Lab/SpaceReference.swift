import Foundation
import Spaces

/// A search space as an experiment names it: a shipped name (`small`) or a file path, with the
/// YAML text kept so that records and cluster workers carry the space itself.
public struct SpaceReference: Sendable {
    public var name: String
    public var path: String?
    public var yaml: String
    public var space: SearchSpace

    /// Resolves `nameOrPath`: an existing file, else a shipped space (`SearchSpaces/<name>.yaml`).
    public static func resolve(_ nameOrPath: String) throws -> SpaceReference {
        let path: String
        if FileManager.default.fileExists(atPath: nameOrPath) {
            path = nameOrPath
        } else {
            path = try SearchSpace.shippedPath(named: nameOrPath)
        }
        let yaml: String
        do { yaml = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SpaceError.unreadable(path: path, reason: error.localizedDescription)
        }
        let space = try SearchSpace.load(yaml: yaml, fileName: path)
        return SpaceReference(name: nameOrPath, path: path, yaml: yaml, space: space)
    }

    /// A space carried as text (in a record or a candidate spec).
    public static func fromText(_ yaml: String, name: String) throws -> SpaceReference {
        SpaceReference(name: name, path: nil, yaml: yaml, space: try SearchSpace.load(yaml: yaml, fileName: name))
    }
}
