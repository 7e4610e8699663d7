import ArgumentParser
import Foundation

/// Fixes applied to the command line before swift-argument-parser sees it.
///
/// - **Negative numbers as option values.** The parser reads `--budget -3` as the option
///   `--budget` followed by a short flag `-3`, and answers "Missing value for '--budget'". A
///   negative number after a long option is therefore attached to it (`--budget=-3`), so that the
///   option receives the value and the command's own check answers ("--budget must be a positive
///   integer, got -3"). Every numeric option of `naslab` checks its range in `validate()`.
/// - **Misspelled subcommands.** `naslab serach` is answered with `unknown command 'serach'; did
///   you mean 'search'?` (closest name by edit distance, transpositions counting once) instead of
///   the parser's "Unexpected argument".
enum ArgumentPreflight {
    /// The arguments to parse (program name excluded), or exits with a usage error (64).
    static func prepare(_ arguments: [String]) -> [String] {
        if let message = unknownCommandMessage(arguments, root: NASLabCommand.self, path: ["naslab"]) {
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
            exit(ExitCode.validationFailure.rawValue)
        }
        return attachingNegativeNumbers(arguments)
    }

    /// `--name -3` → `--name=-3` (long options only; nothing after `--` is touched).
    static func attachingNegativeNumbers(_ arguments: [String]) -> [String] {
        var result = [String]()
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--" {
                result += arguments[i...]
                break
            }
            if a.hasPrefix("--"), a.count > 2, !a.contains("="), i + 1 < arguments.count, isNegativeNumber(arguments[i + 1]) {
                result.append(a + "=" + arguments[i + 1])
                i += 2
                continue
            }
            result.append(a)
            i += 1
        }
        return result
    }

    /// `-3`, `-0.5`, `-1e-3`, `-.5`.
    static func isNegativeNumber(_ text: String) -> Bool {
        guard text.hasPrefix("-"), text.count > 1 else { return false }
        let body = text.dropFirst()
        guard let first = body.first, first.isNumber || first == "." else { return false }
        return Double(body) != nil
    }

    /// The message for a first non-option argument that names no subcommand, or `nil`.
    static func unknownCommandMessage(_ arguments: [String], root: ParsableCommand.Type, path: [String]) -> String? {
        var command = root
        var path = path
        for argument in arguments {
            let subcommands = command.configuration.subcommands
            guard !subcommands.isEmpty, command.configuration.defaultSubcommand == nil else { return nil }
            if argument.hasPrefix("-") || argument == "help" { return nil }
            if let next = subcommands.first(where: { name(of: $0) == argument }) {
                command = next
                path.append(argument)
                continue
            }
            let names = subcommands.map(name(of:))
            var message = "unknown command '\(argument)'"
            if path.count > 1 { message += " for '\(path.joined(separator: " "))'" }
            if let suggestion = closest(to: argument, among: names) {
                message += "; did you mean '\(suggestion)'?"
            } else {
                message += "; commands: \(names.joined(separator: ", "))"
            }
            return message + "\nrun '\(path.joined(separator: " ")) --help' for the list of commands"
        }
        return nil
    }

    static func name(of command: ParsableCommand.Type) -> String {
        command.configuration.commandName ?? String(describing: command).lowercased()
    }

    /// The name nearest to `text`: a unique name it is a prefix of, else the one with the smallest
    /// edit distance if that is at most a third of the name's length (at least 1).
    static func closest(to text: String, among names: [String]) -> String? {
        let lowered = text.lowercased()
        let prefixed = names.filter { $0.hasPrefix(lowered) }
        if prefixed.count == 1 { return prefixed[0] }
        var best: (name: String, distance: Int)?
        for name in names {
            let distance = editDistance(lowered, name)
            if best == nil || distance < best!.distance { best = (name, distance) }
        }
        guard let best, best.distance <= max(1, best.name.count / 3) else { return nil }
        return best.name
    }

    /// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
    /// neighbouring characters each cost 1 (`serach` → `search` is 1).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[x.count][y.count]
    }
}

/// Throws "NAME must be a positive integer, got VALUE" for a value below 1.
func requirePositive(_ value: Int?, _ name: String) throws {
    if let value, value < 1 { throw ValidationError("\(name) must be a positive integer, got \(value)") }
}

/// Throws "NAME must be 0 or more, got VALUE" for a negative value.
func requireNonNegative(_ value: Int?, _ name: String) throws {
    if let value, value < 0 { throw ValidationError("\(name) must be 0 or more, got \(value)") }
}
