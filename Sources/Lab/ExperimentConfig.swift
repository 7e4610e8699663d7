import Estimators
import Foundation
import NASCore
import Search

/// An experiment: what to search, on which data, with which searcher, budget, training
/// hyperparameters and constraints. Read from `Experiments/*.yaml`; documented in
/// `docs/experiments.md`. Every default is stated once, here.
public struct ExperimentConfig: Equatable, Sendable {
    /// Identifier used for the record's default file name.
    public var name: String
    public var seed: UInt64 = 0
    /// A shipped space name (`small`, `medium`, `large`, `nasbench201`) or a path to a YAML file.
    public var space: String = "medium"
    /// `digits`, `fashion-mnist` or a path to a dataset file (HDF5 layout or IDX).
    public var dataset: String = "digits"
    /// `classification` (the space's own task) or a `TaskKind` name, which must match the space's task.
    public var taskType: String = "classification"
    public var validationSplit: Double = 0.1
    public var searcher = SearcherSettings()
    public var budget = Budget()
    /// Parsed configs start from the task's `TaskKind.defaultTraining`; `training:` overrides fields.
    public var training = TrainingSettings()
    public var constraints = Constraints()
    public var evaluator = EvaluatorSettings()
    public var executor = ExecutorSettings()
    /// Multi-fidelity scheduling (successive halving, Hyperband, ASHA); `nil`: every candidate
    /// trains `training.epochs`. See docs/experiments.md, "Multi-fidelity".
    public var scheduler: SchedulerSettings?
    /// Candidates trained at the same time on this machine.
    public var workers: Int = 1
    /// Total compute threads (OpenBLAS and the engine's loops); shared among workers.
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Where the HDF5 record goes; default `Results/<name>.h5`.
    public var output: String?

    public struct SearcherSettings: Equatable, Sendable {
        /// `random`, `regularized_evolution` or `local_search`.
        public var kind: String = "regularized_evolution"
        public var populationSize: Int = 20
        public var sampleSize: Int = 10
        /// Never evaluate an architecture already seen (by canonical hash).
        public var deduplicate: Bool = true
        /// Consecutive constraint rejections after which the search stops as "no feasible architecture found".
        public var maxConsecutiveRejections: Int = 1_000
        /// Local search: random (or warm-start) architectures evaluated before each local search run.
        public var initialSamples: Int = 10
        /// Zero-cost proxies guiding the search (`ZeroCostProxy` names; several are rank-combined);
        /// empty: no guidance. See ``ZeroCostGuide``.
        public var proxies: [String] = []
        /// Random architectures scored by the proxies before the search; searchers start from the best.
        public var warmStart: Int = 0
        /// Proposals scoring below this quantile of the warm-start scores are skipped untrained.
        public var prescreenQuantile: Double?
        /// Mini-batch of the data-dependent proxies.
        public var proxyBatchSize: Int = 64
        /// Seeds the proxies' weights and mini-batch.
        public var proxySeed: UInt64 = 0
    }

    public struct Budget: Equatable, Sendable {
        /// Number of candidates to evaluate (trained, or looked up); rejected candidates do not count.
        public var candidates: Int = 20
        /// Optional wall-time limit for the whole search.
        public var wallMinutes: Double?
    }

    public struct TrainingSettings: Codable, Equatable, Sendable {
        public var epochs: Int = 10
        public var batchSize: Int = 64
        public var learningRate: Double = 0.05
        /// `sgd` or `adamw`.
        public var optimizer: String = "sgd"
        public var momentum: Double = 0.9
        public var nesterov: Bool = true
        public var weightDecay: Double = 5e-4
        /// `constant`, `step` or `cosine`.
        public var schedule: String = "cosine"
        public var warmupEpochs: Int = 0
        public var labelSmoothing: Double = 0
    }

