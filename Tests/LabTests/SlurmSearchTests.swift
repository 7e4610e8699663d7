import Foundation
import TestSupport
import XCTest

/// `naslab search` with `executor: slurm` against a real (single-node) Slurm cluster:
/// the record equals a local run's, and a killed coordinator resumes without losing candidates.
/// CI brings the cluster up with `.ci/slurm-up.sh`; elsewhere these tests skip with a message.
final class SlurmSearchTests: XCTestCase {
    func requireCluster() throws { try requireSlurmCluster("Slurm search tests") }

    func config(_ dir: URL, name: String, slurm: Bool, budget: Int = 4) throws -> String {
        let path = dir.appendingPathComponent("\(name).yaml").path
        var text = """
        name: \(name)
        seed: 21
        space: small
        dataset: digits
        searcher: {kind: regularized_evolution, population_size: 4, sample_size: 2}
        budget: {candidates: \(budget)}
        training: {epochs: 1, batch_size: 64, learning_rate: 0.05}
        threads: 1
        workers: 2
        output: \(dir.appendingPathComponent("\(name).h5").path)

        """
        if slurm {
            text += """
            executor:
              kind: slurm
              shared_dir: \(dir.appendingPathComponent("shared").path)
              cpus_per_task: 1
              time_limit_minutes: 10
              worker_command: [\(CLI.executable.path), evaluate]

            """
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func rows(_ record: String) throws -> [[String: Any]] {
        let out = try CLI.run(["export", record, "--format", "json"])
        XCTAssertEqual(out.status, 0, out.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]])
    }

    func summary(_ rows: [[String: Any]]) -> [String] {
        rows.map { "\($0["id"]!) \($0["architecture"]!) \($0["status"]!) \($0["val_accuracy"]!) \($0["test_accuracy"]!)" }
    }

    func testSlurmSearchMatchesLocalSearch() throws {
        try requireCluster()
        let dir = try CLI.scratch("slurm-search")
        let local = try CLI.run(["search", try config(dir, name: "local", slurm: false), "--quiet"])
        XCTAssertEqual(local.status, 0, local.stderr)
        let slurm = try CLI.run(["search", try config(dir, name: "cluster", slurm: true), "--quiet"])
        XCTAssertEqual(slurm.status, 0, slurm.stderr)
        let localRows = try rows(dir.appendingPathComponent("local.h5").path)
        let clusterRows = try rows(dir.appendingPathComponent("cluster.h5").path)
        XCTAssertEqual(summary(localRows), summary(clusterRows), "same seed, same thread count ⇒ same candidates and metrics")
        for row in clusterRows where (row["status"] as? String) == "accepted" {
            XCTAssertTrue((row["worker"] as? String ?? "").hasPrefix("slurm-"), "\(row)")
        }
    }

    /// Multi-fidelity over Slurm: each batch of rung jobs is a job array; promoted candidates
    /// continue from checkpoints in the shared directory; the record equals a local run's.
    func testMultiFidelitySlurmSearchMatchesLocalSearch() throws {
        try requireCluster()
        let dir = try CLI.scratch("slurm-fidelity")
        let scheduler = "scheduler: {kind: successive-halving, min_epochs: 1, max_epochs: 3, eta: 3}\n"
        var records = [String]()
        for (name, slurm) in [("local", false), ("cluster", true)] {
            let path = try config(dir, name: name, slurm: slurm, budget: 6)
            try (try String(contentsOfFile: path, encoding: .utf8) + scheduler).write(toFile: path, atomically: true, encoding: .utf8)
            let run = try CLI.run(["search", path, "--quiet"])
            XCTAssertEqual(run.status, 0, run.stderr)
            records.append(dir.appendingPathComponent("\(name).h5").path)
        }
        let localRows = try rows(records[0]), clusterRows = try rows(records[1])
        XCTAssertEqual(summary(localRows), summary(clusterRows))
        XCTAssertEqual(localRows.compactMap { $0["epochs"] as? Int }.filter { $0 == 3 }.count, 2, "one promotion per bracket of 3")
    }

    func testKilledSlurmCoordinatorResumesWithoutLoss() throws {
        try requireCluster()
        let dir = try CLI.scratch("slurm-resume")
        let path = try config(dir, name: "coordinator", slurm: true, budget: 6)
        let record = dir.appendingPathComponent("coordinator.h5").path
        let child = try CLI.start(["search", path])
        child.killWhenStderrContains(" 2/6 ", seconds: 180)
        let before = try rows(record)
        XCTAssertGreaterThanOrEqual(before.count, 2)
        let resumed = try CLI.run(["resume", record, "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let after = try rows(record)
        XCTAssertEqual(after.filter { ($0["status"] as? String) != "rejected" }.count, 6)
        XCTAssertEqual(summary(before), Array(summary(after).prefix(before.count)), "finished candidates are kept as they were")
    }
}
