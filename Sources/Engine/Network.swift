import Dispatch
import NASCore

/// A trainable network built from a `NetworkGraph`, with reverse-mode autodiff over its DAG.
///
/// **Layout.** Activations are stored channel-major, CNHW (`[channels, batch, height, width]`):
/// a convolution is one GEMM per group over the whole batch with the output channels as rows
/// (`W[out × in·k·k] · columns[in·k·k × batch·H·W]`), whose result *is* the CNHW output, so no
/// transposition is needed; batch norm's per-channel statistics run over contiguous memory;
/// channel concatenation is a copy of contiguous blocks; a 1×1 stride-1 convolution needs no
/// im2col at all. Inputs and outputs are converted from/to NCHW at the network's boundary only.
///
/// **Autodiff.** Nodes run forward in topological order; backward visits them in reverse order,
/// each layer writing the gradient of its inputs (the first consumer in reverse order writes,
/// later ones add, so fan-out is summed without zeroing). Nodes that do not lead to a trainable
/// parameter skip their backward.
///
/// ```swift
/// var rng = SeededGenerator(seed: 1)
/// let network = try Network(graph: graph, classCount: 10, rng: &rng)
/// let logits = try network.forward(x, training: false)   // [batch, 10]
/// ```
public final class Network {
    public let graph: NetworkGraph
    /// The output shape of every node.
    public let shapes: [FeatureShape]
    /// Trainable parameters in node order (weight before bias).
    public let parameters: [Parameter]
    /// Non-trainable buffers (batch norm running statistics) in node order.
    public let buffers: [Parameter]

    let layers: [Layer?]
    let activations: [FloatBuffer]
    let gradients: [FloatBuffer]
    let inputBuffers: [[FloatBuffer]]
    let context: ExecutionContext
    /// The conv → batch norm → activation chains run as one kernel in inference.
    public let fusion: InferenceFusion
    /// Whether inference (`training: false`) runs `fusion`'s chains as single kernels (default
    /// true). Off, every node runs on its own, as in training; results agree to float rounding.
    public var fusesInference = true
    /// Whether the last forward pass ran fused chains (their inner nodes' buffers are then stale).
    var lastForwardFused = false
    private(set) var batchSize = 0
    private var plans: [Bool: BackwardPlan] = [:]

    struct BackwardPlan {
        var runs: [Bool]
        var targets: [[FloatBuffer?]]
        var accumulate: [[Bool]]
    }

    /// Builds the network and initialises its parameters.
    ///
    /// - Parameters:
    ///   - graph: the IR; checked with `inferShapes()`.
    ///   - classCount: if given, the output node must produce `classCount×1×1` logits.
    ///   - initializer: scheme for conv and linear weights (default PyTorch's).
    ///   - registry: the ops the graph may use (default: every op NASLab ships).
    ///   - rng: source of the initial weights; a derived stream feeds dropout.
    /// - Throws: `EngineError.invalidGraph`, `.classCountMismatch`.
    public init(graph: NetworkGraph, classCount: Int? = nil, initializer: WeightInitializer = .pytorchDefault,
                registry: OpRegistry = .standard, rng: inout SeededGenerator) throws {
        let shapes: [FeatureShape]
        do { shapes = try graph.inferShapes(registry: registry) } catch let e as NetworkGraphError {
            throw EngineError.invalidGraph(e)
        }
        if let classCount {
            let out = shapes[graph.output]
            guard out == FeatureShape(features: classCount) else {
                throw EngineError.classCountMismatch(expected: classCount, outputShape: out)
            }
        }
        self.graph = graph
        self.shapes = shapes
        _ = ComputeContext.current  // applies the OpenBLAS thread setting once
        var layers = [Layer?]()
        var build = LayerContext(name: "", inputShapes: [], outputShape: shapes[0], initializer: initializer, rng: rng)
        for (index, node) in graph.nodes.enumerated() {
            build = LayerContext(name: node.name, inputShapes: node.inputs.map { shapes[$0] }, outputShape: shapes[index],
                                 initializer: initializer, rng: build.rng)
            layers.append(try node.op.makeLayer(&build)?.layer)
        }
        rng = build.rng
        self.layers = layers
        parameters = layers.flatMap { $0?.parameters ?? [] }
        buffers = layers.flatMap { $0?.buffers ?? [] }
        let activations = shapes.map { _ in FloatBuffer(count: 0) }
        self.activations = activations
        gradients = shapes.map { _ in FloatBuffer(count: 0) }
        inputBuffers = graph.nodes.map { node in node.inputs.map { activations[$0] } }
        context = ExecutionContext(generator: rng.derived(stream: 0xD80F))
        fusion = InferenceFusion(graph: graph)
    }

