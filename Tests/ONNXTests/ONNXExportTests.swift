import Datasets
import Engine
import Foundation
import Lab
import NASCore
import ONNX
import Spaces
import TestSupport
import XCTest

/// ONNX export checked by onnx's checker and onnxruntime: a sampled architecture of every shipped
/// space and every reference network, with random (seeded, calibrated) weights and a non-trivial
/// input normalisation, on real inputs (digits, English sentences); onnxruntime's logits must
/// equal NASLab's within 1e-4.
final class ONNXExportTests: XCTestCase {
    /// The first architecture of `space` sampled from seeds 1, 2, … whose graph satisfies `wanted`
    /// (the first sample when none of 200 does).
    func sampledArchitecture(_ space: SearchSpace, inputShape: FeatureShape, inputKind: InputKind,
                             wanted: (NetworkGraph) -> Bool = { _ in true }) throws -> Architecture {
        var first: Architecture?
        for seed in 1...200 {
            var rng = SeededGenerator(seed: UInt64(seed))
            let architecture = space.sample(using: &rng)
            first = first ?? architecture
            let graph = try space.network(for: architecture, inputShape: inputShape, inputKind: inputKind, classCount: 3)
            if wanted(graph) { return architecture }
        }
        return first!
    }

    func imageCase(_ spaceName: String, channels: Int, size: Int, batch: Int, classes: Int = 10, seed: UInt64,
                   wanted: (NetworkGraph) -> Bool = { _ in true }) throws -> ONNXCase {
        let space = try loadSpace(spaceName)
        let shape = FeatureShape(channels: channels, height: size, width: size)
        let (inputs, normalization) = try channels == 1 && size == 8 ? digitsSamples(batch, offset: 100)
            : digitsImages(batch, channels: channels, size: size, offset: 100)
        // Batch norm statistics from 8 samples (2 for large inputs), as a trained network would have.
        let (calibration, _) = try channels == 1 && size == 8 ? digitsSamples(16)
            : digitsImages(size >= 128 ? 2 : 8, channels: channels, size: size)
        let architecture = space.isFixed ? Architecture(choices: [])
            : try sampledArchitecture(space, inputShape: shape, inputKind: .image, wanted: wanted)
        let model = try makeModel(space: space, spaceName: spaceName, architecture: architecture, inputShape: shape,
                                  classCount: classes, inputKind: .image, normalization: normalization, tokenizer: nil,
                                  calibrationInputs: calibration, seed: seed)
        return try onnxCase("\(spaceName) \(shape) \(model.architecture.prefix(120))", model: model, rawInputs: inputs)
    }

    func textCase(_ spaceName: String, subwords: Int?, length: Int, seed: UInt64,
                  wanted: (NetworkGraph) -> Bool = { _ in true }) throws -> ONNXCase {
        let space = try loadSpace(spaceName)
        let tokenizer = try sampleTokenizer(maximumLength: length, subwordsPerToken: subwords)
        let shape = tokenizer.sampleShape
        let architecture = space.isFixed ? Architecture(choices: [])
            : try sampledArchitecture(space, inputShape: shape, inputKind: tokenizer.inputKind, wanted: wanted)
        let (ids, _) = tokenizer.encodeFeatures(sampleTexts)
        let model = try makeModel(space: space, spaceName: spaceName, architecture: architecture, inputShape: shape, classCount: 4,
                                  inputKind: tokenizer.inputKind, normalization: nil, tokenizer: tokenizer, calibrationInputs: ids,
                                  seed: seed)
        return try onnxCase("\(spaceName) \(shape) \(model.architecture.prefix(120))", model: model, rawInputs: ids)
    }

