#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How the learning rate evolves over training, after an optional linear warm-up.
///
/// References:
/// - I. Loshchilov, F. Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017 (cosine).
/// - P. Goyal et al., "Accurate, Large Minibatch SGD", 2017 (linear warm-up).
public enum LearningRateSchedule: Hashable, Codable, Sendable {
    /// The base rate throughout.
    case constant
    /// Multiplied by `factor` every `everyEpochs` epochs.
    case step(everyEpochs: Int, factor: Double)
    /// Cosine decay from the base rate to `base · minimumFactor` at the last step (per step).
    case cosine(minimumFactor: Double)

    /// The learning rate of global step `step` (0-based) of a run with `stepsPerEpoch × epochs` steps.
    ///
    /// During the first `warmupEpochs · stepsPerEpoch` steps the rate rises linearly,
    /// `base · (step + 1) / warmupSteps`; the schedule then runs over the remaining steps.
    public func learningRate(base: Double, step: Int, stepsPerEpoch: Int, epochs: Int, warmupEpochs: Int = 0) -> Double {
        let warmup = max(0, warmupEpochs) * stepsPerEpoch
        if step < warmup { return base * Double(step + 1) / Double(warmup) }
        switch self {
        case .constant:
            return base
        case let .step(every, factor):
            let epoch = step / max(1, stepsPerEpoch)
            return base * pow(factor, Double(epoch / max(1, every)))
        case let .cosine(minimumFactor):
            let total = max(1, epochs * stepsPerEpoch - warmup)
            let progress = min(1, Double(step - warmup) / Double(total))
            let low = base * minimumFactor
            return low + (base - low) * 0.5 * (1 + cos(Double.pi * progress))
        }
    }
}
