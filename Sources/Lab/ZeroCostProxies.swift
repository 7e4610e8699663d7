import Datasets
import Engine
import Estimators
import Foundation
import NASCore
import Spaces

/// A zero-cost proxy: a score of an untrained network that is cheap to compute and meant to rank
/// architectures like their trained accuracy would. One definition per name; `docs/zero-cost.md`
/// lists what differs from the reference implementations.
///
/// The weight-based proxies (synflow, snip, grad_norm) sum over `Network.zeroCostWeights`: the
/// weights of convolutions, linear layers and attention projections (not biases, normalisation
/// scales or embeddings), as zero-cost-nas sums over `nn.Conv2d` and `nn.Linear` weights.
///
/// References:
/// - M. S. Abdelfattah, A. Mehrotra, Ł. Dudziak, N. D. Lane, "Zero-Cost Proxies for Lightweight
///   NAS", ICLR 2021 (zero-cost-nas; the definitions NASLib uses).
/// - C. White et al., "A Deeper Look at Zero-Cost Proxies for Lightweight NAS", ICLR Blog Track
///   2022, and NASLib's `zc_nasbench201.json` (the values the NAS-Bench-201 test compares with).
public enum ZeroCostProxy: String, CaseIterable, Codable, Sendable {
    /// log of Σ_θ θ·∂R/∂θ over the weights, R = Σ outputs of a batch-norm-free copy whose
    /// parameters are replaced by their absolute values, on an all-ones input of batch 1
    /// (data-free). A score of exactly 0 is reported as 0, as NASLib does.
    /// Reference: H. Tanaka, D. Kunin, D. L. K. Yamins, S. Ganguli, "Pruning neural networks
    /// without any data by iteratively conserving synaptic flow", NeurIPS 2020.
    case synflow
    /// log|det K| of the ReLU-code kernel `K = Σ_relu c·cᵀ + (1−c)·(1−c)ᵀ` on one mini-batch
    /// (`Network.reluCodeKernel`). Reference: J. Mellor, J. Turner, A. Storkey, E. J. Crowley,
    /// "Neural Architecture Search without Training", ICML 2021 (the second version's score).
    case naswot
    /// −Σ_i [log(λ_i + k) + 1/(λ_i + k)], k = 1e-5, over the eigenvalues λ of the correlation
    /// matrix of the per-sample input Jacobians of Σ outputs on one mini-batch (NASLib's
    /// `compute_jacob_cov`). Reference: J. Mellor et al., "Neural Architecture Search without
    /// Training", arXiv:2006.04647v1 (2020).
    case jacov
    /// Σ_θ |θ·∂L/∂θ| over the weights, L the task's loss on one mini-batch.
    /// Reference: N. Lee, T. Ajanthan, P. H. S. Torr, "SNIP: Single-shot Network Pruning based on
    /// Connection Sensitivity", ICLR 2019.
    case snip
    /// Σ over weight tensors of ‖∂L/∂W‖₂ (one L2 norm per tensor, summed), L the task's loss on
    /// one mini-batch (zero-cost-nas' `grad_norm`). Reference: Abdelfattah et al. 2021.
    case gradNorm = "grad_norm"
    /// Trainable parameters (a count; NASLib reports millions).
    case params
    /// FLOPs = 2 × multiply-accumulates of convolutions and linear layers (`NetworkCost.flops`, what
    /// `naslab estimate` prints). NASLib's `flops` are MFLOPs in NAS-Bench-201's own convention
    /// (`NetworkCost.nasBench201Flops`), which also counts batch norm, activation and pooling work.
    case flops

    /// Whether the proxy needs a mini-batch of a dataset.
    public var needsData: Bool {
        switch self {
        case .naswot, .jacov, .snip, .gradNorm: return true
        case .synflow, .params, .flops: return false
        }
    }

    /// Whether the proxy needs a network with weights (not just the graph's costs).
    var needsNetwork: Bool { self != .params && self != .flops }

    /// The proxies that need no data.
    public static var dataFree: [ZeroCostProxy] { allCases.filter { !$0.needsData } }
}

/// A seeded mini-batch of a dataset split: the samples the data-dependent proxies see.
public struct ZeroCostBatch: Sendable {
    public var data: LabeledArrays
    public var indices: [Int]

