/// A named tensor owned by a network: a trainable parameter (with a gradient) or a buffer
/// such as batch norm's running statistics (no gradient).
///
/// Names follow PyTorch's state-dict style: `"\(node.name)/weight"`, `"/bias"`,
/// `"/running_mean"`, `"/running_var"`.
public final class Parameter {
    public let name: String
    /// Shape in PyTorch order (conv: `[out, in/groups, k, k]`, linear: `[out, in]`, vectors: `[n]`).
    public let shape: [Int]
    /// Whether this is a trainable parameter (`false` for buffers).
    public let isTrainable: Bool
    let storage: FloatBuffer
    let gradientStorage: FloatBuffer

    init(name: String, shape: [Int], trainable: Bool) {
        self.name = name
        self.shape = shape
        self.isTrainable = trainable
        let n = shape.reduce(1, *)
        storage = FloatBuffer(count: n)
        gradientStorage = FloatBuffer(count: trainable ? n : 0)
    }

    /// Number of elements.
    public var count: Int { storage.count }

    /// The current values (a copy); setting copies them in (count must match).
    public var values: [Float] {
        get { storage.array }
        set { storage.copy(from: newValue) }
    }

    /// The gradient of the last backward pass (a copy; empty for buffers).
    public var gradient: [Float] { gradientStorage.array }

    var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    var gradientPointer: UnsafeMutablePointer<Float> { gradientStorage.pointer }
}

/// Weight initialisation schemes for conv and linear weights (biases follow PyTorch:
/// uniform(±1/√fan_in), or zeros for the He/Xavier schemes; batch norm: weight 1, bias 0).
///
/// References:
/// - K. He et al., "Delving Deep into Rectifiers", ICCV 2015 (He/Kaiming init).
/// - X. Glorot, Y. Bengio, "Understanding the difficulty of training deep feedforward neural
///   networks", AISTATS 2010 (Xavier init).
public enum WeightInitializer: String, Sendable, Codable, CaseIterable {
    /// PyTorch's default for `Conv2d`/`Linear`: kaiming_uniform(a=√5), i.e. uniform(±1/√fan_in).
    case pytorchDefault
    /// He normal, fan-in mode, ReLU gain: N(0, 2/fan_in).
    case heNormal
    /// He uniform, fan-in mode, ReLU gain: uniform(±√(6/fan_in)).
    case heUniform
    /// Xavier/Glorot normal: N(0, 2/(fan_in+fan_out)).
    case xavierNormal
    /// Xavier/Glorot uniform: uniform(±√(6/(fan_in+fan_out))).
    case xavierUniform
    /// All zeros (for tests).
    case zeros
    /// All ones (for tests).
    case ones

    /// Fills `weight` (fan-in/fan-out as PyTorch computes them) and `bias`.
    func initialize(weight: Parameter, bias: Parameter?, fanIn: Int, fanOut: Int, rng: inout SeededGenerator) {
        let w = weight.storage.buffer
        func uniform(_ bound: Double) { for i in w.indices { w[i] = Float((rng.nextUnitDouble() * 2 - 1) * bound) } }
        func normal(_ std: Double) { for i in w.indices { w[i] = Float(rng.nextNormal() * std) } }
        switch self {
        case .pytorchDefault: uniform(1.0 / Double(fanIn).squareRoot())
        case .heNormal: normal((2.0 / Double(fanIn)).squareRoot())
        case .heUniform: uniform((6.0 / Double(fanIn)).squareRoot())
        case .xavierNormal: normal((2.0 / Double(fanIn + fanOut)).squareRoot())
        case .xavierUniform: uniform((6.0 / Double(fanIn + fanOut)).squareRoot())
        case .zeros: weight.storage.zero()
        case .ones: w.update(repeating: 1)
        }
        if let bias {
            let b = bias.storage.buffer
            switch self {
            case .pytorchDefault:
                let bound = 1.0 / Double(fanIn).squareRoot()
                for i in b.indices { b[i] = Float((rng.nextUnitDouble() * 2 - 1) * bound) }
            case .ones: b.update(repeating: 1)
            default: bias.storage.zero()
            }
        }
    }
}

import NASCore
