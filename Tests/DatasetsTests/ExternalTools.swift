import Foundation
import XCTest

/// Runs an external program and returns its exit status and combined output.
func runTool(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// A python3 that can `import h5py` (system python3 first, then /work/venv), or skips the test saying why.
func pythonWithH5py() throws -> String {
    var tried = [String]()
    for candidate in ["/usr/bin/python3", "/usr/local/bin/python3", "/work/venv/bin/python"] {
        guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
        if let result = try? runTool(candidate, ["-c", "import h5py"]), result.status == 0 { return candidate }
        tried.append(candidate)
    }
    throw XCTSkip("no python3 with h5py found (tried: \(tried.joined(separator: ", ")); install with `pip install h5py`)")
}

/// Runs a python script with h5py; fails the test with the script's output when it exits non-zero.
@discardableResult
func runPython(_ script: String, _ arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let python = try pythonWithH5py()
    let result = try runTool(python, ["-c", script] + arguments)
    XCTAssertEqual(result.status, 0, "python failed:\n\(result.output)", file: file, line: line)
    return result.output
}

func temporaryPath(_ name: String) -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory.appendingPathComponent(name).path
}
