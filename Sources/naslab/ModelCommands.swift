import ArgumentParser
import Foundation
import Estimators
import Lab
import NASCore

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train one architecture (or a fixed reference network) on a dataset.",
        discussion: """
            Hyperparameters not given default per task (TaskKind.defaultTraining): images SGD lr 0.05, \
            batch 64, 10 epochs; text AdamW lr 2e-3, batch 64, 10 epochs; tabular AdamW lr 3e-3, batch 64, 30 epochs.
            """)

    @Option(help: "A search-space file or shipped name (e.g. SearchSpaces/reference/cnn.yaml, small, text-small; default with --init-from: the model's).")
    var space: String?
    @Option(help: "The architecture's text form (omit for fixed networks).") var arch: String?
    @Option(help: "digits, fashion-mnist, fortunes, or a dataset file (.csv text/tabular, HDF5, IDX).") var dataset = "digits"
    @Option(help: "Epochs (default: per task).") var epochs: Int?
    @Option(help: "Mini-batch size (default: per task).") var batchSize: Int?
    @Option(help: "Learning rate (default: per task).") var learningRate: Double?
    @Option(help: "sgd or adamw (default: per task).") var optimizer: String?
    @Option(help: "Weight decay (default: per task).") var weightDecay: Double?
    @Option(help: "constant, step or cosine.") var schedule: String?
    @Option(help: "Fraction of the training split held out for validation.") var validationSplit = 0.1
    @Option(help: "Seed for splits, initialisation and shuffling.") var seed: UInt64 = 0
    @Option(help: "Compute threads.") var threads = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Save the trained model to this HDF5 file.") var save: String?
    @Option(help: "Fine-tune: initialise from this trained model file (matching tensors; a new class count gets a fresh classifier).")
    var initFrom: String?
    @Flag(help: "Print the final metrics as one JSON object.") var json = false

    func validate() throws {
        if let epochs { guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1") } }
        if let batchSize { guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") } }
        if let learningRate { guard learningRate > 0, learningRate.isFinite else { throw ValidationError("--learning-rate must be positive") } }
        if let weightDecay { guard weightDecay >= 0, weightDecay.isFinite else { throw ValidationError("--weight-decay must be 0 or more, got \(weightDecay)") } }
        if let optimizer { guard ["sgd", "adamw"].contains(optimizer) else { throw ValidationError("--optimizer must be sgd or adamw") } }
        if let schedule {
            guard ["constant", "step", "cosine"].contains(schedule) else { throw ValidationError("--schedule must be constant, step or cosine") }
        }
        guard (0...0.9).contains(validationSplit) else { throw ValidationError("--validation-split must be in 0...0.9") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard space != nil || initFrom != nil else { throw ValidationError("pass --space (or --init-from MODEL_FILE)") }
    }

    func run() throws {
        try reportingErrors {
            var o = TrainingRun.Options(space: space)
            o.architecture = arch
            o.dataset = dataset
            o.validationSplit = validationSplit
            o.overrides.epochs = epochs
            o.overrides.batchSize = batchSize
            o.overrides.learningRate = learningRate
            o.overrides.optimizer = optimizer
            o.overrides.weightDecay = weightDecay
            o.overrides.schedule = schedule
            o.seed = seed
            o.threads = threads
            o.saveWeights = save
            o.initFrom = initFrom
            o.progress = !json
            let m = try TrainingRun.run(o)
            if json {
                try printJSON(m)
            } else {
                if let a = m.initial_val_accuracy, let from = m.initialized_from {
                    print(String(format: "initialised from %@: validation accuracy before training %.4f", from, a))
                }
                print(m.summary)
                if let reason = m.reason { print("reason: \(reason)") }
                if let w = m.weights { print("weights: \(w)") }
            }
            if m.status != "completed" { throw ExitCode(2) }
        }
    }
}

struct SpacesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "spaces", abstract: "List the shipped search spaces and their sizes.")

    @Flag(help: "JSON output.") var json = false

    func run() throws {
        try reportingErrors {
            let spaces = try SpaceListing.shipped()
            if json { try printJSON(spaces); return }
            for s in spaces {
                let name = s.name.padding(toLength: 24, withPad: " ", startingAt: 0)
                    + s.task.padding(toLength: 24, withPad: " ", startingAt: 0)
                let size = s.size.count > 24 ? String(s.size.prefix(3)) + "… (\(s.size.count) digits)" : s.size
                print("\(name) \(size.padding(toLength: 26, withPad: " ", startingAt: 0)) \(s.description)")
            }
        }
    }
}

