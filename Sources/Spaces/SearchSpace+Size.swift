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