    /// `size` samples of `data` drawn without replacement by a generator seeded with `seed`.
    /// - Throws: `LabError.invalid` when `size` is not in `1...data.count`.
    public init(data: LabeledArrays, size: Int, seed: UInt64) throws {
        guard size >= 1, size <= data.count else {
            throw LabError.invalid("the mini-batch size must be between 1 and the \(data.count) training samples, got \(size)")
        }
        var rng = SeededGenerator(seed: seed).derived(stream: 0x2E80_C057)
        var order = Array(0..<data.count)
        for i in 0..<size {   // partial Fisher–Yates: the first `size` positions
            let j = i + rng.nextInt(below: data.count - i)
            order.swapAt(i, j)
        }
        self.data = data
        self.indices = Array(order.prefix(size))
    }

    /// Explicit samples (tests).
    public init(data: LabeledArrays, indices: [Int]) {
        self.data = data
        self.indices = indices
    }
}

/// The proxies of one architecture. JSON: `architecture` plus one key per computed proxy
/// (non-finite values as the strings `inf`, `-inf`, `nan`, like every NASLab JSON).
public struct ZeroCostScores: Encodable, Sendable {
    public var architecture: String
    public var values: [ZeroCostProxy: Double]

    public subscript(_ proxy: ZeroCostProxy) -> Double? { values[proxy] }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: AnyCodingKey.self)
        try c.encode(architecture, forKey: AnyCodingKey("architecture"))
        for proxy in ZeroCostProxy.allCases {
            guard let v = values[proxy] else { continue }
            if proxy == .params || proxy == .flops, v.isFinite {
                try c.encode(Int(v), forKey: AnyCodingKey(proxy.rawValue))
            } else {
                try c.encode(v, forKey: AnyCodingKey(proxy.rawValue))
            }
        }
    }
}

/// Zero-cost proxies computed by NASLab's engine, for any architecture of any space.
///
/// ```swift
/// let space = try SpaceReference.resolve("nasbench201").space
/// let a = try space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
/// let s = try ZeroCost.scores(space: space, architecture: a, inputShape: FeatureShape(channels: 3, height: 32, width: 32),
///                             inputKind: .image, classCount: 10, proxies: ZeroCostProxy.dataFree, seed: 0)
/// print(s[.synflow]!)
/// ```
public enum ZeroCost {
    /// NASLib's eigenvalue offset in jacov.
    public static let jacovEpsilon = 1e-5

    // MARK: All proxies of an architecture

    /// The requested proxies of `architecture`: the network is built with weights seeded by
    /// `seed` (`WeightInitializer.pytorchDefault`, the task's output initialisation); the
    /// data-dependent proxies need `batch` (else they are left out).
    public static func scores(space: SearchSpace, architecture: Architecture, inputShape: FeatureShape, inputKind: InputKind,
                              classCount: Int, proxies: [ZeroCostProxy], batch: ZeroCostBatch? = nil,
                              seed: UInt64) throws -> ZeroCostScores {
        let graph = try space.network(for: architecture, inputShape: inputShape, inputKind: inputKind, classCount: classCount)
        let values = try scores(graph: graph, task: space.task, classCount: classCount, proxies: proxies, batch: batch, seed: seed)
        return ZeroCostScores(architecture: space.text(of: architecture), values: values)
    }

    /// The requested proxies of a decoded network graph (see the other `scores`).
    public static func scores(graph: NetworkGraph, task: TaskKind, classCount: Int, proxies: [ZeroCostProxy],
                              batch: ZeroCostBatch? = nil, seed: UInt64) throws -> [ZeroCostProxy: Double] {
        var values = [ZeroCostProxy: Double]()
        let wanted = proxies.filter { !$0.needsData || batch != nil }
        if wanted.contains(.params) || wanted.contains(.flops) {
            let cost = try graph.cost()
            if wanted.contains(.params) { values[.params] = Double(cost.parameters) }
            if wanted.contains(.flops) { values[.flops] = Double(cost.flops) }
        }
        let objective = Objective(task: task)
        if wanted.contains(.synflow) {
            let network = try makeNetwork(graph.removingBatchNorm(), task: task, classCount: classCount, seed: seed)
            values[.synflow] = try synflow(network)
        }
        guard let batch, wanted.contains(where: \.needsData) else { return values }
        let network = try makeNetwork(graph, task: task, classCount: classCount, seed: seed)
        let dropout = network.dropoutGenerator
        if wanted.contains(.naswot) {
            network.dropoutGenerator = dropout
            values[.naswot] = try naswot(network, batch: batch)
        }
        if wanted.contains(.jacov) {
            network.dropoutGenerator = dropout
            values[.jacov] = try jacov(network, batch: batch)
        }
        if wanted.contains(.snip) || wanted.contains(.gradNorm) {
            network.dropoutGenerator = dropout
            let g = try lossGradientProxies(network, objective: objective, batch: batch)
            if wanted.contains(.snip) { values[.snip] = g.snip }
            if wanted.contains(.gradNorm) { values[.gradNorm] = g.gradNorm }
        }
        return values
    }

