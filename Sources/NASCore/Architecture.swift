/// One decision of a search space: a named choice among options.
public struct Decision: Hashable, Codable, Sendable {
    /// Path-like name, e.g. `stage2.depth` or `edge(1<-0)`.
    public var name: String
    /// The option labels, e.g. `["3", "5", "7"]` or `["none", "skip_connect", …]`.
    public var options: [String]

    public init(name: String, options: [String]) {
        self.name = name
        self.options = options
    }
}

/// A chosen architecture: one option index per decision of its space.
///
/// The value is only meaningful together with its `ArchitectureSpace`, which gives it a
/// human-readable text form (`space.text(of:)`) and decodes it into a `NetworkGraph`.
public struct Architecture: Hashable, Codable, Sendable {
    public var choices: [Int]
    public init(choices: [Int]) { self.choices = choices }
}

/// What searchers need to know of a search space. Spaces own sampling and mutation (as in
/// NASLib): a searcher never builds a model, it only asks the space for architectures.
///
/// Default implementations treat the space as a vector of independent decisions; spaces
/// with inactive decisions (e.g. the widths of blocks beyond the chosen depth) override
/// `isActive` and `canonical` so that equal networks have equal architectures.
public protocol ArchitectureSpace: Sendable {
    /// A short identifier (`nasbench201`, `small`, …).
    var name: String { get }
    var decisions: [Decision] { get }
    /// Whether decision `index` influences the network given the other choices of `architecture`.
    func isActive(_ index: Int, in architecture: Architecture) -> Bool
    /// The canonical representative: inactive decisions set to 0.
    func canonical(_ architecture: Architecture) -> Architecture
    /// The canonical, human-readable text form; `parse(text(of: a)) == canonical(a)`.
    func text(of architecture: Architecture) -> String
    func parse(_ text: String) throws -> Architecture
}

extension ArchitectureSpace {
    public func isActive(_ index: Int, in architecture: Architecture) -> Bool { true }

    public func canonical(_ architecture: Architecture) -> Architecture {
        var a = architecture
        for i in a.choices.indices where !isActive(i, in: architecture) { a.choices[i] = 0 }
        return a
    }

    /// A stable hash of the canonical text (FNV-1a 64, hex): the same on every machine and run.
    public func hash(of architecture: Architecture) -> String {
        stableHash(text(of: architecture))
    }

    /// Uniform choice per decision, then canonicalised.
    public func sample(using rng: inout SeededGenerator) -> Architecture {
        canonical(Architecture(choices: decisions.map { rng.nextInt(below: $0.options.count) }))
    }

    /// Changes one active decision to a different option (uniformly among decisions that have one).
    public func mutate(_ architecture: Architecture, using rng: inout SeededGenerator) -> Architecture {
        let candidates = decisions.indices.filter { decisions[$0].options.count > 1 && isActive($0, in: architecture) }
        guard !candidates.isEmpty else { return architecture }
        let d = candidates[rng.nextInt(below: candidates.count)]
        var a = architecture
        let k = decisions[d].options.count
        a.choices[d] = (a.choices[d] + 1 + rng.nextInt(below: k - 1)) % k
        return canonical(a)
    }

    /// Uniform crossover: each decision from either parent with probability 1/2.
    public func crossover(_ a: Architecture, _ b: Architecture, using rng: inout SeededGenerator) -> Architecture {
        var child = a
        for i in child.choices.indices where rng.next() & 1 == 1 { child.choices[i] = b.choices[i] }
        return canonical(child)
    }

    /// All architectures that differ from `architecture` in one active decision (canonical, distinct).
    public func neighbours(of architecture: Architecture) -> [Architecture] {
        var seen = Set<Architecture>([canonical(architecture)])
        var result = [Architecture]()
        for d in decisions.indices where isActive(d, in: architecture) {
            for option in decisions[d].options.indices where option != architecture.choices[d] {
                var a = architecture
                a.choices[d] = option
                let c = canonical(a)
                if seen.insert(c).inserted { result.append(c) }
            }
        }
        return result
    }
}

/// FNV-1a 64-bit hash of a string's UTF-8 bytes, as 16 hex digits.
public func stableHash(_ text: String) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in text.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    let hex = String(h, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
