import Foundation
import NASCore

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
        /// `predicted` (lookup table) or `measured` (forward pass timed) latency for `max_latency_ms`.
        public var latency: String = "predicted"
        /// The per-op latency lookup table (`naslab latency build-table`); ops it lacks are measured
        /// when first met and added to it.
        public var latencyTable: String = "Results/latency-table.h5"
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
        var r = try ConfigReader.parse(yaml: yaml, file: file)
        var c = ExperimentConfig(name: try r.requiredString("name"))
        guard !c.name.isEmpty, c.name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw r.error(at: r.valueNode("name")!, "'name' may contain letters, digits, '-', '_' and '.' only")
        }
        if let s = try r.int("seed", range: 0...Int.max) { c.seed = UInt64(s) }
        c.space = try r.string("space") ?? c.space
        c.dataset = try r.string("dataset") ?? c.dataset
        c.taskType = try r.choice("task_type", ["classification"] + TaskKind.allCases.map(\.rawValue)) ?? c.taskType
        c.validationSplit = try r.double("validation_split", range: 0...0.9) ?? c.validationSplit
        c.workers = try r.int("workers", range: 1...64) ?? c.workers
        c.threads = try r.int("threads", range: 1...256) ?? c.threads
        c.output = try r.string("output")

        if var s = try r.mapping("searcher") {
            c.searcher.kind = try s.choice("kind", searcherKinds) ?? c.searcher.kind
            c.searcher.populationSize = try s.int("population_size", range: 2...100_000) ?? c.searcher.populationSize
            c.searcher.sampleSize = try s.int("sample_size", range: 1...100_000) ?? c.searcher.sampleSize
            c.searcher.deduplicate = try s.bool("deduplicate") ?? c.searcher.deduplicate
            c.searcher.maxConsecutiveRejections = try s.int("max_consecutive_rejections", range: 1...Int.max)
                ?? c.searcher.maxConsecutiveRejections
            if c.searcher.sampleSize > c.searcher.populationSize, let n = s.valueNode("sample_size") {
                throw s.error(at: n, "'sample_size' (\(c.searcher.sampleSize)) must not exceed 'population_size' (\(c.searcher.populationSize))")
            }
            try s.finish(section: "searcher")
        }
        if var b = try r.mapping("budget") {
            c.budget.candidates = try b.int("candidates", range: 1...10_000_000) ?? c.budget.candidates
            c.budget.wallMinutes = try b.double("wall_minutes", range: 0.001...1e9)
            try b.finish(section: "budget")
        }
        // Training defaults follow the task (`TaskKind.defaultTraining`): the one `task_type` names,
        // else the space's. A space that does not resolve fails the run later with its own error.
        if let task = TaskKind(name: c.taskType) ?? (try? SpaceReference.resolve(c.space))?.space.task {
            c.training = task.defaultTraining
        }
        if var t = try r.mapping("training") {
            c.training.epochs = try t.int("epochs", range: 1...100_000) ?? c.training.epochs
            c.training.batchSize = try t.int("batch_size", range: 1...1_000_000) ?? c.training.batchSize
            c.training.learningRate = try t.double("learning_rate", range: 1e-12...100) ?? c.training.learningRate
            c.training.optimizer = try t.choice("optimizer", ["sgd", "adamw"]) ?? c.training.optimizer
            c.training.momentum = try t.double("momentum", range: 0...0.9999) ?? c.training.momentum
            c.training.nesterov = try t.bool("nesterov") ?? c.training.nesterov
            c.training.weightDecay = try t.double("weight_decay", range: 0...1) ?? c.training.weightDecay
            c.training.schedule = try t.choice("schedule", ["constant", "step", "cosine"]) ?? c.training.schedule
            c.training.warmupEpochs = try t.int("warmup_epochs", range: 0...100_000) ?? c.training.warmupEpochs
            c.training.labelSmoothing = try t.double("label_smoothing", range: 0...0.999) ?? c.training.labelSmoothing
            try t.finish(section: "training")
        }
        if var k = try r.mapping("constraints") {
            c.constraints.maxParams = try k.int("max_params", range: 1...Int.max)
            c.constraints.maxFlops = try k.double("max_flops", range: 1...1e18)
            c.constraints.maxLatencyMs = try k.double("max_latency_ms", range: 1e-6...1e9)
            c.constraints.latency = try k.choice("latency", ["predicted", "measured"]) ?? c.constraints.latency
            c.constraints.latencyTable = try k.string("latency_table") ?? c.constraints.latencyTable
            try k.finish(section: "constraints")
        }
        if var x = try r.mapping("executor") {
            c.executor.kind = try x.choice("kind", ["local", "slurm"]) ?? c.executor.kind
            c.executor.sharedDirectory = try x.string("shared_dir")
            c.executor.partition = try x.string("partition")
            c.executor.timeLimitMinutes = try x.int("time_limit_minutes", range: 1...1_000_000) ?? c.executor.timeLimitMinutes
            c.executor.cpusPerTask = try x.int("cpus_per_task", range: 1...1024) ?? c.executor.cpusPerTask
            c.executor.maxRetries = try x.int("max_retries", range: 0...100) ?? c.executor.maxRetries
            c.executor.extraArguments = try x.stringList("extra_args") ?? []
            c.executor.workerCommand = try x.stringList("worker_command")
            if c.executor.kind == "slurm", c.executor.sharedDirectory == nil {
                throw x.error(at: x.node, "a slurm executor needs 'shared_dir' (a directory all nodes see)")
            }
            try x.finish(section: "executor")
        }
        if var e = try r.mapping("evaluator") {
            c.evaluator.kind = try e.choice("kind", ["training", "tabular"]) ?? c.evaluator.kind
            c.evaluator.table = try e.string("table")
            c.evaluator.keyColumn = try e.string("key_column") ?? c.evaluator.keyColumn
            c.evaluator.metricColumn = try e.string("metric_column") ?? c.evaluator.metricColumn
            c.evaluator.reportColumns = try e.stringList("report_columns") ?? []
            if c.evaluator.kind == "tabular", c.evaluator.table == nil {
                throw e.error(at: e.node, "a tabular evaluator needs 'table' (path to the CSV)")
            }
            try e.finish(section: "evaluator")
        }
        try r.finish()
        return c
    }
}
