import Datasets
import Engine
import Foundation
import Lab
import NASCore
import ONNX
import Spaces
import TestSupport
import XCTest

/// The repository root (Tests/ONNXTests/ONNXTestSupport.swift → three levels up).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A python3 that can import onnx, onnxruntime and numpy: `$NASLAB_PYTHON`, then `python3` on the
/// PATH. Without one the test is skipped with the reason — or fails when `NASLAB_REQUIRE_ONNX=1`
/// (set by `scripts/test.sh`, so CI never silently skips the onnxruntime checks).
func pythonWithONNXRuntime(file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let environment = ProcessInfo.processInfo.environment
    var candidates = [String]()
    if let python = environment["NASLAB_PYTHON"], !python.isEmpty { candidates.append(python) }
    for directory in (environment["PATH"] ?? "").split(separator: ":") { candidates.append("\(directory)/python3") }
    candidates += ["/usr/bin/python3", "/usr/local/bin/python3"]
    var tried = [String]()
    for candidate in candidates where !tried.contains(candidate) {
        tried.append(candidate)
        guard FileManager.default.isExecutableFile(atPath: candidate) else { continue }
        if let result = try? runTool(candidate, ["-c", "import numpy, onnx, onnxruntime"]), result.status == 0 { return candidate }
    }
    let message = "no python3 with onnx and onnxruntime found (tried: \(tried.joined(separator: ", "))); "
        + "install them with `pip install onnx onnxruntime` (scripts/test.sh does)"
    if environment["NASLAB_REQUIRE_ONNX"] == "1" {
        XCTFail(message, file: file, line: line)
        throw XCTSkip("onnx/onnxruntime required but missing")
    }
    throw XCTSkip(message)
}

/// One exported model and what NASLab computed for an input batch.
struct ONNXCase {
    var name: String
    var onnx: Data
    /// The ONNX input: float values, or token ids.
    var floatInput: [Float]?
    var tokenInput: [Int64]?
    var inputShape: [Int]
    /// NASLab's logits for that input, `[N, classes]`.
    var expected: [Float]
    var expectedShape: [Int]
}

/// What onnx's checker and onnxruntime said about one case.
struct ONNXResult: Decodable {
    var name: String
    var checked: Bool?
    var opset: Int?
    var irVersion: Int?
    var maxAbsDiff: Double?
    var maxAbsExpected: Double?
    var shape: [Int]?
    var inputName: String?
    var inputType: String?
    var inputShape: [String]?
    var outputName: String?
    var metadataKeys: [String]?
    var error: String?

    enum CodingKeys: String, CodingKey {
        case name, checked, opset, error, shape
        case irVersion = "ir_version", maxAbsDiff = "max_abs_diff", maxAbsExpected = "max_abs_expected"
        case inputName = "input_name", inputType = "input_type", inputShape = "input_shape", outputName = "output_name"
        case metadataKeys = "metadata_keys"
    }
}

/// Runs onnx.checker.check_model (full check) and onnxruntime on every case.
let onnxCheckScript = """
import json, sys
import numpy as np
import onnx
import onnxruntime as ort

manifest = json.load(open(sys.argv[1]))
results = []
for case in manifest["cases"]:
    r = {"name": case["name"]}
    try:
        model = onnx.load(case["onnx"])
        onnx.checker.check_model(model, full_check=True)
        r["checked"] = True
        r["opset"] = int(model.opset_import[0].version)
        r["ir_version"] = int(model.ir_version)
        r["metadata_keys"] = [p.key for p in model.metadata_props]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(case["onnx"], options, providers=["CPUExecutionProvider"])
        i, o = session.get_inputs()[0], session.get_outputs()[0]
        r["input_name"], r["input_type"], r["input_shape"] = i.name, i.type, [str(d) for d in i.shape]
        r["output_name"] = o.name
        dtype = np.int64 if case["input_dtype"] == "int64" else np.float32
        x = np.fromfile(case["input"], dtype=dtype).reshape(case["input_shape"])
        y = session.run(None, {i.name: x})[0]
        expected = np.fromfile(case["expected"], dtype=np.float32).reshape(case["expected_shape"])
        r["shape"] = [int(d) for d in y.shape]
        if y.shape == expected.shape:
            r["max_abs_diff"] = float(np.max(np.abs(y.astype(np.float64) - expected.astype(np.float64))))
            r["max_abs_expected"] = float(np.max(np.abs(expected)))
    except Exception as e:
        r["error"] = type(e).__name__ + ": " + str(e)[:2000]
    results.append(r)
print(json.dumps(results))
"""

