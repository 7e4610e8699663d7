import Foundation

/// A regressor of one kernel family's latency from its features (``LatencyKernel/features``):
/// a non-negative linear cost law `t ≈ w₀ + w₁·MACs + w₂·parameters + w₃·input elements + w₄·output elements`
/// (fitted on relative errors), times `exp` of gradient-boosted regression trees fitted on the
/// log-ratio of the measured latencies to that law. The law extrapolates to larger and smaller
/// kernels than the measured ones; the trees learn what it misses (GEMM efficiency by shape,
/// im2col, strides, groups …).
///
/// Deterministic: the same points give the same model (no sampling inside).
///
/// ```swift
/// let model = KernelRegressor.fit(features: xs, milliseconds: ys)
/// let ms = model.predict(kernel.features)
/// ```
///
/// References:
/// - J. H. Friedman, "Greedy function approximation: a gradient boosting machine", Annals of
///   Statistics 29(5), 2001.
/// - L. L. Zhang et al., "nn-Meter", MobiSys 2021 (per-kernel regressors on kernel configurations).
public struct KernelRegressor: Hashable, Sendable {
    /// Fitting settings.
    public struct Settings: Hashable, Sendable {
        /// Boosting rounds (trees).
        public var rounds: Int = 150
        /// Depth of each tree.
        public var depth: Int = 3
        /// Shrinkage.
        public var learningRate: Double = 0.1
        /// Fewest points in a leaf.
        public var minimumLeaf: Int = 2
        /// Candidate thresholds per feature (quantiles of the training points).
        public var bins: Int = 32
        /// Fewer points than this: the linear law alone.
        public var minimumPointsForTrees: Int = 8
        public init() {}
    }

    /// One regression tree, stored as arrays (node 0 is the root).
    struct Tree: Hashable, Sendable {
        var feature: [Int]        // −1: leaf
        var threshold: [Double]   // go left when x[feature] <= threshold
        var left: [Int]
        var right: [Int]
        var value: [Double]

        func evaluate(_ x: [Double]) -> Double {
            var node = 0
            while feature[node] >= 0 { node = x[feature[node]] <= threshold[node] ? left[node] : right[node] }
            return value[node]
        }
    }

    /// Coefficients of the linear law over (1, MACs, parameters, input elements, output elements).
    public private(set) var law: [Double]
    var trees: [Tree]
    var learningRate: Double
    /// Smallest prediction of the law (a tenth of the smallest measured latency).
    var floor: Double
    /// Points the model was fitted on.
    public private(set) var pointCount: Int

    /// The linear law's inputs: 1 and the first four features (MACs, parameters, input and output
    /// elements for op kernels; input and output elements and their factors for the boundary).
    static func lawInputs(_ x: [Double]) -> [Double] { [1] + x.prefix(4) + [Double](repeating: 0, count: max(0, 4 - x.count)) }

    /// The predicted latency (ms) of a kernel with these features.
    public func predict(_ features: [Double]) -> Double {
        let base = max(floor, zip(law, Self.lawInputs(features)).reduce(0) { $0 + $1.0 * $1.1 })
        let z = trees.reduce(0) { $0 + learningRate * $1.evaluate(features) }
        return base * exp(z)
    }

    /// Fits a model to measured kernels (`milliseconds[i]` for `features[i]`; all vectors of one length).
    public static func fit(features: [[Double]], milliseconds: [Double], settings: Settings = Settings()) -> KernelRegressor {
        precondition(!features.isEmpty && features.count == milliseconds.count)
        let y = milliseconds.map { max($0, 1e-6) }
        let law = fitLaw(features.map(lawInputs), y)
        let floor = (y.min() ?? 1e-6) / 10
        var model = KernelRegressor(law: law, trees: [], learningRate: settings.learningRate, floor: floor, pointCount: y.count)
        guard y.count >= settings.minimumPointsForTrees else { return model }
        let base = features.map { x in max(floor, zip(law, lawInputs(x)).reduce(0) { $0 + $1.0 * $1.1 }) }
        let target = zip(y, base).map { log($0 / $1) }
        let binned = Binning(features, bins: settings.bins)
        var current = [Double](repeating: 0, count: y.count)
        for _ in 0..<settings.rounds {
            let residual = zip(target, current).map { $0 - $1 }
            let tree = growTree(binned, residual, settings: settings)
            for i in current.indices { current[i] += settings.learningRate * tree.evaluate(features[i]) }
            model.trees.append(tree)
        }
        return model
    }

    /// Non-negative weighted least squares of `y ≈ A·w` with weights 1/y² (relative errors):
    /// coefficients that come out negative are dropped and the rest refitted.
    static func fitLaw(_ a: [[Double]], _ y: [Double]) -> [Double] {
        let columns = a[0].count
        var active = Array(0..<columns)
        // Scale columns so the normal equations are well conditioned.
        let scale = (0..<columns).map { j in max(1e-12, a.map { abs($0[j]) }.max() ?? 1) }
        while true {
            let k = active.count
            guard k > 0 else { return [Double](repeating: 0, count: columns) }
            var m = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
            var b = [Double](repeating: 0, count: k)
            for (row, target) in zip(a, y) {
                let w = 1 / (target * target)
                let x = active.map { row[$0] / scale[$0] }
                for p in 0..<k {
                    b[p] += w * x[p] * target
                    for q in 0..<k { m[p][q] += w * x[p] * x[q] }
                }
            }
            for p in 0..<k { m[p][p] += 1e-9 * (m[p][p] + 1e-12) }   // ridge against collinear columns
            guard let solution = solve(m, b) else { active.removeLast(); continue }
            if let negative = solution.indices.min(by: { solution[$0] < solution[$1] }), solution[negative] < 0, k > 1 {
                active.remove(at: negative)
                continue
            }
            var w = [Double](repeating: 0, count: columns)
            for (p, j) in active.enumerated() { w[j] = max(0, solution[p]) / scale[j] }
            return w
        }
    }

