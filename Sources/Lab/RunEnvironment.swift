import Foundation

/// What machine and software a run used, stored in every record.
public struct RunEnvironment: Codable, Equatable, Sendable {
    public var naslabVersion: String
    public var gitCommit: String?
    public var cpuModel: String
    public var coreCount: Int
    public var threads: Int
    public var operatingSystem: String
    public var hostname: String

    public static let naslabVersion = "0.1.0"

    /// Describes this process's machine; `threads` is the compute thread count in use.
    public static func current(threads: Int) -> RunEnvironment {
        RunEnvironment(
            naslabVersion: naslabVersion,
            gitCommit: gitCommit(),
            cpuModel: cpuModel(),
            coreCount: ProcessInfo.processInfo.activeProcessorCount,
            threads: threads,
            operatingSystem: ProcessInfo.processInfo.operatingSystemVersionString,
            hostname: ProcessInfo.processInfo.hostName)
    }

    static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    /// The commit of the git checkout in the current directory, if any (read from `.git`, no process spawned).
    static func gitCommit() -> String? {
        var dir = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        for _ in 0..<6 {
            let git = dir.appendingPathComponent(".git")
            if let head = try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines) {
                if head.hasPrefix("ref: ") {
                    let ref = String(head.dropFirst(5))
                    if let sha = try? String(contentsOf: git.appendingPathComponent(ref), encoding: .utf8) {
                        return sha.trimmingCharacters(in: .whitespacesAndNewlines)
                    }
                    if let packed = try? String(contentsOf: git.appendingPathComponent("packed-refs"), encoding: .utf8) {
                        for line in packed.split(separator: "\n") where line.hasSuffix(" " + ref) {
                            return String(line.prefix(40))
                        }
                    }
                    return nil
                }
                return head
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}
