import Foundation
import Search
import XCTest

/// Promotion decisions of successive halving, Hyperband and ASHA on a synthetic learning-curve
/// oracle: candidate `i`'s validation score after `e` epochs is `LearningCurves.score(i, e)`.
final class FidelityScheduleTests: XCTestCase {
    /// A known learning-curve table: the score of candidate `i` after 1, 3 and 9 epochs. Curves
    /// cross (candidate 7 is second at 1 epoch, tied first at 3) and tie (1 and 3 at 1 epoch).
    enum LearningCurves {
        static let afterOne: [Double] = [0.10, 0.50, 0.30, 0.50, 0.20, 0.90, 0.40, 0.60, 0.05,
                                         0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.01]
        static let afterThree: [Double] = [0.20, 0.95, 0.40, 0.60, 0.30, 0.70, 0.50, 0.95, 0.10,
                                           0.30, 0.80, 0.80, 0.10, 0.20, 0.40, 0.50, 0.60, 0.00]

        static func score(_ id: Int, _ epochs: Int) -> Double {
            switch epochs {
            case 1: return afterOne[id]
            case 3: return afterThree[id]
            default: return 0.9 + Double(id) / 1000 // 9 epochs: later candidates a little better
            }
        }
    }

    /// One job's line in a trace: `start 4 r0 e1`, `promote 5 r1 e1→3`.
    static func line(_ d: FidelityDecision) -> String {
        switch d {
        case let .start(id, rung, epochs): return "start \(id) r\(rung) e\(epochs)"
        case let .promote(id, rung, from, to): return "promote \(id) r\(rung) e\(from)→\(to)"
        }
    }

    /// Runs `scheduler` against the oracle with `workers` jobs per batch (results reported in job
    /// order after the batch) and `budget` new candidates; returns the jobs and the releases.
    func simulate(_ scheduler: inout FidelityScheduler, budget: Int, workers: Int = 1, failing: Set<Int> = [], firstID: Int = 0,
                  file: StaticString = #filePath, line: UInt = #line) -> (jobs: [String], released: [String]) {
        var jobs = [String](), released = [String]()
        var nextID = firstID
        func drain() {
            for r in scheduler.takeReleased() { released.append("\(r.candidateID)@r\(r.rung)\(r.isFinal ? "" : "~")") }
        }
        for _ in 0..<1000 {
            var batch = [FidelityDecision]()
            while batch.count < workers {
                guard let d = scheduler.next(newCandidate: {
                    guard nextID < budget else { return nil }
                    defer { nextID += 1 }
                    return nextID
                }) else { break }
                drain()
                batch.append(d)
            }
            drain()
            if batch.isEmpty { break }
            for d in batch {
                jobs.append(Self.line(d))
                let score = failing.contains(d.candidateID) ? nil : LearningCurves.score(d.candidateID, d.epochs)
                scheduler.report(candidateID: d.candidateID, rung: d.rung, score: score)
                drain()
            }
        }
        XCTAssertTrue(scheduler.isComplete, "the schedule ends", file: file, line: line)
        return (jobs, released)
    }

    func testRungsAndBracketSizesFollowLiEtAl() throws {
        let s = try FidelitySchedule(kind: .hyperband, minEpochs: 1, maxEpochs: 81, eta: 3)
        XCTAssertEqual(s.rungEpochs, [1, 3, 9, 27, 81])
        // Li et al. 2018, Table 1 (R = 81, η = 3): n = 81, 34, 15, 8, 5 candidates.
        XCTAssertEqual(s.bracketSizes.map { s.bracketCandidates($0) }, [81, 34, 15, 8, 5])
        XCTAssertEqual(try FidelitySchedule(kind: .asha, minEpochs: 1, maxEpochs: 10, eta: 3).rungEpochs, [1, 3, 10])
        XCTAssertEqual(try FidelitySchedule(kind: .asha, minEpochs: 2, maxEpochs: 20, eta: 2).rungEpochs, [2, 4, 8, 20])
        XCTAssertEqual(try FidelitySchedule(kind: .hyperband, minEpochs: 1, maxEpochs: 9, eta: 3, brackets: 2).bracketSizes, [2, 1])
        XCTAssertThrowsError(try FidelitySchedule(kind: .asha, minEpochs: 4, maxEpochs: 10, eta: 3))
        XCTAssertThrowsError(try FidelitySchedule(kind: .hyperband, minEpochs: 1, maxEpochs: 9, eta: 3, brackets: 4))
        XCTAssertThrowsError(try FidelitySchedule(kind: .asha, minEpochs: 1, maxEpochs: 9, eta: 1))
    }

