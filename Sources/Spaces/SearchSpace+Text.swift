import Engine
import NASCore

extension SearchSpace {
    /// The text form of a space without decisions.
    public static let fixedArchitectureText = "(fixed)"

    /// The canonical text of an architecture.
    ///
    /// Active decisions as `name=option` separated by spaces, in decision order; the edges of a
    /// cell genotype form one token `cell=|op~0|+|op~0|op~1|` in the NAS-Bench-201 string format.
    /// A space whose only decisions are one cell's edges uses the bare NAS-Bench-201 string.
    /// A space with no decision has the text `(fixed)`.
    ///
    /// - Precondition: `architecture` belongs to this space (see `validate(_:)`).
    public func text(of architecture: Architecture) -> String {
        if decisions.isEmpty { return SearchSpace.fixedArchitectureText }
        if isSingleCellSpace { return cellString(genotypes[0], architecture) }
        var tokens = [String]()
        var genotypesDone = Set<Int>()
        for (index, decision) in decisions.enumerated() {
            if let g = genotypeOfDecision[index] {
                if genotypesDone.insert(g).inserted {
                    tokens.append("\(genotypes[g].name)=\(cellString(genotypes[g], architecture))")
                }
            } else if isActive(index, in: architecture) {
                tokens.append("\(decision.name)=\(decision.options[architecture.choices[index]])")
            }
        }
        return tokens.joined(separator: " ")
    }

    var isSingleCellSpace: Bool {
        genotypes.count == 1 && !decisions.isEmpty && genotypeOfDecision.allSatisfy { $0 != nil }
    }

    /// `|op~from|...|+|...|`: one group per non-input node, edges by source.
    func cellString(_ genotype: GenotypeSpec, _ architecture: Architecture) -> String {
        guard let cell else { return "" }
        var groups = [String]()
        for node in 1..<cell.nodeCount {
            let entries = cell.edges.indices.filter { cell.edges[$0].to == node }.map { i in
                "\(genotype.edges[i].value(in: architecture).rawValue)~\(cell.edges[i].from)"
            }
            groups.append("|" + entries.joined(separator: "|") + "|")
        }
        return groups.joined(separator: "+")
    }

    /// Parses a text produced by `text(of:)` (decisions may come in any order; inactive ones may be omitted).
    ///
    /// - Throws: `SpaceError.badArchitectureText` naming the unknown decision, option or missing decision.
    public func parse(_ text: String) throws -> Architecture {
        let trimmed = text.trimmedWhitespace()
        var architecture = Architecture(choices: Array(repeating: 0, count: decisions.count))
        func fail(_ message: String) -> SpaceError { .badArchitectureText(text: text, message: message) }
        if decisions.isEmpty {
            guard trimmed == SearchSpace.fixedArchitectureText || trimmed.isEmpty else {
                throw fail("space '\(name)' has no decisions; its only architecture is '\(SearchSpace.fixedArchitectureText)'")
            }
            return architecture
        }
        if isSingleCellSpace, trimmed.hasPrefix("|") {
            try parseCell(trimmed, genotype: genotypes[0], into: &architecture, fail: fail)
            return architecture
        }
        var given = Set<Int>()
        let indexByName = Dictionary(uniqueKeysWithValues: decisions.enumerated().map { ($1.name, $0) })
        for token in trimmed.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
            guard let equals = token.firstIndex(of: "=") else { throw fail("token '\(token)' is not name=value") }
            let key = String(token[..<equals])
            let value = String(token[token.index(after: equals)...])
            if let g = genotypes.firstIndex(where: { $0.name == key }) {
                try parseCell(value, genotype: genotypes[g], into: &architecture, fail: fail)
                for d in genotypes[g].edges.compactMap(\.decision) {
                    guard given.insert(d).inserted else { throw fail("cell '\(key)' given twice") }
                }
                continue
            }
            guard let d = indexByName[key] else { throw fail("unknown decision '\(key)'") }
            guard let option = decisions[d].options.firstIndex(of: value) else {
                throw fail("'\(value)' is not an option of '\(key)' (options: \(decisions[d].options.joined(separator: ", ")))")
            }
            guard given.insert(d).inserted else { throw fail("decision '\(key)' given twice") }
            architecture.choices[d] = option
        }
        let missing = decisions.indices.filter { !given.contains($0) && isActive($0, in: architecture) }
        guard missing.isEmpty else {
            throw fail("missing decisions: \(missing.map { decisions[$0].name }.joined(separator: ", "))")
        }
        return canonical(architecture)
    }

    func parseCell(_ text: String, genotype: GenotypeSpec, into architecture: inout Architecture,
                   fail: (String) -> SpaceError) throws {
        guard let cell else { throw fail("space has no cell") }
        let groups = text.split(separator: "+", omittingEmptySubsequences: false)
        guard groups.count == cell.nodeCount - 1 else {
            throw fail("a cell string needs \(cell.nodeCount - 1) '+'-separated node groups, got \(groups.count)")
        }
        var seen = Set<Int>()
        for (g, group) in groups.enumerated() {
            let node = g + 1
            guard group.count >= 2, group.first == "|", group.last == "|" else {
                throw fail("node group '\(group)' must look like |op~source|...|")
            }
            for entry in group.dropFirst().dropLast().split(separator: "|", omittingEmptySubsequences: false) {
                let parts = entry.split(separator: "~", omittingEmptySubsequences: false)
                guard parts.count == 2, let from = Int(parts[1]) else { throw fail("edge '\(entry)' must look like op~source") }
                guard let op = CellOperation(rawValue: String(parts[0])) else { throw fail("unknown cell op '\(parts[0])'") }
                guard let e = cell.edges.firstIndex(of: CellEdge(from: from, to: node)) else {
                    throw fail("the cell has no edge \(from) -> \(node)")
                }
                guard seen.insert(e).inserted else { throw fail("edge \(from) -> \(node) given twice") }
                guard let option = genotype.edges[e].values.firstIndex(of: op) else {
                    throw fail("op '\(op.rawValue)' is not allowed in this cell")
                }
                if let d = genotype.edges[e].decision { architecture.choices[d] = option }
            }
        }
        guard seen.count == cell.edges.count else {
            throw fail("the cell string names \(seen.count) of the \(cell.edges.count) edges")
        }
    }
}

extension StringProtocol {
    func trimmedWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

extension SearchSpace {
    /// The active decisions of an architecture as (decision name, option label) pairs, in
    /// decision order — handy for records and CSV columns.
    ///
    /// - Precondition: `architecture` belongs to this space (see `validate(_:)`).
    public func activeChoices(of architecture: Architecture) -> [(name: String, option: String)] {
        decisions.indices.filter { isActive($0, in: architecture) }.map {
            (decisions[$0].name, decisions[$0].options[architecture.choices[$0]])
        }
    }
}
