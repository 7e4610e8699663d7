import CHDF5
import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension H5File {
    /// How a writable file's contents reach the disk.
    public enum Persistence: Sendable, Equatable {
        /// HDF5 updates the file in place; ``H5File/flush()`` is `H5Fflush`. A process killed
        /// *during* a flush can leave a file that HDF5 cannot read (HDF5 writes a flush as many
        /// separate updates, in no crash-safe order).
        case inPlace
        /// The file is held in memory (HDF5's core driver) and ``H5File/flush()`` writes the whole
        /// file to a temporary file beside it and renames that over `path`. The rename is atomic,
        /// so a process killed at any moment (even `kill -9`) leaves the previous or the new
        /// complete file — never a half-written one — and readers (h5py, another ``H5File``) can
        /// open the file while it is being written. One writer at a time: the writer holds an
        /// open-file-description lock on the current file (it does not block HDF5's readers).
        /// A flush costs a write of the whole file; meant for files of up to some tens of MiB
        /// that are flushed at a human pace (experiment records).
        case atomicReplace
    }
}

/// The disk side of a file in ``H5File/Persistence/atomicReplace`` mode: the lock on the current
/// file and the replace-by-rename of each flush.
final class AtomicReplaceStore: @unchecked Sendable {
    let path: String
    /// The open file description holding the writer lock on the file currently at `path`; -1 before the first flush of a new file.
    private var lockedDescriptor: Int32 = -1
    /// Whether the first flush may replace an existing file (`create(truncate: true)`).
    private var mayReplaceExisting: Bool

    /// `F_OFD_SETLK` (Linux ≥ 3.15; not exported by Swift's Glibc module). Open-file-description
    /// locks belong to the descriptor, not the process, and do not interact with the `flock` locks
    /// HDF5 takes, so HDF5/h5py readers are never refused.
    private static let setOFDLock: Int32 = 37

    private init(path: String, mayReplaceExisting: Bool) {
        self.path = path
        self.mayReplaceExisting = mayReplaceExisting
    }

    deinit { release() }

    /// Gives up the writer lock (when the file is closed).
    func release() {
        if lockedDescriptor >= 0 { close(lockedDescriptor) }
        lockedDescriptor = -1
    }

    /// A store for a new file; nothing is written before the first ``commit(image:)``.
    static func forNewFile(path: String, truncate: Bool) throws -> AtomicReplaceStore {
        if !truncate, FileManager.default.fileExists(atPath: path) {
            throw HDF5Error.openFailed(path: path, reason: "file already exists")
        }
        if truncate, FileManager.default.fileExists(atPath: path) {
            // Replacing a file another process is writing would lose that writer's work.
            let descriptor = open(path, O_RDWR | O_CLOEXEC)
            if descriptor >= 0 {
                defer { close(descriptor) }
                if !lockForWriting(descriptor) { throw lockedError(path) }
            }
        }
        return AtomicReplaceStore(path: path, mayReplaceExisting: truncate)
    }

    /// Locks the file at `path` for writing and returns its bytes.
    static func forExistingFile(path: String) throws -> (AtomicReplaceStore, [UInt8]) {
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw HDF5Error.openFailed(path: path, reason: String(cString: strerror(errno)))
        }
        guard lockForWriting(descriptor) else {
            close(descriptor)
            throw lockedError(path)
        }
        // The writer that held the lock may have renamed a newer file over `path` between our
        // open and our lock: then the locked file is an old version.
        var opened = stat(), current = stat()
        guard fstat(descriptor, &opened) == 0, stat(path, &current) == 0,
              opened.st_ino == current.st_ino, opened.st_dev == current.st_dev else {
            close(descriptor)
            throw lockedError(path)
        }
        let size = Int(opened.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                close(descriptor)
                throw HDF5Error.openFailed(path: path, reason: "cannot read: \(n < 0 ? String(cString: strerror(errno)) : "unexpected end of file")")
            }
            done += n
        }
        let store = AtomicReplaceStore(path: path, mayReplaceExisting: true)
        store.lockedDescriptor = descriptor
        store.removeAbandonedTemporaryFiles()
        return (store, bytes)
    }

    /// The temporary file a flush writes before renaming it over `path`.
    private var temporaryPath: String { HiddenSibling.path(beside: path, suffix: "\(getpid()).partial") }

    /// Deletes temporary files of writers killed during a flush (we hold the writer lock, so no
    /// other process is writing one).
    private func removeAbandonedTemporaryFiles() {
        let (directory, prefix) = HiddenSibling.parts(beside: path)
        let suffix = ".partial"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            where name.hasPrefix(prefix) && name.hasSuffix(suffix) && Int(name.dropFirst(prefix.count).dropLast(suffix.count)) != nil {
            unlink(directory.appendingPathComponent(name).path)
        }
    }

    /// Writes `image` to a temporary file in the same directory, locks it and renames it over `path`.
    func commit(image: UnsafeRawBufferPointer) throws {
        let temporary = temporaryPath
        let descriptor = open(temporary, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("create \(temporary)") }
        var keep = false
        defer {
            if !keep {
                close(descriptor)
                unlink(temporary)
            }
        }
        var done = 0
        while done < image.count {
            let n = write(descriptor, image.baseAddress! + done, image.count - done)
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw failure("write \(temporary)") }
            done += n
        }
        guard Self.lockForWriting(descriptor) else { throw failure("lock \(temporary)") }
        if mayReplaceExisting {
            guard rename(temporary, path) == 0 else { throw failure("rename \(temporary) to \(path)") }
        } else {
            // The first flush of `create(truncate: false)`: never replace a file that appeared meanwhile.
            guard link(temporary, path) == 0 else {
                if errno == EEXIST { throw HDF5Error.openFailed(path: path, reason: "file already exists") }
                throw failure("link \(temporary) to \(path)")
            }
            unlink(temporary)
            mayReplaceExisting = true
        }
        keep = true
        if lockedDescriptor >= 0 { close(lockedDescriptor) }
        lockedDescriptor = descriptor
    }

    private func failure(_ what: String) -> HDF5Error {
        HDF5Error.operationFailed(path: path, object: "/", operation: "flush", reason: "\(what): \(String(cString: strerror(errno)))")
    }

    private static func lockedError(_ path: String) -> HDF5Error {
        HDF5Error.openFailed(path: path, reason: "another process is writing it")
    }

    /// Takes a non-blocking write lock on the whole file; `false` if another descriptor holds one.
    private static func lockForWriting(_ descriptor: Int32) -> Bool {
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 0
        lock.l_pid = 0
        return fcntl(descriptor, setOFDLock, &lock) == 0
    }
}