    func tabularCase(seed: UInt64) throws -> ONNXCase {
        let space = try loadSpace("tabular-small")
        let shape = FeatureShape(features: 64)
        let raw = try DigitsLoader.load().train
        let flat = LabeledArrays(features: raw.features, labels: raw.labels, sampleShape: shape, classCount: raw.classCount)
        let normalization = Normalization(fittedOn: flat)
        let architecture = try sampledArchitecture(space, inputShape: shape, inputKind: .features) { graph in
            graph.nodes.contains { $0.op is BatchNorm } && graph.nodes.contains { ($0.op as? Activation)?.function == .gelu }
        }
        let model = try makeModel(space: space, spaceName: "tabular-small", architecture: architecture, inputShape: shape,
                                  classCount: 10, inputKind: .features, normalization: normalization, tokenizer: nil,
                                  calibrationInputs: Array(flat.features.prefix(64 * 64)), seed: seed)
        let inputs = Array(flat.features[(64 * 200)..<(64 * 206)])
        return try onnxCase("tabular-small \(model.architecture)", model: model, rawInputs: inputs)
    }

    func testEveryShippedSpaceAndReferenceNetworkMatchesOnnxRuntime() throws {
        _ = try pythonWithONNXRuntime()
        let start = Date()
        var cases = [ONNXCase]()
        // Image spaces: digits as they are (1×8×8) and upsampled to 3×32×32.
        for (i, name) in ["small", "medium", "large", "nasbench201"].enumerated() {
            cases.append(try imageCase(name, channels: 1, size: 8, batch: 4, seed: UInt64(10 + i)))
            cases.append(try imageCase(name, channels: 3, size: 32, batch: 2, seed: UInt64(20 + i)))
        }
        // Reference networks.
        cases.append(try imageCase("reference/cnn", channels: 1, size: 8, batch: 4, seed: 30))
        cases.append(try imageCase("reference/resnet18", channels: 3, size: 224, batch: 1, classes: 1000, seed: 31))
        cases.append(try imageCase("reference/mobilenet_v2", channels: 3, size: 64, batch: 2, classes: 100, seed: 32))
        // Text spaces: word ids only (K = 1) and subword bags (K > 1); texts padded and truncated.
        cases.append(try textCase("text-small", subwords: nil, length: 16, seed: 40) { g in
            g.nodes.contains { $0.op is SelfAttention } && g.nodes.contains { $0.op is SequenceMeanPool }
        })
        cases.append(try textCase("text-medium", subwords: 6, length: 16, seed: 41) { g in
            g.nodes.contains { $0.op is SequenceMaxPool } && g.nodes.contains { $0.op is Concat }
        })
        cases.append(try textCase("text-large", subwords: nil, length: 16, seed: 42) { g in
            g.nodes.contains { $0.op is SelfAttention } && g.nodes.contains { ($0.op as? Activation)?.function == .gelu }
                && g.nodes.contains { $0.op is SequenceMaxPool }
        })
        cases.append(try textCase("reference/text-cnn", subwords: 5, length: 12, seed: 43))
        // Tabular.
        cases.append(try tabularCase(seed: 50))
        let built = Date()

        let results = try runONNXRuntime(cases)
        assertMatches(results, cases)
        for c in cases where c.name.hasPrefix("text-") || c.name.hasPrefix("reference/text") {
            XCTAssertEqual(results[c.name]?.inputType, "tensor(int64)", c.name)
            XCTAssertTrue(results[c.name]?.metadataKeys?.contains(ONNXMetadataKey.vocabulary) ?? false, c.name)
            XCTAssertTrue(results[c.name]?.metadataKeys?.contains(ONNXMetadataKey.tokenizer) ?? false, c.name)
        }
        for c in cases {
            XCTAssertEqual(results[c.name]?.inputName, "input", c.name)
            XCTAssertEqual(results[c.name]?.outputName, "logits", c.name)
            XCTAssertEqual(results[c.name]?.opset, ONNXExporter.defaultOpset, c.name)
            XCTAssertEqual(results[c.name]?.inputShape?.first, "N", c.name)
        }
        let report = cases.map { c in
            String(format: "%@: max |Δ| %.2e (max |logit| %.2f)", c.name, results[c.name]?.maxAbsDiff ?? .nan,
                   results[c.name]?.maxAbsExpected ?? .nan)
        }.joined(separator: "\n")
        print("ONNX export vs onnxruntime (export \(String(format: "%.1f", built.timeIntervalSince(start))) s, "
              + "check \(String(format: "%.1f", Date().timeIntervalSince(built))) s):\n\(report)")
    }

