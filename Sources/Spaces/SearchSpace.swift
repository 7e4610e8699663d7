import Foundation
import Engine
import NASCore

/// A search space loaded from a YAML file (see `docs/search-spaces.md` for the schema).
///
/// A space is a network skeleton — stem, stages of blocks or cells, head — in which some
/// values are lists of choices. Each list of two or more values is one `Decision`; an
/// `Architecture` picks one option per decision. The same space serves any input shape and
/// class count, which are given when decoding (`network(for:inputShape:classCount:)`).
///
/// ```swift
/// let space = try SearchSpace.shipped(named: "small")
/// var rng = SeededGenerator(seed: 1)
/// let architecture = space.sample(using: &rng)
/// print(space.text(of: architecture), space.size)
/// let graph = try space.network(for: architecture, inputShape: FeatureShape(channels: 1, height: 8, width: 8), classCount: 10)
/// ```
public struct SearchSpace: ArchitectureSpace, Hashable {
    public let name: String
    /// Free-text description from the file.
    public let description: String
    /// The task this space's networks solve (`task:` in the file; default image classification).
    public let task: TaskKind
    public let decisions: [Decision]
    let conditions: [ActivityCondition]
    let defaultActivation: ActivationKind
    let stem: [LayerSpec]
    let stages: [StageSpec]
    let cell: CellSpec?
    /// Whether this is a cell space (NAS-Bench-201 style: a searched cell repeated in a fixed
    /// skeleton), whose FLOPs are also reported under NAS-Bench-201's convention.
    public var isCellSpace: Bool { cell != nil }
    let genotypes: [GenotypeSpec]
    let head: HeadSpec
    /// The decoder of segmentation and detection spaces (`nil` for classification).
    let decoder: DecoderSpec?
    /// For each decision, the genotype it belongs to (cell edge decisions) or `nil`.
    let genotypeOfDecision: [Int?]

    public func isActive(_ index: Int, in architecture: Architecture) -> Bool {
        switch conditions[index] {
        case .always:
            return true
        case let .blockPresent(depth, block):
            return depth.value(in: architecture) > block
        case let .blockUsesKernel(depth, block, operation):
            return depth.value(in: architecture) > block && operation.value(in: architecture).usesKernel
        case let .blockUsesExpansion(depth, block, operation):
            return depth.value(in: architecture) > block && operation.value(in: architecture).usesExpansion
        }
    }

    /// Whether the space has no decision (a fixed network such as a reference net).
    public var isFixed: Bool { decisions.isEmpty }

    /// Checks that `architecture` has one valid option index per decision.
    public func validate(_ architecture: Architecture) throws {
        guard architecture.choices.count == decisions.count else {
            throw SpaceError.badArchitecture(
                message: "space '\(name)' has \(decisions.count) decisions, architecture has \(architecture.choices.count) choices")
        }
        for (i, c) in architecture.choices.enumerated() where c < 0 || c >= decisions[i].options.count {
            throw SpaceError.badArchitecture(
                message: "choice \(c) of decision '\(decisions[i].name)' is outside 0..<\(decisions[i].options.count)")
        }
    }
}

// MARK: - Loading

extension SearchSpace {
    /// Name of the environment variable naming the folder of shipped spaces.
    public static let directoryEnvironmentVariable = "NASLAB_SPACES_DIR"

    /// Loads and validates a search space from YAML text.
    ///
    /// - Parameters:
    ///   - yaml: the file contents.
    ///   - fileName: the name used in error messages (`file:line:column: message`).
    /// - Throws: `SpaceError.invalid` pointing at the offending node.
    public static func load(yaml: String, fileName: String = "<yaml>") throws -> SearchSpace {
        var loader = SpaceLoader(file: fileName)
        return try loader.load(yaml: yaml)
    }

    /// Loads and validates a search space from a YAML file.
    public static func load(path: String) throws -> SearchSpace {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SpaceError.unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        return try load(yaml: text, fileName: path)
    }

    /// The path of a shipped space file (`SearchSpaces/<name>.yaml`, or `reference/cnn` etc.).
    ///
    /// Looks in `$NASLAB_SPACES_DIR` first, then in a `SearchSpaces` folder of the current
    /// directory or any of its parents.
    public static func shippedPath(named name: String) throws -> String {
        let fileName = name.hasSuffix(".yaml") ? name : name + ".yaml"
        var searched = [String]()
        let fileManager = FileManager.default
        if let directory = ProcessInfo.processInfo.environment[directoryEnvironmentVariable], !directory.isEmpty {
            let candidate = (directory as NSString).appendingPathComponent(fileName)
            searched.append(directory)
            if fileManager.fileExists(atPath: candidate) { return candidate }
        }
        var directory = URL(fileURLWithPath: fileManager.currentDirectoryPath).standardizedFileURL
        while true {
            let folder = directory.appendingPathComponent("SearchSpaces")
            let candidate = folder.appendingPathComponent(fileName).path
            searched.append(folder.path)
            if fileManager.fileExists(atPath: candidate) { return candidate }
            let parent = directory.deletingLastPathComponent()
            if parent.path == directory.path { break }
            directory = parent
        }
        throw SpaceError.notFound(name: name, searched: searched)
    }

    /// Loads a space shipped with NASLab: `small`, `medium`, `large`, `nasbench201`,
    /// `reference/cnn`, `reference/resnet18`, `reference/mobilenet_v2`.
    public static func shipped(named name: String) throws -> SearchSpace {
        try load(path: shippedPath(named: name))
    }
}
