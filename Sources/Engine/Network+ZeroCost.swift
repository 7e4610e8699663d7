import CBLAS
import NASCore

// What the zero-cost proxies (Lab's `ZeroCostProxy`) need from the engine beyond training: a
// batch-norm-free copy of a graph (synflow), the weight tensors the proxies sum over, and the
// binary codes of ReLU inputs (NASWOT). The proxies themselves live in Lab.

extension NetworkGraph {
    /// This graph with every batch norm replaced by an identity (same node names and inputs).
    ///
    /// What the zero-cost-proxy reference implementations do for synflow (`copynet(bn=False)` in
    /// zero-cost-nas / NASLib replaces each BatchNorm's forward by a no-op). Batch norm draws
    /// nothing from the weight generator, so a network built from the result with the same seed
    /// has the same conv and linear weights as one built from `self`.
    public func removingBatchNorm() -> NetworkGraph {
        var copy = NetworkGraph(inputShape: inputShape)
        for node in nodes.dropFirst() {
            let op: any GraphOp = node.op is BatchNorm ? Identity() : node.op
            copy.addNode(node.name, op, inputs: node.inputs)
        }
        return copy
    }
}

extension Network {
    /// The op kinds whose weights the zero-cost proxies score: the layers PyTorch models as
    /// `nn.Conv2d` / `nn.Linear` (what zero-cost-nas' `get_layer_metric_array` visits), plus their
    /// 1-D and transposed relatives and the projections of self-attention.
    public static let zeroCostWeightKinds: Set<String> = [
        Conv2d.kind, Conv1d.kind, ConvTranspose2d.kind, Linear.kind, SelfAttention.kind,
    ]

    /// The weight tensors (never biases, normalisation scales or embeddings) of the layers in
    /// `zeroCostWeightKinds`, in node order: what synflow, snip and grad_norm sum over.
    public var zeroCostWeights: [Parameter] {
        var result = [Parameter]()
        for (index, node) in graph.nodes.enumerated() where Self.zeroCostWeightKinds.contains(node.op.kind) {
            for p in layers[index]?.parameters ?? [] where !p.name.hasSuffix("bias") { result.append(p) }
        }
        return result
    }

    /// The NASWOT kernel (Mellor et al. 2021) of samples `indices` of `data`.
    ///
    /// Runs a forward pass in training mode (batch statistics, as the reference's freshly built
    /// network does) and, for every ReLU / ReLU6 node, takes the binary code `c = [x > 0]` of its
    /// *input* per sample; returns the `B × B` matrix (row-major)
    /// `K = Σ_relu  c·cᵀ + (1 − c)·(1 − c)ᵀ`, i.e. the number of units on which two samples agree.
    ///
    /// - Throws: `EngineError` when `data` does not fit the network or an index is out of range.
    public func reluCodeKernel(_ data: LabeledArrays, indices: [Int]) throws -> [Double] {
        guard data.sampleShape == inputShape else {
            throw EngineError.shapeMismatch("data samples are \(data.sampleShape), network input is \(inputShape)")
        }
        guard !indices.isEmpty else { throw EngineError.invalidConfiguration("no samples to compute the kernel on") }
        if let bad = indices.first(where: { $0 < 0 || $0 >= data.count }) {
            throw EngineError.invalidConfiguration("sample index \(bad) is out of range 0..<\(data.count)")
        }
        loadInput(data, indices: indices[...])
        runForward(training: true)
        let b = batchSize
        var kernel = [Double](repeating: 0, count: b * b)
        var codes = [Float]()
        var gram = [Float](repeating: 0, count: b * b)
        for node in graph.nodes {
            guard let activation = node.op as? Activation, activation.function == .relu || activation.function == .relu6 else { continue }
            let input = node.inputs[0]
            let shape = shapes[input]
            let channels = shape.channels, plane = shape.height * shape.width
            let units = shape.elementCount
            // Per channel the input is a contiguous [batch × plane] block: codes as a [batch × plane] matrix.
            codes.removeAll(keepingCapacity: true)
            codes.reserveCapacity(channels * b * plane)
            let x = activations[input].pointer
            for i in 0..<(channels * b * plane) { codes.append(x[i] > 0 ? 1 : 0) }
            var ones = [Double](repeating: 0, count: b)
            codes.withUnsafeBufferPointer { c in
                gram.withUnsafeMutableBufferPointer { g in
                    g.update(repeating: 0)
                    for ch in 0..<channels {
                        // g += C_ch · C_chᵀ: sums of 0/1 products, exact in Float32 below 2^24 per entry.
                        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(b), Int32(plane), 1,
                                    c.baseAddress! + ch * b * plane, Int32(plane), 1, g.baseAddress!, Int32(b))
                    }
                }
                for ch in 0..<channels {
                    for n in 0..<b {
                        let row = c.baseAddress! + (ch * b + n) * plane
                        var s = 0.0
                        for p in 0..<plane { s += Double(row[p]) }
                        ones[n] += s
                    }
                }
            }
            // c_i·c_j + (1 − c_i)·(1 − c_j) = units − |c_i| − |c_j| + 2 c_i·c_j.
            for i in 0..<b {
                for j in i..<b {
                    let agree = Double(units) - ones[i] - ones[j] + 2 * Double(gram[i * b + j])
                    kernel[i * b + j] += agree
                    if i != j { kernel[j * b + i] += agree }
                }
            }
        }
        return kernel
    }
}
