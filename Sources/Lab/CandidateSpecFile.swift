import Foundation

/// Reading and writing the files of `naslab evaluate` (the Slurm worker), with errors that name
/// the file and say what is wrong instead of Foundation's and `Codable`'s raw errors.
extension CandidateSpec {
    /// Reads and checks a candidate spec (JSON, as the coordinator writes it).
    ///
    /// - Throws: `LabError.invalid("candidate spec 'PATH': …")` for a missing, unreadable or empty
    ///   file, invalid JSON, a missing key or a value of the wrong type (named by its key path, e.g.
    ///   `training.epochs`), and values no training can use (threads, epochs, batch size …).
    public static func load(path: String) throws -> CandidateSpec {
        func fail(_ message: String) -> LabError { LabError.invalid("candidate spec '\(path)': \(message)") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw fail("no such file") }
        guard !isDirectory.boolValue else { throw fail("is a directory, expected a JSON file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("cannot read the file (permissions?)") }
        guard !data.isEmpty else { throw fail("the file is empty, expected a JSON object") }
        let spec: CandidateSpec
        do {
            spec = try CandidateJSON.decoder().decode(CandidateSpec.self, from: data)
        } catch let error as DecodingError {
            throw fail(CandidateSpec.describe(error))
        } catch {
            throw fail("not a candidate spec: \(error.localizedDescription)")
        }
        var problems = [String]()
        if spec.id < 0 { problems.append("'id' must be 0 or more, got \(spec.id)") }
        if spec.architecture.isEmpty { problems.append("'architecture' is empty") }
        if spec.spaceYAML.isEmpty { problems.append("'spaceYAML' is empty") }
        if spec.dataset.isEmpty { problems.append("'dataset' is empty") }
        if !(0..<1).contains(spec.validationSplit) { problems.append("'validationSplit' must be in [0, 1), got \(spec.validationSplit)") }
        if !(1...1024).contains(spec.threads) { problems.append("'threads' must be in 1...1024, got \(spec.threads)") }
        let t = spec.training
        if t.epochs < 1 { problems.append("'training.epochs' must be at least 1, got \(t.epochs)") }
        if t.batchSize < 1 { problems.append("'training.batchSize' must be at least 1, got \(t.batchSize)") }
        if !(t.learningRate > 0 && t.learningRate.isFinite) {
            problems.append("'training.learningRate' must be a positive number, got \(t.learningRate)")
        }
        if !["sgd", "adamw"].contains(t.optimizer) { problems.append("'training.optimizer' must be sgd or adamw, got '\(t.optimizer)'") }
        if !["constant", "step", "cosine"].contains(t.schedule) {
            problems.append("'training.schedule' must be constant, step or cosine, got '\(t.schedule)'")
        }
        if !problems.isEmpty { throw fail(problems.joined(separator: "; ")) }
        return spec
    }

    /// A `DecodingError` in words: what is wrong and at which key path.
    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [CodingKey], _ last: CodingKey? = nil) -> String {
            let keys = codingPath + (last.map { [$0] } ?? [])
            return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case let .keyNotFound(key, context):
            return "missing key '\(path(context.codingPath, key))'"
        case let .typeMismatch(type, context):
            return "'\(path(context.codingPath))' has the wrong type (expected \(describe(type)))"
        case let .valueNotFound(type, context):
            return "'\(path(context.codingPath))' is null (expected \(describe(type)))"
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                return "not valid JSON" + (underlying.map { ": \($0)" } ?? (context.debugDescription.isEmpty ? "" : ": \(context.debugDescription)"))
            }
            return "'\(path(context.codingPath))': \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is UInt64.Type, is Int64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") || name.contains("Settings") { return "an object" }
            return name
        }
    }
}

extension CandidateResult {
    /// Checks before training that `path`'s directory exists, so that a bad `--output` fails at once.
    public static func checkWritable(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if directory.isEmpty { return }
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LabError.invalid("cannot write the result to '\(path)': directory '\(directory)' does not exist")
        }
    }
}