    /// Number of trainable scalars.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// The generator used for dropout masks (replace it to control dropout explicitly).
    public var dropoutGenerator: SeededGenerator {
        get { context.generator }
        set { context.generator = newValue }
    }

    public var inputShape: FeatureShape { graph.inputShape }

    /// The valid (non-padding) length of each sample of the last token batch, as the network's
    /// embedding recorded it (empty when the network has no embedding).
    public var sequenceLengths: [Int] { context.sequenceLengths }

    /// The valid positions of `sample` of the last batch in a sequence of `length` positions
    /// (what the masked ops use; `length` when nothing was recorded).
    public func validLength(sample: Int, length: Int) -> Int { context.validLength(sample: sample, length: length) }
    public var outputShape: FeatureShape { shapes[graph.output] }

    // MARK: Buffers

    func prepare(batch: Int) {
        guard batch != batchSize else { return }
        batchSize = batch
        for (i, shape) in shapes.enumerated() {
            activations[i].resize(shape.elementCount * batch)
            gradients[i].resize(shape.elementCount * batch)
        }
    }

    /// Copies NCHW samples into the CNHW input buffer.
    func loadInput(_ source: UnsafePointer<Float>, batch: Int) {
        prepare(batch: batch)
        let c = inputShape.channels, hw = inputShape.height * inputShape.width
        let x = activations[0].pointer
        for n in 0..<batch {
            for ch in 0..<c {
                (x + (ch * batch + n) * hw).update(from: source + (n * c + ch) * hw, count: hw)
            }
        }
    }

    /// Copies the samples `indices` of `data` (sample-major NCHW) into the CNHW input buffer.
    func loadInput(_ data: LabeledArrays, indices: ArraySlice<Int>) {
        let batch = indices.count
        prepare(batch: batch)
        let c = inputShape.channels, hw = inputShape.height * inputShape.width
        let x = activations[0].pointer
        data.features.withUnsafeBufferPointer { f in
            for (n, sample) in indices.enumerated() {
                let base = f.baseAddress! + sample * c * hw
                for ch in 0..<c { (x + (ch * batch + n) * hw).update(from: base + ch * hw, count: hw) }
            }
        }
    }

    /// CNHW buffer → NCHW tensor (`[N, C]` for flat shapes).
    func tensor(fromChannelMajor buffer: FloatBuffer, shape: FeatureShape) -> Tensor {
        let n = batchSize, c = shape.channels, hw = shape.height * shape.width
        var values = [Float](repeating: 0, count: n * c * hw)
        values.withUnsafeMutableBufferPointer { v in
            for ch in 0..<c {
                for s in 0..<n {
                    (v.baseAddress! + (s * c + ch) * hw).update(from: buffer.pointer + (ch * n + s) * hw, count: hw)
                }
            }
        }
        let dims = hw == 1 ? [n, c] : [n, c, shape.height, shape.width]
        return Tensor(shape: dims, values: values)
    }

    func checkBatch(_ tensor: Tensor, shape: FeatureShape, what: String) throws -> Int {
        guard let n = tensor.shape.first, n > 0,
              tensor.shape.dropFirst().reduce(1, *) == shape.elementCount,
              tensor.values.count == n * shape.elementCount else {
            throw EngineError.shapeMismatch("\(what) has shape \(tensor.shape), expected [batch, \(shape.channels), \(shape.height), \(shape.width)]")
        }
        return n
    }

    // MARK: Forward and backward

    /// When true, forward and backward time every node into `profile` (seconds, accumulated).
    public var isProfiling = false
    /// Accumulated seconds per node name while `isProfiling` is on: (forward, backward).
    public private(set) var profile = [String: (forward: Double, backward: Double)]()

    /// Clears `profile`.
    public func resetProfile() { profile = [:] }

    @inline(__always)
    private func timed(_ node: Int, backward: Bool, _ body: () -> Void) {
        guard isProfiling else { body(); return }
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
        let name = graph.nodes[node].name
        var entry = profile[name] ?? (0, 0)
        if backward { entry.backward += seconds } else { entry.forward += seconds }
        profile[name] = entry
    }

    func runForward(training: Bool, allowFusion: Bool = true) {
        let fused = !training && allowFusion && fusesInference && !fusion.chains.isEmpty
        lastForwardFused = fused
        for i in layers.indices where layers[i] != nil {
            timed(i, backward: false) { _ = runNode(i, training: training, fused: fused) }
        }
    }

