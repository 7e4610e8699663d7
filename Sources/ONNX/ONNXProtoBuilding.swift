import Foundation

/// Small constructors for the generated ONNX messages (`onnx.pb.swift`).
enum ONNXProto {
    static func attribute(_ name: String, int value: Int) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = Int64(value)
        return a
    }

    static func attribute(_ name: String, ints values: [Int]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = values.map(Int64.init)
        return a
    }

    static func attribute(_ name: String, float value: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = value
        return a
    }

    static func attribute(_ name: String, string value: String) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .string
        a.s = Data(value.utf8)
        return a
    }

    static func attribute(_ name: String, tensor value: Onnx_TensorProto) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .tensor
        a.t = value
        return a
    }

    /// A float32 tensor stored as little-endian `raw_data`.
    static func floatTensor(_ name: String, shape: [Int], values: [Float]) -> Onnx_TensorProto {
        precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) does not hold \(values.count) values")
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = shape.map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue)
        var raw = Data(count: values.count * 4)
        raw.withUnsafeMutableBytes { bytes in
            for (i, v) in values.enumerated() { bytes.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self) }
        }
        t.rawData = raw
        return t
    }

    /// An int64 tensor stored as little-endian `raw_data`.
    static func int64Tensor(_ name: String, shape: [Int], values: [Int64]) -> Onnx_TensorProto {
        precondition(shape.reduce(1, *) == values.count, "tensor \(name): shape \(shape) does not hold \(values.count) values")
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = shape.map(Int64.init)
        t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue)
        var raw = Data(count: values.count * 8)
        raw.withUnsafeMutableBytes { bytes in
            for (i, v) in values.enumerated() { bytes.storeBytes(of: v.littleEndian, toByteOffset: i * 8, as: Int64.self) }
        }
        t.rawData = raw
        return t
    }

    /// A graph input or output: `elementType` with dimensions that are sizes or symbolic names.
    static func valueInfo(_ name: String, elementType: Onnx_TensorProto.DataType, dimensions: [ONNXDimension],
                          doc: String? = nil) -> Onnx_ValueInfoProto {
        var tensor = Onnx_TypeProto.Tensor()
        tensor.elemType = Int32(elementType.rawValue)
        var shape = Onnx_TensorShapeProto()
        shape.dim = dimensions.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            switch d {
            case let .size(n): dim.dimValue = Int64(n)
            case let .symbol(s): dim.dimParam = s
            }
            return dim
        }
        tensor.shape = shape
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        var info = Onnx_ValueInfoProto()
        info.name = name
        info.type = type
        if let doc { info.docString = doc }
        return info
    }

    static func entry(_ key: String, _ value: String) -> Onnx_StringStringEntryProto {
        var e = Onnx_StringStringEntryProto()
        e.key = key
        e.value = value
        return e
    }
}

/// One dimension of a graph input or output.
enum ONNXDimension {
    case size(Int)
    case symbol(String)
}
