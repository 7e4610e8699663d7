import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one external command printed and how it ended.
struct SlurmCommandOutput {
    var exitCode: Int32
    var standardOutput: String
    var standardError: String
}

/// Runs external commands (the Slurm client tools) with a time limit.
enum SlurmCommand {
    /// The command line as one readable string (for error messages).
    static func describe(_ arguments: [String]) -> String {
        arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }

    /// The full path of `name`, searched in `PATH` unless it contains a `/`.
    static func locate(_ name: String) -> String? {
        let fileManager = FileManager.default
        if name.contains("/") { return fileManager.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if fileManager.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs `arguments` (program first), killing it after `timeout` seconds.
    /// Throws only when it cannot be started or times out; a non-zero exit is in the output.
    static func run(_ arguments: [String], timeout: Double) throws -> SlurmCommandOutput {
        let text = describe(arguments)
        guard let program = arguments.first, let executable = locate(program) else {
            throw SlurmError.commandNotFound(arguments.first ?? "")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        process.standardInput = FileHandle.nullDevice
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        process.standardOutput = outputPipe
        process.standardError = errorPipe

        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let collected = Collected()
        let readers = DispatchGroup()
        for (pipe, isError) in [(outputPipe, false), (errorPipe, true)] {
            readers.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                collected.store(data, isError: isError)
                readers.leave()
            }
        }
        do {
            try process.run()
        } catch {
            // Unblock the readers: nobody else holds the write ends.
            try? outputPipe.fileHandleForWriting.close()
            try? errorPipe.fileHandleForWriting.close()
            throw SlurmError.launchFailed(command: text, reason: "\(error)")
        }
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            if finished.wait(timeout: .now() + 2) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                _ = finished.wait(timeout: .now() + 5)
            }
            _ = readers.wait(timeout: .now() + 2)
            throw SlurmError.commandTimedOut(command: text, seconds: timeout)
        }
        _ = readers.wait(timeout: .now() + 10)
        let (output, error) = collected.values()
        return SlurmCommandOutput(exitCode: process.terminationStatus,
                                  standardOutput: String(decoding: output, as: UTF8.self),
                                  standardError: String(decoding: error, as: UTF8.self))
    }

    /// Runs the command and throws `SlurmError.commandFailed` unless it exits 0.
    static func check(_ arguments: [String], timeout: Double) throws -> String {
        let output = try run(arguments, timeout: timeout)
        guard output.exitCode == 0 else {
            throw SlurmError.commandFailed(command: describe(arguments), exitCode: output.exitCode,
                                           standardError: output.standardError)
        }
        return output.standardOutput
    }

    /// Quotes `word` for a POSIX shell.
    static func shellQuote(_ word: String) -> String {
        if !word.isEmpty, word.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0)) }) {
            return word
        }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var output = Data()
        private var error = Data()

        func store(_ data: Data, isError: Bool) {
            lock.lock()
            defer { lock.unlock() }
            if isError { error = data } else { output = data }
        }

        func values() -> (Data, Data) {
            lock.lock()
            defer { lock.unlock() }
            return (output, error)
        }
    }
}