    // MARK: - Every op, every opset

    /// A graph with every image and flat-feature op of the registry, in most of their variants.
    static func imageOpsGraph() -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 12, width: 12))
        var x = g.add("conv", Conv2d(outChannels: 8, kernel: 3, padding: 1, bias: true), g.input)
        x = g.add("bn", BatchNorm(affine: true), x)
        x = g.add("hardswish", Activation(.hardSwish), x)
        x = g.add("depthwise", Conv2d(outChannels: 8, kernel: 3, stride: 2, padding: 2, dilation: 2, groups: 8), x)   // 8×6×6
        x = g.add("bn_plain", BatchNorm(affine: false), x)
        x = g.add("relu6", Activation(.relu6), x)
        let m = g.add("maxpool", MaxPool(PoolAttributes(kernel: 3, stride: 1, padding: 1)), x)
        let a1 = g.add("avgpool_exclude", AvgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: false)), x)
        let a2 = g.add("avgpool_include", AvgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1, countIncludePadding: true)), x)
        let z = g.add("zero", Zero(stride: 1), x)
        var s = g.add("sum", Add(), m, a1, a2, z)
        s = g.add("sigmoid", Activation(.sigmoid), s)
        let down = g.add("maxpool2", MaxPool(PoolAttributes(kernel: 2, stride: 2)), s)                                // 8×3×3
        let zs = g.add("zero_strided", Zero(stride: 2), s)                                                            // 8×3×3
        var c = g.add("concat", Concat(), down, zs, down)                                                             // 24×3×3
        // A decoder branch: transposed convolution and both upsampling modes, pooled into the head.
        let deconv = g.add("deconv", ConvTranspose2d(outChannels: 6, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true), down) // 6×6×6
        let bilinear = g.add("upsample_bilinear", Upsample(scale: 2, mode: .bilinear), deconv)                       // 6×12×12
        let nearest = g.add("upsample_nearest", Upsample(scale: 4, mode: .nearest), down)                            // 8×12×12
        let decoded = g.add("decoder_gap", GlobalAvgPool(), g.add("decoder_concat", Concat(), bilinear, nearest))     // 14
        c = g.add("gelu", Activation(.gelu), c)
        c = g.add("identity", Identity(), c)
        c = g.add("dropout", Dropout(rate: 0.3), c)
        c = g.add("layernorm", LayerNorm(affine: true), c)
        c = g.add("relu", Activation(.relu), c)
        let pooled = g.add("gap", GlobalAvgPool(), c)                                                                 // 24
        let flat = g.add("flatten", Flatten(), c)                                                                     // 216
        let l1 = g.add("fc_flat", Linear(outFeatures: 16, bias: false), flat)
        let l2 = g.add("fc_pooled", Linear(outFeatures: 16, bias: true), pooled)
        var h = g.add("fc_sum", Add(), l1, l2)
        h = g.add("bn_flat", BatchNorm(affine: true), h)
        h = g.add("ln_flat", LayerNorm(affine: false), h)
        h = g.add("gelu_flat", Activation(.gelu), h)
        let pooled2 = g.add("gap_flat", GlobalAvgPool(), h)                                                           // 16 (a 1×1 map)
        h = g.add("concat_flat", Concat(), h, pooled2, decoded)                                                       // 46
        g.add("classifier", Linear(outFeatures: 5, bias: true), h)
        return g
    }

    /// A graph with every sequence op: subword-bag embedding, strided/dilated/grouped conv1d,
    /// layer norm, masked attention on a shortened sequence, masked max and mean pooling.
    static func textOpsGraph(bag: Int, length: Int, vocabulary: Int) -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: bag, height: 1, width: length))
        let e = g.add("embedding", Embedding(vocabulary: vocabulary, dimension: 8), g.input)
        var x = g.add("conv_strided", Conv1d(outChannels: 8, kernel: 3, stride: 2, padding: 1, groups: 2), e)          // 8×1×⌈L/2⌉
        x = g.add("ln", LayerNorm(affine: true), x)
        let att = g.add("attention", SelfAttention(heads: 2), x)
        let dil = g.add("conv_dilated", Conv1d(outChannels: 8, kernel: 3, padding: 2, dilation: 2, bias: false), x)
        x = g.add("residual", Add(), att, dil)
        x = g.add("gelu", Activation(.gelu), x)
        let full = g.add("attention_full", SelfAttention(heads: 4), e)
        let p1 = g.add("max", SequenceMaxPool(), x)
        let p2 = g.add("mean", SequenceMeanPool(), x)
        let p3 = g.add("mean_full", SequenceMeanPool(), full)
        var h = g.add("concat", Concat(), p1, p2, p3)
        h = g.add("bn", BatchNorm(affine: true), h)
        h = g.add("ln_flat", LayerNorm(affine: false), h)
        h = g.add("dropout", Dropout(rate: 0.5), h)
        g.add("classifier", Linear(outFeatures: 4, bias: true), h)
        return g
    }

    /// An ONNX case of `graph` with random weights and raw `inputs`.
    func graphCase(_ name: String, graph: NetworkGraph, input: ONNXInputSpec, inputs: [Float], opset: Int, seed: UInt64) throws -> ONNXCase {
        var rng = SeededGenerator(seed: seed)
        let network = try Network(graph: graph, rng: &rng)
        let s = graph.inputShape
        let n = inputs.count / s.elementCount
        var standardized = inputs
        if case let .floats(mean?, std?) = input {
            Normalization(mean: mean, std: std).apply(to: &standardized, sampleShape: s)
        }
        let x = Tensor(shape: [n, s.channels, s.height, s.width], values: standardized)
        try randomizeWeights(network, calibration: x, seed: seed + 1)
        let logits = try network.forward(x, training: false)
        let data = try ONNXExporter(opset: opset).serialized(ONNXNetwork(graph: graph, tensors: network.namedTensors(), input: input))
        if case .tokens = input {
            return ONNXCase(name: name, onnx: data, floatInput: nil, tokenInput: inputs.map { Int64($0) },
                            inputShape: [n, s.channels, s.width], expected: logits.values, expectedShape: [n, logits.shape[1]])
        }
        return ONNXCase(name: name, onnx: data, floatInput: inputs, tokenInput: nil, inputShape: [n, s.channels, s.height, s.width],
                        expected: logits.values, expectedShape: [n, logits.shape[1]])
    }

    func testEveryRegistryOpAtEveryOpsetMatchesOnnxRuntime() throws {
        _ = try pythonWithONNXRuntime()
        // Every op of the registry is used by these two graphs (the test fails when a new op is not).
        let image = Self.imageOpsGraph()
        let length = 9, bag = 3, vocabulary = 30
        let text = Self.textOpsGraph(bag: bag, length: length, vocabulary: vocabulary)
        let used = Set((image.nodes + text.nodes).map(\.op.kind))
        for type in OpRegistry.standard.types { XCTAssertTrue(used.contains(type.kind), "op '\(type.kind)' is not covered") }

        let (images, _) = try digitsImages(3, channels: 3, size: 12)
        let normalization = ONNXInputSpec.floats(mean: [4, 6, 9], std: [5, 3, 8])
        // Token ids, slot-major per sample: padding at the end, an empty text, and ids outside 0..<V
        // (read as the unknown token).
        var tokens = [Float]()
        let lengths = [9, 4, 0, 1, 6]
        for (sample, valid) in lengths.enumerated() {
            for k in 0..<bag {
                for l in 0..<length {
                    guard l < valid else { tokens.append(0); continue }
                    if k == 0 {
                        tokens.append(sample == 4 && l == 2 ? Float(vocabulary + 7) : sample == 4 && l == 3 ? -2 : Float(2 + (sample * 7 + l * 3) % (vocabulary - 2)))
                    } else {
                        tokens.append((l + k + sample) % 3 == 0 ? 0 : Float((sample * 11 + l * 5 + k) % vocabulary))
                    }
                }
            }
        }
        var cases = [ONNXCase]()
        for opset in [13, 14, 17, 18, 20, 21] {
            cases.append(try graphCase("image ops, opset \(opset)", graph: image, input: normalization, inputs: images, opset: opset, seed: 7))
            cases.append(try graphCase("text ops, opset \(opset)", graph: text, input: .tokens(idCount: vocabulary), inputs: tokens,
                                       opset: opset, seed: 8))
        }
        let results = try runONNXRuntime(cases)
        assertMatches(results, cases)
        for c in cases { XCTAssertEqual(results[c.name]?.opset, Int(c.name.split(separator: " ").last!), c.name) }
        print(cases.map { String(format: "%@: max |Δ| %.2e (max |logit| %.2f)", $0.name, results[$0.name]?.maxAbsDiff ?? .nan,
                                 results[$0.name]?.maxAbsExpected ?? .nan) }.joined(separator: "\n"))
    }

    // MARK: - Errors

    /// An op outside the standard registry (it has no ONNX mapping).
    struct Scale: GraphOp {
        static let kind = "scale"
        var factor: Double
        init(factor: Double) { self.factor = factor }
        init(attributes a: OpAttributeReader) throws { factor = try a.double("factor") }
        var attributes: OpAttributeList { [("factor", .double(factor))] }
        func outputShape(inputs: [FeatureShape]) throws -> FeatureShape { try Self.single(inputs) }
        func cost(inputs: [FeatureShape], output: FeatureShape) -> OpCost { .free }
        func makeLayer(_ context: inout LayerContext) throws -> LayerHandle? { nil }
    }

    func testUnsupportedOpOpsetAndWeightsGiveClearErrors() throws {
        var g = NetworkGraph(inputShape: FeatureShape(features: 4))
        let s = g.add("odd/scale", Scale(factor: 2), g.input)
        g.add("fc", Linear(outFeatures: 2, bias: false), s)
        let tensors = [(name: "fc/weight", shape: [2, 4], values: [Float](repeating: 0.5, count: 8))]
        let network = ONNXNetwork(graph: g, tensors: tensors, input: .floats(mean: nil, std: nil))
        XCTAssertThrowsError(try ONNXExporter().serialized(network, registry: OpRegistry.standard.registering(Scale.self))) { error in
            XCTAssertEqual(error as? ONNXExportError, .unsupportedOp(kind: "scale", node: "odd/scale"))
            XCTAssertEqual("\(error)", "cannot export op 'scale' (node 'odd/scale') to ONNX: NASLab has no ONNX mapping for it")
        }

        var plain = NetworkGraph(inputShape: FeatureShape(features: 4))
        plain.add("fc", Linear(outFeatures: 2, bias: false), plain.input)
        let ok = ONNXNetwork(graph: plain, tensors: tensors, input: .floats(mean: nil, std: nil))
        for opset in [12, 22] {
            XCTAssertThrowsError(try ONNXExporter(opset: opset).serialized(ok)) { error in
                XCTAssertEqual(error as? ONNXExportError, .unsupportedOpset(opset))
                XCTAssertTrue("\(error)".contains("cannot export to ONNX opset \(opset): NASLab exports opsets 13 to 21"), "\(error)")
            }
        }
        XCTAssertNoThrow(try ONNXExporter(opset: 13).serialized(ok))

        let missing = ONNXNetwork(graph: plain, tensors: [], input: .floats(mean: nil, std: nil))
        XCTAssertThrowsError(try ONNXExporter().serialized(missing)) { error in
            XCTAssertEqual(error as? ONNXExportError, .missingTensor("fc/weight"))
        }
        let wrong = ONNXNetwork(graph: plain, tensors: [(name: "fc/weight", shape: [4, 2], values: [Float](repeating: 0, count: 8))],
                                input: .floats(mean: nil, std: nil))
        XCTAssertThrowsError(try ONNXExporter().serialized(wrong)) { error in
            XCTAssertEqual(error as? ONNXExportError, .tensorShapeMismatch(name: "fc/weight", expected: [2, 4], got: [4, 2]))
        }
    }

    func testModelStructureAndMetadata() throws {
        let tokenizer = try sampleTokenizer(maximumLength: 8, subwordsPerToken: 4)
        let space = try loadSpace("reference/text-cnn")
        let (ids, _) = tokenizer.encodeFeatures(sampleTexts)
        let model = try makeModel(space: space, spaceName: "reference/text-cnn", architecture: Architecture(choices: []),
                                  inputShape: tokenizer.sampleShape, classCount: 3, inputKind: tokenizer.inputKind,
                                  normalization: nil, tokenizer: tokenizer, calibrationInputs: ids, seed: 3)
        let proto = try Onnx_ModelProto(serializedBytes: try model.onnxData())
        XCTAssertEqual(proto.producerName, "naslab")
        XCTAssertEqual(proto.irVersion, 8)
        XCTAssertEqual(proto.opsetImport.map(\.version), [17])
        let graph = proto.graph
        XCTAssertEqual(graph.input.map(\.name), ["input"])
        XCTAssertEqual(graph.output.map(\.name), ["logits"])
        let inputType = graph.input[0].type.tensorType
        XCTAssertEqual(inputType.elemType, Int32(Onnx_TensorProto.DataType.int64.rawValue))
        XCTAssertEqual(inputType.shape.dim.map { $0.dimParam.isEmpty ? String($0.dimValue) : $0.dimParam }, ["N", "4", "8"])
        XCTAssertEqual(graph.output[0].type.tensorType.shape.dim.map { $0.dimParam.isEmpty ? String($0.dimValue) : $0.dimParam },
                       ["N", "3"])
        // Weights keep the engine's names (and PyTorch's layouts).
        let names = Set(graph.initializer.map(\.name))
        for tensor in model.tensors { XCTAssertTrue(names.contains(tensor.name), "initializer \(tensor.name)") }
        let metadata = Dictionary(uniqueKeysWithValues: proto.metadataProps.map { ($0.key, $0.value) })
        XCTAssertEqual(metadata[ONNXMetadataKey.task], "text_classification")
        XCTAssertEqual(metadata[ONNXMetadataKey.output], "logits")
        XCTAssertEqual(metadata[ONNXMetadataKey.inputShape], "4x1x8")
        XCTAssertEqual(metadata[ONNXMetadataKey.maximumLength], "8")
        XCTAssertEqual(metadata[ONNXMetadataKey.idsPerToken], "4")
        XCTAssertEqual(metadata[ONNXMetadataKey.paddingID], "0")
        XCTAssertEqual(metadata[ONNXMetadataKey.unknownID], "1")
        XCTAssertEqual(metadata[ONNXMetadataKey.classNames], #"["class 0","class 1","class 2"]"#)
        let vocabulary = try JSONDecoder().decode([String].self, from: Data(try XCTUnwrap(metadata[ONNXMetadataKey.vocabulary]).utf8))
        XCTAssertEqual(vocabulary, tokenizer.vocabulary)
        XCTAssertEqual(try Tokenizer(json: try XCTUnwrap(metadata[ONNXMetadataKey.tokenizer])), tokenizer)

        // An image model carries its normalisation in the graph (Sub, Mul first) and in the metadata.
        let (digits, normalization) = try digitsSamples(8)
        let cnn = try makeModel(space: try loadSpace("reference/cnn"), spaceName: "reference/cnn", architecture: Architecture(choices: []),
                                inputShape: FeatureShape(channels: 1, height: 8, width: 8), classCount: 10, inputKind: .image,
                                normalization: normalization, tokenizer: nil, calibrationInputs: digits, seed: 4)
        let image = try Onnx_ModelProto(serializedBytes: try cnn.onnxData(opset: 13))
        XCTAssertEqual(image.irVersion, 7)
        XCTAssertEqual(Array(image.graph.node.prefix(2).map(\.opType)), ["Sub", "Mul"])
        XCTAssertEqual(image.graph.node.last?.output, ["logits"])
        let imageMetadata = Dictionary(uniqueKeysWithValues: image.metadataProps.map { ($0.key, $0.value) })
        XCTAssertEqual(imageMetadata[ONNXMetadataKey.inputKind], "image")
        XCTAssertNotNil(imageMetadata[ONNXMetadataKey.normalization])
        XCTAssertNil(imageMetadata[ONNXMetadataKey.vocabulary])
    }
}
