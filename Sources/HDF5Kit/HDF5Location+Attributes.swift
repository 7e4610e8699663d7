import CHDF5

extension HDF5Location {
    /// Opens attribute `name` of this location, runs `body` with its readable view, closes it.
    func withAttribute<R>(_ name: String, _ body: (HDF5Readable) throws -> R) throws -> R {
        try HDF5Library.locked {
            let id = try identifier()
            guard H5Aexists(id, name) > 0 else {
                H5Eclear2(hid_t(H5E_DEFAULT))
                throw HDF5Error.objectNotFound(path: file.path, object: objectPath + "@" + name)
            }
            let attribute = H5Aopen(id, name, defaultProperties)
            guard attribute >= 0 else { throw failure("open attribute", "@" + name) }
            defer { H5Aclose(attribute) }
            let type = H5Aget_type(attribute)
            let space = H5Aget_space(attribute)
            defer { H5Tclose(type); H5Sclose(space) }
            return try body(HDF5Readable(type: type, space: space) { memoryType, buffer in
                H5Aread(attribute, memoryType, buffer)
            })
        }
    }

    func writeAttribute(_ name: String, type: hid_t, shape: [Int], buffer: UnsafeRawPointer?) throws {
        try HDF5Library.locked {
            let id = try identifier()
            if H5Aexists(id, name) > 0, H5Adelete(id, name) < 0 { throw failure("replace attribute", "@" + name) }
            let space = makeSpace(shape)
            defer { H5Sclose(space) }
            let attribute = H5Acreate2(id, name, type, space, defaultProperties, defaultProperties)
            guard attribute >= 0 else { throw failure("create attribute", "@" + name) }
            defer { H5Aclose(attribute) }
            if let buffer, H5Awrite(attribute, type, buffer) < 0 { throw failure("write attribute", "@" + name) }
        }
    }

    /// Sets (or replaces) a string attribute (scalar, variable-length UTF-8: h5py reads it as `str`).
    public func setAttribute(_ name: String, _ value: String) throws {
        let type = HDF5Library.locked { variableStringType() }
        defer { HDF5Library.locked { _ = H5Tclose(type) } }
        try withCStrings([value]) { try writeAttribute(name, type: type, shape: [], buffer: $0) }
    }

    /// Sets (or replaces) a string-array attribute (1-D, variable-length UTF-8).
    public func setAttribute(_ name: String, _ values: [String]) throws {
        let type = HDF5Library.locked { variableStringType() }
        defer { HDF5Library.locked { _ = H5Tclose(type) } }
        try withCStrings(values) { try writeAttribute(name, type: type, shape: [values.count], buffer: $0) }
    }

    /// Sets (or replaces) an integer attribute (stored as int64).
    public func setAttribute(_ name: String, _ value: Int) throws {
        var v = Int64(value)
        try writeAttribute(name, type: naslab_H5T_NATIVE_INT64(), shape: [], buffer: &v)
    }

    /// Sets (or replaces) a floating-point attribute (stored as float64).
    public func setAttribute(_ name: String, _ value: Double) throws {
        var v = value
        try writeAttribute(name, type: naslab_H5T_NATIVE_DOUBLE(), shape: [], buffer: &v)
    }

    /// Sets (or replaces) a scalar numeric attribute of the given Swift type (e.g. `UInt64` seeds).
    public func setAttribute<T: HDF5Numeric>(_ name: String, number value: T) throws {
        var v = value
        try writeAttribute(name, type: T.nativeType(), shape: [], buffer: &v)
    }

    /// Reads a scalar numeric attribute converted to `T`.
    public func numberAttribute<T: HDF5Numeric>(_ name: String, as type: T.Type = T.self) throws -> T {
        try withAttribute(name) { source in
            let values = try readNumbers(source, "@" + name, as: T.self)
            guard values.count == 1 else {
                throw HDF5Error.shapeMismatch(path: file.path, object: objectPath + "@" + name, detail: "expected one value, found \(values.count)")
            }
            return values[0]
        }
    }

    /// Whether this location has attribute `name`.
    public func hasAttribute(_ name: String) -> Bool {
        HDF5Library.locked {
            guard let id = try? identifier() else { return false }
            let result = H5Aexists(id, name)
            if result < 0 { H5Eclear2(hid_t(H5E_DEFAULT)) }
            return result > 0
        }
    }

    /// The names of this location's attributes, sorted.
    public func attributeNames() throws -> [String] {
        try HDF5Library.locked {
            let names = NameCollector()
            var index: hsize_t = 0
            let status = H5Aiterate2(try identifier(), H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, data in
                guard let name, let data else { return 0 }
                Unmanaged<NameCollector>.fromOpaque(data).takeUnretainedValue().list.append(String(cString: name))
                return 0
            }, Unmanaged.passUnretained(names).toOpaque())
            if status < 0 { throw failure("list attributes of", ".") }
            return names.list.sorted()
        }
    }

    /// Reads a string attribute holding one string (variable- or fixed-length).
    public func stringAttribute(_ name: String) throws -> String {
        let values = try stringsAttribute(name)
        guard values.count == 1 else {
            throw HDF5Error.shapeMismatch(path: file.path, object: objectPath + "@" + name,
                                          detail: "expected one string, found \(values.count)")
        }
        return values[0]
    }

    /// Reads a string attribute of any shape as a flat array (e.g. h5py's `attrs["class_names"] = [...]`).
    public func stringsAttribute(_ name: String) throws -> [String] {
        try withAttribute(name) { try readStrings($0, "@" + name) }
    }

    /// Reads a scalar integer attribute.
    /// - Throws: ``HDF5Error/typeMismatch(path:object:expected:found:)`` if it is not stored as an integer.
    public func intAttribute(_ name: String) throws -> Int {
        try withAttribute(name) { source in
            let stored = HDF5ElementType(typeIdentifier: source.type)
            guard case .integer = stored else {
                throw HDF5Error.typeMismatch(path: file.path, object: objectPath + "@" + name, expected: "integer", found: stored.description)
            }
            let values = try readNumbers(source, "@" + name, as: Int64.self)
            guard values.count == 1 else {
                throw HDF5Error.shapeMismatch(path: file.path, object: objectPath + "@" + name, detail: "expected one value, found \(values.count)")
            }
            return Int(values[0])
        }
    }

    /// Reads a scalar numeric attribute as a Double.
    public func doubleAttribute(_ name: String) throws -> Double {
        try withAttribute(name) { source in
            let values = try readNumbers(source, "@" + name, as: Double.self)
            guard values.count == 1 else {
                throw HDF5Error.shapeMismatch(path: file.path, object: objectPath + "@" + name, detail: "expected one value, found \(values.count)")
            }
            return values[0]
        }
    }
}