    /// A freshly initialised network as training would start it.
    static func makeNetwork(_ graph: NetworkGraph, task: TaskKind, classCount: Int, seed: UInt64) throws -> Network {
        var rng = SeededGenerator(seed: seed)
        let network = try Network(graph: graph, classCount: task.isClassification ? classCount : nil, rng: &rng)
        try Objective(task: task).initializeOutput(network, classCount: classCount)
        return network
    }

    // MARK: Synflow

    /// Synflow of `network` as it is (call it on a batch-norm-free network, e.g. built from
    /// `NetworkGraph.removingBatchNorm()`, for the reference's definition): the natural log of
    /// Σ_θ |θ·∂R/∂θ| over `Network.zeroCostWeights` with every parameter replaced by its absolute
    /// value, R = Σ outputs for an all-ones input of batch 1; 0 when the sum is 0 (NASLib's
    /// convention); `nan` when no scaling keeps Float32 finite. Parameters are restored afterwards.
    ///
    /// The engine computes in Float32 (the reference in Float64), and synflow sums reach 1e50 on
    /// NAS-Bench-201. When the forward pass would overflow, the input and every bias are scaled by
    /// s = 2⁻³², 2⁻⁶⁴, …; when the backward pass would, the output gradient is scaled by t. The
    /// sum is then divided by s·t (in log space). Scaling t is exact for every network; scaling
    /// s is exact for networks of positively homogeneous ops (convolutions, linear layers, ReLU,
    /// pooling, additions, concatenations — every NAS-Bench-201 cell) and an approximation
    /// otherwise. Token inputs are never scaled. Products and sums are accumulated in Float64.
    public static func synflow(_ network: Network) throws -> Double {
        let parameters = network.parameters
        let saved = parameters.map(\.values)
        defer { for (p, v) in zip(parameters, saved) { p.values = v } }
        let absolute = saved.map { $0.map(abs) }
        for (p, v) in zip(parameters, absolute) { p.values = v }
        let biases = parameters.indices.filter { parameters[$0].name.hasSuffix("bias") }
        let weights = network.zeroCostWeights
        let shape = network.inputShape
        let dims = [1, shape.channels, shape.height, shape.width]
        let tokens = network.graph.nodes.contains { $0.op.kind == Embedding.kind }
        let limit = Float(sign: .plus, exponent: 100, significand: 1)
        let exponents = [0, -32, -64, -96, -120]
        for inputExponent in tokens ? [0] : exponents {
            let s = Float(sign: .plus, exponent: inputExponent, significand: 1)
            for i in biases { parameters[i].values = absolute[i].map { $0 * s } }
            let output = try network.forward(Tensor(shape: dims, values: [Float](repeating: s, count: shape.elementCount)),
                                             training: false)
            guard output.values.allSatisfy({ $0.isFinite && $0 < limit }) else { continue }
            for gradientExponent in exponents {
                let t = Float(sign: .plus, exponent: gradientExponent, significand: 1)
                _ = try network.backward(outputGradient: Tensor(shape: output.shape, values: [Float](repeating: t, count: output.values.count)))
                var total = 0.0
                var fits = true
                for w in weights {
                    let values = w.values, gradient = w.gradient
                    for i in values.indices {
                        let g = gradient[i]
                        guard g.isFinite, abs(g) < limit else { fits = false; break }
                        total += abs(Double(values[i]) * Double(g))
                    }
                    if !fits { break }
                }
                guard fits else { continue }
                if total == 0 { return 0 }
                return log(total) - Double(inputExponent + gradientExponent) * M_LN2
            }
        }
        return .nan
    }

    // MARK: Data-dependent proxies

    /// NASWOT: log|det K| of `Network.reluCodeKernel` (`-inf` when K is singular, e.g. two samples
    /// with identical codes; 0 for a network without ReLU gives `K = 0`, also `-inf`).
    public static func naswot(_ network: Network, batch: ZeroCostBatch) throws -> Double {
        let kernel = try network.reluCodeKernel(batch.data, indices: batch.indices)
        return logAbsDeterminant(kernel, size: batch.indices.count)
    }