    /// Runs node `i`'s forward pass — with `fused`, the whole chain at a chain's convolution and
    /// nothing at its batch norm and activation. Returns whether anything ran.
    @inline(__always)
    func runNode(_ i: Int, training: Bool, fused: Bool) -> Bool {
        guard let layer = layers[i] else { return false }
        if fused, let c = fusion.chainOfNode[i] {
            let chain = fusion.chains[c]
            guard i == chain.convolution else { return false }
            runFused(chain)
            return true
        }
        layer.forward(inputBuffers[i], activations[i], batch: batchSize, training: training, context: context)
        return true
    }

    /// One fused chain: the convolution writes into the chain's last buffer and applies the batch
    /// norm's evaluation map and the activation as its epilogue.
    private func runFused(_ chain: InferenceFusion.Chain) {
        var epilogue = ConvolutionEpilogue(scale: nil, shift: nil, activation: nil)
        if let b = chain.batchNorm, let batchNorm = layers[b] as? BatchNormLayer {
            (epilogue.scale, epilogue.shift) = batchNorm.evaluationAffine()
        }
        if let a = chain.activation, let activation = layers[a] as? ActivationLayer {
            epilogue.activation = activation.kind
        }
        let conv = layers[chain.convolution] as! Conv2dLayer
        conv.forward(inputBuffers[chain.convolution][0].pointer, activations[chain.last].pointer, batch: batchSize,
                     epilogue: epilogue, context: context)
    }

    private func plan(inputGradient: Bool) -> BackwardPlan {
        if let p = plans[inputGradient] { return p }
        let count = layers.count
        var needs = [Bool](repeating: false, count: count)
        needs[0] = inputGradient
        for i in 1..<count {
            needs[i] = !(layers[i]!.parameters.isEmpty) || graph.nodes[i].inputs.contains { needs[$0] }
        }
        var written = [Bool](repeating: false, count: count)
        written[count - 1] = true
        var runs = [Bool](repeating: false, count: count)
        var targets = [[FloatBuffer?]](repeating: [], count: count)
        var accumulate = [[Bool]](repeating: [], count: count)
        for j in stride(from: count - 1, through: 1, by: -1) {
            let inputs = graph.nodes[j].inputs
            targets[j] = inputs.map { _ in nil }
            accumulate[j] = inputs.map { _ in false }
            guard needs[j], written[j] else { continue }
            runs[j] = true
            for (slot, i) in inputs.enumerated() where needs[i] {
                accumulate[j][slot] = written[i]
                written[i] = true
                targets[j][slot] = gradients[i]
            }
        }
        let p = BackwardPlan(runs: runs, targets: targets, accumulate: accumulate)
        plans[inputGradient] = p
        return p
    }

    /// Backward from `gradients[output]` (already filled). Returns whether the input gradient was written.
    @discardableResult
    func runBackward(inputGradient: Bool) -> Bool {
        let p = plan(inputGradient: inputGradient)
        for j in stride(from: layers.count - 1, through: 1, by: -1) {
            guard let layer = layers[j] else { continue }
            if p.runs[j] {
                timed(j, backward: true) {
                    layer.backward(inputBuffers[j], activations[j], gradients[j], p.targets[j], p.accumulate[j],
                                   batch: batchSize, context: context)
                }
            } else {
                for parameter in layer.parameters { parameter.gradientStorage.zero() }
            }
        }
        return p.targets.contains { $0.contains { $0 === gradients[0] } }
    }