    func testSuccessiveHalvingPromotesTheTopThirdOfEachRung() throws {
        var scheduler = FidelityScheduler(try FidelitySchedule(kind: .successiveHalving, minEpochs: 1, maxEpochs: 9, eta: 3))
        let (jobs, released) = simulate(&scheduler, budget: 9)
        // Rung 0 (1 epoch): 5 (0.90), 7 (0.60), then 1 and 3 tie at 0.50: the lower id, 1, goes up.
        // Rung 1 (3 epochs): 1 and 7 tie at 0.95: 1 goes up.
        XCTAssertEqual(jobs, (0..<9).map { "start \($0) r0 e1" } + [
            "promote 5 r1 e1→3", "promote 7 r1 e1→3", "promote 1 r1 e1→3",
            "promote 1 r2 e3→9",
        ])
        XCTAssertEqual(released, ["0@r0", "2@r0", "3@r0", "4@r0", "6@r0", "8@r0", "5@r1", "7@r1", "1@r2"])
        XCTAssertEqual(scheduler.startedCount, 9)
    }

    func testSuccessiveHalvingWithParallelWorkersMakesTheSameDecisions() throws {
        var serial = FidelityScheduler(try FidelitySchedule(kind: .successiveHalving, minEpochs: 1, maxEpochs: 9, eta: 3))
        var parallel = serial
        let one = simulate(&serial, budget: 18)
        let four = simulate(&parallel, budget: 18, workers: 4)
        XCTAssertEqual(one.jobs, four.jobs)
        XCTAssertEqual(Set(one.released), Set(four.released))
        // The second bracket: ids 9…17; 16 (0.85), 15 (0.75), 14 (0.65) at 1 epoch; 16 (0.60) at 3.
        XCTAssertEqual(Array(one.jobs.suffix(4)), ["promote 16 r1 e1→3", "promote 15 r1 e1→3", "promote 14 r1 e1→3",
                                                  "promote 16 r2 e3→9"])
    }

    func testSuccessiveHalvingNeverPromotesAFailedCandidate() throws {
        var scheduler = FidelityScheduler(try FidelitySchedule(kind: .successiveHalving, minEpochs: 1, maxEpochs: 9, eta: 3))
        let (jobs, released) = simulate(&scheduler, budget: 9, failing: [5])
        XCTAssertEqual(Array(jobs.suffix(4)), ["promote 7 r1 e1→3", "promote 1 r1 e1→3", "promote 3 r1 e1→3", "promote 1 r2 e3→9"])
        XCTAssertEqual(released.first, "5@r0", "a failed candidate is released when it is reported")
    }

    func testBudgetCutsTheBracketAndPromotesTheTopThirdOfWhatRan() throws {
        var scheduler = FidelityScheduler(try FidelitySchedule(kind: .successiveHalving, minEpochs: 1, maxEpochs: 9, eta: 3))
        let (jobs, _) = simulate(&scheduler, budget: 6)
        // 6 candidates: ⌊6/3⌋ = 2 promoted (5, 1 by the lower id), then ⌊2/3⌋ = 0.
        XCTAssertEqual(jobs, (0..<6).map { "start \($0) r0 e1" } + ["promote 5 r1 e1→3", "promote 1 r1 e1→3"])
    }

