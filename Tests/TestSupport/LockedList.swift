import Foundation

/// A list that threads append to under a lock: what concurrent test bodies report back (errors,
/// thread names) for the test to assert on afterwards.
public final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var values = [String]()

    public init() {}

    public func append(_ value: String) { lock.withLock { values.append(value) } }

    public var items: [String] { lock.withLock { values } }
}
