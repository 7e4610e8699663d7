import Engine
import NASCore
import XCTest

/// Random normal floats from a seeded generator.
func randomNormal(_ count: Int, _ rng: inout SeededGenerator, scale: Double = 1) -> [Float] {
    (0..<count).map { _ in Float(rng.nextNormal() * scale) }
}

/// Asserts that two arrays agree elementwise within `rtol·|expected| + atol`.
func assertClose(_ actual: [Float], _ expected: [Float], rtol: Float = 1e-4, atol: Float = 1e-6,
                 _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count \(message)", file: file, line: line)
    var worst: Float = 0
    var worstIndex = -1
    for i in 0..<min(actual.count, expected.count) {
        let excess = abs(actual[i] - expected[i]) - (rtol * abs(expected[i]) + atol)
        if !(excess <= worst) { worst = excess; worstIndex = i }
    }
    if worstIndex >= 0 {
        XCTFail("\(message): element \(worstIndex) is \(actual[worstIndex]), expected \(expected[worstIndex])", file: file, line: line)
    }
}

/// Compares the network's analytical gradients (input and every parameter) with central finite
/// differences of L = Σ output·R for a random probe R, computed in Double.
func checkGradients(_ graph: NetworkGraph, batch: Int, seed: UInt64, training: Bool = true,
                    input: [Float]? = nil, step: Float = 1e-2, rtol: Double = 2e-2, samplesPerTensor: Int = 24,
                    file: StaticString = #filePath, line: UInt = #line) throws {
    var rng = SeededGenerator(seed: seed)
    let network = try Network(graph: graph, rng: &rng)
    // Non-trivial BN affine parameters.
    for p in network.parameters where p.shape.count == 1 {
        p.values = (0..<p.count).map { _ in Float(0.5 + rng.nextUnitDouble()) }
    }
    let inShape = graph.inputShape
    let x = input ?? randomNormal(batch * inShape.elementCount, &rng)
    let xTensor = Tensor(shape: [batch, inShape.channels, inShape.height, inShape.width], values: x)
    let dropoutState = network.dropoutGenerator
    let y0 = try network.forward(xTensor, training: training)
    let probe = randomNormal(y0.elementCount, &rng)

    func loss(_ input: [Float]) throws -> Double {
        network.dropoutGenerator = dropoutState
        let y = try network.forward(Tensor(shape: xTensor.shape, values: input), training: training)
        var s = 0.0
        for i in 0..<y.values.count { s += Double(y.values[i]) * Double(probe[i]) }
        return s
    }

    _ = try loss(x)
    let inputGradient = try network.backward(outputGradient: Tensor(shape: y0.shape, values: probe), computeInputGradient: true)!
    let parameterGradients = network.parameters.map { $0.gradient }

    func compare(_ analytical: [Float], _ name: String, perturb: (Int, Float) throws -> Double) rethrows {
        let maxAbs = Double(analytical.map { abs($0) }.max() ?? 0)
        var picks = Array(0..<analytical.count)
        rng.shuffle(&picks)
        for i in picks.prefix(samplesPerTensor) {
            let plus = try perturb(i, step)
            let minus = try perturb(i, -step)
            let numerical = (plus - minus) / (2 * Double(step))
            let a = Double(analytical[i])
            let tolerance = rtol * abs(numerical) + 3e-3 * max(maxAbs, 1e-2)
            if !(abs(a - numerical) <= tolerance) {
                XCTFail("\(name)[\(i)]: analytical \(a), numerical \(numerical)", file: file, line: line)
                return
            }
        }
    }

    try compare(inputGradient.values, "input") { i, h in
        var xp = x
        xp[i] += h
        return try loss(xp)
    }
    for (p, g) in zip(network.parameters, parameterGradients) {
        let original = p.values
        try compare(g, p.name) { i, h in
            var v = original
            v[i] += h
            p.values = v
            let l = try loss(x)
            p.values = original
            return l
        }
    }
}

/// Loads the sklearn digits (8×8, 1,797 samples) from the system copy or the repository's copy.
func loadDigits() throws -> LabeledArrays {
    let candidates = [
        "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz",
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Datasets/Resources/digits.csv.gz").path,
    ]
    guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
        throw XCTSkip("digits.csv.gz not found")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/zcat")
    process.arguments = [path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    var features = [Float](), labels = [Int32]()
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: ",")
        guard fields.count == 65 else { continue }
        for f in fields.prefix(64) { features.append(Float(f)! / 16) }
        labels.append(Int32(Double(fields[64])!))
    }
    return LabeledArrays(features: features, labels: labels, sampleShape: FeatureShape(channels: 1, height: 8, width: 8), classCount: 10)
}