    func testHyperbandRunsItsBracketsInTurn() throws {
        var scheduler = FidelityScheduler(try FidelitySchedule(kind: .hyperband, minEpochs: 1, maxEpochs: 9, eta: 3))
        let (jobs, released) = simulate(&scheduler, budget: 17)
        XCTAssertEqual(jobs, (0..<9).map { "start \($0) r0 e1" } + [
            "promote 5 r1 e1→3", "promote 7 r1 e1→3", "promote 1 r1 e1→3", "promote 1 r2 e3→9",
        ] + (9..<14).map { "start \($0) r1 e3" } + [
            // Bracket s = 1: 5 candidates start at 3 epochs; 10 and 11 tie at 0.80, the lower id goes up.
            "promote 10 r2 e3→9",
        ] + (14..<17).map { "start \($0) r2 e9" })
        XCTAssertEqual(Array(released.suffix(8)), ["9@r1", "11@r1", "12@r1", "13@r1", "10@r2", "14@r2", "15@r2", "16@r2"])
        XCTAssertEqual(scheduler.bracketCount, 3)
    }

    func testASHAPromotesWheneverACandidateIsInTheTopThirdOfItsRung() throws {
        var scheduler = FidelityScheduler(try FidelitySchedule(kind: .asha, minEpochs: 1, maxEpochs: 9, eta: 3))
        let (jobs, released) = simulate(&scheduler, budget: 9)
        XCTAssertEqual(jobs, [
            "start 0 r0 e1", "start 1 r0 e1", "start 2 r0 e1",
            "promote 1 r1 e1→3",     // 3 done at rung 0: 1 is the top ⌊3/3⌋ = 1
            "start 3 r0 e1", "start 4 r0 e1", "start 5 r0 e1",
            "promote 5 r1 e1→3",     // 6 done: the top 2 are 5 and 1 (1 already promoted)
            "start 6 r0 e1", "start 7 r0 e1",
            "promote 7 r1 e1→3",     // 8 done: the top 2 are 5 and 7
            "promote 1 r2 e3→9",     // 3 done at rung 1: 1 and 7 tie at 0.95, the lower id goes up
            "start 8 r0 e1",
        ])
        // Paused candidates (~) may come back: 1 was paused at rung 0 before 2 finished.
        XCTAssertEqual(released, ["0@r0~", "1@r0~", "2@r0~", "1@r1~", "3@r0~", "4@r0~", "5@r1~", "6@r0~", "7@r1~",
                                  "1@r2", "8@r0~"])
    }

    func testASHAPrefersTheHighestRungAndFillsParallelWorkers() throws {
        var scheduler = FidelityScheduler(try FidelitySchedule(kind: .asha, minEpochs: 1, maxEpochs: 9, eta: 3))
        let (jobs, _) = simulate(&scheduler, budget: 9, workers: 3)
        // Batches of 3 jobs, decided before the batch's results arrive (in job order).
        XCTAssertEqual(jobs, [
            "start 0 r0 e1", "start 1 r0 e1", "start 2 r0 e1",
            "promote 1 r1 e1→3", "start 3 r0 e1", "start 4 r0 e1",
            "start 5 r0 e1", "start 6 r0 e1", "start 7 r0 e1",
            "promote 5 r1 e1→3", "promote 7 r1 e1→3", "start 8 r0 e1",
            "promote 1 r2 e3→9",
        ])
    }

    func testSchedulerStateRoundTripsThroughJSONMidBracket() throws {
        var scheduler = FidelityScheduler(try FidelitySchedule(kind: .hyperband, minEpochs: 1, maxEpochs: 9, eta: 3))
        var ids = 0
        for _ in 0..<10 {
            let d = try XCTUnwrap(scheduler.next(newCandidate: { defer { ids += 1 }; return ids }))
            scheduler.report(candidateID: d.candidateID, rung: d.rung, score: LearningCurves.score(d.candidateID, d.epochs))
        }
        let restored = try JSONDecoder().decode(FidelityScheduler.self, from: JSONEncoder().encode(scheduler))
        XCTAssertEqual(restored, scheduler)
        var a = scheduler, b = restored
        let first = simulate(&a, budget: 17, firstID: ids)
        let second = simulate(&b, budget: 17, firstID: ids)
        XCTAssertEqual(first.jobs, second.jobs)
        XCTAssertEqual(first.jobs.first, "promote 7 r1 e1→3")
    }
}
