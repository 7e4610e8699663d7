import Datasets
import Engine
import Foundation
import Lab
import TestSupport
import XCTest

/// Per-epoch checkpoints of `ModelTraining.train` (`TrainingJob.checkpointPath`, `stopRequested`).
final class TrainingCheckpointTests: XCTestCase {
    static let architecture = "stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 "
        + "stage2.depth=1 stage2.width=32 stage2.block0.op=dsconv stage2.block0.kernel=3"

    static func job(seed: UInt64 = 3, checkpoint: String?) -> TrainingJob {
        var job = TrainingJob(spaceName: "small", architecture: architecture, dataset: "digits")
        job.seed = seed
        job.datasetSeed = 2
        job.threads = 1
        var training = ExperimentConfig(name: "checkpoint").training
        training.epochs = 3
        training.batchSize = 64
        job.training = training
        job.checkpointPath = checkpoint
        return job
    }

    static func timeless(_ epochs: [EpochMetrics]) -> [EpochMetrics] {
        epochs.map { var m = $0; m.seconds = 0; return m }
    }

    func testAnInterruptedRunResumesFromItsCheckpointBitIdentically() throws {
        let dir = try CLI.scratch("checkpoint")
        let path = dir.appendingPathComponent("run.ckpt.h5").path
        let temporary = TrainingCheckpoint.temporaryPath(for: path)
        XCTAssertEqual(temporary, path + ".tmp")
        let fm = FileManager.default

        let reference = try ModelTraining.train(Self.job(checkpoint: nil), datasets: DatasetCache())
        XCTAssertEqual(reference.result.status, .completed)
        XCTAssertNil(reference.resumedFromEpoch)
        XCTAssertNil(try TrainingCheckpoint.epochs(atPath: path), "no file: nil")

        // Stopped after the first epoch: the checkpoint is there, the temporary file is not.
        var stopping = Self.job(checkpoint: path)
        stopping.stopRequested = { true }
        XCTAssertThrowsError(try ModelTraining.train(stopping, datasets: DatasetCache())) { error in
            XCTAssertEqual(error as? TrainingInterrupted, TrainingInterrupted(epochsCompleted: 1))
        }
        XCTAssertTrue(fm.fileExists(atPath: path))
        XCTAssertFalse(fm.fileExists(atPath: temporary))
        let recorded = try XCTUnwrap(TrainingCheckpoint.epochs(atPath: path))
        XCTAssertEqual(recorded.count, 1)
        XCTAssertEqual(Self.timeless(recorded), Self.timeless(Array(reference.result.epochs.prefix(1))))

        // The same job again resumes and ends exactly where the uninterrupted run did.
        let resumed = try ModelTraining.train(Self.job(checkpoint: path), datasets: DatasetCache())
        XCTAssertEqual(resumed.resumedFromEpoch, 1)
        XCTAssertEqual(resumed.result.status, .completed)
        XCTAssertEqual(Self.timeless(resumed.result.epochs), Self.timeless(reference.result.epochs))
        XCTAssertEqual(resumed.result.epochs[0], recorded[0], "the restored epoch as recorded")
        XCTAssertEqual(resumed.result.testAccuracy, reference.result.testAccuracy)
        XCTAssertEqual(resumed.result.testLoss, reference.result.testLoss)
        XCTAssertEqual(resumed.model.tensors.map(\.name), reference.model.tensors.map(\.name))
        for (a, b) in zip(resumed.model.tensors, reference.model.tensors) {
            XCTAssertEqual(a.values.map(\.bitPattern), b.values.map(\.bitPattern), a.name)
        }
        XCTAssertEqual(try TrainingCheckpoint.epochs(atPath: path)?.count, 3, "ModelTraining leaves the checkpoint")
        XCTAssertFalse(fm.fileExists(atPath: temporary))

        // A finished checkpoint: nothing left to train, the same result.
        let again = try ModelTraining.train(Self.job(checkpoint: path), datasets: DatasetCache())
        XCTAssertEqual(again.resumedFromEpoch, 3)
        XCTAssertEqual(again.result.testAccuracy, reference.result.testAccuracy)
        XCTAssertEqual(Self.timeless(again.result.epochs), Self.timeless(reference.result.epochs))

        // Another job's checkpoint is refused, naming the file and what differs; nothing is overwritten.
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try ModelTraining.train(Self.job(seed: 4, checkpoint: path), datasets: DatasetCache())) { error in
            XCTAssertTrue(error is LabError, "\(error)")
            let message = "\(error)"
            XCTAssertTrue(message.contains(path), message)
            XCTAssertTrue(message.contains("another job") && message.contains("seed: 3 in the checkpoint, 4 now"), message)
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before)
        XCTAssertFalse(fm.fileExists(atPath: temporary))
    }

    func testAnUnreadableCheckpointIsAnErrorNamingTheFile() throws {
        let dir = try CLI.scratch("checkpoint-bad")
        let garbage = dir.appendingPathComponent("garbage.h5").path
        try "not HDF5".write(toFile: garbage, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try TrainingCheckpoint.epochs(atPath: garbage)) { error in
            XCTAssertTrue(error is LabError && "\(error)".contains(garbage) && "\(error)".contains("unreadable"), "\(error)")
        }
        XCTAssertThrowsError(try ModelTraining.train(Self.job(checkpoint: garbage), datasets: DatasetCache())) { error in
            XCTAssertTrue(error is LabError && "\(error)".contains(garbage) && "\(error)".contains("unreadable"), "\(error)")
        }
        // An HDF5 file that is not a checkpoint (a model file).
        let model = dir.appendingPathComponent("model.h5").path
        var job = Self.job(checkpoint: nil)
        job.training?.epochs = 1
        try ModelTraining.train(job, datasets: DatasetCache()).model.save(to: model)
        XCTAssertThrowsError(try ModelTraining.train(Self.job(checkpoint: model), datasets: DatasetCache())) { error in
            XCTAssertTrue(error is LabError && "\(error)".contains(model) && "\(error)".contains("not a NASLab training checkpoint"),
                          "\(error)")
        }
        // A stale temporary file of a killed writer is removed.
        let path = dir.appendingPathComponent("run.h5").path
        try "half".write(toFile: TrainingCheckpoint.temporaryPath(for: path), atomically: true, encoding: .utf8)
        var stopping = Self.job(checkpoint: path)
        stopping.stopRequested = { true }
        XCTAssertThrowsError(try ModelTraining.train(stopping, datasets: DatasetCache()))
        XCTAssertFalse(FileManager.default.fileExists(atPath: TrainingCheckpoint.temporaryPath(for: path)))
        XCTAssertEqual(try TrainingCheckpoint.epochs(atPath: path)?.count, 1)
    }
}
