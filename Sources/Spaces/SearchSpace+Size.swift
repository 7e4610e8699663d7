import Engine
import NASCore

extension SearchSpace {
    /// The number of distinct canonical architectures (exact, arbitrary precision).
    ///
    /// Decisions that are always active multiply the count; a chain stage contributes
    /// Σ over its depth options d of Π over its first d blocks of the number of distinct block
    /// settings (op, and the kernel and expansion only where the op uses them).
    public var size: BigUnsignedInteger {
        var total = BigUnsignedInteger(1)
        var depthDecisions = Set<Int>()
        for stage in stages {
            guard case let .blocks(s) = stage else { continue }
            if let d = s.depth.decision { depthDecisions.insert(d) }
            var stageCount = BigUnsignedInteger(0)
            for depth in s.depth.values {
                var product = BigUnsignedInteger(1)
                for block in s.blocks.prefix(depth) {
                    let settings = block.operation.values.reduce(0) {
                        $0 + ($1.usesKernel ? block.kernel.count : 1) * ($1.usesExpansion ? block.expansion.count : 1)
                    }
                    product *= BigUnsignedInteger(settings)
                }
                stageCount += product
            }
            total *= stageCount
        }
        for (index, condition) in conditions.enumerated() where condition == .always && !depthDecisions.contains(index) {
            total *= BigUnsignedInteger(decisions[index].options.count)
        }
        return total
    }

    /// All canonical architectures, in mixed-radix order of their choice vectors, or `nil` when
    /// the raw number of choice vectors exceeds `limit`.
    public func enumerate(limit: Int = 1_000_000) -> [Architecture]? {
        var raw = 1
        for decision in decisions {
            let (product, overflow) = raw.multipliedReportingOverflow(by: decision.options.count)
            guard !overflow, product <= limit else { return nil }
            raw = product
        }
        var result = [Architecture]()
        var choices = Array(repeating: 0, count: decisions.count)
        while true {
            let a = Architecture(choices: choices)
            if canonical(a) == a { result.append(a) }
            var i = choices.count - 1
            while i >= 0 {
                choices[i] += 1
                if choices[i] < decisions[i].options.count { break }
                choices[i] = 0
                i -= 1
            }
            if i < 0 { break }
        }
        return result
    }
}

extension SearchSpace {
    /// Samples uniformly over the distinct canonical architectures (unlike `sample(using:)`,
    /// which is uniform per decision and so favours shallow stages).
    ///
    /// Each chain stage's depth is drawn with probability proportional to the number of block
    /// settings it allows, then each block's op in proportion to its kernel × expansion options.
    public func sampleUniformly(using rng: inout SeededGenerator) -> Architecture {
        var choices = decisions.map { rng.nextInt(below: $0.options.count) }
        func pick(_ weights: [Double], _ rng: inout SeededGenerator) -> Int {
            let total = weights.reduce(0, +)
            var r = rng.nextUnitDouble() * total
            for (i, w) in weights.enumerated() {
                r -= w
                if r < 0 { return i }
            }
            return weights.count - 1
        }
        for stage in stages {
            guard case let .blocks(s) = stage else { continue }
            func settings(_ block: BlockSpec, _ op: BlockOperation) -> Double {
                Double((op.usesKernel ? block.kernel.count : 1) * (op.usesExpansion ? block.expansion.count : 1))
            }
            let blockWeights = s.blocks.map { block in block.operation.values.reduce(0.0) { $0 + settings(block, $1) } }
            let depthWeights = s.depth.values.map { d in blockWeights.prefix(d).reduce(1.0, *) }
            let depthIndex = pick(depthWeights, &rng)
            if let d = s.depth.decision { choices[d] = depthIndex }
            for block in s.blocks.prefix(s.depth.values[depthIndex]) {
                let opIndex = pick(block.operation.values.map { settings(block, $0) }, &rng)
                if let d = block.operation.decision { choices[d] = opIndex }
            }
        }
        return canonical(Architecture(choices: choices))
    }
}
