import Foundation
import NASCore
import XCTest
import Engine

/// The text ops (embedding, conv1d, sequence poolings, layer norm, self-attention, GELU):
/// agreement with PyTorch 2.13 (fixture written by `make_text_fixtures.py`), finite-difference
/// gradients, padding masks, shape errors, costs, attribute round trips and a training run.
final class TextOpsTests: XCTestCase {
    /// Every test runs with 2 compute threads (its own ``ComputeContext``).
    override func invokeTest() { ComputeContext(threads: 2).run { super.invokeTest() } }

    // MARK: - PyTorch fixture

    struct Packed: Decodable {
        var shape: [Int]
        var values: [Float]
    }

    struct Fixture: Decodable {
        var vocabulary: Int
        var dimension: Int
        var heads: Int
        var length: Int
        var classes: Int
        var input: Packed
        var labels: [Int32]
        var valid_lengths: [Int]
        var pooled_valid_lengths: [Int]
        var parameters: [String: Packed]
        var parameter_count: Int
        var logits: Packed
        var loss: Float
        var gradients: [String: Packed]
    }

    /// Mirrors `TextReference.forward` in make_text_fixtures.py.
    static func fixtureGraph(vocabulary: Int = 20, dimension d: Int = 8, heads: Int = 2, length: Int = 10, classes: Int = 3) -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 1, width: length))
        var x = g.add("emb", .embedding(vocabulary: vocabulary, dimension: d), g.input)
        x = g.add("conv1", .conv1d(outChannels: d, kernel: 3, padding: 1), x)
        x = g.add("gelu1", .activation(.gelu), x)
        x = g.add("conv2", .conv1d(outChannels: d, kernel: 3, padding: 2, dilation: 2, groups: 2), x)
        let h = g.add("ln1", .layerNorm(affine: true), x)
        let a = g.add("attn", .selfAttention(heads: heads), h)
        let r1 = g.add("res1", .add, h, a)
        x = g.add("ln2", .layerNorm(affine: false), r1)
        x = g.add("ff1", .conv1d(outChannels: 2 * d, kernel: 1), x)
        x = g.add("gelu2", .activation(.gelu), x)
        x = g.add("ff2", .conv1d(outChannels: d, kernel: 1), x)
        let r2 = g.add("res2", .add, r1, x)
        let y = g.add("dw", .conv1d(outChannels: d, kernel: 3, stride: 2, padding: 1, groups: d), r2)
        let mx = g.add("maxpool", .sequenceMaxPool, y)
        let mean = g.add("meanpool", .sequenceMeanPool, y)
        x = g.add("cat", .concat, mx, mean)
        g.add("fc", .linear(outFeatures: classes, bias: true), x)
        return g
    }

    private func loadFixture() throws -> Fixture {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "text_network", withExtension: "json", subdirectory: "Fixtures"))
        return try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    }

    private func fixtureNetwork(_ f: Fixture) throws -> Network {
        var rng = SeededGenerator(seed: 0)
        let graph = Self.fixtureGraph(vocabulary: f.vocabulary, dimension: f.dimension, heads: f.heads, length: f.length, classes: f.classes)
        let network = try Network(graph: graph, classCount: f.classes, rng: &rng)
        try network.load(namedTensors: f.parameters.map { (name: $0.key, shape: $0.value.shape, values: $0.value.values) })
        return network
    }

    func testMatchesPyTorch() throws {
        let f = try loadFixture()
        let network = try fixtureNetwork(f)
        XCTAssertEqual(network.parameterCount, f.parameter_count)
        XCTAssertEqual(Set(network.parameters.map(\.name)), Set(f.gradients.keys))
        let x = Tensor(shape: f.input.shape, values: f.input.values)
        let logits = try network.forward(x, training: true)
        XCTAssertEqual(logits.shape, f.logits.shape)
        assertClose(logits.values, f.logits.values, rtol: 1e-4, atol: 1e-5, "logits")
        // The masks the embedding recorded, and their rescaling after the stride-2 conv.
        XCTAssertEqual(network.sequenceLengths, f.valid_lengths)
        XCTAssertEqual((0..<4).map { network.validLength(sample: $0, length: 5) }, f.pooled_valid_lengths)
        let (loss, lossGradient) = try softmaxCrossEntropy(logits: logits, labels: f.labels)
        XCTAssertEqual(loss, f.loss, accuracy: 1e-4 * abs(f.loss))
        _ = try network.backward(outputGradient: lossGradient)
        for p in network.parameters {
            let e = try XCTUnwrap(f.gradients[p.name], p.name)
            XCTAssertEqual(p.shape, e.shape, p.name)
            assertClose(p.gradient, e.values, rtol: 1e-4, atol: 2e-6, "gradient \(p.name)")
        }
        // The padding row of the embedding gets no gradient.
        XCTAssertEqual(Array(try XCTUnwrap(network.tensor(named: "emb/weight")).gradient.prefix(f.dimension)),
                       [Float](repeating: 0, count: f.dimension))
        // The fused training step gives the same loss and gradients.
        let fresh = try fixtureNetwork(f)
        let (fusedLoss, _) = try fresh.lossAndGradients(input: x, labels: f.labels)
        XCTAssertEqual(fusedLoss, f.loss, accuracy: 1e-4 * abs(f.loss))
        for p in fresh.parameters { assertClose(p.gradient, f.gradients[p.name]!.values, rtol: 1e-4, atol: 2e-6, "fused \(p.name)") }
    }

    struct BagFixture: Decodable {
        var vocabulary: Int
        var dimension: Int
        var slots: Int
        var length: Int
        var classes: Int
        var input: Packed
        var labels: [Int32]
        var valid_lengths: [Int]
        var parameters: [String: Packed]
        var logits: Packed
        var loss: Float
        var gradients: [String: Packed]
    }

    /// Subword bags (K ids per position) against `nn.EmbeddingBag(mode="mean", padding_idx=0)`.
    func testEmbeddingBagMatchesPyTorch() throws {
        let url = try XCTUnwrap(Bundle.module.url(forResource: "embedding_bag", withExtension: "json", subdirectory: "Fixtures"))
        let f = try JSONDecoder().decode(BagFixture.self, from: Data(contentsOf: url))
        var g = NetworkGraph(inputShape: FeatureShape(channels: f.slots, height: 1, width: f.length))
        var x = g.add("emb", .embedding(vocabulary: f.vocabulary, dimension: f.dimension), g.input)
        x = g.add("pool", .sequenceMeanPool, x)
        g.add("fc", .linear(outFeatures: f.classes, bias: true), x)
        var rng = SeededGenerator(seed: 0)
        let network = try Network(graph: g, classCount: f.classes, rng: &rng)
        try network.load(namedTensors: f.parameters.map { (name: $0.key, shape: $0.value.shape, values: $0.value.values) })
        let logits = try network.forward(Tensor(shape: f.input.shape, values: f.input.values), training: true)
        assertClose(logits.values, f.logits.values, rtol: 1e-4, atol: 1e-5, "logits")
        XCTAssertEqual(network.sequenceLengths, f.valid_lengths)
        let (loss, lossGradient) = try softmaxCrossEntropy(logits: logits, labels: f.labels)
        XCTAssertEqual(loss, f.loss, accuracy: 1e-4 * abs(f.loss))
        _ = try network.backward(outputGradient: lossGradient)
        for p in network.parameters {
            assertClose(p.gradient, try XCTUnwrap(f.gradients[p.name]).values, rtol: 1e-4, atol: 2e-6, "gradient \(p.name)")
        }
    }

    func testEmbeddingBagGradientsAndOneIdBagsEqualPlainEmbedding() throws {
        var rng = SeededGenerator(seed: 200)
        let (batch, slots, length, vocabulary) = (3, 3, 5, 9)
        var ids = [Float](repeating: 0, count: batch * slots * length)
        let words = tokenBatch(batch: batch, length: length, vocabulary: vocabulary, &rng)
        for n in 0..<batch {
            for l in 0..<length where words[n * length + l] != 0 {
                ids[(n * slots) * length + l] = words[n * length + l]
                for k in 1..<slots where rng.nextInt(below: 3) > 0 {
                    ids[(n * slots + k) * length + l] = Float(2 + rng.nextInt(below: vocabulary - 2))
                }
            }
        }
        let g = single(Embedding(vocabulary: vocabulary, dimension: 4), FeatureShape(channels: slots, height: 1, width: length),
                       suffix: [SequenceMeanPool(), Linear(outFeatures: 2, bias: true)])
        try checkGradients(g, batch: batch, seed: 201, input: ids)
        // A bag holding only the word id is the plain lookup: same outputs as K = 1.
        var onlyWords = [Float](repeating: 0, count: batch * slots * length)
        for n in 0..<batch { for l in 0..<length { onlyWords[(n * slots) * length + l] = words[n * length + l] } }
        func network(_ channels: Int) throws -> Network {
            var g = NetworkGraph(inputShape: FeatureShape(channels: channels, height: 1, width: length))
            g.add("emb", .embedding(vocabulary: vocabulary, dimension: 4), g.input)
            var seed = SeededGenerator(seed: 5)
            return try Network(graph: g, rng: &seed)
        }
        let plain = try network(1), bags = try network(slots)
        let w = plain.parameters[0]
        try bags.load(namedTensors: [(name: w.name, shape: w.shape, values: w.values)])
        XCTAssertEqual(try bags.forward(Tensor(shape: [batch, slots, 1, length], values: onlyWords), training: false).values,
                       try plain.forward(Tensor(shape: [batch, 1, 1, length], values: words), training: false).values)
        // Bags start like fastText's input matrix, U(−1/D, 1/D) (plain lookups: N(0, 1), see below).
        let start = try network(slots).parameters[0].values
        XCTAssertEqual(Array(start.prefix(4)), [0, 0, 0, 0])
        XCTAssertTrue(start.allSatisfy { abs($0) <= 0.25 })
        XCTAssertGreaterThan(start.map { abs($0) }.max() ?? 0, 0.2)
    }

    /// Same thread count ⇒ bit-identical results; one and two threads agree closely.
    func testDeterminism() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 1, width: 48))
        var x = g.add("emb", .embedding(vocabulary: 50, dimension: 32), g.input)
        x = g.add("conv", .conv1d(outChannels: 32, kernel: 5, padding: 2), x)
        x = g.add("dw", .conv1d(outChannels: 32, kernel: 3, padding: 1, groups: 32), x)
        x = g.add("ln", .layerNorm(affine: true), x)
        x = g.add("attn", .selfAttention(heads: 4), x)
        x = g.add("pool", .sequenceMeanPool, x)
        g.add("fc", .linear(outFeatures: 3, bias: true), x)
        var data = SeededGenerator(seed: 5)
        let batch = 24
        let ids = tokenBatch(batch: batch, length: 48, vocabulary: 50, &data)
        let labels = (0..<batch).map { _ in Int32(data.nextInt(below: 3)) }
        func run(_ threads: Int) throws -> (Float, [[Float]]) {
            try ComputeContext(threads: threads).run {
                var rng = SeededGenerator(seed: 9)
                let network = try Network(graph: g, rng: &rng)
                let (loss, _) = try network.lossAndGradients(input: Tensor(shape: [batch, 1, 1, 48], values: ids), labels: labels)
                return (loss, network.parameters.map(\.gradient))
            }
        }
        let a = try run(2), b = try run(2), c = try run(1)
        XCTAssertEqual(a.0.bitPattern, b.0.bitPattern)
        XCTAssertEqual(a.1, b.1)
        XCTAssertEqual(a.0, c.0, accuracy: 1e-5)
        for (u, v) in zip(a.1, c.1) { assertClose(u, v, rtol: 1e-4, atol: 1e-6, "1 vs 2 threads") }
    }

    // MARK: - Finite differences

    private func single(_ op: any GraphOp, _ shape: FeatureShape, prefix: [any GraphOp] = [], suffix: [any GraphOp] = []) -> NetworkGraph {
        var g = NetworkGraph(inputShape: shape)
        var x = g.input
        for (i, p) in prefix.enumerated() { x = g.addNode("pre\(i)", p, inputs: [x]) }
        x = g.addNode("op", op, inputs: [x])
        for (i, p) in suffix.enumerated() { x = g.addNode("post\(i)", p, inputs: [x]) }
        return g
    }

    /// Token ids `[batch, 1, 1, length]` with random valid lengths (at least one sample full,
    /// one of length 1), padding 0 at the end, ids in `1..<vocabulary`.
    private func tokenBatch(batch: Int, length: Int, vocabulary: Int, _ rng: inout SeededGenerator) -> [Float] {
        var ids = [Float](repeating: 0, count: batch * length)
        for n in 0..<batch {
            let valid = n == 0 ? length : (n == 1 ? 1 : 1 + rng.nextInt(below: length))
            for l in 0..<valid { ids[n * length + l] = Float(1 + rng.nextInt(below: vocabulary - 1)) }
        }
        return ids
    }

    func testConv1dGradients() throws {
        let cases: [(FeatureShape, Conv1d)] = [
            (FeatureShape(channels: 3, height: 1, width: 9), Conv1d(outChannels: 4, kernel: 3, padding: 1)),
            (FeatureShape(channels: 4, height: 1, width: 11), Conv1d(outChannels: 6, kernel: 3, stride: 2, padding: 2, dilation: 2, groups: 2)),
            (FeatureShape(channels: 6, height: 1, width: 10), Conv1d(outChannels: 3, kernel: 5, stride: 3, padding: 1, groups: 3, bias: false)),
            (FeatureShape(channels: 4, height: 1, width: 9), Conv1d(outChannels: 8, kernel: 3, stride: 2, padding: 1, groups: 4)),
            (FeatureShape(channels: 5, height: 1, width: 7), Conv1d(outChannels: 5, kernel: 3, padding: 2, dilation: 2, groups: 5, bias: false)),
            (FeatureShape(channels: 4, height: 1, width: 6), Conv1d(outChannels: 3, kernel: 1)),
            (FeatureShape(channels: 3, height: 1, width: 7), Conv1d(outChannels: 2, kernel: 1, stride: 2, bias: false)),
            (FeatureShape(features: 5), Conv1d(outChannels: 4, kernel: 1)),
        ]
        for (i, (shape, c)) in cases.enumerated() {
            try checkGradients(single(c, shape), batch: 3, seed: UInt64(300 + i))
        }
        // The threaded GEMM path (work ≥ 2^18) against finite differences.
        try checkGradients(single(Conv1d(outChannels: 32, kernel: 5, stride: 1, padding: 2, groups: 2), FeatureShape(channels: 32, height: 1, width: 40)),
                           batch: 6, seed: 310, samplesPerTensor: 8)
    }

    func testConv1dMatchesConv2dOnRows() throws {
        // A conv1d equals a conv2d with a 1×k kernel: compare against Conv2d on a k×k kernel whose
        // rows other than the middle one are zero, with height 1 and padding only along the width.
        var rng = SeededGenerator(seed: 11)
        var g = NetworkGraph(inputShape: FeatureShape(channels: 2, height: 1, width: 8))
        g.add("c", .conv1d(outChannels: 3, kernel: 3, stride: 1, padding: 1, bias: false), g.input)
        let network = try Network(graph: g, rng: &rng)
        let w = network.parameters[0].values  // [3, 2, 3]
        let x = randomNormal(2 * 2 * 8, &rng)
        let y = try network.forward(Tensor(shape: [2, 2, 1, 8], values: x), training: false)
        for n in 0..<2 { for o in 0..<3 { for l in 0..<8 {
            var s: Float = 0
            for c in 0..<2 { for j in 0..<3 {
                let p = l + j - 1
                if p >= 0 && p < 8 { s += w[(o * 2 + c) * 3 + j] * x[(n * 2 + c) * 8 + p] }
            } }
            XCTAssertEqual(y.values[(n * 3 + o) * 8 + l], s, accuracy: 1e-5)
        } } }
    }

    func testLayerNormGradients() throws {
        try checkGradients(single(LayerNorm(affine: true), FeatureShape(channels: 5, height: 1, width: 7)), batch: 3, seed: 40)
        try checkGradients(single(LayerNorm(affine: false), FeatureShape(channels: 4, height: 1, width: 6)), batch: 2, seed: 41)
        try checkGradients(single(LayerNorm(affine: true), FeatureShape(features: 6)), batch: 4, seed: 42)
        try checkGradients(single(LayerNorm(affine: true), FeatureShape(channels: 3, height: 2, width: 3)), batch: 2, seed: 43)
        // More positions than one block (256) and the threaded path.
        try checkGradients(single(LayerNorm(affine: true), FeatureShape(channels: 16, height: 1, width: 200)), batch: 3, seed: 44,
                           samplesPerTensor: 10)
    }

    func testLayerNormNormalisesOverChannels() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 4, height: 1, width: 3))
        g.add("ln", .layerNorm(affine: false), g.input)
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: g, rng: &rng)
        let x = randomNormal(2 * 12, &rng, scale: 3)
        let y = try network.forward(Tensor(shape: [2, 4, 1, 3], values: x), training: false).values
        for n in 0..<2 {
            for l in 0..<3 {
                let column = (0..<4).map { Double(x[(n * 4 + $0) * 3 + l]) }
                let mean = column.reduce(0, +) / 4
                let variance = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
                for c in 0..<4 {
                    XCTAssertEqual(Double(y[(n * 4 + c) * 3 + l]), (column[c] - mean) / (variance + 1e-5).squareRoot(), accuracy: 1e-5)
                }
            }
        }
    }

    func testSelfAttentionGradients() throws {
        // Without an embedding: every position valid.
        for (i, (d, heads, l)) in [(4, 1, 5), (6, 2, 4), (8, 4, 3), (4, 2, 1)].enumerated() {
            try checkGradients(single(SelfAttention(heads: heads), FeatureShape(channels: d, height: 1, width: l)),
                               batch: 3, seed: UInt64(50 + i))
        }
        // With a key padding mask from an embedding, the only consumer being masked pooling.
        var rng = SeededGenerator(seed: 60)
        for (i, pool) in [SequenceMeanPool() as any GraphOp, SequenceMaxPool()].enumerated() {
            let g = single(SelfAttention(heads: 2), FeatureShape(channels: 1, height: 1, width: 6),
                           prefix: [Embedding(vocabulary: 9, dimension: 4)], suffix: [pool])
            // A small step for the max: a larger one can move the arg-max (a kink, not an error).
            try checkGradients(g, batch: 4, seed: UInt64(61 + i), input: tokenBatch(batch: 4, length: 6, vocabulary: 9, &rng),
                               step: pool is SequenceMaxPool ? 1e-3 : 1e-2)
        }
    }

    /// Through attention, positions at or after a sample's valid length get exactly zero gradient
    /// when masked pooling is the only consumer, and extending the padding changes nothing.
    func testPaddingMaskIsExact() throws {
        func graph(length: Int, pool: any GraphOp) -> NetworkGraph {
            var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 1, width: length))
            var x = g.add("emb", .embedding(vocabulary: 11, dimension: 6), g.input)
            x = g.add("proj", .conv1d(outChannels: 6, kernel: 1), x)
            x = g.add("attn", .selfAttention(heads: 3), x)
            x = g.addNode("pool", pool, inputs: [x])
            g.add("fc", .linear(outFeatures: 2, bias: true), x)
            return g
        }
        for pool in [SequenceMeanPool() as any GraphOp, SequenceMaxPool()] {
            var rng = SeededGenerator(seed: 70)
            let short = try Network(graph: graph(length: 5, pool: pool), rng: &rng)
            var rng2 = SeededGenerator(seed: 70)
            let long = try Network(graph: graph(length: 9, pool: pool), rng: &rng2)
            // Valid lengths 5, 2, 1 (padding at the end).
            let tokens: [[Float]] = [[3, 7, 1, 9, 10], [4, 2, 0, 0, 0], [5, 0, 0, 0, 0]]
            let batch = tokens.count
            func input(_ length: Int) -> Tensor {
                Tensor(shape: [batch, 1, 1, length], values: tokens.flatMap { $0 + [Float](repeating: 0, count: length - 5) })
            }
            let ys = try short.forward(input(5), training: true)
            let yl = try long.forward(input(9), training: true)
            assertClose(yl.values, ys.values, rtol: 1e-5, atol: 1e-6, "longer padding")
            _ = try long.backward(outputGradient: Tensor(shape: yl.shape, values: [Float](repeating: 1, count: yl.elementCount)))
            for node in ["proj", "attn"] {
                let grad: [Float] = long.outputGradient(ofNode: node)!.values  // [batch][6][1][9]
                let valids = [5, 2, 1]
                for c in 0..<6 {
                    for n in 0..<batch {
                        let start = (n * 6 + c) * 9
                        let padded = Array(grad[(start + valids[n])..<(start + 9)])
                        XCTAssertEqual(padded, [Float](repeating: 0, count: 9 - valids[n]), "node \(node) c \(c) n \(n)")
                    }
                }
                XCTAssertTrue(grad.contains { $0 != 0 })
            }
        }
    }

    func testSequencePoolingWithMasks() throws {
        // Embedding rows chosen by hand: token t has the value t in both channels (row 0 = 0 and
        // a large value at padded positions would win a max without the mask: use negatives).
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 1, width: 6))
        let e = g.add("emb", .embedding(vocabulary: 8, dimension: 2), g.input)
        let mx = g.add("max", .sequenceMaxPool, e)
        let mean = g.add("mean", .sequenceMeanPool, e)
        g.add("cat", .concat, mx, mean)
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: g, rng: &rng)
        let table: [Float] = (0..<8).flatMap { t -> [Float] in t == 0 ? [0, 0] : [-Float(t), Float(t)] }
        try network.load(namedTensors: [(name: "emb/weight", shape: [8, 2], values: table)])
        let ids: [Float] = [3, 5, 2, 0, 0, 0,   7, 7, 7, 7, 7, 1,   4, 0, 0, 0, 0, 0]
        let y = try network.forward(Tensor(shape: [3, 1, 1, 6], values: ids), training: false)
        // [max c0, max c1, mean c0, mean c1] per sample.
        XCTAssertEqual(y.values, [-2, 5, -10.0 / 3, 10.0 / 3,
                                  -1, 7, -36.0 / 6, 36.0 / 6,
                                  -4, 4, -4, 4])
        // Gradients through the masks (embedding weights), and after a strided conv (rescaled masks).
        // The strided conv has kernel 1 so that no valid output reads a padded position: the
        // padding row, which has no gradient by definition (padding_idx), then has no effect either.
        let tokens = tokenBatch(batch: 4, length: 9, vocabulary: 8, &rng)
        let evenTokens = tokenBatch(batch: 5, length: 10, vocabulary: 8, &rng)
        for (i, pool) in [SequenceMaxPool() as any GraphOp, SequenceMeanPool()].enumerated() {
            try checkGradients(single(pool, FeatureShape(channels: 1, height: 1, width: 9), prefix: [Embedding(vocabulary: 8, dimension: 3)]),
                               batch: 4, seed: UInt64(80 + i), input: tokens)
            try checkGradients(single(pool, FeatureShape(channels: 1, height: 1, width: 10),
                                      prefix: [Embedding(vocabulary: 8, dimension: 3), Conv1d(outChannels: 4, kernel: 1, stride: 2)]),
                               batch: 5, seed: UInt64(90 + i), input: evenTokens, step: pool is SequenceMaxPool ? 1e-3 : 1e-2)
            // Without an embedding every position counts.
            try checkGradients(single(pool, FeatureShape(channels: 3, height: 1, width: 5)), batch: 2, seed: UInt64(95 + i),
                               input: (0..<30).map { Float(($0 * 7) % 30) * 0.1 })
        }
    }

    func testValidLengthRescaling() throws {
        let valid = [10, 7, 3, 1]
        func rescaled(_ length: Int) -> [Int] { valid.map { SequenceMask.validLength($0, of: 10, rescaledTo: length) } }
        XCTAssertEqual(rescaled(10), [10, 7, 3, 1])
        XCTAssertEqual(rescaled(5), [5, 4, 2, 1])
        XCTAssertEqual(rescaled(3), [3, 3, 1, 1])
        XCTAssertEqual(rescaled(1), [1, 1, 1, 1])
        // A network without an embedding records nothing: every position is valid.
        var g = NetworkGraph(inputShape: FeatureShape(channels: 2, height: 1, width: 7))
        g.add("pool", .sequenceMaxPool, g.input)
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: g, rng: &rng)
        _ = try network.forward(Tensor(zeros: [1, 2, 1, 7]), training: false)
        XCTAssertEqual(network.sequenceLengths, [])
        XCTAssertEqual(network.validLength(sample: 0, length: 7), 7)
        XCTAssertEqual(network.validLength(sample: 9, length: 4), 4)
    }

    func testEmbeddingGradientsAndInitialisation() throws {
        var rng = SeededGenerator(seed: 100)
        let g = single(Embedding(vocabulary: 7, dimension: 3), FeatureShape(channels: 1, height: 1, width: 5),
                       suffix: [SequenceMeanPool(), Linear(outFeatures: 2, bias: true)])
        try checkGradients(g, batch: 3, seed: 101, input: tokenBatch(batch: 3, length: 5, vocabulary: 7, &rng))
        // N(0, 1) initialisation with a zero padding row.
        var seed = SeededGenerator(seed: 3)
        let big = try Network(graph: single(Embedding(vocabulary: 400, dimension: 50), FeatureShape(channels: 1, height: 1, width: 2)), rng: &seed)
        let w = big.parameters[0].values
        XCTAssertEqual(Array(w.prefix(50)), [Float](repeating: 0, count: 50))
        let rest: [Double] = w.dropFirst(50).map { Double($0) }
        let count = Double(rest.count)
        let mean = rest.reduce(0, +) / count
        let squares: [Double] = rest.map { ($0 - mean) * ($0 - mean) }
        let std = (squares.reduce(0, +) / count).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 0.02)
        XCTAssertEqual(std, 1, accuracy: 0.02)
    }

    func testEmbeddingClampsOutOfRangeIds() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 1, width: 6))
        g.add("emb", .embedding(vocabulary: 10, dimension: 4), g.input)
        var rng = SeededGenerator(seed: 4)
        let network = try Network(graph: g, rng: &rng)
        let odd: [Float] = [25, -3, 7.6, .nan, 1e30, 2.2]
        let clean: [Float] = [1, 1, 8, 1, 1, 2]
        let a = try network.forward(Tensor(shape: [1, 1, 1, 6], values: odd), training: true)
        XCTAssertEqual(network.sequenceLengths, [6])
        let b = try network.forward(Tensor(shape: [1, 1, 1, 6], values: clean), training: true)
        XCTAssertEqual(a.values, b.values)
        // No input gradient: the requested input gradient is zero.
        let dx = try XCTUnwrap(network.backward(outputGradient: Tensor(shape: b.shape, values: [Float](repeating: 1, count: b.elementCount)),
                                                computeInputGradient: true))
        XCTAssertEqual(dx.values, [Float](repeating: 0, count: 6))
        // Token 1 appeared four times: its row's gradient is 4 per dimension; row 0 none.
        let grad = network.parameters[0].gradient
        XCTAssertEqual(Array(grad[4..<8]), [4, 4, 4, 4])
        XCTAssertEqual(Array(grad[0..<4]), [0, 0, 0, 0])
        XCTAssertEqual(Array(grad[32..<36]), [1, 1, 1, 1])
    }

    func testGELU() throws {
        var g = NetworkGraph(inputShape: FeatureShape(features: 5))
        g.add("gelu", .activation(.gelu), g.input)
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: g, rng: &rng)
        let y = try network.forward(Tensor(shape: [1, 5], values: [-3, -1, 0, 0.5, 2]), training: false)
        // 0.5·x·(1 + erf(x/√2)), from Python's math.erf.
        assertClose(y.values, [-0.0040496937, -0.15865525, 0, 0.34573123, 1.9544997], rtol: 1e-6, atol: 1e-7, "gelu values")
        XCTAssertEqual(ActivationKind(rawValue: "gelu"), .gelu)
        let x = randomNormal(3 * 2 * 3 * 4, &rng, scale: 2)
        try checkGradients(single(Activation(.gelu), FeatureShape(channels: 2, height: 3, width: 4)), batch: 3, seed: 2, input: x)
    }

    // MARK: - Shapes, costs, attributes

    func testShapeErrors() {
        func fails(_ op: any GraphOp, _ inputs: [FeatureShape], arity: Bool = false, _ message: String,
                   file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try op.outputShape(inputs: inputs), message, file: file, line: line) { error in
                guard let e = error as? OpShapeError else { return XCTFail("\(error)", file: file, line: line) }
                XCTAssertEqual(e.isArity, arity, "\(message): \(e.message)", file: file, line: line)
                XCTAssertFalse(e.message.isEmpty, file: file, line: line)
            }
        }
        let seq = FeatureShape(channels: 8, height: 1, width: 10)
        let tokens = FeatureShape(channels: 1, height: 1, width: 10)
        let image = FeatureShape(channels: 8, height: 4, width: 4)
        // 8 channels are a bag of 8 ids per position, not an error.
        XCTAssertEqual(try? Embedding(vocabulary: 10, dimension: 4).outputShape(inputs: [seq]), FeatureShape(channels: 4, height: 1, width: 10))
        fails(Embedding(vocabulary: 10, dimension: 4), [FeatureShape(channels: 1, height: 2, width: 5)], "embedding of height 2")
        fails(Embedding(vocabulary: 1, dimension: 4), [tokens], "vocabulary 1")
        fails(Embedding(vocabulary: 10, dimension: 0), [tokens], "dimension 0")
        fails(Embedding(vocabulary: 10, dimension: 4), [tokens, tokens], arity: true, "two inputs")
        fails(Conv1d(outChannels: 4, kernel: 3), [image], "conv1d of an image")
        fails(Conv1d(outChannels: 4, kernel: 3, groups: 3), [seq], "groups")
        fails(Conv1d(outChannels: 4, kernel: 11), [seq], "kernel too long")
        fails(Conv1d(outChannels: 4, kernel: 3, stride: 0), [seq], "stride 0")
        fails(Conv1d(outChannels: 4, kernel: 3, padding: -1), [seq], "negative padding")
        fails(Conv1d(outChannels: 0, kernel: 3), [seq], "no outputs")
        fails(Conv1d(outChannels: 4, kernel: 3), [], arity: true, "no input")
        fails(SequenceMaxPool(), [image], "max pool of an image")
        fails(SequenceMeanPool(), [image], "mean pool of an image")
        fails(SequenceMeanPool(), [seq, seq], arity: true, "two inputs")
        fails(SelfAttention(heads: 3), [seq], "heads do not divide")
        fails(SelfAttention(heads: 0), [seq], "no heads")
        fails(SelfAttention(heads: 2), [image], "attention on an image")
        fails(SelfAttention(heads: 2), [seq, seq], arity: true, "two inputs")
        fails(LayerNorm(affine: true), [seq, seq], arity: true, "two inputs")
        XCTAssertEqual(try Conv1d(outChannels: 4, kernel: 3, stride: 2, padding: 2, dilation: 2).outputShape(inputs: [seq]),
                       FeatureShape(channels: 4, height: 1, width: 5))
        XCTAssertEqual(try SequenceMaxPool().outputShape(inputs: [seq]), FeatureShape(features: 8))
        XCTAssertEqual(try LayerNorm(affine: true).outputShape(inputs: [image]), image)
        // Through a graph: the error names the node.
        var g = NetworkGraph(inputShape: tokens)
        let e = g.add("emb", .embedding(vocabulary: 10, dimension: 6), g.input)
        g.add("attn", .selfAttention(heads: 4), e)
        XCTAssertThrowsError(try g.inferShapes()) { error in
            guard case let .invalidShape(node, _)? = error as? NetworkGraphError else { return XCTFail("\(error)") }
            XCTAssertEqual(node, "attn")
        }
    }

    func testCosts() throws {
        let seq = FeatureShape(channels: 8, height: 1, width: 10)
        func cost(_ op: any GraphOp, _ input: FeatureShape) throws -> OpCost {
            op.cost(inputs: [input], output: try op.outputShape(inputs: [input]))
        }
        XCTAssertEqual(try cost(Embedding(vocabulary: 20, dimension: 8), FeatureShape(channels: 1, height: 1, width: 10)),
                       OpCost(parameters: 160, multiplyAccumulates: 0, nasBench201Flops: 0))
        // A bag of 4 ids per position sums 4 rows of 8: 4·10·8 adds.
        XCTAssertEqual(try cost(Embedding(vocabulary: 20, dimension: 8), FeatureShape(channels: 4, height: 1, width: 10)),
                       OpCost(parameters: 160, multiplyAccumulates: 320, nasBench201Flops: 320))
        // conv1d 8→6, k3, s2, p1, g2: L' = 5; params 6·4·3 + 6; MACs 5·6·4·3 = 360; + 30 bias adds.
        XCTAssertEqual(try cost(Conv1d(outChannels: 6, kernel: 3, stride: 2, padding: 1, groups: 2), seq),
                       OpCost(parameters: 78, multiplyAccumulates: 360, nasBench201Flops: 390))
        XCTAssertEqual(try cost(Conv1d(outChannels: 16, kernel: 1, bias: false), seq),
                       OpCost(parameters: 128, multiplyAccumulates: 1280, nasBench201Flops: 1280))
        XCTAssertEqual(try cost(SequenceMaxPool(), seq), OpCost(nasBench201Flops: 80))
        XCTAssertEqual(try cost(SequenceMeanPool(), seq), OpCost(nasBench201Flops: 80))
        XCTAssertEqual(try cost(LayerNorm(affine: true), seq), OpCost(parameters: 16, nasBench201Flops: 400))
        XCTAssertEqual(try cost(LayerNorm(affine: false), seq), OpCost(parameters: 0, nasBench201Flops: 400))
        // Attention D=8, L=10: 4·64 + 32 params; MACs 3·10·64 + 2·100·8 + 10·64 = 1920 + 1600 + 640.
        XCTAssertEqual(try cost(SelfAttention(heads: 2), seq), OpCost(parameters: 288, multiplyAccumulates: 4160, nasBench201Flops: 4160))
        XCTAssertEqual(try cost(Activation(.gelu), seq), OpCost(nasBench201Flops: 80))
        // Summed over the fixture graph: PyTorch's parameter count and the network's.
        let f = try loadFixture()
        let g = Self.fixtureGraph()
        let shapes = try g.inferShapes()
        let total = g.nodes.enumerated().dropFirst().reduce(0) { sum, item in
            sum + item.element.op.cost(inputs: item.element.inputs.map { shapes[$0] }, output: shapes[item.offset]).parameters
        }
        XCTAssertEqual(total, f.parameter_count)
        var rng = SeededGenerator(seed: 1)
        XCTAssertEqual(try Network(graph: g, rng: &rng).parameterCount, f.parameter_count)
        // Every new op's layer owns exactly the parameters its cost counts.
        let owners: [any GraphOp] = [Embedding(vocabulary: 20, dimension: 8), Conv1d(outChannels: 6, kernel: 3, groups: 2),
                                     LayerNorm(affine: true), SelfAttention(heads: 4)]
        for op in owners {
            let input = op is Embedding ? FeatureShape(channels: 1, height: 1, width: 10) : seq
            let network = try Network(graph: single(op, input), rng: &rng)
            XCTAssertEqual(network.parameterCount, try cost(op, input).parameters, "\(op)")
        }
    }

    func testAttributesRoundTripThroughJSON() throws {
        let ops: [any GraphOp] = [
            Embedding(vocabulary: 123, dimension: 16),
            Conv1d(outChannels: 12, kernel: 5, stride: 2, padding: 4, dilation: 2, groups: 4, bias: false),
            Conv1d(outChannels: 7, kernel: 1),
            SequenceMaxPool(), SequenceMeanPool(),
            LayerNorm(affine: true), LayerNorm(affine: false),
            SelfAttention(heads: 4),
            Activation(.gelu),
        ]
        for op in ops {
            XCTAssertTrue(OpRegistry.standard.contains(op), op.kind)
            let values = Dictionary(uniqueKeysWithValues: op.attributes.map { ($0.name, $0.value) })
            let back = try type(of: op).init(attributes: OpAttributeReader(kind: op.kind, values: values))
            XCTAssertTrue(back.isSame(as: op), "\(back) vs \(op)")
            XCTAssertEqual(op.latencySignature, op.description)
        }
        XCTAssertEqual(Conv1d(outChannels: 12, kernel: 5, stride: 2, padding: 4, dilation: 2, groups: 4, bias: false).description,
                       "conv1d(out:12,kernel:5,stride:2,padding:4,dilation:2,groups:4,bias:false)")
        XCTAssertEqual(Embedding(vocabulary: 123, dimension: 16).description, "embedding(vocabulary:123,dimension:16)")
        XCTAssertEqual(SelfAttention(heads: 4).description, "selfAttention(heads:4)")
        XCTAssertEqual(LayerNorm(affine: true).description, "layerNorm(affine:true)")
        XCTAssertEqual(SequenceMaxPool().description, "sequenceMaxPool")
        XCTAssertEqual(Activation(.gelu).description, "activation(function:gelu)")
        // A whole graph with every new op through JSON.
        let g = Self.fixtureGraph()
        let data = try JSONEncoder().encode(g)
        let decoded = try JSONDecoder().decode(NetworkGraph.self, from: data)
        XCTAssertEqual(decoded, g)
        XCTAssertEqual(try decoded.inferShapes(), try g.inferShapes())
        // Missing or mistyped attributes are reported.
        XCTAssertThrowsError(try SelfAttention(attributes: OpAttributeReader(kind: "selfAttention", values: [:])))
        XCTAssertThrowsError(try Conv1d(attributes: OpAttributeReader(kind: "conv1d", values: ["out": .string("x")])))
    }

    // MARK: - Training

    /// A tiny text classifier learns "does token 3 occur?" on fixed batches: the loss falls.
    func testTrainsATinyTextModel() throws {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 1, width: 12))
        var x = g.add("emb", .embedding(vocabulary: 16, dimension: 16), g.input)
        x = g.add("conv", .conv1d(outChannels: 16, kernel: 3, padding: 1), x)
        x = g.add("gelu", .activation(.gelu), x)
        let h = g.add("ln", .layerNorm(affine: true), x)
        let a = g.add("attn", .selfAttention(heads: 2), h)
        x = g.add("res", .add, h, a)
        let mx = g.add("max", .sequenceMaxPool, x)
        let mean = g.add("mean", .sequenceMeanPool, x)
        x = g.add("cat", .concat, mx, mean)
        g.add("fc", .linear(outFeatures: 2, bias: true), x)
        var rng = SeededGenerator(seed: 21)
        let network = try Network(graph: g, classCount: 2, rng: &rng)
        let batch = 32
        var ids = [Float](), labels = [Int32]()
        for n in 0..<batch {
            let valid = 3 + rng.nextInt(below: 10)
            var seq = (0..<valid).map { _ in Float(4 + rng.nextInt(below: 12)) }
            if n % 2 == 0 { seq[rng.nextInt(below: valid)] = 3 }
            ids += seq + [Float](repeating: 0, count: 12 - valid)
            labels.append(Int32(n % 2))
        }
        let input = Tensor(shape: [batch, 1, 1, 12], values: ids)
        let optimizer = AdamW(learningRate: 0.01, weightDecay: 0)
        var losses = [Float]()
        for _ in 0..<30 {
            let (loss, _) = try network.lossAndGradients(input: input, labels: labels)
            XCTAssertTrue(loss.isFinite)
            losses.append(loss)
            optimizer.update(network.parameters)
        }
        XCTAssertLessThan(losses.last!, 0.3 * losses.first!, "losses \(losses)")
        let logits = try network.forward(input, training: false)
        let correct = (0..<batch).filter { n in (logits.values[2 * n + 1] > logits.values[2 * n]) == (labels[n] == 1) }.count
        XCTAssertGreaterThanOrEqual(correct, 30)
    }
}
