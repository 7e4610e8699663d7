import CHDF5

/// A named Float tensor as stored in a weights file: `stem/conv/weight`, its shape, row-major values.
public typealias NamedTensor = (name: String, shape: [Int], values: [Float])

extension HDF5Location {
    /// Writes named Float tensors, one float32 dataset per tensor, below this location.
    ///
    /// A name's `/`-separated parts become nested groups: `stem/conv/weight` is stored as the
    /// dataset `weight` in group `stem/conv` (h5py: `f["weights/stem/conv/weight"]`). The given
    /// order is kept in the string-array attribute `tensor_order` of this location.
    ///
    /// ```swift
    /// try file.requireGroup("weights").writeTensors([("stem/conv/weight", [8, 1, 3, 3], w)])
    /// ```
    /// - Parameters:
    ///   - tensors: names (non-empty, no empty, `.` or `..` path parts, unique), shapes and values.
    ///   - overwrite: replace existing datasets of the same names (default `false`: an error).
    public func writeTensors(_ tensors: [NamedTensor], overwrite: Bool = false) throws {
        try HDF5Library.locked {
            let names = tensors.map(\.name)
            guard Set(names).count == names.count else {
                throw HDF5Error.invalidArgument(path: file.path, object: objectPath, detail: "duplicate tensor names")
            }
            for tensor in tensors {
                try write(tensor.name, values: tensor.values, shape: tensor.shape, overwrite: overwrite)
            }
            try setAttribute("tensor_order", names)
        }
    }

    /// Reads every dataset below this location (recursively) as a named Float tensor.
    ///
    /// Names are paths relative to this location (`stem/conv/weight`). The order is the one
    /// recorded by ``writeTensors(_:overwrite:)`` when present and complete, otherwise sorted by name.
    public func readTensors() throws -> [NamedTensor] {
        try HDF5Library.locked {
            var found = [NamedTensor]()
            func visit(_ prefix: String) throws {
                let children: [String]
                if prefix.isEmpty {
                    children = try self.children()
                } else {
                    children = try openGroup(prefix).children()
                }
                for child in children {
                    let path = prefix.isEmpty ? child : prefix + "/" + child
                    switch try kind(of: path) {
                    case .group: try visit(path)
                    case .dataset:
                        let array: HDF5Array<Float> = try read(path)
                        found.append((name: path, shape: array.shape, values: array.values))
                    case .other: continue
                    }
                }
            }
            try visit("")
            found.sort { $0.name < $1.name }
            if hasAttribute("tensor_order"), let order = try? stringsAttribute("tensor_order"),
               order.count == found.count, Set(order) == Set(found.map(\.name)) {
                let byName = Dictionary(uniqueKeysWithValues: found.map { ($0.name, $0) })
                return order.map { byName[$0]! }
            }
            return found
        }
    }
}
