import Foundation

extension ExperimentConfig {
    /// One setting in which two configs differ: its key as written in a config file (`seed`,
    /// `budget.candidates`, `training.learning_rate` …) and both values as YAML text.
    public struct Difference: Equatable, Sendable, CustomStringConvertible {
        public var key: String
        /// The value in the stored config (e.g. a record's), `(not set)` when absent.
        public var stored: String
        /// The value in the given config, `(not set)` when absent.
        public var given: String

        public init(key: String, stored: String, given: String) {
            self.key = key
            self.stored = stored
            self.given = given
        }

        public var description: String { "\(key): stored \(stored), given \(given)" }
    }

    /// The settings in which this (given) config differs from `stored`, in the order of
    /// `yamlText` (which writes every setting, defaults included, so none is missed).
    ///
    /// ```swift
    /// given.differences(from: stored)   // [Difference(key: "budget.candidates", stored: "7", given: "9")]
    /// ```
    public func differences(from stored: ExperimentConfig) -> [Difference] {
        let mine = ExperimentConfig.settings(of: yamlText)
        let theirs = ExperimentConfig.settings(of: stored.yamlText)
        let storedValues = Dictionary(theirs, uniquingKeysWith: { first, _ in first })
        let givenValues = Dictionary(mine, uniquingKeysWith: { first, _ in first })
        var keys = theirs.map(\.key)
        for (key, _) in mine where storedValues[key] == nil { keys.append(key) }
        return keys.compactMap { key in
            let s = storedValues[key], g = givenValues[key]
            guard s != g else { return nil }
            return Difference(key: key, stored: s ?? "(not set)", given: g ?? "(not set)")
        }
    }

    /// `differences(from:)` in one line for error messages: `budget.candidates: stored 7, given 9;
    /// seed: stored 5, given 6` (at most `limit` settings, then "… and N more"). Says
    /// "given config ≠ stored config" when the configs differ in nothing `yamlText` shows.
    public func differenceSummary(from stored: ExperimentConfig, limit: Int = 8) -> String {
        let differences = differences(from: stored)
        guard !differences.isEmpty else { return "given config ≠ stored config" }
        var text = differences.prefix(limit).map(\.description).joined(separator: "; ")
        if differences.count > limit { text += "; … and \(differences.count - limit) more" }
        return text
    }

    /// `yamlText` as (dotted key, value) pairs: `budget:` + `  candidates: 7` → `budget.candidates`, `7`.
    static func settings(of yaml: String) -> [(key: String, value: String)] {
        var result = [(key: String, value: String)]()
        var section: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("#") { continue }
            let indented = line.hasPrefix(" ")
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard let colon = trimmed.firstIndex(of: ":") else { continue }
            let key = String(trimmed[..<colon])
            let value = trimmed[trimmed.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if !indented {
                if value.isEmpty {
                    section = key
                    continue
                }
                section = nil
                result.append((key, value))
            } else {
                result.append(((section.map { $0 + "." } ?? "") + key, value))
            }
        }
        return result
    }
}
