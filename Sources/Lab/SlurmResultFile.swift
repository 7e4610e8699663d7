import Foundation

/// Reading and writing the JSON files exchanged through the shared directory: `spec-<id>.json`
/// (coordinator → worker) and `result-<id>.json` (worker → coordinator).
///
/// Results are written to a temporary name and renamed, so that a half-written file is never read.
/// Non-finite numbers (a `CandidateResult`'s accuracies are `nan` when unknown) are written as the
/// strings `"nan"`, `"inf"` and `"-inf"`; reading also accepts plain JSON numbers.
///
/// ```swift
/// // In a worker (`naslab evaluate SPEC.json --output RESULT.json`):
/// let spec = try SlurmResultFile.readSpec(at: specPath)
/// try SlurmResultFile.write(result, to: outputPath)
/// ```
public enum SlurmResultFile {
    /// `CandidateJSON`'s encoder (sorted keys: deterministic bytes; `"nan"` for NaN), pretty-printed.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = CandidateJSON.encoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return encoder
    }

    /// `CandidateJSON`'s decoder (accepts `"nan"`, `"inf"`, `"-inf"` and plain numbers).
    public static func makeDecoder() -> JSONDecoder {
        CandidateJSON.decoder()
    }

    /// Writes `result` as JSON to `path` atomically (temporary file in the same directory, then rename).
    public static func write(_ result: CandidateResult, to path: String) throws {
        try writeAtomically(try encode(result, path: path), to: path)
    }

    /// Reads a result file written by `write(_:to:)` (or any JSON encoding of `CandidateResult`).
    public static func readResult(at path: String) throws -> CandidateResult {
        try decode(CandidateResult.self, at: path)
    }

    /// Writes `spec` as JSON to `path` atomically.
    public static func write(_ spec: CandidateSpec, to path: String) throws {
        try writeAtomically(try encode(spec, path: path), to: path)
    }

    /// Reads a spec file written by `write(_:to:)`.
    public static func readSpec(at path: String) throws -> CandidateSpec {
        try decode(CandidateSpec.self, at: path)
    }

    static func encode<T: Encodable>(_ value: T, path: String) throws -> Data {
        do {
            return try makeEncoder().encode(value)
        } catch {
            throw SlurmError.fileSystem(path: path, reason: "cannot encode JSON: \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, at path: String) throws -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SlurmError.fileSystem(path: path, reason: "cannot read the file")
        }
        do {
            return try makeDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw SlurmError.fileSystem(path: path, reason: "not a valid \(type) JSON file: \(CandidateSpec.describe(error))")
        } catch {
            throw SlurmError.fileSystem(path: path, reason: "not a valid \(type) JSON file: \(error)")
        }
    }

    /// Writes `data` to a temporary sibling of `path` and renames it over `path`.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).\(UInt32.random(in: 0...UInt32.max)).tmp")
        do {
            try data.write(to: temporary)
            if rename(temporary.path, url.path) != 0 {
                let reason = String(cString: strerror(errno))
                try? FileManager.default.removeItem(at: temporary)
                throw SlurmError.fileSystem(path: path, reason: "cannot rename \(temporary.path): \(reason)")
            }
        } catch let error as SlurmError {
            throw error
        } catch {
            throw SlurmError.fileSystem(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
