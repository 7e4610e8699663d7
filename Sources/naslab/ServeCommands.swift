import API
import ArgumentParser
import Dispatch
import Engine
import Foundation
import Lab
import Logging
import ServiceLifecycle

/// `naslab serve`: the HTTP API (see docs/api.md).
///
/// Restart = resume: jobs the previous stop interrupted continue (searches from their records,
/// training from per-epoch checkpoints). SIGTERM/SIGINT drain: new jobs get a 503, running jobs
/// stop at their next candidate/epoch boundary within `--grace-period`, in-flight requests finish,
/// exit 0. A second signal exits at once (status 128 + signal); records and checkpoints stay intact.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve the HTTP API (/v1: datasets, models, training, NAS searches, deployments, predictions).")

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to bind (0: any free port; the chosen one is printed).") var port = 8080
    @OptionGroup var data: DataDirectoryOption
    @Option(help: "Local executor: compute threads for training and searches, split among the jobs that run at once (default: all cores).")
    var threads: Int?
    @Option(help: "Local executor: training jobs and searches that run at the same time, each on --threads / N threads (default: 2, or 1 with --threads 1).")
    var maxConcurrentJobs: Int?
    @OptionGroup var cluster: ServeSlurmOptions
    @Option(help: "Base URL clients use to reach this server (for deployments' endpoint_url); default http://HOST:PORT.")
    var publicURL: String?
    @Option(help: "Jobs (training, searches) that may wait as pending on the server; one more is a 429.")
    var maxQueuedJobs = ServerSettings().maxQueuedJobs
    @Option(help: "Jobs that may wait as pending per organisation; one more is a 429.")
    var maxQueuedJobsPerOrg = ServerSettings().maxQueuedJobsPerOrganization
    @Option(help: "Predictions a deployment holds at once (running or waiting for a replica); one more is a 429.")
    var maxPredictionsPerDeployment = ServerSettings().maxPredictionsPerDeployment
    @Option(help: "Seconds a prediction may wait for a replica (then 504) and a connection may stay idle (then closed).")
    var requestTimeout = ServerSettings().requestTimeoutSeconds
    @Option(help: "Seconds a running candidate or epoch may take to finish after SIGTERM/SIGINT before the server exits anyway.")
    var gracePeriod = ServerSettings().shutdownGraceSeconds
    @Option(help: "Log lines on standard error: text (swift-log's key=value) or json (one object per line).")
    var logFormat = "text"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        if cluster.executor == "slurm" {
            // The jobs run on the nodes with --cpus-per-task CPUs each; local compute options would be ignored.
            if threads != nil { throw ValidationError("--threads is for --executor local; with --executor slurm each task gets --cpus-per-task CPUs on its node") }
            if maxConcurrentJobs != nil {
                throw ValidationError("--max-concurrent-jobs is for --executor local; with --executor slurm use --max-concurrent-searches")
            }
        }
        try cluster.validate()
        let threads = self.threads ?? ProcessInfo.processInfo.activeProcessorCount
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let maxConcurrentJobs, !(1...threads).contains(maxConcurrentJobs) {
            throw ValidationError("--max-concurrent-jobs must be between 1 and --threads (\(threads)), got \(maxConcurrentJobs)")
        }
        for (name, value) in [("--max-queued-jobs", maxQueuedJobs), ("--max-queued-jobs-per-org", maxQueuedJobsPerOrg),
                              ("--max-predictions-per-deployment", maxPredictionsPerDeployment)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        guard requestTimeout > 0, requestTimeout.isFinite else { throw ValidationError("--request-timeout must be a positive number of seconds") }
        guard gracePeriod >= 0, gracePeriod.isFinite else { throw ValidationError("--grace-period must be 0 or more seconds") }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json, got '\(logFormat)'") }
    }

    func run() throws {
        if logFormat == "json" { LoggingSystem.bootstrap(JSONLineLogHandler.init) }
        let workbench: LabWorkbench
        let concurrentJobs: Int
        if let slurm = cluster.settings() {
            do {
                try slurm.validate()
            } catch {
                FileHandle.standardError.write(Data("error: --executor slurm: \(error)\n".utf8))
                throw ExitCode(1)
            }
            workbench = LabWorkbench(cluster: slurm)
            concurrentJobs = cluster.maxConcurrentSearches ?? ServeSlurmOptions.defaultMaxConcurrentSearches
        } else {
            let threads = self.threads ?? ProcessInfo.processInfo.activeProcessorCount
            concurrentJobs = maxConcurrentJobs ?? min(2, threads)
            workbench = LabWorkbench(threads: ComputeContext(threads: threads).split(among: concurrentJobs).threads)
        }
        var settings = ServerSettings(host: host, port: port, dataDirectory: data.url, workbench: workbench, publicBaseURL: publicURL)
        settings.maxConcurrentJobs = concurrentJobs
        settings.maxQueuedJobs = maxQueuedJobs
        settings.maxQueuedJobsPerOrganization = maxQueuedJobsPerOrg
        settings.maxPredictionsPerDeployment = maxPredictionsPerDeployment
        settings.requestTimeoutSeconds = requestTimeout
        settings.shutdownGraceSeconds = gracePeriod
        let host = self.host
        let outcome = BlockingResult()
        let semaphore = DispatchSemaphore(value: 0)
        let shutdown = ShutdownSignals()
        Task.detached {
            do {
                let server = try APIServer(settings: settings)
                let app = server.application { port in
                    print("naslab: listening on http://\(host):\(port)")
                    fflush(stdout)
                }
                let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [],
                                                              logger: Logger(label: "naslab.api")))
                shutdown.install {
                    // The first SIGTERM/SIGINT: drain the jobs, then let the HTTP server finish its requests.
                    Task {
                        _ = await server.drain()
                        await group.triggerGracefulShutdown()
                    }
                }
                await server.resumeInterruptedWork()
                try await group.run()
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

/// `naslab serve --executor slurm …`: the searches' candidates and the training jobs go to a Slurm
/// cluster (docs/api.md, "The API in front of a Slurm cluster"). The keys are those of an experiment
/// config's `executor:` section (docs/slurm.md), whose defaults they keep.
struct ServeSlurmOptions: ParsableArguments {
    /// Searches and training jobs a Slurm server coordinates at once unless `--max-concurrent-searches` says otherwise.
    static let defaultMaxConcurrentSearches = 8

    @Option(help: "Where training jobs and search candidates run: local (this process) or slurm (job arrays on a cluster).")
    var executor = "local"
    @Option(help: "Slurm: a directory the server and every node see under the same path (specs, results, logs, checkpoints).")
    var sharedDir: String?
    @Option(help: "Slurm: sbatch --partition (default: the cluster's default partition).")
    var partition: String?
    @Option(help: "Slurm: CPUs per task (sbatch --cpus-per-task); each candidate or training job trains with as many threads (default 1).")
    var cpusPerTask: Int?
    @Option(help: "Slurm: time limit of one task in minutes (sbatch --time; default 60).")
    var timeLimitMinutes: Int?
    @Option(help: "Slurm: resubmissions of a failed task (default 0).")
    var maxRetries: Int?
    @Option(help: "Slurm: one more sbatch argument, verbatim (repeatable), e.g. --sbatch-arg=--mem=4G.")
    var sbatchArg: [String] = []
    @Option(help: "Slurm: the worker program and its first arguments, space-separated (default: this naslab executable and 'evaluate').")
    var workerCommand: String?
    @Option(help: "Slurm: candidates per job array, i.e. a search's workers (default 4).")
    var candidatesPerArray: Int?
    @Option(help: "Slurm: searches and training jobs coordinated at once (default 8); the others wait as pending.")
    var maxConcurrentSearches: Int?

    func validate() throws {
        guard ["local", "slurm"].contains(executor) else {
            throw ValidationError("--executor must be local or slurm, got '\(executor)'")
        }
        if executor == "local" {
            let given: [(String, Bool)] = [
                ("--shared-dir", sharedDir != nil), ("--partition", partition != nil), ("--cpus-per-task", cpusPerTask != nil),
                ("--time-limit-minutes", timeLimitMinutes != nil), ("--max-retries", maxRetries != nil),
                ("--sbatch-arg", !sbatchArg.isEmpty), ("--worker-command", workerCommand != nil),
                ("--candidates-per-array", candidatesPerArray != nil), ("--max-concurrent-searches", maxConcurrentSearches != nil),
            ]
            if let name = given.first(where: \.1)?.0 { throw ValidationError("\(name) needs --executor slurm") }
            return
        }
        guard let sharedDir, !sharedDir.isEmpty else { throw ValidationError("--executor slurm needs --shared-dir (a directory all nodes see)") }
        if let cpusPerTask, !(1...1024).contains(cpusPerTask) { throw ValidationError("--cpus-per-task must be between 1 and 1024, got \(cpusPerTask)") }
        if let timeLimitMinutes, timeLimitMinutes < 1 { throw ValidationError("--time-limit-minutes must be at least 1, got \(timeLimitMinutes)") }
        if let maxRetries, !(0...100).contains(maxRetries) { throw ValidationError("--max-retries must be between 0 and 100, got \(maxRetries)") }
        if let candidatesPerArray, !(1...1000).contains(candidatesPerArray) {
            throw ValidationError("--candidates-per-array must be between 1 and 1000, got \(candidatesPerArray)")
        }
        if let maxConcurrentSearches, maxConcurrentSearches < 1 {
            throw ValidationError("--max-concurrent-searches must be at least 1, got \(maxConcurrentSearches)")
        }
        if let workerCommand, workerCommand.split(separator: " ").isEmpty { throw ValidationError("--worker-command must name a program") }
    }

    /// The cluster of `--executor slurm` (`nil` for local), built on the experiment config's
    /// executor section so that every default is the one docs/slurm.md states.
    func settings() -> SlurmCluster? {
        guard executor == "slurm" else { return nil }
        var section = ExperimentConfig(name: "serve").executor
        section.kind = "slurm"
        section.sharedDirectory = URL(fileURLWithPath: sharedDir ?? "").standardizedFileURL.path
        section.partition = partition
        if let cpusPerTask { section.cpusPerTask = cpusPerTask }
        if let timeLimitMinutes { section.timeLimitMinutes = timeLimitMinutes }
        if let maxRetries { section.maxRetries = maxRetries }
        section.extraArguments = sbatchArg
        section.workerCommand = workerCommand.map { $0.split(separator: " ").map(String.init) }
        var cluster = SlurmCluster(executor: section)
        if let candidatesPerArray { cluster.candidatesPerArray = candidatesPerArray }
        return cluster
    }
}

/// SIGTERM and SIGINT for `naslab serve`: the first one runs `onFirst`; a second one exits at
/// once with status 128 + signal number (records and checkpoints are crash-safe).
private final class ShutdownSignals: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var received = 0

    func install(onFirst: @escaping @Sendable () -> Void) {
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                let count = lock.withLock { () -> Int in
                    received += 1
                    return received
                }
                if count == 1 {
                    FileHandle.standardError.write(Data("naslab: signal \(number): draining (a second signal exits at once)\n".utf8))
                    onFirst()
                } else {
                    _exit(128 + number)
                }
            }
            source.resume()
            sources.append(source)
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
