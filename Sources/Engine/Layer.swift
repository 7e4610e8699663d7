import Dispatch
import NASCore

/// Scratch state shared by the layers of one network.
final class ExecutionContext {
    /// Per-thread im2col / col2im workspaces, shared by all convolutions (columns are recomputed
    /// in backward rather than stored).
    private(set) var workspaces = [FloatBuffer]()
    /// Per-thread partial weight gradients of a convolution (summed in a fixed order).
    private(set) var partials = [FloatBuffer]()

    func workspace(_ thread: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while workspaces.count <= thread { workspaces.append(FloatBuffer(count: 0)) }
        workspaces[thread].resize(count)
        return workspaces[thread].pointer
    }

    /// Makes sure `threads` workspaces and partial buffers exist (call before parallel regions).
    func reserve(threads: Int, workspace: Int, partial: Int) {
        while workspaces.count < threads { workspaces.append(FloatBuffer(count: 0)) }
        while partials.count < threads { partials.append(FloatBuffer(count: 0)) }
        for t in 0..<threads {
            workspaces[t].resize(workspace)
            partials[t].resize(partial)
        }
    }
    /// `destination = Σ_t partials[t]` over the first `threads` per-thread partial gradients, added
    /// in thread order (deterministic for a thread count).
    func sumPartials(threads: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
        destination.update(from: partials[0].pointer, count: count)
        for t in 1..<max(1, threads) {
            let p = partials[t].pointer
            for i in 0..<count { destination[i] += p[i] }
        }
    }

    /// Source of dropout masks.
    var generator: SeededGenerator
    init(generator: SeededGenerator) { self.generator = generator }

    // MARK: Sequence masks (token inputs)

    /// The valid length of each sample of the current batch (index of its last non-padding token
    /// + 1, at least 1), recorded by an `embedding` layer in its forward pass; empty when no
    /// embedding ran, in which case every position of every sample is valid.
    var sequenceLengths = [Int]()
    /// The sequence length `sequenceLengths` refer to (the embedding's input length L₀).
    var sequenceLengthBase = 0

    /// The number of valid (non-padding) positions of `sample` in a sequence of `length` positions.
    ///
    /// A sequence that a strided convolution shortened from L₀ to `length` keeps
    /// `min(length, ⌈valid · length / L₀⌉)` valid positions (at least 1). Without recorded lengths
    /// (no embedding) all `length` positions are valid.
    func validLength(sample: Int, length: Int) -> Int {
        guard sequenceLengthBase > 0, sample < sequenceLengths.count else { return length }
        return SequenceMask.validLength(sequenceLengths[sample], of: sequenceLengthBase, rescaledTo: length)
    }
}

/// The padding mask of token sequences: padding is always at the end, so a sample's mask is its
/// number of valid positions.
public enum SequenceMask {
    /// The valid positions of a sequence of `length` positions derived (e.g. by a strided
    /// convolution) from one of `base` positions with `valid` valid ones:
    /// `min(length, max(1, ⌈valid · length / base⌉))`.
    public static func validLength(_ valid: Int, of base: Int, rescaledTo length: Int) -> Int {
        if length == base { return min(length, max(1, valid)) }
        let scaled = (valid * length + base - 1) / base
        return min(length, max(1, scaled))
    }
}

/// One node's computation on CNHW buffers. Parameter gradients are overwritten by each backward;
/// input gradients are written or, when `accumulate[i]` is true, added.
protocol Layer: AnyObject {
    var parameters: [Parameter] { get }
    var buffers: [Parameter] { get }
    func forward(_ inputs: [FloatBuffer], _ output: FloatBuffer, batch: Int, training: Bool, context: ExecutionContext)
    func backward(_ inputs: [FloatBuffer], _ output: FloatBuffer, _ outputGradient: FloatBuffer,
                  _ inputGradients: [FloatBuffer?], _ accumulate: [Bool], batch: Int, context: ExecutionContext)
}

extension Layer {
    var parameters: [Parameter] { [] }
    var buffers: [Parameter] { [] }
}