    /// Gaussian elimination with partial pivoting; nil when singular.
    static func solve(_ matrix: [[Double]], _ rhs: [Double]) -> [Double]? {
        var m = matrix, b = rhs
        let n = b.count
        for col in 0..<n {
            guard let pivot = (col..<n).max(by: { abs(m[$0][col]) < abs(m[$1][col]) }), abs(m[pivot][col]) > 1e-300 else { return nil }
            m.swapAt(col, pivot); b.swapAt(col, pivot)
            for row in (col + 1)..<n where m[row][col] != 0 {
                let f = m[row][col] / m[col][col]
                for c in col..<n { m[row][c] -= f * m[col][c] }
                b[row] -= f * b[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for row in stride(from: n - 1, through: 0, by: -1) {
            var s = b[row]
            for c in (row + 1)..<n { s -= m[row][c] * x[c] }
            x[row] = s / m[row][row]
        }
        return x.allSatisfy(\.isFinite) ? x : nil
    }

    /// Features replaced by bin indices over quantile thresholds (histogram-based tree growing).
    struct Binning {
        var thresholds: [[Double]]   // per feature, ascending; bin b means x <= thresholds[b] (last bin: above)
        var bins: [[UInt8]]          // [point][feature]

        init(_ x: [[Double]], bins count: Int) {
            let featureCount = x[0].count
            thresholds = (0..<featureCount).map { j in
                let values = Array(Set(x.map { $0[j] })).sorted()
                guard values.count > 1 else { return [] }
                if values.count <= count { return zip(values, values.dropFirst()).map { ($0 + $1) / 2 } }
                return (1..<count).map { q in
                    let i = q * values.count / count
                    return (values[i - 1] + values[i]) / 2
                }
            }
            let t = thresholds
            bins = x.map { row in
                (0..<featureCount).map { j in
                    var b = 0
                    while b < t[j].count && row[j] > t[j][b] { b += 1 }
                    return UInt8(b)
                }
            }
        }
    }

    static func growTree(_ data: Binning, _ residual: [Double], settings: Settings) -> Tree {
        var tree = Tree(feature: [], threshold: [], left: [], right: [], value: [])
        func grow(_ points: [Int], depth: Int) -> Int {
            let index = tree.feature.count
            let mean = points.reduce(0) { $0 + residual[$1] } / Double(points.count)
            tree.feature.append(-1); tree.threshold.append(0); tree.left.append(-1); tree.right.append(-1); tree.value.append(mean)
            guard depth < settings.depth, points.count >= 2 * settings.minimumLeaf else { return index }
            let total = points.reduce(0) { $0 + residual[$1] }
            var best: (gain: Double, feature: Int, bin: Int) = (1e-12, -1, -1)
            for j in data.thresholds.indices where !data.thresholds[j].isEmpty {
                let binCount = data.thresholds[j].count + 1
                var sums = [Double](repeating: 0, count: binCount)
                var counts = [Int](repeating: 0, count: binCount)
                for p in points { let b = Int(data.bins[p][j]); sums[b] += residual[p]; counts[b] += 1 }
                var leftSum = 0.0, leftCount = 0
                for b in 0..<(binCount - 1) {
                    leftSum += sums[b]; leftCount += counts[b]
                    let rightCount = points.count - leftCount
                    guard leftCount >= settings.minimumLeaf, rightCount >= settings.minimumLeaf else { continue }
                    let rightSum = total - leftSum
                    let gain = leftSum * leftSum / Double(leftCount) + rightSum * rightSum / Double(rightCount)
                        - total * total / Double(points.count)
                    if gain > best.gain { best = (gain, j, b) }
                }
            }
            guard best.feature >= 0 else { return index }
            let left = points.filter { Int(data.bins[$0][best.feature]) <= best.bin }
            let right = points.filter { Int(data.bins[$0][best.feature]) > best.bin }
            tree.feature[index] = best.feature
            tree.threshold[index] = data.thresholds[best.feature][best.bin]
            let l = grow(left, depth: depth + 1)
            let r = grow(right, depth: depth + 1)
            tree.left[index] = l
            tree.right[index] = r
            return index
        }
        _ = grow(Array(residual.indices), depth: 0)
        return tree
    }

    /// Relative errors `(predicted − measured) / measured` of `folds`-fold cross-validation
    /// (point `i` predicted by a model fitted without its fold; folds by index modulo `folds`).
    public static func crossValidatedErrors(features: [[Double]], milliseconds: [Double], folds: Int = 5,
                                            settings: Settings = Settings()) -> [Double] {
        var errors = [Double](repeating: .nan, count: features.count)
        guard features.count >= 2 * folds else { return errors }
        for fold in 0..<folds {
            let train = features.indices.filter { $0 % folds != fold }
            let model = fit(features: train.map { features[$0] }, milliseconds: train.map { milliseconds[$0] }, settings: settings)
            for i in features.indices where i % folds == fold {
                errors[i] = (model.predict(features[i]) - milliseconds[i]) / milliseconds[i]
            }
        }
        return errors
    }
}