/// `value` right-aligned in `width` columns.
private func pad(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

struct EstimateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "estimate", abstract: "Params, MACs/FLOPs and latency (predicted and measured) of architectures, without training.",
        discussion: """
            latency_ms_predicted is what searches screen max_latency_ms with: this machine's kernel-level latency table \
            for --threads (the per-user cache, or --latency-table), kernels it lacks measured once and added to it, \
            scaled by latency_slowdown (a reference network's time now over its time when the table was measured). \
            latency_ms_measured is the median forward latency under the measurement protocol of docs/latency.md \
            (interleaved with a reference network). Both at batch 1.
            """)

    @Option(help: "A search-space file or shipped name.") var space: String
    @Option(help: "An architecture's text form (repeatable).") var arch: [String] = []
    @Option(help: "Estimate N random architectures.") var random: Int?
    @Option(help: "Seed for --random.") var seed: UInt64 = 0
    @Option(help: "Input shape CxHxW (default by the space's task: 1x28x28 images, 24x1x128 token sequences: 24 ids (word, bigram, character n-grams) per position, 16 features).") var input: String?
    @Option(help: "Token ids of text spaces: the embedding's rows (default 120000: 20000 words + 100000 subword buckets).") var vocabulary: Int?
    @Option(help: "Number of classes.") var classes = 10
    @Option(help: "Compute threads of the latency prediction and measurement.") var threads = 1
    @Option(help: "The latency table file (default: the per-user cache, $NASLAB_CACHE_DIR or ~/.cache/naslab/latency-table.h5).")
    var latencyTable = LatencyTable.defaultPath
    @Flag(help: "Skip the latencies (predicted and measured).") var noLatency = false
    @Flag(help: "JSON output.") var json = false

    func validate() throws {
        try requireNonNegative(random, "--random")
        try requirePositive(vocabulary, "--vocabulary")
        try requirePositive(classes, "--classes")
        try requirePositive(threads, "--threads")
    }

    func run() throws {
        try reportingErrors {
            var shape: FeatureShape?
            if let input { shape = try FeatureShapeParser.parseChecked(input) }
            var estimates = try CostEstimate.estimate(space: space, architectures: arch.isEmpty ? nil : arch, random: random,
                                                      seed: seed, inputShape: shape, classCount: classes,
                                                      measure: false, threads: threads, vocabulary: vocabulary)
            if !noLatency {
                let latencies = try LatencyTableBuilding.latencies(
                    space: space, architectures: estimates.map(\.architecture), inputShape: shape, classCount: classes,
                    vocabulary: vocabulary, threads: threads, tablePath: latencyTable, measure: true,
                    progress: { FileHandle.standardError.write(Data("\r\u{1B}[K\($0)".utf8)) })
                FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
                for (i, l) in latencies.enumerated() {
                    estimates[i].latency_ms_predicted = l.predicted
                    estimates[i].latency_ms_measured = l.measured
                    estimates[i].latency_slowdown = l.slowdown
                }
            }
            if json { try printJSON(estimates); return }
            for e in estimates {
                // Counts are Int (64-bit): %d would print them as 32-bit (ResNet-18's FLOPs came out negative).
                var line = "params \(pad(e.params, 9))  MACs \(pad(e.macs, 13))  FLOPs \(pad(e.flops, 13))"
                if let nb = e.nasbench201_flops { line += "  NB201 FLOPs \(pad(nb, 11))" }
                if let p = e.latency_ms_predicted {
                    line += String(format: "  latency %.3f ms predicted", p)
                    if let m = e.latency_ms_measured { line += String(format: ", %.3f ms measured (%+.1f %%)", m, 100 * (p - m) / m) }
                    line += " (batch 1, \(threads) thread(s))"
                }
                print(line)
                print("  \(e.architecture)")
            }
        }
    }
}