    /// Runs the network on a batch.
    ///
    /// - Parameters:
    ///   - input: `[batch, C, H, W]` (or `[batch, C·H·W]`) in NCHW order.
    ///   - training: batch norm uses batch statistics and updates its running statistics;
    ///     dropout is active.
    /// - Returns: the output node's values, `[batch, classes]` for flat outputs.
    /// - Throws: `EngineError.shapeMismatch` if `input` does not fit.
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        let n = try checkBatch(input, shape: inputShape, what: "input")
        input.values.withUnsafeBufferPointer { loadInput($0.baseAddress!, batch: n) }
        runForward(training: training)
        return tensor(fromChannelMajor: activations[graph.output], shape: outputShape)
    }

    /// Backpropagates `outputGradient` (∂loss/∂output, same shape as the last `forward`'s result)
    /// and stores every parameter's gradient.
    ///
    /// - Parameter computeInputGradient: also return ∂loss/∂input (NCHW).
    /// - Returns: the input gradient if requested.
    public func backward(outputGradient: Tensor, computeInputGradient: Bool = false) throws -> Tensor? {
        let n = try checkBatch(outputGradient, shape: outputShape, what: "output gradient")
        guard n == batchSize else {
            throw EngineError.shapeMismatch("output gradient batch \(n) differs from the last forward's batch \(batchSize)")
        }
        // Backward reads every node's output: recompute the ones a fused pass skipped.
        if lastForwardFused { runForward(training: false, allowFusion: false) }
        let c = outputShape.channels, hw = outputShape.height * outputShape.width
        let g = gradients[graph.output].pointer
        outputGradient.values.withUnsafeBufferPointer { v in
            for s in 0..<n { for ch in 0..<c { (g + (ch * n + s) * hw).update(from: v.baseAddress! + (s * c + ch) * hw, count: hw) } }
        }
        guard computeInputGradient else { runBackward(inputGradient: false); return nil }
        if !runBackward(inputGradient: true) { gradients[0].zero() }
        return tensor(fromChannelMajor: gradients[0], shape: inputShape)
    }

    /// One training forward + softmax cross-entropy + backward on a batch.
    ///
    /// - Returns: the mean loss and the number of correctly classified samples.
    public func lossAndGradients(input: Tensor, labels: [Int32], labelSmoothing: Float = 0) throws -> (loss: Float, correct: Int) {
        let n = try checkBatch(input, shape: inputShape, what: "input")
        guard labels.count == n else { throw EngineError.shapeMismatch("\(labels.count) labels for \(n) samples") }
        try checkLabels(labels)
        input.values.withUnsafeBufferPointer { loadInput($0.baseAddress!, batch: n) }
        return labels.withUnsafeBufferPointer { trainStepOnLoadedInput(labels: $0, labelSmoothing: labelSmoothing) }
    }

    func checkLabels(_ labels: [Int32]) throws {
        let k = outputShape.elementCount
        guard outputShape.height == 1, outputShape.width == 1 else {
            throw EngineError.shapeMismatch("the loss needs flat logits, network output is \(outputShape)")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= k }) {
            throw EngineError.labelOutOfRange(index: bad, label: labels[bad], classCount: k)
        }
    }

    func trainStepOnLoadedInput(labels: UnsafeBufferPointer<Int32>, labelSmoothing: Float) -> (loss: Float, correct: Int) {
        runForward(training: true)
        let result = softmaxCrossEntropyChannelMajor(
            logits: activations[graph.output].pointer, classes: outputShape.channels, batch: batchSize,
            labels: labels, labelSmoothing: labelSmoothing, gradient: gradients[graph.output].pointer)
        runBackward(inputGradient: false)
        return result
    }

    /// The gradient of the loss with respect to node `name`'s output after the last `backward`,
    /// in NCHW order (`nil` for an unknown node name). Only nodes on a path to a trainable
    /// parameter (or to the input, when its gradient was requested) hold one.
    public func outputGradient(ofNode name: String) -> Tensor? {
        guard let index = graph.nodes.firstIndex(where: { $0.name == name }) else { return nil }
        return tensor(fromChannelMajor: gradients[index], shape: shapes[index])
    }

    // MARK: Named tensors

    /// All parameters and buffers in node order.
    public var allTensors: [Parameter] {
        layers.flatMap { ($0?.parameters ?? []) + ($0?.buffers ?? []) }
    }

    /// Every parameter and buffer as `(name, shape, values)`, in node order, for saving.
    public func namedTensors() -> [(name: String, shape: [Int], values: [Float])] {
        allTensors.map { (name: $0.name, shape: $0.shape, values: $0.values) }
    }

    /// The parameter or buffer called `name`, if any.
    public func tensor(named name: String) -> Parameter? {
        allTensors.first { $0.name == name }
    }

    /// Restores parameters and buffers saved with `namedTensors()` (bit-identical).
    ///
    /// - Throws: `EngineError.unknownTensor`, `.missingTensor`, `.tensorShapeMismatch`; nothing is
    ///   changed unless every tensor fits.
    public func load(namedTensors: [(name: String, shape: [Int], values: [Float])]) throws {
        let all = allTensors
        var byName = [String: Parameter]()
        for p in all { byName[p.name] = p }
        var seen = Set<String>()
        for t in namedTensors {
            guard let p = byName[t.name] else { throw EngineError.unknownTensor(t.name) }
            guard t.shape == p.shape, t.values.count == p.count else {
                throw EngineError.tensorShapeMismatch(name: t.name, expected: p.shape, got: t.shape)
            }
            seen.insert(t.name)
        }
        if let missing = all.first(where: { !seen.contains($0.name) }) { throw EngineError.missingTensor(missing.name) }
        for t in namedTensors { byName[t.name]!.values = t.values }
    }
}
