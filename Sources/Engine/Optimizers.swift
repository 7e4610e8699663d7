/// Updates parameters from their gradients.
public protocol Optimizer: AnyObject {
    /// The learning rate of the next `update` (the trainer sets it from the schedule each step).
    var learningRate: Float { get set }
    /// Applies one step to every trainable parameter using its current gradient.
    func update(_ parameters: [Parameter])
    /// The optimizer's state for `parameters` (step count and per-parameter buffers), for a
    /// training checkpoint.
    ///
    /// - Throws: `EngineError.invalidConfiguration` if the optimizer cannot export its state.
    func exportState(for parameters: [Parameter]) throws -> OptimizerState
    /// Replaces the optimizer's state with `state`, exported for the same `parameters` (same
    /// order and sizes), so that the next `update` continues bit-identically.
    ///
    /// - Throws: `EngineError.invalidResumeState` if `state` does not fit `parameters`; nothing is
    ///   changed then.
    func importState(_ state: OptimizerState, for parameters: [Parameter]) throws
}

extension Optimizer {
    public func exportState(for parameters: [Parameter]) throws -> OptimizerState {
        throw EngineError.invalidConfiguration("\(type(of: self)) cannot export its state for a checkpoint")
    }

    public func importState(_ state: OptimizerState, for parameters: [Parameter]) throws {
        throw EngineError.invalidConfiguration("\(type(of: self)) cannot import a checkpoint's state")
    }
}

/// An optimizer's state as plain values (see `Optimizer.exportState(for:)`).
public struct OptimizerState: Equatable, Codable, Sendable {
    /// Completed `update` calls (AdamW's bias correction depends on it).
    public var stepCount: Int
    /// The names of the parameters the state was exported for, in order.
    public var parameterNames: [String]
    /// One entry per parameter of `parameterNames`: `nil` when the parameter has no state yet (it
    /// was never updated), otherwise its state as flat arrays of the parameter's element count,
    /// called slots (SGD: the momentum buffer, or no slot without momentum; AdamW: the first and
    /// second moments).
    public var parameterStates: [[[Float]]?]

    public init(stepCount: Int, parameterNames: [String], parameterStates: [[[Float]]?]) {
        self.stepCount = stepCount
        self.parameterNames = parameterNames
        self.parameterStates = parameterStates
    }
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

    /// A parameter's state as flat slot arrays, each of the parameter's element count (for
    /// checkpoints; the default cannot, so such optimizers cannot export their state).
    open func encodeState(_ state: State) throws -> [[Float]] {
        throw EngineError.invalidConfiguration("\(type(of: self)) cannot export its state for a checkpoint")
    }

    /// The inverse of `encodeState(_:)`; throws `EngineError.invalidResumeState` for slots that
    /// do not fit `parameter`.
    open func decodeState(_ slots: [[Float]], for parameter: Parameter) throws -> State {
        throw EngineError.invalidConfiguration("\(type(of: self)) cannot import a checkpoint's state")
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

    /// The step count and, per parameter of `parameters` (in that order), its encoded state or
    /// `nil` when it has none yet.
    public func exportState(for parameters: [Parameter]) throws -> OptimizerState {
        OptimizerState(stepCount: stepCount, parameterNames: parameters.map(\.name), parameterStates: try parameters.map { p in
            try states[ObjectIdentifier(p)].map { try encodeState($0) }
        })
    }

    /// Restores the step count and the per-parameter state of `parameters` (in that order);
    /// state of other parameters is dropped. Validates everything before changing anything.
    public func importState(_ state: OptimizerState, for parameters: [Parameter]) throws {
        guard state.stepCount >= 0 else {
            throw EngineError.invalidResumeState("optimizer step count \(state.stepCount) is negative")
        }
        guard state.parameterStates.count == parameters.count, state.parameterNames == parameters.map(\.name) else {
            throw EngineError.invalidResumeState("optimizer state for \(state.parameterStates.count) parameters "
                + "(\(state.parameterNames.prefix(3).joined(separator: ", "))…), not for these \(parameters.count) "
                + "(\(parameters.prefix(3).map(\.name).joined(separator: ", "))…)")
        }
        var restored = [ObjectIdentifier: State]()
        for (p, slots) in zip(parameters, state.parameterStates) {
            guard let slots else { continue }
            if let bad = slots.firstIndex(where: { $0.count != p.count }) {
                throw EngineError.invalidResumeState("optimizer state slot \(bad) of '\(p.name)' has \(slots[bad].count) values, "
                    + "the parameter has \(p.count)")
            }
            restored[ObjectIdentifier(p)] = try decodeState(slots, for: p)
        }
        states = restored
        stepCount = state.stepCount
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

    /// The momentum buffer as one slot; no slot while it is not allocated (momentum 0).
    public override func encodeState(_ state: [Float]) throws -> [[Float]] { state.isEmpty ? [] : [state] }

    public override func decodeState(_ slots: [[Float]], for parameter: Parameter) throws -> [Float] {
        guard slots.count <= 1 else {
            throw EngineError.invalidResumeState("SGD state of '\(parameter.name)' has \(slots.count) slots, expected at most 1 (momentum)")
        }
        return slots.first ?? []
    }

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

    /// Two slots: the first and the second moment.
    public override func encodeState(_ state: Moments) throws -> [[Float]] { [state.first, state.second] }

    public override func decodeState(_ slots: [[Float]], for parameter: Parameter) throws -> Moments {
        guard slots.count == 2 else {
            throw EngineError.invalidResumeState("AdamW state of '\(parameter.name)' has \(slots.count) slots, expected 2 (first and second moments)")
        }
        return Moments(first: slots[0], second: slots[1])
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
