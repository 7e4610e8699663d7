import CBLAS
import Dispatch
import NASCore

/// Element-wise non-linearities.
public enum ActivationKind: String, Hashable, Codable, Sendable, CaseIterable {
    case relu
    case relu6
    case hardSwish = "hardswish"
    case sigmoid
    /// The exact GELU, `0.5·x·(1 + erf(x/√2))` (PyTorch's default `approximate='none'`).
    case gelu
}

/// An element-wise non-linearity. Costs: no parameters; NB201 FLOPs 1 per element.
public struct Activation: GraphOp, Hashable {
    public static let kind = "activation"
    public var function: ActivationKind

    public init(_ function: ActivationKind) { self.function = function }

    public init(attributes a: OpAttributeReader) throws {
        let name = try a.string("function")
        guard let f = ActivationKind(rawValue: name) else {
            throw NetworkGraphError.invalidAttributes(kind: Self.kind, message: "unknown function '\(name)'")
        }
        self.init(f)
    }

    public var attributes: OpAttributeList { [("function", .string(function.rawValue))] }

    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try Self.single(inputs) }

    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost {
        OpCost(nasBench201Flops: output.elementCount)
    }

    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(ActivationLayer(kind: function))
    }
}

extension GraphOp where Self == Activation {
    public static func activation(_ function: ActivationKind) -> Activation { Activation(function) }
}

// MARK: - Engine layer

// MARK: - Activations

final class ActivationLayer: Layer {
    let kind: ActivationKind
    init(kind: ActivationKind) { self.kind = kind }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let x = inputs[0].pointer, y = output.pointer
        let n = output.count
        let kind = self.kind
        parallelChunks(n, minimumPerChunk: 4096, work: n * 4) { r in kind.apply(x, y, r) }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let dxBuffer = inputGradients[0] else { return }
        let x = inputs[0].pointer, y = output.pointer, dy = outputGradient.pointer, dx = dxBuffer.pointer
        let n = output.count
        let acc = accumulate[0]
        let kind = self.kind
        parallelChunks(n, minimumPerChunk: 4096, work: n * 4) { r in
            @inline(__always) func put(_ i: Int, _ v: Float) { if acc { dx[i] += v } else { dx[i] = v } }
            switch kind {
            case .relu:
                maskedCopy(x: x, dy: dy, dx: dx, range: r, lower: 0, upper: .infinity, accumulate: acc)
            case .relu6:
                maskedCopy(x: x, dy: dy, dx: dx, range: r, lower: 0, upper: 6, accumulate: acc)
            case .hardSwish:
                // PyTorch: 0 for x < -3, x/3 + 1/2 for -3 ≤ x ≤ 3, 1 above.
                for i in r {
                    let v = x[i]
                    let d: Float = v < -3 ? 0 : (v <= 3 ? v / 3 + 0.5 : 1)
                    put(i, d * dy[i])
                }
            case .sigmoid:
                for i in r { put(i, dy[i] * y[i] * (1 - y[i])) }
            case .gelu:
                // d/dx x·Φ(x) = Φ(x) + x·φ(x).
                for i in r {
                    let v = x[i]
                    let cdf = 0.5 * (1 + erff(v * geluInverseSqrt2))
                    put(i, dy[i] * (cdf + v * expf(-0.5 * v * v) * geluInverseSqrt2Pi))
                }
            }
        }
    }
}

extension ActivationKind {
    /// `y[i] = f(x[i])` for `i` in `range` (`x` and `y` may be the same buffer): the one forward
    /// definition of every activation, used by the activation layer and by fused convolutions.
    @inline(__always)
    func apply(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ range: Range<Int>) {
        switch self {
        case .relu: for i in range { y[i] = max(x[i], 0) }
        case .relu6: for i in range { y[i] = min(max(x[i], 0), 6) }
        case .hardSwish: for i in range { let v = x[i]; y[i] = v * min(max(v + 3, 0), 6) * (1.0 / 6.0) }
        case .sigmoid: for i in range { y[i] = 1 / (1 + expf(-x[i])) }
        case .gelu: for i in range { let v = x[i]; y[i] = 0.5 * v * (1 + erff(v * geluInverseSqrt2)) }
        }
    }
}

/// 1/√2 and 1/√(2π) for GELU.
private let geluInverseSqrt2: Float = 0.70710678118654752
private let geluInverseSqrt2Pi: Float = 0.39894228040143268

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