    /// jacov: the input Jacobians J_i = ∂(Σ outputs)/∂x_i of a training-mode forward pass (batch
    /// statistics); for token inputs, the Jacobian with respect to the first embedding's output.
    /// `nan` when a row of J is constant (its correlation is undefined; NASLib then reports −1e8).
    public static func jacov(_ network: Network, batch: ZeroCostBatch) throws -> Double {
        let sub = batch.data.subset(batch.indices)
        let shape = network.inputShape
        let n = batch.indices.count
        let input = Tensor(shape: [n, shape.channels, shape.height, shape.width], values: sub.features)
        let output = try network.forward(input, training: true)
        let ones = Tensor(shape: output.shape, values: [Float](repeating: 1, count: output.values.count))
        let jacobian: Tensor
        if let embedding = network.graph.nodes.first(where: { $0.op.kind == Embedding.kind }) {
            _ = try network.backward(outputGradient: ones)
            jacobian = try network.outputGradient(ofNode: embedding.name)
                .orThrow(LabError.invalid("no gradient at the embedding '\(embedding.name)'"))
        } else {
            jacobian = try network.backward(outputGradient: ones, computeInputGradient: true)
                .orThrow(LabError.invalid("the engine returned no input gradient"))
        }
        let d = jacobian.values.count / n
        guard let correlation = correlationMatrix(jacobian.values, rows: n, columns: d) else { return .nan }
        let k = jacovEpsilon
        return -symmetricEigenvalues(correlation, size: n).reduce(0) { $0 + log($1 + k) + 1 / ($1 + k) }
    }

    /// snip and grad_norm from one loss gradient: a training-mode forward pass on the batch, the
    /// task's loss (`Network.loss`), backward.
    public static func lossGradientProxies(_ network: Network, objective: Objective,
                                           batch: ZeroCostBatch) throws -> (snip: Double, gradNorm: Double) {
        try network.loss(objective, on: batch.data, indices: batch.indices)
        var snip = 0.0, gradNorm = 0.0
        for w in network.zeroCostWeights {
            let values = w.values, gradient = w.gradient
            var squares = 0.0
            for i in values.indices {
                let g = Double(gradient[i])
                snip += abs(Double(values[i]) * g)
                squares += g * g
            }
            gradNorm += squares.squareRoot()
        }
        return (snip, gradNorm)
    }

    // MARK: Linear algebra (small, Float64)

    /// log|det A| of a row-major `size × size` matrix by LU with partial pivoting (numpy's
    /// `slogdet` returns this as its second value); `-inf` for a singular matrix.
    public static func logAbsDeterminant(_ matrix: [Double], size n: Int) -> Double {
        var a = matrix
        var total = 0.0
        for col in 0..<n {
            var pivot = col
            for r in (col + 1)..<max(col + 1, n) where abs(a[r * n + col]) > abs(a[pivot * n + col]) { pivot = r }
            let p = a[pivot * n + col]
            if p == 0 || !p.isFinite { return p == 0 ? -.infinity : .nan }
            if pivot != col { for c in 0..<n { a.swapAt(col * n + c, pivot * n + c) } }
            total += log(abs(p))
            for r in (col + 1)..<max(col + 1, n) {
                let f = a[r * n + col] / p
                if f == 0 { continue }
                for c in col..<n { a[r * n + c] -= f * a[col * n + c] }
            }
        }
        return total
    }

    /// numpy's `corrcoef` of the rows of a row-major `rows × columns` matrix, or `nil` when a row
    /// has zero variance.
    public static func correlationMatrix(_ values: [Float], rows: Int, columns: Int) -> [Double]? {
        var centered = [[Double]]()
        for r in 0..<rows {
            let row = values[(r * columns)..<((r + 1) * columns)].map(Double.init)
            let mean = row.reduce(0, +) / Double(columns)
            let c = row.map { $0 - mean }
            let norm = c.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0, norm.isFinite else { return nil }
            centered.append(c.map { $0 / norm })
        }
        var result = [Double](repeating: 0, count: rows * rows)
        for i in 0..<rows {
            for j in i..<rows {
                var dot = 0.0
                for k in 0..<columns { dot += centered[i][k] * centered[j][k] }
                let v = i == j ? 1 : max(-1, min(1, dot))
                result[i * rows + j] = v
                result[j * rows + i] = v
            }
        }
        return result
    }

