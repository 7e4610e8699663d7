/// A candidate for a two-objective Pareto front: `accuracy` is maximised, `cost` minimised.
public struct ParetoPoint<ID: Hashable & Sendable>: Hashable, Sendable {
    public var id: ID
    public var accuracy: Double
    public var cost: Double

    public init(id: ID, accuracy: Double, cost: Double) {
        self.id = id
        self.accuracy = accuracy
        self.cost = cost
    }

    /// Whether `self` dominates `other`: at least as accurate and at most as costly, and
    /// strictly better in one of the two.
    public func dominates(_ other: ParetoPoint) -> Bool {
        accuracy >= other.accuracy && cost <= other.cost && (accuracy > other.accuracy || cost < other.cost)
    }
}

extension ParetoPoint: Codable where ID: Codable {}

/// The non-dominated points of `points` (maximise accuracy, minimise cost), sorted by
/// increasing cost (then by input order).
///
/// Points with equal accuracy and cost do not dominate each other, so all copies of a
/// non-dominated value are kept. Points with a NaN coordinate are left out. O(n log n).
///
/// ```swift
/// let front = paretoFront([ParetoPoint(id: "a", accuracy: 0.9, cost: 5),
///                          ParetoPoint(id: "b", accuracy: 0.8, cost: 7)])   // only "a"
/// ```
///
/// References:
/// - H. T. Kung, F. Luccio, F. P. Preparata, "On Finding the Maxima of a Set of Vectors", JACM 1975.
public func paretoFront<ID>(_ points: [ParetoPoint<ID>]) -> [ParetoPoint<ID>] {
    let order = points.indices
        .filter { !points[$0].accuracy.isNaN && !points[$0].cost.isNaN }
        .sorted { i, j in
            let a = points[i], b = points[j]
            if a.cost != b.cost { return a.cost < b.cost }
            if a.accuracy != b.accuracy { return a.accuracy > b.accuracy }
            return i < j
        }
    var front = [ParetoPoint<ID>]()
    var bestAccuracyAtLowerCost = -Double.infinity
    var start = 0
    while start < order.count {
        // One group of equal cost; its first element has the group's highest accuracy.
        var end = start
        let cost = points[order[start]].cost
        while end < order.count && points[order[end]].cost == cost { end += 1 }
        let top = points[order[start]].accuracy
        if top > bestAccuracyAtLowerCost {
            for k in start..<end where points[order[k]].accuracy == top { front.append(points[order[k]]) }
            bestAccuracyAtLowerCost = top
        }
        start = end
    }
    return front
}