/// Writes the cases to a scratch directory, runs `onnxCheckScript` once and returns its results by name.
func runONNXRuntime(_ cases: [ONNXCase], file: StaticString = #filePath, line: UInt = #line) throws -> [String: ONNXResult] {
    let python = try pythonWithONNXRuntime(file: file, line: line)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("naslab-onnx-\(getpid())-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    var entries = [[String: Any]]()
    for (i, c) in cases.enumerated() {
        let base = directory.appendingPathComponent("case\(i)")
        let onnxPath = base.appendingPathExtension("onnx").path
        try c.onnx.write(to: URL(fileURLWithPath: onnxPath))
        let inputPath = base.path + ".input.bin", expectedPath = base.path + ".expected.bin"
        if let tokens = c.tokenInput {
            try tokens.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: inputPath))
        } else {
            try (c.floatInput ?? []).withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: inputPath))
        }
        try c.expected.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: expectedPath))
        entries.append(["name": c.name, "onnx": onnxPath, "input": inputPath, "input_dtype": c.tokenInput == nil ? "float32" : "int64",
                        "input_shape": c.inputShape, "expected": expectedPath, "expected_shape": c.expectedShape])
    }
    let manifest = directory.appendingPathComponent("manifest.json")
    try JSONSerialization.data(withJSONObject: ["cases": entries]).write(to: manifest)
    let result = try runTool(python, ["-c", onnxCheckScript, manifest.path])
    guard result.status == 0 else {
        XCTFail("the onnxruntime check failed to run:\n\(result.output)", file: file, line: line)
        return [:]
    }
    let jsonLine = result.output.split(separator: "\n").last.map(String.init) ?? ""
    let decoded = try JSONDecoder().decode([ONNXResult].self, from: Data(jsonLine.utf8))
    return Dictionary(uniqueKeysWithValues: decoded.map { ($0.name, $0) })
}

/// Asserts that the checker passed and onnxruntime's logits equal NASLab's within `tolerance`.
func assertMatches(_ results: [String: ONNXResult], _ cases: [ONNXCase], tolerance: Double = 1e-4,
                   file: StaticString = #filePath, line: UInt = #line) {
    for c in cases {
        guard let r = results[c.name] else { XCTFail("\(c.name): no result", file: file, line: line); continue }
        XCTAssertNil(r.error, "\(c.name): \(r.error ?? "")", file: file, line: line)
        XCTAssertEqual(r.checked, true, "\(c.name): onnx.checker.check_model", file: file, line: line)
        XCTAssertEqual(r.shape, c.expectedShape, "\(c.name): output shape", file: file, line: line)
        guard let diff = r.maxAbsDiff else { XCTFail("\(c.name): no comparison", file: file, line: line); continue }
        XCTAssertLessThanOrEqual(diff, tolerance, "\(c.name): onnxruntime vs NASLab, max |Δ| \(diff) (max |logit| \(r.maxAbsExpected ?? .nan))",
                                 file: file, line: line)
    }
}

// MARK: - Models with random weights

/// Makes random weights less trivial (biases and norm scales away from 0 and 1) and calibrates
/// batch norm's running statistics on `calibration` (so that logits stay O(1) even in deep networks).
func randomizeWeights(_ network: Network, calibration: Tensor?, seed: UInt64) throws {
    var rng = SeededGenerator(seed: seed)
    let norms = Set(network.graph.nodes.filter { $0.op is BatchNorm || $0.op is LayerNorm }.map(\.name))
    for p in network.parameters {
        let node = String(p.name[..<(p.name.lastIndex(of: "/") ?? p.name.endIndex)])
        if norms.contains(node), p.name.hasSuffix("/weight") {
            p.values = p.values.map { $0 * Float(0.6 + 0.8 * rng.nextUnitDouble()) }
        } else if p.name.hasSuffix("bias") {
            p.values = p.values.map { $0 + Float(0.2 * rng.nextUnitDouble() - 0.1) }
        }
    }
    guard let calibration, network.graph.nodes.contains(where: { $0.op is BatchNorm }) else { return }
    // One training-mode forward: running = 0.9·old + 0.1·batch, so batch = (running − 0.9·old) / 0.1.
    let before = network.buffers.map(\.values)
    network.dropoutGenerator = SeededGenerator(seed: seed ^ 0xD0)
    _ = try network.forward(calibration, training: true)
    for (buffer, old) in zip(network.buffers, before) {
        buffer.values = zip(buffer.values, old).map { new, old in
            let batch = (new - 0.9 * old) / 0.1
            return buffer.name.hasSuffix("running_var") ? max(batch, 1e-2) : batch
        }
    }
}

