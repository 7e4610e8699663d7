/// A small arbitrary-precision unsigned integer: enough to count architectures of large spaces.
///
/// Supports addition, multiplication, comparison and a decimal description.
///
/// ```swift
/// let size = BigUnsignedInteger(5).power(6)   // 15625
/// print(size * BigUnsignedInteger(1 << 40))
/// ```
public struct BigUnsignedInteger: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    /// Little-endian 32-bit limbs, no trailing zero limbs (zero is `[]`).
    public private(set) var limbs: [UInt32]

    public init(_ value: UInt64) {
        limbs = [UInt32(truncatingIfNeeded: value), UInt32(truncatingIfNeeded: value >> 32)]
        normalize()
    }

    public init(_ value: Int) {
        precondition(value >= 0, "BigUnsignedInteger cannot be negative")
        self.init(UInt64(value))
    }

    public init(integerLiteral value: UInt64) { self.init(value) }

    /// Parses a decimal string; `nil` for anything but digits.
    public init?(decimal text: String) {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        var result = BigUnsignedInteger(0)
        for character in text {
            result = result * BigUnsignedInteger(10) + BigUnsignedInteger(UInt64(character.wholeNumberValue!))
        }
        self = result
    }

    private mutating func normalize() {
        while let last = limbs.last, last == 0 { limbs.removeLast() }
    }

    public var isZero: Bool { limbs.isEmpty }

    /// The value as `UInt64` when it fits.
    public var uint64Value: UInt64? {
        guard limbs.count <= 2 else { return nil }
        var v: UInt64 = 0
        for (i, limb) in limbs.enumerated() { v |= UInt64(limb) << (32 * UInt64(i)) }
        return v
    }

    /// An approximate `Double` value (for logs and ratios).
    public var doubleValue: Double {
        limbs.reversed().reduce(0.0) { $0 * 4_294_967_296.0 + Double($1) }
    }

    public static func + (a: BigUnsignedInteger, b: BigUnsignedInteger) -> BigUnsignedInteger {
        var result = [UInt32]()
        result.reserveCapacity(max(a.limbs.count, b.limbs.count) + 1)
        var carry: UInt64 = 0
        for i in 0..<max(a.limbs.count, b.limbs.count) {
            let s = UInt64(i < a.limbs.count ? a.limbs[i] : 0) + UInt64(i < b.limbs.count ? b.limbs[i] : 0) + carry
            result.append(UInt32(truncatingIfNeeded: s))
            carry = s >> 32
        }
        if carry > 0 { result.append(UInt32(carry)) }
        var r = BigUnsignedInteger(0)
        r.limbs = result
        r.normalize()
        return r
    }

    public static func * (a: BigUnsignedInteger, b: BigUnsignedInteger) -> BigUnsignedInteger {
        if a.isZero || b.isZero { return 0 }
        var result = [UInt32](repeating: 0, count: a.limbs.count + b.limbs.count)
        for (i, x) in a.limbs.enumerated() {
            var carry: UInt64 = 0
            for (j, y) in b.limbs.enumerated() {
                let t = UInt64(x) * UInt64(y) + UInt64(result[i + j]) + carry
                result[i + j] = UInt32(truncatingIfNeeded: t)
                carry = t >> 32
            }
            var k = i + b.limbs.count
            while carry > 0 {
                let t = UInt64(result[k]) + carry
                result[k] = UInt32(truncatingIfNeeded: t)
                carry = t >> 32
                k += 1
            }
        }
        var r = BigUnsignedInteger(0)
        r.limbs = result
        r.normalize()
        return r
    }

    public static func += (a: inout BigUnsignedInteger, b: BigUnsignedInteger) { a = a + b }
    public static func *= (a: inout BigUnsignedInteger, b: BigUnsignedInteger) { a = a * b }

    /// `self` raised to a non-negative power.
    public func power(_ exponent: Int) -> BigUnsignedInteger {
        var result = BigUnsignedInteger(1)
        for _ in 0..<max(0, exponent) { result *= self }
        return result
    }

    public static func < (a: BigUnsignedInteger, b: BigUnsignedInteger) -> Bool {
        if a.limbs.count != b.limbs.count { return a.limbs.count < b.limbs.count }
        for i in stride(from: a.limbs.count - 1, through: 0, by: -1) where a.limbs[i] != b.limbs[i] {
            return a.limbs[i] < b.limbs[i]
        }
        return false
    }

    /// Divides by a small divisor, returning quotient and remainder.
    public func quotientAndRemainder(dividingBy divisor: UInt32) -> (quotient: BigUnsignedInteger, remainder: UInt32) {
        precondition(divisor > 0, "division by zero")
        var quotient = [UInt32](repeating: 0, count: limbs.count)
        var remainder: UInt64 = 0
        for i in stride(from: limbs.count - 1, through: 0, by: -1) {
            let current = (remainder << 32) | UInt64(limbs[i])
            quotient[i] = UInt32(current / UInt64(divisor))
            remainder = current % UInt64(divisor)
        }
        var q = BigUnsignedInteger(0)
        q.limbs = quotient
        q.normalize()
        return (q, UInt32(remainder))
    }

    /// The decimal digits.
    public var description: String {
        if isZero { return "0" }
        var chunks = [UInt32]()
        var value = self
        while !value.isZero {
            let (q, r) = value.quotientAndRemainder(dividingBy: 1_000_000_000)
            chunks.append(r)
            value = q
        }
        var text = String(chunks.last!)
        for chunk in chunks.dropLast().reversed() {
            let digits = String(chunk)
            text += String(repeating: "0", count: 9 - digits.count) + digits
        }
        return text
    }
}
