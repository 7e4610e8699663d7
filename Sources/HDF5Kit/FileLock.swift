import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock that serialises the read-modify-write of a file across processes
/// and across threads of one process: it is a `flock` on a hidden sidecar file
/// `.<name>.lock` beside `path` (each call opens its own descriptor, and `flock` locks of different
/// open file descriptions conflict even within one process). Readers that do not take it are not
/// affected; writers that replace the file atomically (``H5File/Persistence/atomicReplace``) under
/// it never lose each other's changes.
public enum FileLock {
    /// Runs `body` while holding the lock for `path`, waiting for other holders.
    /// - Throws: `HDF5Error.openFailed` if the lock file cannot be created; whatever `body` throws.
    public static func withExclusiveLock<T>(for path: String, _ body: () throws -> T) throws -> T {
        let lockPath = HiddenSibling.path(beside: path, suffix: "lock")
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw HDF5Error.openFailed(path: lockPath, reason: "cannot create the lock file: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw HDF5Error.openFailed(path: lockPath, reason: "cannot lock: \(String(cString: strerror(errno)))")
            }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}
