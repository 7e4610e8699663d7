import CHDF5
import Foundation

/// Collects names in HDF5 iteration callbacks.
final class NameCollector { var list: [String] = [] }

/// The element type of a dataset or attribute as stored in the file.
public enum HDF5ElementType: Equatable, Sendable, CustomStringConvertible {
    case integer(bytes: Int, signed: Bool)
    case float(bytes: Int)
    case string(variableLength: Bool)
    case compound
    case other(String)

    public var isNumeric: Bool {
        switch self {
        case .integer, .float: return true
        default: return false
        }
    }

    public var description: String {
        switch self {
        case let .integer(bytes, signed): return (signed ? "int" : "uint") + "\(bytes * 8)"
        case let .float(bytes): return "float\(bytes * 8)"
        case let .string(variable): return variable ? "string (variable-length)" : "string (fixed-length)"
        case .compound: return "compound"
        case let .other(name): return name
        }
    }

    init(typeIdentifier type: hid_t) {
        let size = H5Tget_size(type)
        switch H5Tget_class(type) {
        case H5T_INTEGER: self = .integer(bytes: size, signed: H5Tget_sign(type) != H5T_SGN_NONE)
        case H5T_FLOAT: self = .float(bytes: size)
        case H5T_STRING: self = .string(variableLength: H5Tis_variable_str(type) > 0)
        case H5T_COMPOUND: self = .compound
        case H5T_ENUM: self = .other("enum")
        case H5T_ARRAY: self = .other("array")
        case H5T_VLEN: self = .other("variable-length sequence")
        case H5T_OPAQUE: self = .other("opaque")
        case H5T_REFERENCE: self = .other("reference")
        case H5T_BITFIELD: self = .other("bitfield")
        default: self = .other("unknown type")
        }
    }
}

/// A number type HDF5Kit can write and read: `Float`, `Double`, `Int32`, `Int64`, `UInt8`, `UInt64`.
///
/// Reading converts any stored integer or floating-point type to the requested one (HDF5's own
/// conversion: out-of-range values are clamped); strings or compounds are a ``HDF5Error/typeMismatch(path:object:expected:found:)``.
public protocol HDF5Numeric: Numeric, Sendable {
    /// The HDF5 native type identifier for this Swift type.
    static func nativeType() -> hid_t
    /// How the type is stored.
    static var elementType: HDF5ElementType { get }
}

extension Float: HDF5Numeric {
    public static func nativeType() -> hid_t { naslab_H5T_NATIVE_FLOAT() }
    public static var elementType: HDF5ElementType { .float(bytes: 4) }
}
extension Double: HDF5Numeric {
    public static func nativeType() -> hid_t { naslab_H5T_NATIVE_DOUBLE() }
    public static var elementType: HDF5ElementType { .float(bytes: 8) }
}
extension Int32: HDF5Numeric {
    public static func nativeType() -> hid_t { naslab_H5T_NATIVE_INT32() }
    public static var elementType: HDF5ElementType { .integer(bytes: 4, signed: true) }
}
extension Int64: HDF5Numeric {
    public static func nativeType() -> hid_t { naslab_H5T_NATIVE_INT64() }
    public static var elementType: HDF5ElementType { .integer(bytes: 8, signed: true) }
}
extension UInt64: HDF5Numeric {
    public static func nativeType() -> hid_t { naslab_H5T_NATIVE_UINT64() }
    public static var elementType: HDF5ElementType { .integer(bytes: 8, signed: false) }
}
extension UInt8: HDF5Numeric {
    public static func nativeType() -> hid_t { naslab_H5T_NATIVE_UINT8() }
    public static var elementType: HDF5ElementType { .integer(bytes: 1, signed: false) }
}

/// An N-dimensional array read from or written to a dataset: row-major (C order) values and a shape.
public struct HDF5Array<Element: HDF5Numeric>: Sendable, Equatable where Element: Equatable {
    public var shape: [Int]
    public var values: [Element]

    public init(shape: [Int], values: [Element]) {
        self.shape = shape
        self.values = values
    }
}

