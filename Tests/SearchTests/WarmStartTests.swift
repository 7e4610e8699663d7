import Foundation
import NASCore
import Search
import XCTest

/// A zero-cost warm start (`SearchLedger.setWarmStart`): every searcher's random draws take the
/// ranked architectures first, best first, skipping ones already proposed; the ranking is part of
/// the resumable state, and states saved before warm starts existed still decode.
final class WarmStartTests: XCTestCase {
    let space = GridSpace(optionCounts: [4, 4, 4])
    lazy var ranked: [Architecture] = [[3, 3, 3], [2, 3, 1], [3, 3, 3], [0, 1, 2], [1, 1, 1], [2, 2, 0], [0, 0, 3]]
        .map { Architecture(choices: $0) }

    func testRandomSearchProposesTheRankingFirstWithoutRepeats() throws {
        var s = try RandomSearch(space: space, seed: 1)
        s.setWarmStart(ranked)
        let proposals = (0..<6).map { _ in s.ask()!.architecture }
        XCTAssertEqual(Array(proposals.prefix(5)), [ranked[0], ranked[1], ranked[3], ranked[4], ranked[5]],
                       "the duplicate third entry is skipped")
        XCTAssertEqual(proposals[5], ranked[6])
        // Then random draws, never a repeat.
        let more = (0..<20).map { _ in s.ask()!.architecture }
        XCTAssertEqual(Set(proposals + more).count, 26)
    }

    func testEvolutionStartsFromTheBestAndLocalSearchFromTheBestN0() throws {
        var evolution = try RegularizedEvolution(space: space, seed: 2, populationSize: 4, sampleSize: 2)
        evolution.setWarmStart(ranked)
        XCTAssertEqual((0..<4).map { _ in evolution.ask()!.architecture }, [ranked[0], ranked[1], ranked[3], ranked[4]])

        var local = try LocalSearch(space: space, seed: 3, initialSampleCount: 2)
        local.setWarmStart(ranked)
        let first = local.ask()!, second = local.ask()!
        XCTAssertEqual([first.architecture, second.architecture], [ranked[0], ranked[1]])
        local.tell(Observation(first, .evaluated(objective: 0.9)))
        local.tell(Observation(second, .evaluated(objective: 0.5)))
        let third = try XCTUnwrap(local.ask())
        XCTAssertEqual(third.parentID, first.id, "local search moves from the best of the warm start")
        XCTAssertEqual(zip(third.architecture.choices, ranked[0].choices).filter { $0 != $1 }.count, 1, "a neighbour")
    }

    func testTheRankingIsResumableAndOldStatesDecode() throws {
        var s = try LocalSearch(space: space, seed: 4, initialSampleCount: 3)
        s.setWarmStart(ranked)
        let p = s.ask()!
        s.tell(Observation(p, .evaluated(objective: 0.1)))
        let saved = try JSONEncoder().encode(s.state)
        var resumed = try LocalSearch(space: space, state: JSONDecoder().decode(LocalSearch.State.self, from: saved))
        XCTAssertEqual((0..<4).map { _ in resumed.ask()!.architecture }, (0..<4).map { _ in s.ask()!.architecture })

        // A state written before warm starts existed has no `warmStart` key.
        var plain = try RandomSearch(space: space, seed: 5)
        _ = plain.ask()
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: JSONEncoder().encode(plain.state)) as? [String: Any])
        var ledger = try XCTUnwrap(object["ledger"] as? [String: Any])
        XCTAssertNil(ledger["warmStart"])
        ledger.removeValue(forKey: "warmStart")
        object["ledger"] = ledger
        let old = try JSONDecoder().decode(RandomSearch.State.self, from: JSONSerialization.data(withJSONObject: object))
        XCTAssertNil(old.ledger.warmStart)

        // A ranking that does not fit the space is refused on resume.
        var bad = try RandomSearch(space: space, seed: 6)
        bad.setWarmStart([Architecture(choices: [9, 0, 0])])
        XCTAssertThrowsError(try RandomSearch(space: space, state: bad.state))
    }
}