/// A trained-model stand-in: `space`'s `architecture` with random (calibrated) weights, saved to a
/// model file and loaded back.
func makeModel(space: SearchSpace, spaceName: String, architecture: Architecture, inputShape: FeatureShape, classCount: Int,
               inputKind: InputKind, normalization: Normalization?, tokenizer: Tokenizer?, calibrationInputs: [Float],
               seed: UInt64) throws -> TrainedModel {
    let graph = try space.network(for: architecture, inputShape: inputShape, inputKind: inputKind, classCount: classCount)
    var rng = SeededGenerator(seed: seed)
    let network = try Network(graph: graph, classCount: classCount, rng: &rng)
    var calibration = calibrationInputs
    if inputKind.isStandardized { normalization?.apply(to: &calibration, sampleShape: inputShape) }
    let n = calibration.count / inputShape.elementCount
    try randomizeWeights(network, calibration: Tensor(shape: [n, inputShape.channels, inputShape.height, inputShape.width],
                                                      values: calibration), seed: seed &+ 1)
    let model = TrainedModel(spaceName: spaceName, spaceYAML: try spaceYAML(spaceName), architecture: space.text(of: architecture),
                             inputShape: inputShape, classCount: classCount, classNames: (0..<classCount).map { "class \($0)" },
                             normalization: normalization, network: network, inputKind: inputKind, tokenizer: tokenizer)
    let path = temporaryPath("onnx-model-\(spaceName.replacingOccurrences(of: "/", with: "-"))-\(seed).h5")
    try model.save(to: path)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try TrainedModel.load(from: path)
}

func spaceYAML(_ name: String) throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent("SearchSpaces/\(name).yaml"), encoding: .utf8)
}

func loadSpace(_ name: String) throws -> SearchSpace {
    try SearchSpace.load(yaml: try spaceYAML(name), fileName: name)
}

/// NASLab's logits for raw inputs (standardised as `ModelPredictor` does) and the matching ONNX case.
func onnxCase(_ name: String, model: TrainedModel, rawInputs: [Float], opset: Int = ONNXExporter.defaultOpset) throws -> ONNXCase {
    let s = model.inputShape
    let n = rawInputs.count / s.elementCount
    var features = rawInputs
    if model.inputKind.isStandardized { model.normalization?.apply(to: &features, sampleShape: s) }
    let logits = try model.makeNetwork().forward(Tensor(shape: [n, s.channels, s.height, s.width], values: features), training: false)
    let data = try model.onnxData(opset: opset)
    if case .tokens = model.inputKind {
        return ONNXCase(name: name, onnx: data, floatInput: nil, tokenInput: rawInputs.map { Int64($0) },
                        inputShape: [n, s.channels, s.width], expected: logits.values, expectedShape: [n, model.classCount])
    }
    return ONNXCase(name: name, onnx: data, floatInput: rawInputs, tokenInput: nil, inputShape: [n, s.channels, s.height, s.width],
                    expected: logits.values, expectedShape: [n, model.classCount])
}

// MARK: - Real inputs

/// `count` raw digits images (1×8×8, values 0…16) and the normalisation fitted on the whole set.
func digitsSamples(_ count: Int, offset: Int = 0) throws -> (values: [Float], normalization: Normalization) {
    let raw = try DigitsLoader.load().train
    let subset = raw.subset(Array(offset..<(offset + count)))
    return (subset.features, Normalization(fittedOn: raw))
}

/// Digits upsampled (nearest) to `size`×`size`, one copy per channel with a per-channel offset,
/// and a per-channel normalisation that differs between channels.
func digitsImages(_ count: Int, channels: Int, size: Int, offset: Int = 0) throws -> (values: [Float], normalization: Normalization) {
    let (digits, base) = try digitsSamples(count, offset: offset)
    var values = [Float]()
    values.reserveCapacity(count * channels * size * size)
    for n in 0..<count {
        for c in 0..<channels {
            for y in 0..<size {
                for x in 0..<size {
                    let v = digits[n * 64 + (y * 8 / size) * 8 + (x * 8 / size)]
                    values.append(v * Float(1 + c) / 2 + Float(c))
                }
            }
        }
    }
    let mean = (0..<channels).map { c in base.mean[0] * Float(1 + c) / 2 + Float(c) }
    let std = (0..<channels).map { c in base.std[0] * Float(1 + c) / 2 * (c == 1 ? 1.3 : 1) }
    return (values, Normalization(mean: mean, std: std))
}

/// English sentences for text models.
let sampleTexts = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step!",
    "Don't count your chickens before they hatch; patience is a virtue.",
    "",
    "To be, or not to be: that is the question whether 'tis nobler in the mind to suffer the slings and arrows.",
    "Unknown zyzzyva words appear here",
    "Fortune favors the bold.",
    "All that glitters is not gold, and all that wander are not lost.",
]

/// A tokenizer fitted on `sampleTexts`; with subwords, K ids per position.
func sampleTokenizer(maximumLength: Int, subwordsPerToken: Int?) throws -> Tokenizer {
    let subwords = subwordsPerToken.map {
        Tokenizer.Subwords(characterNGrams: 2...4, wordBigrams: true, buckets: 300, idsPerToken: $0)
    }
    return try Tokenizer(fittedOn: Array(sampleTexts.prefix(6)), maximumLength: maximumLength, subwords: subwords)
}
