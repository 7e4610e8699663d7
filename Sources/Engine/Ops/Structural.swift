import CBLAS
import Dispatch
import NASCore

/// The network input (exactly one, node 0); it has no layer of its own.
public struct Input: AttributeFreeOp, Hashable {
    public static let kind = "input"
    public init() {}
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        throw OpShapeError("the input must be node 0", arity: true)
    }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? { nil }
}

/// Element-wise sum of two or more inputs of equal shape (free under every convention).
public struct Add: AttributeFreeOp, Hashable {
    public static let kind = "add"
    public init() {}
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        guard inputs.count >= 2 else { throw OpShapeError("add needs at least 2 inputs", arity: true) }
        guard inputs.allSatisfy({ $0 == inputs[0] }) else {
            throw OpShapeError("add inputs differ in shape: \(inputs.map(\.description).joined(separator: ", "))")
        }
        return inputs[0]
    }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? { LayerHandle(AddLayer()) }
}

/// Concatenation of the inputs along channels.
public struct Concat: AttributeFreeOp, Hashable {
    public static let kind = "concat"
    public init() {}
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        guard inputs.count >= 1 else { throw OpShapeError("concat needs inputs", arity: true) }
        guard inputs.allSatisfy({ $0.height == inputs[0].height && $0.width == inputs[0].width }) else {
            throw OpShapeError("concat inputs differ in spatial size")
        }
        return FeatureShape(channels: inputs.reduce(0) { $0 + $1.channels }, height: inputs[0].height, width: inputs[0].width)
    }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(ConcatLayer(inShapes: context.inputShapes))
    }
}

/// Inverted dropout with drop probability `rate` (identity in evaluation mode, so the latency
/// key leaves the rate out).
public struct Dropout: GraphOp, Hashable {
    public static let kind = "dropout"
    public var rate: Double
    public init(rate: Double) { self.rate = rate }
    public init(attributes a: OpAttributeReader) throws { self.init(rate: try a.double("rate")) }
    public var attributes: OpAttributeList { [("rate", .double(rate))] }
    public var latencyAttributes: OpAttributeList { [] }
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        guard rate >= 0, rate < 1 else { throw OpShapeError("dropout rate \(rate) outside [0, 1)") }
        return try Self.single(inputs)
    }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? { LayerHandle(DropoutLayer(rate: rate)) }
}

/// C×H×W → (C·H·W)×1×1.
public struct Flatten: AttributeFreeOp, Hashable {
    public static let kind = "flatten"
    public init() {}
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { FeatureShape(features: try Self.single(inputs).elementCount) }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? {
        LayerHandle(FlattenLayer(inShape: context.inputShapes[0]))
    }
}

/// Zeros shaped like the input, subsampled by `stride` (NAS-Bench-201's `none`).
public struct Zero: GraphOp, Hashable {
    public static let kind = "zero"
    public var stride: Int
    public init(stride: Int) { self.stride = stride }
    public init(attributes a: OpAttributeReader) throws { self.init(stride: try a.int("stride")) }
    public var attributes: OpAttributeList { [("stride", .int(stride))] }
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape {
        let x = try Self.single(inputs)
        guard stride >= 1 else { throw OpShapeError("zero stride must be ≥ 1") }
        return FeatureShape(channels: x.channels, height: (x.height - 1) / stride + 1, width: (x.width - 1) / stride + 1)
    }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? { LayerHandle(ZeroLayer()) }
}

/// The input unchanged.
public struct Identity: AttributeFreeOp, Hashable {
    public static let kind = "identity"
    public init() {}
    public func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try Self.single(inputs) }
    public func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
    public func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? { LayerHandle(IdentityLayer()) }
}

extension GraphOp where Self == Add { public static var add: Add { Add() } }
extension GraphOp where Self == Concat { public static var concat: Concat { Concat() } }
extension GraphOp where Self == Dropout { public static func dropout(rate: Double) -> Dropout { Dropout(rate: rate) } }
extension GraphOp where Self == Flatten { public static var flatten: Flatten { Flatten() } }
extension GraphOp where Self == Zero { public static func zero(stride: Int) -> Zero { Zero(stride: stride) } }
extension GraphOp where Self == Identity { public static var identity: Identity { Identity() } }
extension GraphOp where Self == Input { public static var input: Input { Input() } }

