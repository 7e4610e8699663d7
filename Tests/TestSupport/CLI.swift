import Foundation

/// Runs the `naslab` executable built next to the test bundle.
public enum CLI {
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    public static var executable: URL {
        let bundleDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [bundleDirectory, bundleDirectory.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("naslab")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return bundleDirectory.appendingPathComponent("naslab")
    }

    public struct Output {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `naslab arguments…` in the repository root and waits.
    @discardableResult
    public static func run(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> Output {
        let p = try start(arguments)
        let out = p.stdout.fileHandleForReading.readDataToEndOfFile()
        let err = p.stderr.fileHandleForReading.readDataToEndOfFile()
        p.process.waitUntilExit()
        return Output(status: p.process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                      stderr: String(decoding: err, as: UTF8.self))
    }

    public struct Running {
        public var process: Process
        public var stdout: Pipe
        public var stderr: Pipe

        /// Reads standard error until it contains `marker` (or it closes, or `seconds` pass),
        /// then kills the process with SIGKILL and waits; returns what was read.
        @discardableResult
        public func killWhenStderrContains(_ marker: String, seconds: Double) -> String {
            var seen = ""
            let deadline = Date().addingTimeInterval(seconds)
            while !seen.contains(marker), Date() < deadline {
                let chunk = stderr.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return seen
        }
    }

    public static func start(_ arguments: [String]) throws -> Running {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        return Running(process: process, stdout: out, stderr: err)
    }

    /// A fresh scratch directory for one test.
    public static func scratch(_ name: String) throws -> URL {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("naslab-\(name)-\(ProcessInfo.processInfo.processIdentifier)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `script` with a python3 that has h5py (see `pythonWithH5py`).
    public static func python(_ script: String, _ arguments: [String]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try pythonWithH5py())
        process.arguments = ["-c", script] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}
