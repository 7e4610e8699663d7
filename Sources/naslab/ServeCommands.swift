import API
import ArgumentParser
import Dispatch
import Foundation
import Lab

/// `naslab serve`: the HTTP API (see docs/api.md).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the HTTP API (/v1: datasets, models, training, NAS searches, deployments, predictions).")

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to bind (0: any free port; the chosen one is printed).") var port = 8080
    @OptionGroup var data: DataDirectoryOption
    @Option(help: "Compute threads for training and searches.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Base URL clients use to reach this server (for deployments' endpoint_url); default http://HOST:PORT.")
    var publicURL: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        let settings = ServerSettings(host: host, port: port, dataDirectory: data.url,
                                      workbench: LabWorkbench(threads: threads), publicBaseURL: publicURL)
        let host = self.host
        let outcome = BlockingResult()
        let semaphore = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                let app = try makeApplication(settings: settings) { port in
                    print("naslab: listening on http://\(host):\(port)")
                    fflush(stdout)
                }
                try await app.runService()
            } catch {
                outcome.error = error
            }
            semaphore.signal()
        }
        semaphore.wait()
        if let error = outcome.error {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// The error of the server task, handed back to the blocked command.
private final class BlockingResult: @unchecked Sendable {
    var error: Error?
}

/// `naslab keys`: API keys.
/// `--data-dir`, shared by `serve` and `keys`: one default for the server's data directory.
struct DataDirectoryOption: ParsableArguments {
    @Option(help: "The server's data directory: database, uploads, models and search records.") var dataDir = "naslab-data"

    var url: URL { URL(fileURLWithPath: dataDir) }
}

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage API keys.",
        subcommands: [KeysCreateCommand.self, KeysListCommand.self, KeysRevokeCommand.self])
}

/// `naslab keys list`: every key's id, organisation, creation, last use and state — never a secret.
struct KeysListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List API keys (id, organisation, created, last used, state; never the secret).")

    @OptionGroup var data: DataDirectoryOption
    @Flag(help: "JSON output (a list of {id, organization, created_at, last_used_at, revoked_at}, Unix seconds).") var json = false

    func run() throws {
        try reportingErrors {
            let keys = try APIStore(dataDirectory: data.url).listAPIKeys()
            if json { try printJSON(keys); return }
            func time(_ t: Int64?) -> String {
                guard let t else { return "never" }
                return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(t)))
            }
            print("id                    organization          created               last used             state")
            for k in keys {
                let state = k.revokedAt.map { "revoked \(time($0))" } ?? "active"
                print([k.id.padding(toLength: 21, withPad: " ", startingAt: 0), k.organization.padding(toLength: 21, withPad: " ", startingAt: 0),
                       time(k.createdAt).padding(toLength: 21, withPad: " ", startingAt: 0),
                       time(k.lastUsedAt).padding(toLength: 21, withPad: " ", startingAt: 0), state].joined(separator: " "))
            }
        }
    }
}

/// `naslab keys revoke ID`: the key gets 401 from the next request on, also on a running server.
struct KeysRevokeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke an API key by its id (key_…); a running server refuses it from the next request on.")

    @Argument(help: "The key's id, as `naslab keys list` shows it.") var id: String
    @OptionGroup var data: DataDirectoryOption

    func run() throws {
        try reportingErrors {
            let store = try APIStore(dataDirectory: data.url)
            guard try store.revokeAPIKey(id: id) else {
                let known = try store.listAPIKeys().first { $0.id == id }
                throw LabError.invalid(known == nil ? "no API key '\(id)' in \(data.dataDir) (see naslab keys list)"
                                                    : "API key '\(id)' is already revoked")
            }
            print("revoked \(id)")
        }
    }
}

/// `naslab keys create --org NAME`: prints a new key's secret (shown once).
struct KeysCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create an API key for an organisation and print its secret (shown only once).")

    @Option(help: "Organisation name (letters, digits, '-', '_', '.').") var org: String
    @OptionGroup var data: DataDirectoryOption

    func run() throws {
        try reportingErrors {
            let key = try createAPIKey(organization: org, dataDirectory: data.url)
            print(key.secret)
        }
    }
}
