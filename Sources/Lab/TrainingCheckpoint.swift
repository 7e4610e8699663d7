import Engine
import Foundation
import HDF5Kit
import NASCore

/// Per-epoch training checkpoints: one HDF5 file holding an engine `TrainerState` and the
/// fingerprint of the `TrainingJob` that wrote it. `ModelTraining.train` writes one after every
/// epoch when `TrainingJob.checkpointPath` is set, and resumes from it when it exists at start, so
/// a run killed mid-way ends bit-identical to an uninterrupted one (same seed, same thread count).
///
/// Writes are atomic: the file is written completely as `<path>.tmp`, synced, then renamed over
/// `<path>` (`rename(2)`), so a reader never sees a half-written checkpoint. Nobody deletes the
/// checkpoint automatically: its owner does when the run's result is safe.
///
/// Layout (format `naslab-training-checkpoint`, `format_version` 1):
///
/// | object | contents |
/// |---|---|
/// | `/` attributes | `format`, `format_version`, `epochs_completed`, `step`, `optimizer` (`sgd`/`adamw`) |
/// | `/fingerprint` attributes | the job: `space_name`, `space_yaml`, `architecture` (canonical), `dataset`, `validation_split`, `dataset_seed`, `seed`, `training_json` (the effective `TrainingSettings`), `initial_model` (fine-tuning only); all strings |
/// | `/epochs/…` | one float64 dataset per metric, one value per finished epoch: `train_loss`, `train_accuracy`, `validation_loss`, `validation_accuracy` (NaN: no validation set), `learning_rate`, `seconds`; `epoch` is int64 |
/// | `/state/indices` | int64, the training-set permutation after the last finished epoch |
/// | `/state/shuffle_generator`, `/state/dropout_generator` | uint64[4], the xoshiro256** states |
/// | `/weights/<tensor>` | float32, every network parameter and buffer (batch norm running statistics too), as in model files (`tensor_order`) |
/// | `/optimizer` attributes | `step_count`, `parameter_names` (the network's trainable parameters, in order) |
/// | `/optimizer/slot_counts` | int64, per parameter: its number of state slots, −1 for no state yet |
/// | `/optimizer/slot<k>/<parameter>` | float32, slot `k` of a parameter's state (SGD: `slot0` momentum; AdamW: `slot0` first, `slot1` second moment) |
public enum TrainingCheckpoint {
    /// The `format` attribute of checkpoint files.
    public static let format = "naslab-training-checkpoint"
    /// The version `save` writes.
    public static let formatVersion = 1

    /// Where a checkpoint is written before it is renamed to `path`: `<path>.tmp`.
    public static func temporaryPath(for path: String) -> String { path + ".tmp" }

