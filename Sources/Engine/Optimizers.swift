/// Updates parameters from their gradients.
public protocol Optimizer: AnyObject {
    /// The learning rate of the next `update` (the trainer sets it from the schedule each step).
    var learningRate: Float { get set }
    /// Applies one step to every trainable parameter using its current gradient.
    func update(_ parameters: [Parameter])
}

/// A base for optimizers with per-parameter state, in the style of mlx-swift: subclasses
/// override exactly `newState(for:)` and `applySingle(values:gradient:state:)`.
open class OptimizerBase<State>: Optimizer {
    public var learningRate: Float
    /// Number of completed `update` calls.
    public private(set) var stepCount = 0
    private var states = [ObjectIdentifier: State]()

    public init(learningRate: Float) { self.learningRate = learningRate }

    /// The initial state of a parameter (called on its first update).
    open func newState(for parameter: Parameter) -> State { fatalError("subclass must override newState(for:)") }

    /// Updates `values` in place from `gradient`.
    open func applySingle(values: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, state: inout State) {
        fatalError("subclass must override applySingle")
    }

    public func update(_ parameters: [Parameter]) {
        stepCount += 1
        for p in parameters where p.isTrainable {
            let key = ObjectIdentifier(p)
            var state = states.removeValue(forKey: key) ?? newState(for: p)
            applySingle(values: p.storage.buffer, gradient: UnsafeBufferPointer(p.gradientStorage.buffer), state: &state)
            states[key] = state
        }
    }
}

/// Stochastic gradient descent with momentum, Nesterov momentum and (coupled, L2) weight decay,
/// exactly as PyTorch's `torch.optim.SGD` (dampening 0):
/// g ← ∇ + λw; b ← μb + g (b₁ = g); g ← g + μb (Nesterov) or b; w ← w − ηg.
///
/// References:
/// - I. Sutskever et al., "On the importance of initialization and momentum in deep learning", ICML 2013.
public final class SGD: OptimizerBase<[Float]> {
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float

    /// - Parameters: learningRate η; momentum μ (default 0); nesterov (default false); weightDecay λ (default 0).
    public init(learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        super.init(learningRate: learningRate)
    }

    public override func newState(for parameter: Parameter) -> [Float] { [] }

    public override func applySingle(values: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, state: inout [Float]) {
        let lr = learningRate, wd = weightDecay, mu = momentum
        let n = values.count
        if mu == 0 {
            for i in 0..<n { values[i] -= lr * (gradient[i] + wd * values[i]) }
            return
        }
        let first = state.isEmpty
        if first { state = [Float](repeating: 0, count: n) }
        let nesterov = self.nesterov
        state.withUnsafeMutableBufferPointer { b in
            for i in 0..<n {
                let g = gradient[i] + wd * values[i]
                let buf = first ? g : mu * b[i] + g
                b[i] = buf
                values[i] -= lr * (nesterov ? g + mu * buf : buf)
            }
        }
    }
}

/// Adam with decoupled weight decay, as PyTorch's `torch.optim.AdamW`:
/// w ← w(1 − ηλ); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// w ← w − (η/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε).
///
/// References:
/// - I. Loshchilov, F. Hutter, "Decoupled Weight Decay Regularization", ICLR 2019.
/// - D. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015.
public final class AdamW: OptimizerBase<AdamW.Moments> {
    public struct Moments {
        var first: [Float]
        var second: [Float]
    }

    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float

    /// Defaults as PyTorch: betas (0.9, 0.999), eps 1e-8, weightDecay 0.01.
    public init(learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        super.init(learningRate: learningRate)
    }

    public override func newState(for parameter: Parameter) -> Moments {
        Moments(first: [Float](repeating: 0, count: parameter.count), second: [Float](repeating: 0, count: parameter.count))
    }

    public override func applySingle(values: UnsafeMutableBufferPointer<Float>, gradient: UnsafeBufferPointer<Float>, state: inout Moments) {
        let t = Double(stepCount)
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon
        let decay = 1 - lr * weightDecay
        let stepSize = Float(Double(lr) / (1 - pow(Double(b1), t)))
        let correction2 = Float((1 - pow(Double(b2), t)).squareRoot())
        let n = values.count
        state.first.withUnsafeMutableBufferPointer { m in
            state.second.withUnsafeMutableBufferPointer { v in
                for i in 0..<n {
                    let g = gradient[i]
                    values[i] *= decay
                    m[i] = b1 * m[i] + (1 - b1) * g
                    v[i] = b2 * v[i] + (1 - b2) * g * g
                    values[i] -= stepSize * m[i] / (v[i].squareRoot() / correction2 + eps)
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
