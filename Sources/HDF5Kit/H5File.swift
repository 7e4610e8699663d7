import CHDF5
import Foundation

/// An open HDF5 file; also the root group `/` (see ``HDF5Location`` for groups, attributes, datasets).
///
/// ```swift
/// let file = try H5File.create(path: "run.h5")
/// try file.write("x", values: [1, 2, 3, 4] as [Float], shape: [2, 2])
/// try file.setAttribute("seed", 42)
/// try file.close()
/// let again = try H5File.open(path: "run.h5")
/// let x: HDF5Array<Float> = try again.read("x")   // x.shape == [2, 2]
/// ```
///
/// Files are written with the default library-version bounds (readable by HDF5 ≥ 1.8 and h5py).
/// The file stays open until ``close()`` is called or the object (and every group or table taken
/// from it) is released.
public final class H5File: HDF5Location, @unchecked Sendable {
    /// How an existing file is opened.
    public enum Mode: Sendable { case readOnly, readWrite }

    /// The path the file was opened with.
    public let path: String
    /// Whether the file was opened for writing.
    public let isWritable: Bool
    /// How writes reach the disk (always `.inPlace` for read-only files).
    public var persistence: Persistence { atomicStore == nil ? .inPlace : .atomicReplace }
    private var fileIdentifier: hid_t
    private let atomicStore: AtomicReplaceStore?

    private init(path: String, identifier: hid_t, isWritable: Bool, atomicStore: AtomicReplaceStore? = nil) {
        self.path = path
        self.fileIdentifier = identifier
        self.isWritable = isWritable
        self.atomicStore = atomicStore
    }

    deinit {
        HDF5Library.locked {
            if fileIdentifier >= 0 {
                if atomicStore != nil, H5Fflush(fileIdentifier, H5F_SCOPE_LOCAL) >= 0 { try? commit() }
                H5Fclose(fileIdentifier)
            }
        }
    }

    /// A file access property list for an in-memory file (core driver, nothing written by HDF5 itself).
    private static func memoryAccess() -> hid_t {
        let fapl = H5Pcreate(naslab_H5P_FILE_ACCESS())
        H5Pset_fapl_core(fapl, 1 << 20, false)
        return fapl
    }

    /// Creates a new file, replacing an existing one when `truncate` is true (otherwise an existing file is an error).
    /// - Parameters:
    ///   - path: where to create the file; the parent directory must exist.
    ///   - truncate: replace an existing file (default `true`).
    ///   - persistence: `.inPlace` (default) or `.atomicReplace` (see ``Persistence``); with
    ///     `.atomicReplace` nothing is on disk before the first ``flush()``.
    public static func create(path: String, truncate: Bool = true, persistence: Persistence = .inPlace) throws -> H5File {
        if persistence == .atomicReplace {
            return try HDF5Library.locked {
                let store = try AtomicReplaceStore.forNewFile(path: path, truncate: truncate)
                let fapl = memoryAccess()
                defer { H5Pclose(fapl) }
                let id = H5Fcreate(path, naslab_H5F_ACC_TRUNC(), defaultProperties, fapl)
                guard id >= 0 else {
                    throw HDF5Error.openFailed(path: path, reason: "cannot create: \(HDF5Library.lastErrorMessage())")
                }
                return H5File(path: path, identifier: id, isWritable: true, atomicStore: store)
            }
        }
        return try HDF5Library.locked {
            let flags = truncate ? naslab_H5F_ACC_TRUNC() : naslab_H5F_ACC_EXCL()
            let id = H5Fcreate(path, flags, defaultProperties, defaultProperties)
            guard id >= 0 else {
                let reason = HDF5Library.lastErrorMessage()
                if !truncate, FileManager.default.fileExists(atPath: path) {
                    throw HDF5Error.openFailed(path: path, reason: "file already exists")
                }
                throw HDF5Error.openFailed(path: path, reason: "cannot create: \(reason)")
            }
            return H5File(path: path, identifier: id, isWritable: true)
        }
    }

