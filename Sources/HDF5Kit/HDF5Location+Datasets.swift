import CHDF5

extension HDF5Location {
    /// Opens dataset `name`, runs `body` with its readable view, closes it.
    func withDataset<R>(_ name: String, _ body: (hid_t, HDF5Readable) throws -> R) throws -> R {
        try HDF5Library.locked {
            let found = try kind(of: name)
            guard found == .dataset else {
                throw HDF5Error.wrongObjectKind(path: file.path, object: fullPath(name), expected: "dataset", found: found.rawValue)
            }
            let dataset = H5Dopen2(try identifier(), name, defaultProperties)
            guard dataset >= 0 else { throw failure("open dataset", name) }
            defer { H5Dclose(dataset) }
            let type = H5Dget_type(dataset)
            let space = H5Dget_space(dataset)
            defer { H5Tclose(type); H5Sclose(space) }
            let readable = HDF5Readable(type: type, space: space) { memoryType, buffer in
                H5Dread(dataset, memoryType, naslab_H5S_ALL(), naslab_H5S_ALL(), defaultProperties, buffer)
            }
            return try body(dataset, readable)
        }
    }

    /// Removes `name` first when `overwrite` is set, otherwise fails if it exists.
    func prepareToCreate(_ name: String, overwrite: Bool) throws {
        try validate(name: name)
        if exists(name) {
            if overwrite {
                try remove(name)
            } else {
                throw HDF5Error.invalidArgument(path: file.path, object: fullPath(name), detail: "already exists")
            }
        }
    }

    /// Creates dataset `name` with `type`/`shape` and writes `buffer` into it.
    func createAndWrite(_ name: String, type: hid_t, shape: [Int], buffer: UnsafeRawPointer?) throws {
        let space = makeSpace(shape)
        defer { H5Sclose(space) }
        let lcpl = intermediateGroupProperties()
        defer { H5Pclose(lcpl) }
        let dataset = H5Dcreate2(try identifier(), name, type, space, lcpl, defaultProperties, defaultProperties)
        guard dataset >= 0 else { throw failure("create dataset", name) }
        defer { H5Dclose(dataset) }
        if let buffer, shape.reduce(1, *) > 0,
           H5Dwrite(dataset, type, naslab_H5S_ALL(), naslab_H5S_ALL(), defaultProperties, buffer) < 0 {
            throw failure("write dataset", name)
        }
    }

    // MARK: Numeric datasets

    /// Writes an N-dimensional numeric array as dataset `name` (row-major values).
    ///
    /// ```swift
    /// try file.write("x", values: pixels, shape: [n, 1, 28, 28])
    /// ```
    /// - Parameters:
    ///   - name: dataset path; missing parent groups are created.
    ///   - values: the values in row-major (C) order.
    ///   - shape: the dimensions (default: one dimension of `values.count`); `[]` is a scalar.
    ///   - overwrite: replace an existing dataset of that name (default `false`: that is an error).
    public func write<T: HDF5Numeric>(_ name: String, values: [T], shape: [Int]? = nil, overwrite: Bool = false) throws {
        try HDF5Library.locked {
            let shape = shape ?? [values.count]
            guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
                throw HDF5Error.shapeMismatch(path: file.path, object: fullPath(name),
                                              detail: "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
            }
            try prepareToCreate(name, overwrite: overwrite)
            try values.withUnsafeBytes { try createAndWrite(name, type: T.nativeType(), shape: shape, buffer: $0.baseAddress) }
        }
    }

    /// Reads numeric dataset `name`, converting stored integers or floats to `T`.
    /// - Throws: ``HDF5Error/typeMismatch(path:object:expected:found:)`` for string or compound datasets.
    public func read<T: HDF5Numeric>(_ name: String, as type: T.Type = T.self) throws -> HDF5Array<T> {
        try withDataset(name) { _, source in
            HDF5Array(shape: source.shape, values: try readNumbers(source, name, as: T.self))
        }
    }

    /// Shape, maximum shape and stored element type of dataset `name`.
    public func datasetInfo(_ name: String) throws -> HDF5DatasetInfo {
        try withDataset(name) { _, source in
            let rank = Int(H5Sget_simple_extent_ndims(source.space))
            var maxDims = [hsize_t](repeating: 0, count: max(rank, 1))
            var dims = [hsize_t](repeating: 0, count: max(rank, 1))
            if rank > 0 { H5Sget_simple_extent_dims(source.space, &dims, &maxDims) }
            let unlimited = naslab_H5S_UNLIMITED()
            return HDF5DatasetInfo(shape: source.shape,
                                   elementType: HDF5ElementType(typeIdentifier: source.type),
                                   maxShape: rank == 0 ? [] : maxDims.map { $0 == unlimited ? nil : Int($0) })
        }
    }

    // MARK: String datasets

    /// Writes strings as a variable-length UTF-8 string dataset (h5py reads it as `bytes`/`str` via `.asstr()`).
    /// - Parameters:
    ///   - shape: default one dimension of `values.count`; `[]` stores a single string as a scalar.
    public func writeStrings(_ name: String, _ values: [String], shape: [Int]? = nil, overwrite: Bool = false) throws {
        try HDF5Library.locked {
            let shape = shape ?? [values.count]
            guard shape.reduce(1, *) == values.count else {
                throw HDF5Error.shapeMismatch(path: file.path, object: fullPath(name),
                                              detail: "shape \(shape) needs \(shape.reduce(1, *)) strings, got \(values.count)")
            }
            try prepareToCreate(name, overwrite: overwrite)
            let type = variableStringType()
            defer { H5Tclose(type) }
            try withCStrings(values) { try createAndWrite(name, type: type, shape: shape, buffer: $0) }
        }
    }

    /// Writes one string as a scalar variable-length UTF-8 dataset.
    public func writeString(_ name: String, _ value: String, overwrite: Bool = false) throws {
        try writeStrings(name, [value], shape: [], overwrite: overwrite)
    }

    /// Reads a string dataset (variable- or fixed-length, any shape) as a flat array of strings.
    public func readStrings(_ name: String) throws -> [String] {
        try withDataset(name) { _, source in try readStrings(source, name) }
    }

    /// Reads a string dataset holding exactly one string.
    public func readString(_ name: String) throws -> String {
        let strings = try readStrings(name)
        guard strings.count == 1 else {
            throw HDF5Error.shapeMismatch(path: file.path, object: fullPath(name), detail: "expected one string, found \(strings.count)")
        }
        return strings[0]
    }
}
