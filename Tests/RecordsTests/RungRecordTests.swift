import Foundation
import HDF5Kit
import Records
import TestSupport
import XCTest

/// The multi-fidelity parts of a record: the `rungs` table, in-place updates of a candidate row,
/// the scheduler state, and what reopening keeps after a crash.
final class RungRecordTests: XCTestCase {
    func epochs(_ id: Int64, _ range: ClosedRange<Int64>) -> [EpochRow] {
        range.map { EpochRow(candidateID: id, epoch: $0, trainLoss: 1 / Double($0), trainAccuracy: 0.5, validationLoss: 0.4,
                             validationAccuracy: 0.6) }
    }

    func testRungsUpdatesAndSchedulerStateRoundTrip() throws {
        let path = temporaryPath("rungs.h5")
        let record = try ExperimentRecord.create(path: path, metadata: sampleMetadata(), overwrite: true, liveLog: true)
        XCTAssertEqual(try record.readRungs(), [])
        XCTAssertNil(try record.schedulerState())
        let rungs = [
            RungRow(candidateID: 0, rung: 0, startEpoch: 0, epochs: 1, status: .accepted, validationScore: 0.5, testScore: 0.4,
                    wallSeconds: 1, worker: "local-0"),
            RungRow(candidateID: 1, rung: 0, startEpoch: 0, epochs: 1, status: .failed, worker: "local-1"),
            RungRow(candidateID: 0, rung: 1, startEpoch: 1, epochs: 3, status: .accepted, validationScore: 0.8, testScore: .nan,
                    wallSeconds: 2, worker: "local-0"),
        ]
        for r in rungs { try record.appendRung(r) }
        var row = sampleCandidate(0)
        row.epochs = 1
        try record.appendCandidate(row)
        try record.appendCandidate(sampleCandidate(1))
        row.epochs = 3
        row.validationScore = 0.8
        try record.updateCandidate(row)
        XCTAssertThrowsError(try record.updateCandidate(sampleCandidate(7)))
        try record.setSchedulerState("{\"a\":1}")
        try record.setSchedulerState("{\"a\":2}")
        try record.close()

        let again = try ExperimentRecord.openReadOnly(path: path)
        XCTAssertEqual(try again.readRungs(), rungs)
        XCTAssertEqual(try again.readCandidates(), [row, sampleCandidate(1)])
        XCTAssertEqual(try again.schedulerState(), "{\"a\":2}")
        try again.close()
        let live = try String(contentsOfFile: ExperimentRecord.liveLogPath(forRecord: path), encoding: .utf8)
        XCTAssertEqual(live.split(separator: "\n").count, 2, "the live log is rewritten, not appended to")
        XCTAssertTrue(live.split(separator: "\n")[0].contains("\"epochs\": 3"), live)

        let py = try CLI.python("""
        import sys, h5py
        r = h5py.File(sys.argv[1], "r")["rungs"][:]
        print(list(r.dtype.names), [(int(x["candidate_id"]), int(x["rung"]), int(x["start_epoch"]), int(x["epochs"])) for x in r])
        """, [path])
        XCTAssertEqual(py.status, 0, py.stderr)
        XCTAssertEqual(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       "['candidate_id', 'rung', 'start_epoch', 'epochs', 'status', 'val_accuracy', 'test_accuracy', 'wall_seconds', 'worker'] "
                       + "[(0, 0, 0, 1), (1, 0, 0, 1), (0, 1, 1, 3)]")
    }

    /// Epochs of an interrupted rung (after the candidate's last recorded rung) are dropped when the
    /// record is reopened; the epochs of recorded rungs stay, with or without a candidate row.
    func testReopeningKeepsTheEpochsOfRecordedRungsOnly() throws {
        let path = temporaryPath("rung-repair.h5")
        let record = try ExperimentRecord.create(path: path, metadata: sampleMetadata(), overwrite: true)
        try record.appendEpochs(epochs(0, 1...1))
        try record.appendRung(RungRow(candidateID: 0, rung: 0, startEpoch: 0, epochs: 1, status: .accepted, validationScore: 0.5))
        try record.appendCandidate(sampleCandidate(0))
        try record.appendEpochs(epochs(1, 1...1))
        try record.appendRung(RungRow(candidateID: 1, rung: 0, startEpoch: 0, epochs: 1, status: .accepted, validationScore: 0.6))
        // Candidate 1 was promoted and killed after epoch 3 of its rung to 9 epochs (no rung row, no candidate row);
        // candidate 2 was killed during its first rung.
        try record.appendEpochs(epochs(1, 2...3))
        try record.appendEpochs(epochs(2, 1...1))
        try record.close()

        let reopened = try ExperimentRecord.open(path: path)
        XCTAssertEqual(try reopened.readEpochs(), epochs(0, 1...1) + epochs(1, 1...1))
        XCTAssertEqual(try reopened.readRungs().map(\.candidateID), [0, 1])
        try reopened.close()
    }
}
