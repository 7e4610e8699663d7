import CHDF5
import Foundation

/// Process-wide access to the HDF5 library: one lock around every call, silenced error printing.
///
/// Debian's libhdf5 is built thread-safe, but HDF5Kit makes several library calls per operation
/// (open, query, read, close) and keeps error-stack state between them, so all of them run under
/// one recursive lock. All HDF5Kit types are therefore safe to use from several threads, although
/// HDF5 work is serialised.
public enum HDF5Library {
    static let lock = NSRecursiveLock()

    private static let initialise: Void = {
        H5open()
        // Silence HDF5's default error-stack printing; HDF5Kit reports its own errors.
        H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
    }()

    /// Runs `body` holding the HDF5 lock, after making sure the library is initialised.
    @inline(__always)
    static func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        _ = initialise
        return try body()
    }

    /// The linked HDF5 library version, e.g. `"1.10.8"`.
    public static var version: String {
        locked {
            var major: UInt32 = 0, minor: UInt32 = 0, release: UInt32 = 0
            H5get_libversion(&major, &minor, &release)
            return "\(major).\(minor).\(release)"
        }
    }

    /// The current HDF5 error stack, condensed to one line (most specific message first), then cleared.
    static func lastErrorMessage() -> String {
        final class Collector { var messages: [String] = [] }
        let collector = Collector()
        let context = Unmanaged.passUnretained(collector).toOpaque()
        H5Ewalk2(hid_t(H5E_DEFAULT), H5E_WALK_UPWARD, { _, error, data in
            guard let error, let data else { return 0 }
            let collector = Unmanaged<Collector>.fromOpaque(data).takeUnretainedValue()
            if let desc = error.pointee.desc {
                let text = String(cString: desc)
                if !text.isEmpty, !collector.messages.contains(text) { collector.messages.append(text) }
            }
            return 0
        }, context)
        H5Eclear2(hid_t(H5E_DEFAULT))
        if collector.messages.isEmpty { return "unknown HDF5 error" }
        return collector.messages.prefix(3).joined(separator: "; ")
    }
}

let defaultProperties = hid_t(H5P_DEFAULT)
