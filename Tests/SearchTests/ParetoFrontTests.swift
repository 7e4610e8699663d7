import NASCore
import Search
import XCTest

final class ParetoFrontTests: XCTestCase {
    func bruteForceFront(_ points: [ParetoPoint<Int>]) -> Set<Int> {
        Set(points.filter { p in !points.contains { $0.dominates(p) } }.map(\.id))
    }

    func testMatchesBruteForceOnRandomPointsWithTies() {
        var rng = SeededGenerator(seed: 2024)
        for trial in 0..<40 {
            let n = 1 + rng.nextInt(below: 400)
            // Coarse grids on some trials force many equal accuracies, costs and duplicate points.
            let grid = trial % 2 == 0 ? 10.0 : 1e6
            let points = (0..<n).map { id in
                ParetoPoint(id: id, accuracy: (rng.nextUnitDouble() * grid).rounded() / grid,
                            cost: (rng.nextUnitDouble() * grid).rounded() * 3)
            }
            let front = paretoFront(points)
            XCTAssertEqual(Set(front.map(\.id)), bruteForceFront(points), "trial \(trial)")
            XCTAssertEqual(front.count, Set(front.map(\.id)).count)
            // Sorted by cost, and accuracy strictly increases between distinct costs.
            for (a, b) in zip(front, front.dropFirst()) {
                XCTAssertLessThanOrEqual(a.cost, b.cost)
                if a.cost < b.cost { XCTAssertLessThan(a.accuracy, b.accuracy) } else { XCTAssertEqual(a.accuracy, b.accuracy) }
            }
        }
    }

    func testTiesAndSmallCases() {
        XCTAssertEqual(paretoFront([ParetoPoint<String>]()).count, 0)
        let points = [
            ParetoPoint(id: "a", accuracy: 0.9, cost: 10),
            ParetoPoint(id: "b", accuracy: 0.9, cost: 10),   // identical to a: both kept
            ParetoPoint(id: "c", accuracy: 0.9, cost: 12),   // dominated by a (same accuracy, costlier)
            ParetoPoint(id: "d", accuracy: 0.8, cost: 10),   // dominated by a (same cost, less accurate)
            ParetoPoint(id: "e", accuracy: 0.7, cost: 2),
            ParetoPoint(id: "f", accuracy: 0.95, cost: 30),
            ParetoPoint(id: "g", accuracy: .nan, cost: 1),   // left out
        ]
        XCTAssertEqual(paretoFront(points).map(\.id), ["e", "a", "b", "f"])
        XCTAssertTrue(points[0].dominates(points[2]))
        XCTAssertFalse(points[0].dominates(points[1]))
    }

    func testTenThousandPointsIsFast() {
        var rng = SeededGenerator(seed: 1)
        // Points on a line of decreasing cost and accuracy: all are on the front.
        let points = (0..<10_000).map { i in ParetoPoint(id: i, accuracy: Double(i) + rng.nextUnitDouble() * 0.5, cost: Double(i)) }
        let front = paretoFront(points.reversed())
        XCTAssertEqual(front.count, 10_000)
        XCTAssertEqual(front.first?.id, 0)
    }
}