// MARK: - Engine layer

// MARK: - Structural ops

final class AddLayer: Layer {
    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let n = output.count, y = output.pointer
        y.update(from: inputs[0].pointer, count: n)
        for k in 1..<inputs.count {
            let x = inputs[k].pointer
            for i in 0..<n { y[i] += x[i] }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        for (k, g) in inputGradients.enumerated() {
            guard let g else { continue }
            storeOrAdd(outputGradient.pointer, g.pointer, count: output.count, accumulate: accumulate[k])
        }
    }
}

/// Channel concatenation: in CNHW each input is one contiguous block of the output.
final class ConcatLayer: Layer {
    let inShapes: [FeatureShape]
    init(inShapes: [FeatureShape]) { self.inShapes = inShapes }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        var offset = 0
        for x in inputs {
            (output.pointer + offset).update(from: x.pointer, count: x.count)
            offset += x.count
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        var offset = 0
        for (k, x) in inputs.enumerated() {
            if let g = inputGradients[k] {
                storeOrAdd(outputGradient.pointer + offset, g.pointer, count: x.count, accumulate: accumulate[k])
            }
            offset += x.count
        }
    }
}

final class IdentityLayer: Layer {
    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        output.pointer.update(from: inputs[0].pointer, count: output.count)
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        if let g = inputGradients[0] {
            storeOrAdd(outputGradient.pointer, g.pointer, count: output.count, accumulate: accumulate[0])
        }
    }
}

final class ZeroLayer: Layer {
    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        output.zero()
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        if let g = inputGradients[0], !accumulate[0] { g.zero() }
    }
}

/// Inverted dropout: kept values are scaled by 1/(1−rate) in training; identity in evaluation.
final class DropoutLayer: Layer {
    let rate: Double
    private let mask = FloatBuffer(count: 0)
    private var lastTraining = false

    init(rate: Double) { self.rate = rate }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let n = output.count
        let x = inputs[0].pointer, y = output.pointer
        lastTraining = training && rate > 0
        guard lastTraining else { y.update(from: x, count: n); return }
        mask.resize(n)
        let keep = Float(1 / (1 - rate))
        let mp = mask.pointer
        let rate = self.rate
        for i in 0..<n { mp[i] = context.generator.nextUnitDouble() < rate ? 0 : keep }
        for i in 0..<n { y[i] = x[i] * mp[i] }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let g = inputGradients[0] else { return }
        let n = output.count, dx = g.pointer, dy = outputGradient.pointer
        if !lastTraining { storeOrAdd(dy, dx, count: n, accumulate: accumulate[0]); return }
        let mp = mask.pointer
        if accumulate[0] { for i in 0..<n { dx[i] += dy[i] * mp[i] } } else { for i in 0..<n { dx[i] = dy[i] * mp[i] } }
    }
}

/// C×H×W → (C·H·W)×1×1 with PyTorch's per-sample (c, h, w) feature order.
final class FlattenLayer: Layer {
    let inShape: FeatureShape
    init(inShape: FeatureShape) { self.inShape = inShape }

    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext) {
        let hw = inShape.height * inShape.width
        let x = inputs[0].pointer, y = output.pointer
        for c in 0..<inShape.channels {
            for n in 0..<batch {
                let xp = x + (c * batch + n) * hw
                for s in 0..<hw { y[(c * hw + s) * batch + n] = xp[s] }
            }
        }
    }

    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext) {
        guard let g = inputGradients[0] else { return }
        let hw = inShape.height * inShape.width
        let dx = g.pointer, dy = outputGradient.pointer
        let acc = accumulate[0]
        for c in 0..<inShape.channels {
            for n in 0..<batch {
                let dxp = dx + (c * batch + n) * hw
                for s in 0..<hw {
                    let v = dy[(c * hw + s) * batch + n]
                    if acc { dxp[s] += v } else { dxp[s] = v }
                }
            }
        }
    }
}