    /// Eigenvalues of a symmetric row-major `size × size` matrix (cyclic Jacobi rotations), ascending.
    public static func symmetricEigenvalues(_ matrix: [Double], size n: Int) -> [Double] {
        var a = matrix
        let scale = max(1e-300, a.reduce(0) { $0 + $1 * $1 }.squareRoot())
        for _ in 0..<100 {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += a[i * n + j] * a[i * n + j] } }
            if off.squareRoot() <= 1e-14 * scale { break }
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) {
                    let apq = a[p * n + q]
                    guard abs(apq) > 1e-300 else { continue }
                    let theta = (a[q * n + q] - a[p * n + p]) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {   // columns p, q
                        let akp = a[k * n + p], akq = a[k * n + q]
                        a[k * n + p] = c * akp - s * akq
                        a[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {   // rows p, q
                        let apk = a[p * n + k], aqk = a[q * n + k]
                        a[p * n + k] = c * apk - s * aqk
                        a[q * n + k] = s * apk + c * aqk
                    }
                }
            }
        }
        return (0..<n).map { a[$0 * n + $0] }.sorted()
    }
}

extension Optional {
    fileprivate func orThrow(_ error: @autoclosure () -> Error) throws -> Wrapped {
        guard let value = self else { throw error() }
        return value
    }
}

// MARK: - The command line's request

/// `naslab proxies`: zero-cost proxies of architectures of a space, one result per architecture.
public struct ZeroCostRequest: Sendable {
    public var space: String
    public var architectures: [String] = []
    public var random: Int?
    /// Seeds `--random`, the weights and the mini-batch.
    public var seed: UInt64 = 0
    /// `nil`: the dataset's sample shape, else `CostEstimate.defaultInputShape(for:)`.
    public var inputShape: FeatureShape?
    /// `nil`: the dataset's classes, else 10.
    public var classCount: Int?
    public var dataset: String?
    public var batchSize = 64
    public var vocabulary: Int?
    /// `nil`: every proxy the inputs allow (the data-dependent ones need `dataset`).
    public var proxies: [ZeroCostProxy]?

    public init(space: String) { self.space = space }

    /// Computes the proxies of every architecture, handing each result to `body` as it is done.
    public func run(_ body: (ZeroCostScores) throws -> Void) throws {
        let space = try SpaceReference.resolve(self.space).space
        var archs = try architectures.map { try space.parse($0) }
        if let random {
            var rng = SeededGenerator(seed: seed)
            for _ in 0..<random { archs.append(space.sample(using: &rng)) }
        }
        if archs.isEmpty {
            guard space.isFixed else {
                throw LabError.invalid("space '\(space.name)' has decisions: pass --arch TEXT (repeatable) or --random N")
            }
            archs = [try space.parse(SearchSpace.fixedArchitectureText)]
        }
        var shape = inputShape ?? CostEstimate.defaultInputShape(for: space.task)
        var kind = CostEstimate.defaultInputKind(for: space.task, vocabulary: vocabulary)
        var classes = classCount ?? 10
        var batch: ZeroCostBatch?
        let wanted = proxies ?? ZeroCostProxy.allCases
        if let name = dataset {
            let data = try DatasetCache().dataset(name, validationSplit: Dataset.defaultValidationSplit, seed: seed)
            let meta = data.metadata
            guard space.task.accepts(meta.inputKind) else {
                throw LabError.invalid("dataset '\(name)' has \(meta.inputKind.name) inputs but space '\(self.space)' is a \(space.task) space")
            }
            if let inputShape, inputShape != meta.sampleShape {
                throw LabError.invalid("--input \(inputShape) does not match dataset '\(name)', whose samples are \(meta.sampleShape): omit --input or pass --input \(meta.sampleShape)")
            }
            if let classCount, classCount != meta.classCount {
                throw LabError.invalid("--classes \(classCount) does not match dataset '\(name)', which has \(meta.classCount) classes: omit --classes")
            }
            if batchSize > data.train.count {
                throw LabError.invalid("--batch-size \(batchSize) exceeds the \(data.train.count) training samples of dataset '\(name)'")
            }
            shape = meta.sampleShape
            kind = meta.inputKind
            classes = meta.classCount
            batch = try ZeroCostBatch(data: data.train, size: batchSize, seed: seed)
        } else if let needing = proxies?.first(where: \.needsData) {
            throw LabError.invalid("proxy '\(needing.rawValue)' needs data: pass --dataset NAME")
        }
        for a in archs {
            try body(try ZeroCost.scores(space: space, architecture: a, inputShape: shape, inputKind: kind, classCount: classes,
                                         proxies: wanted, batch: batch, seed: seed))
        }
    }
}
