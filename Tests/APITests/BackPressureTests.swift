import API
import Datasets
import Foundation
import Lab
import XCTest

/// A deployment holds a bounded number of predictions: one replica busy, one request waiting —
/// the next is a 429 at once, and the waiting one a 504 when its time is up.
final class BackPressureTests: XCTestCase {
    func testReplicaPoolRefusesBeyondItsLimitAndTimesOutWaiters() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-pool-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var job = TrainingJob(spaceName: "small", architecture:
            "stem.width=8 stage1.depth=1 stage1.width=16 stage1.block0.op=conv stage1.block0.kernel=3 "
            + "stage2.depth=1 stage2.width=32 stage2.block0.op=conv stage2.block0.kernel=3", dataset: "digits")
        var training = ExperimentConfig(name: "pool").training
        training.epochs = 1
        job.training = training
        job.threads = 1
        let path = directory.appendingPathComponent("model.h5").path
        try ModelTraining.train(job, datasets: DatasetCache()).model.save(to: path)

        let pool = ReplicaPool(artifactPath: path, maxReplicas: 1, workbench: LabWorkbench(threads: 1))
        try await pool.load(count: 1)
        let held = try await pool.acquire(limit: 2, timeout: 0.5, retryAfter: 7)
        let waiting = Task { try await pool.acquire(limit: 2, timeout: 0.5, retryAfter: 7) }
        try await Task.sleep(nanoseconds: 100_000_000)
        do {
            _ = try await pool.acquire(limit: 2, timeout: 0.5, retryAfter: 7)
            XCTFail("a third request must be refused")
        } catch let error as APIError {
            XCTAssertEqual(error.status.code, 429)
            XCTAssertEqual(error.type, "rate_limit_error")
            XCTAssertEqual(error.retryAfter, 7)
        }
        do {
            _ = try await waiting.value
            XCTFail("the waiting request must time out while the replica is held")
        } catch let error as APIError {
            XCTAssertEqual(error.status.code, 504)
            XCTAssertEqual(error.type, "timeout_error")
        }
        // The timed-out request no longer counts: after the release, two fit again.
        await pool.release(held)
        let first = try await pool.acquire(limit: 2, timeout: 0.5, retryAfter: 7)
        let second = Task { try await pool.acquire(limit: 2, timeout: 5, retryAfter: 7) }
        try await Task.sleep(nanoseconds: 50_000_000)
        await pool.release(first)
        let handed = try await second.value
        XCTAssertTrue(handed === first, "a released replica goes to the waiting request")
        await pool.release(handed)
    }
}