struct LatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency", abstract: "Kernel-level latency tables for predicted latency.",
        subcommands: [BuildTable.self])

    struct BuildTable: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "build-table",
            abstract: "Measure this machine's kernel latencies (fused conv chains and other ops) for the given spaces, per thread count.")

        @Option(help: "Comma-separated spaces (shipped names or files).")
        var spaces = "small,medium,large,text-small,text-medium,text-large,segmentation-small,segmentation-medium,segmentation-large"
        @Option(help: "Input shape CxHxW (repeatable; default: each space task's default input).") var input: [String] = []
        @Option(help: "Class count (repeatable).") var classes: [Int] = [10]
        @Option(help: "Architectures sampled per space, input and class count.") var samples = 100
        @Option(help: "Seed of the sampling (calibration: seed + 1).") var seed: UInt64 = 1
        @Option(help: "Comma-separated thread counts, one table each (use the thread counts candidates get).") var threads = "1"
        @Option(help: "Rounds of adaptive sampling (neighbours of the kernels the regressors predict worst).") var adaptiveRounds = 1
        @Option(help: "Kernels added per adaptive round.") var adaptiveKernels = 200
        @Option(help: "Calibrate on N further architectures per space measured whole (0: no calibration).")
        var calibration = LatencyTable.defaultCalibrationNetworksPerSpace
        @Option(name: [.short, .long], help: "The table file (default: the per-user cache, $NASLAB_CACHE_DIR or ~/.cache/naslab/latency-table.h5).")
        var output = ExperimentConfig(name: "latency").constraints.latencyTable
        @Flag(help: "Replace the file's existing tables of these thread counts (default: refuse).") var overwrite = false

        func validate() throws {
            for c in classes { try requirePositive(c, "--classes") }
            try requirePositive(samples, "--samples")
            try requireNonNegative(adaptiveRounds, "--adaptive-rounds")
            try requireNonNegative(adaptiveKernels, "--adaptive-kernels")
            try requireNonNegative(calibration, "--calibration")
            for t in threads.split(separator: ",") {
                guard let n = Int(t), n >= 1 else { throw ValidationError("--threads must be positive integers separated by commas, got '\(threads)'") }
            }
        }

        func run() throws {
            try reportingErrors {
                for shape in input { _ = try FeatureShapeParser.parseChecked(shape) }   // argument errors first
                let threadCounts = threads.split(separator: ",").compactMap { Int($0) }
                if FileManager.default.fileExists(atPath: output), !overwrite {
                    let present = ((try? LatencyTable.loadAll(path: output)) ?? []).map(\.machine.threadCount)
                    let clash = threadCounts.filter(present.contains)
                    if !clash.isEmpty || (try? LatencyTable.loadAll(path: output)) == nil {
                        throw LabError.invalid("\(output) already exists: pass --overwrite to replace \(clash.isEmpty ? "it" : "its table for \(clash.map(String.init).joined(separator: ",")) thread(s)"), or choose another --output")
                    }
                }
                for t in threadCounts {
                    let summary = try LatencyTableBuilding.build(
                        spaces: spaces.split(separator: ",").map(String.init), inputShapes: input, classCounts: classes,
                        samplesPerSpace: samples, seed: seed, threads: t, output: output, adaptiveRounds: adaptiveRounds,
                        adaptiveKernels: adaptiveKernels, calibration: calibration,
                        progress: { FileHandle.standardError.write(Data("\r\u{1B}[K\($0)".utf8)) })
                    FileHandle.standardError.write(Data("\n".utf8))
                    var line = "wrote \(summary.path): \(summary.entries) kernels (\(summary.adaptiveEntries) by adaptive sampling) in "
                        + String(format: "%.1f", summary.seconds) + " s (\(summary.machine))"
                    if !summary.calibrationErrors.isEmpty {
                        line += String(format: "; calibrated on %d networks, %.0f %% within ±10 %%", summary.calibrationErrors.count,
                                       LatencyTable.percentWithin(summary.calibrationErrors))
                    }
                    print(line)
                }
            }
        }
    }
}
