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
    private var fileIdentifier: hid_t

    private init(path: String, identifier: hid_t, isWritable: Bool) {
        self.path = path
        self.fileIdentifier = identifier
        self.isWritable = isWritable
    }

    deinit {
        HDF5Library.locked {
            if fileIdentifier >= 0 { H5Fclose(fileIdentifier) }
        }
    }

    /// Creates a new file, replacing an existing one when `truncate` is true (otherwise an existing file is an error).
    /// - Parameters:
    ///   - path: where to create the file; the parent directory must exist.
    ///   - truncate: replace an existing file (default `true`).
    public static func create(path: String, truncate: Bool = true) throws -> H5File {
        try HDF5Library.locked {
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
    /// - Throws: ``HDF5Error/fileNotFound(path:)``, ``HDF5Error/notHDF5(path:)`` or ``HDF5Error/openFailed(path:reason:)``.
    public static func open(path: String, mode: Mode = .readOnly) throws -> H5File {
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

    /// Writes all buffered data and metadata to the file (`H5Fflush`, local scope).
    ///
    /// After a flush a process crash (even `kill -9`) leaves a file that opens and holds
    /// everything written so far. It is not an `fsync`: it does not protect against power loss.
    public func flush() throws {
        try HDF5Library.locked {
            let id = try identifier()
            if H5Fflush(id, H5F_SCOPE_LOCAL) < 0 {
                throw HDF5Error.operationFailed(path: path, object: "/", operation: "flush",
                                                reason: HDF5Library.lastErrorMessage())
            }
        }
    }

    /// Closes the file. Groups and tables still held keep the underlying file open until released.
    /// Calling `close()` twice is harmless.
    public func close() throws {
        try HDF5Library.locked {
            guard fileIdentifier >= 0 else { return }
            let status = H5Fclose(fileIdentifier)
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