    public struct Constraints: Equatable, Sendable {
        public var maxParams: Int?
        /// Upper bound on FLOPs (2 × multiply-accumulates of conv and linear layers, batch 1).
        public var maxFlops: Double?
        public var maxLatencyMs: Double?
        /// `predicted` (kernel-level predictor, the default and the API's policy) or `measured`
        /// (forward passes timed) latency for `max_latency_ms` (docs/latency.md, "One policy").
        public var latency: String = "predicted"
        /// The latency table file (`naslab latency build-table`; one table per thread count); kernels
        /// the candidate's thread count's table lacks are measured when first met and added to it.
        /// Default: the per-user cache `LatencyTable.defaultPath` (never the current directory).
        public var latencyTable: String = LatencyTable.defaultPath
        public var isEmpty: Bool { maxParams == nil && maxFlops == nil && maxLatencyMs == nil }
    }

    public struct EvaluatorSettings: Equatable, Sendable {
        /// `training` (NASLab's engine) or `tabular` (a lookup table such as NAS-Bench-201).
        public var kind: String = "training"
        /// Tabular: path to the CSV table.
        public var table: String?
        /// Tabular: column holding the architecture text and the metric to maximise.
        public var keyColumn: String = "ArchitectureString"
        public var metricColumn: String = "CIFAR10TestAccuracy200Epochs"
        /// Tabular: further columns reported (not used for selection).
        public var reportColumns: [String] = []
    }

    /// Where candidates are trained: this machine (`local`) or a Slurm cluster (`slurm`).
    public struct ExecutorSettings: Equatable, Sendable {
        public var kind: String = "local"
        /// Slurm: a directory every node sees (specs, results, logs, weights).
        public var sharedDirectory: String?
        public var partition: String?
        public var timeLimitMinutes: Int = 60
        public var cpusPerTask: Int = 1
        public var extraArguments: [String] = []
        public var maxRetries: Int = 0
        /// Slurm: the worker command (default: this `naslab` executable followed by `evaluate`).
        public var workerCommand: [String]?
    }

    /// How long each candidate trains: rungs of `minEpochs · eta^r` epochs up to `maxEpochs`.
    public struct SchedulerSettings: Equatable, Sendable {
        /// `successive-halving`, `hyperband` or `asha`.
        public var kind: String = "successive-halving"
        public var minEpochs: Int = 1
        /// The top rung and the learning-rate schedule's length; default `training.epochs`.
        public var maxEpochs: Int = 10
        public var eta: Int = 3
        /// Hyperband only: brackets per cycle (`nil`: all, `⌊log_eta(max/min)⌋ + 1`).
        public var brackets: Int?

        public init() {}

        /// The scheduler's parameters.
        public func schedule() throws -> FidelitySchedule {
            guard let kind = FidelitySchedule.Kind(rawValue: kind) else {
                throw LabError.invalid("unknown scheduler kind '\(kind)'")
            }
            return try FidelitySchedule(kind: kind, minEpochs: minEpochs, maxEpochs: maxEpochs, eta: eta, brackets: brackets)
        }
    }

    public init(name: String) { self.name = name }

    /// The record path: `output` or `Results/<name>.h5`.
    public var outputPath: String { output ?? "Results/\(name).h5" }
}

extension ExperimentConfig {
    public static let searcherKinds = ["random", "regularized_evolution", "local_search"]