    /// The metrics of the epochs recorded in the checkpoint at `path`, without loading anything
    /// else (e.g. to report "resumed from epoch k" before training starts).
    ///
    /// - Returns: `nil` when there is no file at `path`.
    /// - Throws: `LabError.invalid` naming `path` when the file is not a readable checkpoint.
    public static func epochs(atPath path: String) throws -> [EpochMetrics]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try reading(path) { file in
            try checkFormat(file, path)
            return try readEpochs(file)
        }
    }

    // MARK: Fingerprint

    /// The fields that identify a job: a checkpoint resumes only a job with the same ones.
    /// The thread count is not part of it (results are identical only for equal thread counts,
    /// but a checkpoint may be resumed with another).
    static func fingerprint(job: TrainingJob, spaceName: String, spaceYAML: String, architecture: String,
                            training: ExperimentConfig.TrainingSettings) throws -> [String: String] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var fields = [
            "space_name": spaceName,
            "space_yaml": spaceYAML,
            "architecture": architecture,
            "dataset": job.dataset,
            "validation_split": "\(job.validationSplit)",
            "dataset_seed": "\(job.datasetSeed)",
            "seed": "\(job.seed)",
            "training_json": String(decoding: try encoder.encode(training), as: UTF8.self),
        ]
        if let initial = job.initialModel {
            fields["initial_model"] = job.initialModelName ?? "\(initial.spaceName): \(initial.architecture)"
        }
        return fields
    }

    // MARK: Writing

    /// Writes `state` and `fingerprint` to `<path>.tmp`, syncs it and renames it over `path`.
    /// On failure the temporary file is removed and `path` is left as it was.
    static func save(_ state: TrainerState, fingerprint: [String: String], to path: String) throws {
        let temporary = temporaryPath(for: path)
        do {
            let file = try H5File.create(path: temporary, truncate: true)
            try write(state, fingerprint: fingerprint, to: file)
            try file.flush()
            try file.close()
            let fd = open(temporary, O_RDONLY)
            if fd >= 0 {
                _ = fsync(fd)
                _ = close(fd)
            }
            guard rename(temporary, path) == 0 else {
                throw LabError.invalid("cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw LabError.invalid("\(path): cannot write the training checkpoint: \(error)")
        }
    }

    private static func write(_ state: TrainerState, fingerprint: [String: String], to file: H5File) throws {
        try file.setAttribute("format", format)
        try file.setAttribute("format_version", formatVersion)
        try file.setAttribute("epochs_completed", state.epochsCompleted)
        try file.setAttribute("step", state.step)
        try file.setAttribute("optimizer", state.optimizer.rawValue)

        let job = try file.requireGroup("fingerprint")
        for (key, value) in fingerprint.sorted(by: { $0.key < $1.key }) { try job.setAttribute(key, value) }

        let epochs = try file.requireGroup("epochs")
        let m = state.epochs
        try epochs.write("epoch", values: m.map { Int64($0.epoch) })
        try epochs.write("train_loss", values: m.map(\.trainLoss))
        try epochs.write("train_accuracy", values: m.map(\.trainAccuracy))
        try epochs.write("validation_loss", values: m.map { $0.validationLoss ?? .nan })
        try epochs.write("validation_accuracy", values: m.map { $0.validationAccuracy ?? .nan })
        try epochs.write("learning_rate", values: m.map(\.learningRate))
        try epochs.write("seconds", values: m.map(\.seconds))

        let training = try file.requireGroup("state")
        try training.write("indices", values: state.indices.map { Int64($0) })
        try training.write("shuffle_generator", values: state.shuffleGenerator.state)
        try training.write("dropout_generator", values: state.dropoutGenerator.state)

        try file.requireGroup("weights").writeTensors(state.tensors.map { ($0.name, $0.shape, $0.values) })

        let optimizer = try file.requireGroup("optimizer")
        let parameterNames = state.optimizerState.parameterNames
        try optimizer.setAttribute("step_count", state.optimizerState.stepCount)
        try optimizer.setAttribute("parameter_names", parameterNames)
        let slots = state.optimizerState.parameterStates
        try optimizer.write("slot_counts", values: slots.map { Int64($0?.count ?? -1) })
        let slotCount = slots.map { $0?.count ?? 0 }.max() ?? 0
        for k in 0..<slotCount {
            var tensors = [NamedTensor]()
            for (name, s) in zip(parameterNames, slots) {
                if let s, k < s.count { tensors.append((name, [s[k].count], s[k])) }
            }
            try optimizer.requireGroup("slot\(k)").writeTensors(tensors)
        }
    }

    // MARK: Reading

    /// The state in the checkpoint at `path`, or `nil` when there is no file.
    ///
    /// - Throws: `LabError.invalid` naming `path` when the file is unreadable or its fingerprint
    ///   differs from `fingerprint` (the message names the differing fields).
    static func load(atPath path: String, fingerprint: [String: String]) throws -> TrainerState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try reading(path) { file in
            try checkFormat(file, path)
            let job = try file.openGroup("fingerprint")
            var stored = [String: String]()
            for key in try job.attributeNames() { stored[key] = try job.stringAttribute(key) }
            let differing = Set(stored.keys).union(fingerprint.keys).sorted().filter { stored[$0] != fingerprint[$0] }
            if !differing.isEmpty {
                let details = differing.map { key -> String in
                    let old = stored[key] ?? "none", new = fingerprint[key] ?? "none"
                    if old.count + new.count <= 120, !old.contains("\n"), !new.contains("\n") {
                        return "\(key): \(old) in the checkpoint, \(new) now"
                    }
                    return "\(key) differs"
                }
                throw LabError.invalid("\(path): the training checkpoint belongs to another job (\(details.joined(separator: "; "))); "
                    + "delete it to train this job from the start")
            }
            return try readState(file, path)
        }
    }

    /// Opens `path` read-only and runs `body`; HDF5 errors become a `LabError` naming `path`.
    private static func reading<R>(_ path: String, _ body: (H5File) throws -> R) throws -> R {
        do {
            let file = try H5File.open(path: path)
            defer { try? file.close() }
            return try body(file)
        } catch let error as LabError {
            throw error
        } catch {
            throw LabError.invalid("\(path): unreadable training checkpoint: \(error)")
        }
    }

    private static func checkFormat(_ file: H5File, _ path: String) throws {
        guard file.hasAttribute("format"), (try? file.stringAttribute("format")) == format else {
            throw LabError.invalid("\(path): not a NASLab training checkpoint (no format=\(format) attribute)")
        }
        let version = try file.intAttribute("format_version")
        guard version <= formatVersion else {
            throw LabError.invalid("\(path): training checkpoint format version \(version) is newer than this NASLab reads (\(formatVersion))")
        }
    }

    private static func readEpochs(_ file: H5File) throws -> [EpochMetrics] {
        let g = try file.openGroup("epochs")
        let epoch = try g.read("epoch", as: Int64.self).values
        let columns = try ["train_loss", "train_accuracy", "validation_loss", "validation_accuracy", "learning_rate", "seconds"]
            .map { try g.read($0, as: Double.self).values }
        guard columns.allSatisfy({ $0.count == epoch.count }) else {
            throw LabError.invalid("the epoch metrics have different lengths")
        }
        return epoch.indices.map { i in
            EpochMetrics(epoch: Int(epoch[i]), trainLoss: columns[0][i], trainAccuracy: columns[1][i],
                         validationLoss: columns[2][i].isNaN ? nil : columns[2][i],
                         validationAccuracy: columns[3][i].isNaN ? nil : columns[3][i],
                         learningRate: columns[4][i], seconds: columns[5][i])
        }
    }

    private static func readState(_ file: H5File, _ path: String) throws -> TrainerState {
        func bad(_ detail: String) -> LabError { .invalid("\(path): invalid training checkpoint: \(detail)") }
        let optimizerName = try file.stringAttribute("optimizer")
        guard let kind = OptimizerKind(rawValue: optimizerName) else { throw bad("unknown optimizer '\(optimizerName)'") }
        let state = try file.openGroup("state")
        func generator(_ name: String) throws -> SeededGenerator {
            let words = try state.read(name, as: UInt64.self).values
            guard words.count == 4, words.contains(where: { $0 != 0 }) else { throw bad("invalid generator state \(name)") }
            return SeededGenerator(state: words)
        }
        let tensors = try file.openGroup("weights").readTensors()
            .map { TrainerState.TensorValue(name: $0.name, shape: $0.shape, values: $0.values) }

        let optimizer = try file.openGroup("optimizer")
        let names = try optimizer.stringsAttribute("parameter_names")
        let counts = try optimizer.read("slot_counts", as: Int64.self).values
        guard counts.count == names.count else { throw bad("\(counts.count) slot counts for \(names.count) parameters") }
        var slotValues = [[String: [Float]]]()
        for k in 0..<Int(counts.max() ?? 0) {
            let tensors = try optimizer.openGroup("slot\(k)").readTensors()
            slotValues.append(Dictionary(tensors.map { ($0.name, $0.values) }, uniquingKeysWith: { a, _ in a }))
        }
        let parameterStates: [[[Float]]?] = try zip(names, counts).map { name, count in
            guard count >= 0 else { return nil }
            return try (0..<Int(count)).map { k in
                guard let values = slotValues[k][name] else { throw bad("missing optimizer state optimizer/slot\(k)/\(name)") }
                return values
            }
        }
        return TrainerState(
            epochsCompleted: try file.intAttribute("epochs_completed"), step: try file.intAttribute("step"),
            epochs: try readEpochs(file), indices: try state.read("indices", as: Int64.self).values.map { Int($0) },
            shuffleGenerator: try generator("shuffle_generator"), dropoutGenerator: try generator("dropout_generator"),
            optimizer: kind,
            optimizerState: OptimizerState(stepCount: try optimizer.intAttribute("step_count"), parameterNames: names,
                                           parameterStates: parameterStates),
            tensors: tensors)
    }
}