    /// Opens an existing file.
    /// - Parameters:
    ///   - path: the file.
    ///   - mode: `.readOnly` (default) or `.readWrite`.
    ///   - persistence: for `.readWrite`: `.inPlace` (default) or `.atomicReplace` (see ``Persistence``;
    ///     the file is read into memory and locked against other writers).
    /// - Throws: ``HDF5Error/fileNotFound(path:)``, ``HDF5Error/notHDF5(path:)`` or ``HDF5Error/openFailed(path:reason:)``.
    public static func open(path: String, mode: Mode = .readOnly, persistence: Persistence = .inPlace) throws -> H5File {
        try HDF5Library.locked {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw HDF5Error.fileNotFound(path: path)
            }
            if isDirectory.boolValue { throw HDF5Error.openFailed(path: path, reason: "is a directory") }
            let isHDF5 = H5Fis_hdf5(path)
            if isHDF5 == 0 { throw HDF5Error.notHDF5(path: path) }
            if isHDF5 < 0 {
                throw HDF5Error.openFailed(path: path, reason: HDF5Library.lastErrorMessage())
            }
            if mode == .readWrite, persistence == .atomicReplace {
                let (store, bytes) = try AtomicReplaceStore.forExistingFile(path: path)
                var image = bytes
                let id = image.withUnsafeMutableBytes {
                    H5LTopen_file_image($0.baseAddress, $0.count, UInt32(H5LT_FILE_IMAGE_OPEN_RW))
                }
                guard id >= 0 else {
                    throw HDF5Error.openFailed(path: path, reason: HDF5Library.lastErrorMessage())
                }
                return H5File(path: path, identifier: id, isWritable: true, atomicStore: store)
            }
            let flags = mode == .readOnly ? naslab_H5F_ACC_RDONLY() : naslab_H5F_ACC_RDWR()
            let id = H5Fopen(path, flags, defaultProperties)
            guard id >= 0 else {
                throw HDF5Error.openFailed(path: path, reason: HDF5Library.lastErrorMessage())
            }
            return H5File(path: path, identifier: id, isWritable: mode == .readWrite)
        }
    }

    /// Whether the file is still open.
    public var isOpen: Bool { HDF5Library.locked { fileIdentifier >= 0 } }

    /// Writes all buffered data and metadata to the file: `H5Fflush` in place, or with
    /// ``Persistence/atomicReplace`` the whole file to a temporary file renamed over `path`.
    ///
    /// After an atomic-replace flush a process crash (even `kill -9`, even during the next
    /// flush) leaves a complete file holding everything written so far. An in-place flush only
    /// protects what it has finished writing: a crash *during* it can leave an unreadable file.
    /// Neither is an `fsync`: they do not protect against power loss.
    public func flush() throws {
        try HDF5Library.locked {
            let id = try identifier()
            if H5Fflush(id, H5F_SCOPE_LOCAL) < 0 {
                throw HDF5Error.operationFailed(path: path, object: "/", operation: "flush",
                                                reason: HDF5Library.lastErrorMessage())
            }
            if atomicStore != nil { try commit() }
        }
    }

    /// Writes the in-memory image of an atomic-replace file to disk (the caller holds the HDF5 lock and has flushed).
    private func commit() throws {
        guard let atomicStore, fileIdentifier >= 0 else { return }
        let size = H5Fget_file_image(fileIdentifier, nil, 0)
        guard size > 0 else {
            throw HDF5Error.operationFailed(path: path, object: "/", operation: "flush", reason: HDF5Library.lastErrorMessage())
        }
        let image = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { image.deallocate() }
        guard H5Fget_file_image(fileIdentifier, image.baseAddress, size) == size else {
            throw HDF5Error.operationFailed(path: path, object: "/", operation: "flush", reason: HDF5Library.lastErrorMessage())
        }
        try atomicStore.commit(image: UnsafeRawBufferPointer(image))
    }

    /// Closes the file. Groups and tables still held keep the underlying file open until released.
    /// Calling `close()` twice is harmless.
    public func close() throws {
        try HDF5Library.locked {
            guard fileIdentifier >= 0 else { return }
            if atomicStore != nil {
                do {
                    if H5Fflush(fileIdentifier, H5F_SCOPE_LOCAL) >= 0 { try commit() }
                } catch {
                    H5Fclose(fileIdentifier)
                    fileIdentifier = -1
                    atomicStore?.release()
                    throw error
                }
            }
            let status = H5Fclose(fileIdentifier)
            atomicStore?.release()
            fileIdentifier = -1
            if status < 0 {
                throw HDF5Error.operationFailed(path: path, object: "/", operation: "close",
                                                reason: HDF5Library.lastErrorMessage())
            }
        }
    }

    // MARK: HDF5Location

    public var file: H5File { self }
    public var objectPath: String { "/" }
    public func identifier() throws -> hid_t {
        try HDF5Library.locked {
            guard fileIdentifier >= 0 else { throw HDF5Error.fileClosed(path: path) }
            return fileIdentifier
        }
    }
}

/// An open group inside an ``H5File``.
public final class H5Group: HDF5Location, @unchecked Sendable {
    public let file: H5File
    public let objectPath: String
    private var groupIdentifier: hid_t

    init(file: H5File, objectPath: String, identifier: hid_t) {
        self.file = file
        self.objectPath = objectPath
        self.groupIdentifier = identifier
    }

    deinit {
        HDF5Library.locked { if groupIdentifier >= 0 { H5Gclose(groupIdentifier) } }
    }

    public func identifier() throws -> hid_t { groupIdentifier }
}