    /// Loads and validates a config file; errors are `file:line:column: message`.
    public static func load(path: String) throws -> ExperimentConfig {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, line: 1, column: 1, message: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: 1, column: 1, message: "the file is not UTF-8 text")
        }
        return try parse(yaml: text, file: path)
    }

    public static func parse(yaml: String, file: String) throws -> ExperimentConfig {
        let parsed = parseCollectingErrors(yaml: yaml, file: file)
        if let first = parsed.errors.first { throw first }
        guard let config = parsed.config else { throw ConfigError(file: file, line: 1, column: 1, message: "cannot read the config") }
        return config
    }

    /// Parses like `parse(yaml:file:)` but goes on after an error, so that one pass finds every
    /// problem the parser can see: a bad value leaves its default in place and reading continues
    /// with the next key. `config` is `nil` only when the document cannot be read at all (invalid
    /// YAML, not a mapping); `errors` are in the order found (`parse` throws the first one).
    public static func parseCollectingErrors(yaml: String, file: String) -> (config: ExperimentConfig?, errors: [ConfigError]) {
        var errors = [ConfigError]()
        func record(_ error: Error) {
            errors.append(error as? ConfigError ?? ConfigError(file: file, line: 1, column: 1, message: "\(error)"))
        }
        /// The value `body` reads, or `nil` (with the error recorded) when it throws.
        func get<T>(_ body: () throws -> T?) -> T? {
            do { return try body() } catch { record(error); return nil }
        }
        var r: ConfigReader
        do { r = try ConfigReader.parse(yaml: yaml, file: file) } catch {
            record(error)
            return (nil, errors)
        }
        errors += r.problems
        let name = get { try r.requiredString("name") }
        var c = ExperimentConfig(name: name ?? "")
        if let name, let node = r.valueNode("name"),
           name.isEmpty || !name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) {
            errors.append(r.error(at: node, "'name' may contain letters, digits, '-', '_' and '.' only"))
        }
        if let s = get({ try r.int("seed", range: 0...Int.max) }) { c.seed = UInt64(s) }
        c.space = get { try r.string("space") } ?? c.space
        c.dataset = get { try r.string("dataset") } ?? c.dataset
        c.taskType = get { try r.choice("task_type", ["classification"] + TaskKind.allCases.map(\.rawValue)) } ?? c.taskType
        c.validationSplit = get { try r.double("validation_split", range: 0...0.9) } ?? c.validationSplit
        c.workers = get { try r.int("workers", range: 1...64) } ?? c.workers
        c.threads = get { try r.int("threads", range: 1...256) } ?? c.threads
        c.output = get { try r.string("output") }

        if var s = get({ try r.mapping("searcher") }) {
            errors += s.problems
            c.searcher.kind = get { try s.choice("kind", searcherKinds) } ?? c.searcher.kind
            let population = get { try s.int("population_size", range: 2...100_000) }
            let sample = get { try s.int("sample_size", range: 1...100_000) }
            c.searcher.populationSize = population ?? c.searcher.populationSize
            c.searcher.sampleSize = sample ?? c.searcher.sampleSize
            c.searcher.deduplicate = get { try s.bool("deduplicate") } ?? c.searcher.deduplicate
            c.searcher.maxConsecutiveRejections = get { try s.int("max_consecutive_rejections", range: 1...Int.max) }
                ?? c.searcher.maxConsecutiveRejections
            c.searcher.initialSamples = get { try s.int("initial_samples", range: 1...1_000_000) } ?? c.searcher.initialSamples
            if let names = get({ try s.stringList("proxies") }) {
                let known = ZeroCostProxy.allCases.map(\.rawValue)
                if let bad = names.first(where: { !known.contains($0) }), let n = s.valueNode("proxies") {
                    errors.append(s.error(at: n, "unknown proxy '\(bad)' in 'proxies': expected some of \(known.joined(separator: ", "))"))
                } else {
                    c.searcher.proxies = names
                }
            }
            c.searcher.warmStart = get { try s.int("warm_start", range: 0...10_000_000) } ?? c.searcher.warmStart
            c.searcher.prescreenQuantile = get { try s.double("prescreen_quantile", range: 0...0.999) }
            c.searcher.proxyBatchSize = get { try s.int("proxy_batch_size", range: 2...100_000) } ?? c.searcher.proxyBatchSize
            if let seed = get({ try s.int("proxy_seed", range: 0...Int.max) }) { c.searcher.proxySeed = UInt64(seed) }
            if c.searcher.proxies.isEmpty, c.searcher.warmStart > 0 || c.searcher.prescreenQuantile != nil,
               let n = s.valueNode("warm_start") ?? s.valueNode("prescreen_quantile") {
                errors.append(s.error(at: n, "'warm_start' and 'prescreen_quantile' need 'proxies' (e.g. proxies: [synflow])"))
            }
            if !c.searcher.proxies.isEmpty, c.searcher.warmStart < 10, let n = s.valueNode("warm_start") ?? s.valueNode("proxies") {
                errors.append(s.error(at: n, "zero-cost guidance needs 'warm_start' of at least 10 architectures (the reference its scores are ranked against)"))
            }
            // Only compare values that were read without error (a bad one would be compared as its default).
            let populationOK = population != nil || s.valueNode("population_size") == nil
            if sample != nil, populationOK, c.searcher.sampleSize > c.searcher.populationSize, let n = s.valueNode("sample_size") {
                errors.append(s.error(at: n, "'sample_size' (\(c.searcher.sampleSize)) must not exceed 'population_size' (\(c.searcher.populationSize))"))
            }
            errors += s.unknownKeyErrors(section: "searcher")
        }
        if var b = get({ try r.mapping("budget") }) {
            errors += b.problems
            c.budget.candidates = get { try b.int("candidates", range: 1...10_000_000) } ?? c.budget.candidates
            c.budget.wallMinutes = get { try b.double("wall_minutes", range: 0.001...1e9) }
            errors += b.unknownKeyErrors(section: "budget")
        }
        // Training defaults follow the task (`TaskKind.defaultTraining`): the one `task_type` names,
        // else the space's. A space that does not resolve fails the run later with its own error.
        if let task = TaskKind(name: c.taskType) ?? (try? SpaceReference.resolve(c.space))?.space.task {
            c.training = task.defaultTraining
        }
        if var t = get({ try r.mapping("training") }) {
            errors += t.problems
            c.training.epochs = get { try t.int("epochs", range: 1...100_000) } ?? c.training.epochs
            c.training.batchSize = get { try t.int("batch_size", range: 1...1_000_000) } ?? c.training.batchSize
            c.training.learningRate = get { try t.double("learning_rate", range: 1e-12...100) } ?? c.training.learningRate
            c.training.optimizer = get { try t.choice("optimizer", ["sgd", "adamw"]) } ?? c.training.optimizer
            c.training.momentum = get { try t.double("momentum", range: 0...0.9999) } ?? c.training.momentum
            c.training.nesterov = get { try t.bool("nesterov") } ?? c.training.nesterov
            c.training.weightDecay = get { try t.double("weight_decay", range: 0...1) } ?? c.training.weightDecay
            c.training.schedule = get { try t.choice("schedule", ["constant", "step", "cosine"]) } ?? c.training.schedule
            c.training.warmupEpochs = get { try t.int("warmup_epochs", range: 0...100_000) } ?? c.training.warmupEpochs
            c.training.labelSmoothing = get { try t.double("label_smoothing", range: 0...0.999) } ?? c.training.labelSmoothing
            errors += t.unknownKeyErrors(section: "training")
        }
        if var k = get({ try r.mapping("constraints") }) {
            errors += k.problems
            c.constraints.maxParams = get { try k.int("max_params", range: 1...Int.max) }
            c.constraints.maxFlops = get { try k.double("max_flops", range: 1...1e18) }
            c.constraints.maxLatencyMs = get { try k.double("max_latency_ms", range: 1e-6...1e9) }
            c.constraints.latency = get { try k.choice("latency", ["predicted", "measured"]) } ?? c.constraints.latency
            c.constraints.latencyTable = get { try k.string("latency_table") } ?? c.constraints.latencyTable
            errors += k.unknownKeyErrors(section: "constraints")
        }
        if var x = get({ try r.mapping("executor") }) {
            errors += x.problems
            c.executor.kind = get { try x.choice("kind", ["local", "slurm"]) } ?? c.executor.kind
            let errorsBeforeSharedDir = errors.count
            c.executor.sharedDirectory = get { try x.string("shared_dir") }
            let sharedDirUnreadable = errors.count > errorsBeforeSharedDir
            c.executor.partition = get { try x.string("partition") }
            c.executor.timeLimitMinutes = get { try x.int("time_limit_minutes", range: 1...1_000_000) } ?? c.executor.timeLimitMinutes
            c.executor.cpusPerTask = get { try x.int("cpus_per_task", range: 1...1024) } ?? c.executor.cpusPerTask
            c.executor.maxRetries = get { try x.int("max_retries", range: 0...100) } ?? c.executor.maxRetries
            c.executor.extraArguments = get { try x.stringList("extra_args") } ?? []
            c.executor.workerCommand = get { try x.stringList("worker_command") }
            if c.executor.kind == "slurm", c.executor.sharedDirectory == nil, !sharedDirUnreadable {
                errors.append(x.error(at: x.node, "a slurm executor needs 'shared_dir' (a directory all nodes see)"))
            }
            errors += x.unknownKeyErrors(section: "executor")
        }
        if var e = get({ try r.mapping("evaluator") }) {
            errors += e.problems
            c.evaluator.kind = get { try e.choice("kind", ["training", "tabular"]) } ?? c.evaluator.kind
            let errorsBeforeTable = errors.count
            c.evaluator.table = get { try e.string("table") }
            let tableUnreadable = errors.count > errorsBeforeTable
            c.evaluator.keyColumn = get { try e.string("key_column") } ?? c.evaluator.keyColumn
            c.evaluator.metricColumn = get { try e.string("metric_column") } ?? c.evaluator.metricColumn
            c.evaluator.reportColumns = get { try e.stringList("report_columns") } ?? []
            if c.evaluator.kind == "tabular", c.evaluator.table == nil, !tableUnreadable {
                errors.append(e.error(at: e.node, "a tabular evaluator needs 'table' (path to the CSV)"))
            }
            errors += e.unknownKeyErrors(section: "evaluator")
        }
        if var m = get({ try r.mapping("scheduler") }) {
            errors += m.problems
            var settings = SchedulerSettings()
            settings.maxEpochs = c.training.epochs
            settings.kind = get { try m.choice("kind", FidelitySchedule.Kind.allCases.map(\.rawValue)) } ?? settings.kind
            let minimum = get { try m.int("min_epochs", range: 1...100_000) }
            let maximum = get { try m.int("max_epochs", range: 1...100_000) }
            let eta = get { try m.int("eta", range: 2...1_000) }
            let brackets = get { try m.int("brackets", range: 1...1_000) }
            settings.minEpochs = minimum ?? settings.minEpochs
            settings.maxEpochs = maximum ?? settings.maxEpochs
            settings.eta = eta ?? settings.eta
            settings.brackets = brackets
            // Cross-checks only between values read without error.
            let read: [String: Int?] = ["min_epochs": minimum, "max_epochs": maximum, "eta": eta, "brackets": brackets]
            let readable = read.allSatisfy { key, value in value != nil || m.valueNode(key) == nil }
            if readable {
                if settings.maxEpochs < settings.minEpochs * settings.eta {
                    errors.append(m.error(at: m.valueNode("max_epochs") ?? m.valueNode("min_epochs") ?? m.node,
                        "'max_epochs' (\(settings.maxEpochs)) must be at least 'min_epochs' × 'eta' (\(settings.minEpochs * settings.eta)) "
                        + "so that there are two rungs" + (maximum == nil ? " (it defaults to training.epochs)" : "")))
                } else if let b = brackets, let node = m.valueNode("brackets") {
                    if settings.kind != "hyperband" {
                        errors.append(m.error(at: node, "'brackets' is a hyperband setting (kind is \(settings.kind))"))
                    } else if let schedule = try? FidelitySchedule(kind: .hyperband, minEpochs: settings.minEpochs,
                                                                   maxEpochs: settings.maxEpochs, eta: settings.eta),
                              b > schedule.topRung + 1 {
                        errors.append(m.error(at: node, "'brackets' must be in 1...\(schedule.topRung + 1) for rungs of "
                            + "\(schedule.rungEpochs.map(String.init).joined(separator: ", ")) epochs, got \(b)"))
                    }
                }
            }
            if c.evaluator.kind == "tabular" {
                errors.append(m.error(at: m.node, "a scheduler needs the training evaluator (a tabular benchmark has no epochs to schedule)"))
            }
            errors += m.unknownKeyErrors(section: "scheduler")
            c.scheduler = settings
        }
        errors += r.unknownKeyErrors()
        return (c, errors)
    }
}
