import CHDF5
import Foundation

/// The kind of an object found in a group.
public enum HDF5ObjectKind: String, Sendable {
    case group, dataset, other
}

/// A place that holds groups, datasets and attributes: an ``H5File`` (its root group) or an ``H5Group``.
///
/// Names are relative paths like `"weights/stem/conv"`; intermediate groups are created as needed
/// when writing.
public protocol HDF5Location: AnyObject {
    /// The file this location belongs to.
    var file: H5File { get }
    /// The absolute path of this location inside the file (`/` for the root).
    var objectPath: String { get }
    /// The HDF5 identifier (throws when the file was closed).
    func identifier() throws -> hid_t
}

extension HDF5Location {
    /// The absolute path of `name` relative to this location (for error messages).
    func fullPath(_ name: String) -> String {
        if name.hasPrefix("/") { return name }
        return objectPath == "/" ? "/" + name : objectPath + "/" + name
    }

    func failure(_ operation: String, _ name: String) -> HDF5Error {
        .operationFailed(path: file.path, object: fullPath(name), operation: operation,
                         reason: HDF5Library.lastErrorMessage())
    }

    func validate(name: String) throws {
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        if name.isEmpty || components.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) {
            throw HDF5Error.invalidArgument(path: file.path, object: fullPath(name),
                                            detail: "invalid object name '\(name)' (empty path component, '.' or '..')")
        }
    }

    /// Link-creation properties that create missing intermediate groups. Caller closes the result.
    func intermediateGroupProperties() -> hid_t {
        let lcpl = H5Pcreate(naslab_H5P_LINK_CREATE())
        H5Pset_create_intermediate_group(lcpl, 1)
        H5Pset_char_encoding(lcpl, H5T_CSET_UTF8)
        return lcpl
    }

    // MARK: Existence and listing

    /// Whether an object (group or dataset) exists at `name` (a relative path; missing parents give `false`).
    public func exists(_ name: String) -> Bool {
        HDF5Library.locked {
            guard let id = try? identifier() else { return false }
            var prefix = ""
            for component in name.split(separator: "/") {
                prefix += prefix.isEmpty ? String(component) : "/" + component
                if H5Lexists(id, prefix, defaultProperties) <= 0 {
                    H5Eclear2(hid_t(H5E_DEFAULT))
                    return false
                }
            }
            return !prefix.isEmpty && H5Oexists_by_name(id, prefix, defaultProperties) > 0
        }
    }

    /// The kind of the object at `name`.
    public func kind(of name: String) throws -> HDF5ObjectKind {
        try HDF5Library.locked {
            guard exists(name) else { throw HDF5Error.objectNotFound(path: file.path, object: fullPath(name)) }
            let object = H5Oopen(try identifier(), name, defaultProperties)
            guard object >= 0 else { throw failure("open object", name) }
            defer { H5Oclose(object) }
            switch H5Iget_type(object) {
            case H5I_GROUP: return .group
            case H5I_DATASET: return .dataset
            default: return .other
            }
        }
    }

    /// The names of the direct children of this location (groups, datasets, other links), sorted by name.
    public func children() throws -> [String] {
        try HDF5Library.locked {
            let names = NameCollector()
            var index: hsize_t = 0
            let status = H5Literate(try identifier(), H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, data in
                guard let name, let data else { return 0 }
                Unmanaged<NameCollector>.fromOpaque(data).takeUnretainedValue().list.append(String(cString: name))
                return 0
            }, Unmanaged.passUnretained(names).toOpaque())
            if status < 0 { throw failure("list children of", ".") }
            return names.list.sorted()
        }
    }

    // MARK: Groups

    /// Creates the group `name` (and missing parents).
    /// - Throws: if it already exists or cannot be created.
    @discardableResult
    public func createGroup(_ name: String) throws -> H5Group {
        try HDF5Library.locked {
            try validate(name: name)
            if exists(name) {
                throw HDF5Error.invalidArgument(path: file.path, object: fullPath(name), detail: "already exists")
            }
            let lcpl = intermediateGroupProperties()
            defer { H5Pclose(lcpl) }
            let id = H5Gcreate2(try identifier(), name, lcpl, defaultProperties, defaultProperties)
            guard id >= 0 else { throw failure("create group", name) }
            return H5Group(file: file, objectPath: fullPath(name), identifier: id)
        }
    }

    /// Opens the existing group `name`.
    public func openGroup(_ name: String) throws -> H5Group {
        try HDF5Library.locked {
            let found = try kind(of: name)
            guard found == .group else {
                throw HDF5Error.wrongObjectKind(path: file.path, object: fullPath(name), expected: "group", found: found.rawValue)
            }
            let id = H5Gopen2(try identifier(), name, defaultProperties)
            guard id >= 0 else { throw failure("open group", name) }
            return H5Group(file: file, objectPath: fullPath(name), identifier: id)
        }
    }

    /// Opens the group `name`, creating it (and missing parents) if needed.
    public func requireGroup(_ name: String) throws -> H5Group {
        try HDF5Library.locked { exists(name) ? try openGroup(name) : try createGroup(name) }
    }

    /// Deletes the link `name` (a dataset or group). The file does not shrink.
    public func remove(_ name: String) throws {
        try HDF5Library.locked {
            guard exists(name) else { throw HDF5Error.objectNotFound(path: file.path, object: fullPath(name)) }
            if H5Ldelete(try identifier(), name, defaultProperties) < 0 { throw failure("delete", name) }
        }
    }

    /// Renames (moves) the link `name` to `newName` inside this location; missing parents of `newName` are created.
    public func move(_ name: String, to newName: String) throws {
        try HDF5Library.locked {
            try validate(name: newName)
            guard exists(name) else { throw HDF5Error.objectNotFound(path: file.path, object: fullPath(name)) }
            if exists(newName) {
                throw HDF5Error.invalidArgument(path: file.path, object: fullPath(newName), detail: "already exists")
            }
            let id = try identifier()
            let lcpl = intermediateGroupProperties()
            defer { H5Pclose(lcpl) }
            if H5Lmove(id, name, id, newName, lcpl, defaultProperties) < 0 { throw failure("move", name) }
        }
    }
}