/// Shape and element type of a dataset, without reading its values.
public struct HDF5DatasetInfo: Sendable, Equatable {
    public var shape: [Int]
    public var elementType: HDF5ElementType
    /// For extendable datasets, the maximum shape (`nil` entries are unlimited).
    public var maxShape: [Int?]
    public var elementCount: Int { shape.reduce(1, *) }
}

/// The readable side of a dataset or an attribute, so that one reader serves both.
struct HDF5Readable {
    let type: hid_t
    let space: hid_t
    let read: (_ memoryType: hid_t, _ buffer: UnsafeMutableRawPointer) -> herr_t

    var shape: [Int] {
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank > 0 else { return [] }
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims.map { Int($0) }
    }

    var elementCount: Int { Int(H5Sget_simple_extent_npoints(space)) }
}

extension HDF5Location {
    func readNumbers<T: HDF5Numeric>(_ source: HDF5Readable, _ name: String, as: T.Type) throws -> [T] {
        let stored = HDF5ElementType(typeIdentifier: source.type)
        guard stored.isNumeric else {
            throw HDF5Error.typeMismatch(path: file.path, object: fullPath(name),
                                         expected: "a number (\(T.elementType))", found: stored.description)
        }
        var values = [T](repeating: 0, count: source.elementCount)
        if values.isEmpty { return values }
        let status = values.withUnsafeMutableBytes { source.read(T.nativeType(), $0.baseAddress!) }
        if status < 0 { throw failure("read", name) }
        return values
    }

    func readStrings(_ source: HDF5Readable, _ name: String) throws -> [String] {
        let stored = HDF5ElementType(typeIdentifier: source.type)
        guard case let .string(variable) = stored else {
            throw HDF5Error.typeMismatch(path: file.path, object: fullPath(name), expected: "string", found: stored.description)
        }
        let count = source.elementCount
        if count == 0 { return [] }
        let memoryType = H5Tcopy(naslab_H5T_C_S1())
        defer { H5Tclose(memoryType) }
        H5Tset_cset(memoryType, H5Tget_cset(source.type))
        if variable {
            H5Tset_size(memoryType, naslab_H5T_VARIABLE())
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBytes { source.read(memoryType, $0.baseAddress!) }
            if status < 0 { throw failure("read", name) }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            let space = H5Screate_simple(1, [hsize_t(count)], nil)
            pointers.withUnsafeMutableBytes { _ = H5Dvlen_reclaim(memoryType, space, defaultProperties, $0.baseAddress!) }
            H5Sclose(space)
            return strings
        } else {
            let width = H5Tget_size(source.type)
            H5Tset_size(memoryType, width)
            H5Tset_strpad(memoryType, H5T_STR_NULLPAD)
            var bytes = [UInt8](repeating: 0, count: width * count)
            let status = bytes.withUnsafeMutableBytes { source.read(memoryType, $0.baseAddress!) }
            if status < 0 { throw failure("read", name) }
            return (0..<count).map { i in
                let slice = bytes[i * width ..< (i + 1) * width]
                let end = slice.firstIndex(of: 0) ?? slice.endIndex
                return String(decoding: slice[slice.startIndex ..< end], as: UTF8.self)
            }
        }
    }

    /// A dataspace for `shape` (`[]` is a scalar). Caller closes it.
    func makeSpace(_ shape: [Int], maxShape: [hsize_t]? = nil) -> hid_t {
        if shape.isEmpty { return H5Screate(H5S_SCALAR) }
        let dims = shape.map { hsize_t($0) }
        if var maxShape { return H5Screate_simple(Int32(dims.count), dims, &maxShape) }
        return H5Screate_simple(Int32(dims.count), dims, nil)
    }

    /// A variable-length UTF-8 string type. Caller closes it.
    func variableStringType() -> hid_t {
        let type = H5Tcopy(naslab_H5T_C_S1())
        H5Tset_size(type, naslab_H5T_VARIABLE())
        H5Tset_cset(type, H5T_CSET_UTF8)
        return type
    }

    /// Runs `body` with C strings for `values` (valid only inside `body`).
    func withCStrings<R>(_ values: [String], _ body: (UnsafeMutableRawPointer?) throws -> R) rethrows -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = values.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        return try pointers.withUnsafeMutableBytes { try body($0.baseAddress) }
    }
}
