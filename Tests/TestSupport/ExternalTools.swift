import Foundation
import XCTest

/// Runs an external program and returns its exit status and combined output.
public func runTool(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
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

/// A python3 that can `import h5py`: `$NASLAB_PYTHON`, then `python3` on the PATH, then the usual
/// places. Without one the test is skipped with the reason — or fails when `NASLAB_REQUIRE_H5PY=1`
/// (set by `scripts/test.sh`, so CI never silently skips the second-reader checks).
public func pythonWithH5py(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    var tried = [String]()
    let environment = ProcessInfo.processInfo.environment
    var candidates = [String]()
    if let python = environment["NASLAB_PYTHON"], !python.isEmpty { candidates.append(python) }
    for directory in (environment["PATH"] ?? "").split(separator: ":") {
        candidates.append("\(directory)/python3")
    }
    candidates += ["/usr/bin/python3", "/usr/local/bin/python3"]
    for candidate in candidates where !tried.contains(candidate) {
        guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
        if let result = try? runTool(candidate, ["-c", "import h5py"]), result.status == 0 { return candidate }
        tried.append(candidate)
    }
    let message = "no python3 with h5py found (tried: \(tried.joined(separator: ", "))); install it with `pip install h5py`"
    if environment["NASLAB_REQUIRE_H5PY"] == "1" {
        XCTFail(message, file: file, line: line)
        throw XCTSkip("h5py required but missing")
    }
    throw XCTSkip(message)
}

/// Runs a python script with h5py; fails the test with the script's output when it exits non-zero.
@discardableResult
public func runPython(_ script: String, _ arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let python = try pythonWithH5py(file: file, line: line)
    let result = try runTool(python, ["-c", script] + arguments)
    XCTAssertEqual(result.status, 0, "python failed:\n\(result.output)", file: file, line: line)
    return result.output
}

/// A path in this test process's scratch directory.
public func temporaryPath(_ name: String) -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-tests-\(getpid())")
    try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory.appendingPathComponent(name).path
}

/// Throws `XCTSkip` (naming `suite`) unless a Slurm configuration exists (`$SLURM_CONF`, else
/// `/etc/slurm/slurm.conf`) and `timeout 5 sinfo -h` answers. CI brings a single-node cluster up
/// with `.ci/slurm-up.sh`; elsewhere Slurm tests skip with this message.
public func requireSlurmCluster(_ suite: String) throws {
    let configuration = ProcessInfo.processInfo.environment["SLURM_CONF"] ?? "/etc/slurm/slurm.conf"
    guard FileManager.default.fileExists(atPath: configuration) else {
        throw XCTSkip("\(suite) skipped: no Slurm configuration (\(configuration)); start a test cluster with `eval \"$(.ci/slurm-up.sh /tmp/naslab-slurm)\"`")
    }
    guard let (status, _) = try? runTool("/usr/bin/env", ["timeout", "5", "sinfo", "-h"]), status == 0 else {
        throw XCTSkip("\(suite) skipped: `timeout 5 sinfo -h` fails (is slurmctld running? SLURM_CONF=\(configuration))")
    }
}
