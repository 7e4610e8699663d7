/// A small, fast, seedable random number generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice in NASLab — weight initialisation, shuffling, dropout, sampling and
/// mutating architectures — takes one of these, injected by the caller. Its state is `Codable`,
/// so a searcher's generator can be stored in an experiment record and restored on resume.
///
/// ```swift
/// var rng = SeededGenerator(seed: 42)
/// let k = Int.random(in: 0..<10, using: &rng)
/// ```
///
/// References:
/// - D. Blackman, S. Vigna, "Scrambled Linear Pseudorandom Number Generators", ACM TOMS 2021.
public struct SeededGenerator: RandomNumberGenerator, Codable, Hashable, Sendable {
    public private(set) var state: [UInt64]

    /// Creates a generator whose whole future is determined by `seed`.
    public init(seed: UInt64) {
        var s = seed
        var words = [UInt64]()
        for _ in 0..<4 { words.append(SeededGenerator.splitMix64(&s)) }
        state = words
    }

    /// Restores a generator from a state captured with `state`.
    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "invalid xoshiro256** state")
        self.state = state
    }

    static func splitMix64(_ x: inout UInt64) -> UInt64 {
        x &+= 0x9E37_79B9_7F4A_7C15
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    @inline(__always)
    static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = SeededGenerator.rotl(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = SeededGenerator.rotl(state[3], 45)
        return result
    }

    /// A new, independent generator derived from this one (for a worker or a sub-task).
    /// Deterministic: the same parent state and `stream` always give the same child.
    public func derived(stream: UInt64) -> SeededGenerator {
        var s = state[0] ^ SeededGenerator.rotl(state[2], 17) ^ (stream &* 0x9E37_79B9_7F4A_7C15)
        return SeededGenerator(seed: SeededGenerator.splitMix64(&s))
    }

    /// A uniform Float in [0, 1) with 24 random bits.
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A uniform Double in [0, 1) with 53 random bits.
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal sample (Box–Muller; one sample per call, deterministic).
    public mutating func nextNormal() -> Double {
        var u1 = nextUnitDouble()
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = nextUnitDouble()
        return (-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2)
    }

    /// A uniform integer in `0..<upperBound` (Lemire's method, independent of the standard library's choice).
    public mutating func nextInt(below upperBound: Int) -> Int {
        precondition(upperBound > 0)
        let bound = UInt64(upperBound)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }

    /// Fisher–Yates shuffle with this generator (stable across Swift versions, unlike `shuffle(using:)`).
    public mutating func shuffle<T>(_ array: inout [T]) {
        if array.count < 2 { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            let j = nextInt(below: i + 1)
            if i != j { array.swapAt(i, j) }
        }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif
