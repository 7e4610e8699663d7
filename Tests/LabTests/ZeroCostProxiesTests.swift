import Engine
import Foundation
import Lab
import NASCore
import Spaces
import TestSupport
import XCTest

/// Zero-cost proxies: hand-computed and PyTorch reference values, determinism, every task's
/// spaces, the command line, and NAS-Bench-201 against NASLib's own values.
final class ZeroCostProxiesTests: XCTestCase {
    // MARK: Tiny networks

    /// input(2) → linear(3) → relu → linear(2), with weights of both signs.
    func tinyMLP() throws -> Network {
        var g = NetworkGraph(inputShape: FeatureShape(features: 2))
        var x = g.add("fc1", .linear(outFeatures: 3, bias: true), g.input)
        x = g.add("relu", .activation(.relu), x)
        g.add("fc2", .linear(outFeatures: 2, bias: true), x)
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: g, rng: &rng)
        try XCTUnwrap(network.tensor(named: "fc1/weight")).values = [1, -2, 0.5, 1, -1, 3]
        try XCTUnwrap(network.tensor(named: "fc1/bias")).values = [0.5, -1, 2]
        try XCTUnwrap(network.tensor(named: "fc2/weight")).values = [1, -1, 2, 0.5, 0.25, -1]
        try XCTUnwrap(network.tensor(named: "fc2/bias")).values = [1, -1]
        return network
    }

    func testSynflowOfATinyMLPMatchesTheHandComputedValue() throws {
        let network = try tinyMLP()
        let before = network.parameters.map(\.values)
        // |W1|·1 + |b1| = h = [3.5, 2.5, 6]; R = 1ᵀ|W2|h + Σ|b2|.
        // Σ|W2|∘∂R/∂W2 = Σ_kj |W2|kj·h_j = 18 + 8.375; column sums of |W2| = [1.5, 1.25, 3], so
        // Σ|W1|∘∂R/∂W1 = 1.5·3 + 1.25·1.5 + 3·4 = 18.375. Biases are not scored.
        let expected = log(26.375 + 18.375)
        XCTAssertEqual(try ZeroCost.synflow(network), expected, accuracy: 1e-6)
        XCTAssertEqual(network.parameters.map(\.values), before, "synflow must restore the parameters")
        XCTAssertEqual(network.zeroCostWeights.map(\.name), ["fc1/weight", "fc2/weight"])
    }

    func testSynflowScalesPastFloat32OverflowExactly() throws {
        // 12 linear layers 4→4 with every weight 1000, no bias: each unit of layer l is 4000^l, R =
        // 4·4000^12 ≈ 7e43 (beyond Float32), and each layer contributes R (homogeneity): 12·R.
        let depth = 12
        var g = NetworkGraph(inputShape: FeatureShape(features: 4))
        var x = g.input
        for i in 0..<depth {
            x = g.add("fc\(i)", .linear(outFeatures: 4, bias: false), x)
            x = g.add("relu\(i)", .activation(.relu), x)
        }
        var rng = SeededGenerator(seed: 1)
        let network = try Network(graph: g, rng: &rng)
        for w in network.zeroCostWeights { w.values = [Float](repeating: 1000, count: w.count) }
        let expected = log(Double(depth) * 4) + Double(depth) * log(4000.0)
        XCTAssertEqual(try ZeroCost.synflow(network), expected, accuracy: 1e-4)
    }

    /// conv3x3(1→3) → batch norm → relu → global average pool → linear(3→2), the network of
    /// Tests/make_zero_cost_fixture.py.
    func tinyConvNet(batchNorm: Bool = true) throws -> Network {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: 4, width: 4))
        var x = g.add("conv", Conv2d(outChannels: 3, kernel: 3, padding: 1), g.input)
        x = g.add("bn", .batchNorm(affine: true), x)
        x = g.add("relu", .activation(.relu), x)
        x = g.add("gap", .globalAvgPool, x)
        g.add("fc", .linear(outFeatures: 2, bias: true), x)
        var rng = SeededGenerator(seed: 3)
        let network = try Network(graph: batchNorm ? g : g.removingBatchNorm(), rng: &rng)
        try XCTUnwrap(network.tensor(named: "conv/weight")).values = (0..<27).map { Float(0.3 * sin(1.7 * Double($0) + 0.2)) }
        try XCTUnwrap(network.tensor(named: "fc/weight")).values = (0..<6).map { Float(0.5 * cos(0.9 * Double($0))) }
        try XCTUnwrap(network.tensor(named: "fc/bias")).values = [0.1, -0.2]
        return network
    }

    var tinyBatch: ZeroCostBatch {
        var features = [Float]()
        for n in 0..<4 {
            for p in 0..<16 {
                let v: Double = sin(0.37 * Double(n * 16 + p)) + 0.1 * Double(n)
                features.append(Float(v))
            }
        }
        let data = LabeledArrays(features: features, labels: [0, 1, 1, 0], sampleShape: FeatureShape(channels: 1, height: 4, width: 4),
                                 classCount: 2)
        return ZeroCostBatch(data: data, indices: [0, 1, 2, 3])
    }

    /// Values printed by `python3 Tests/make_zero_cost_fixture.py` (PyTorch 2, Float64).
    func testProxiesOfATinyConvNetMatchPyTorch() throws {
        XCTAssertEqual(try ZeroCost.naswot(try tinyConvNet(), batch: tinyBatch), 11.1417458348, accuracy: 1e-6)
        XCTAssertEqual(try ZeroCost.jacov(try tinyConvNet(), batch: tinyBatch), -11.2655528164, accuracy: 2e-3)
        let g = try ZeroCost.lossGradientProxies(try tinyConvNet(), objective: .classification, batch: tinyBatch)
        XCTAssertEqual(g.snip, 0.2778078550, accuracy: 1e-5)
        XCTAssertEqual(g.gradNorm, 0.3986073543, accuracy: 1e-5)
        XCTAssertEqual(try ZeroCost.synflow(try tinyConvNet(batchNorm: false)), 1.5405036228, accuracy: 1e-5)
    }

    func testLinearAlgebraHelpers() {
        // det [[4, 2], [2, 3]] = 8; eigenvalues of [[2, 1], [1, 2]] are 1 and 3.
        XCTAssertEqual(ZeroCost.logAbsDeterminant([4, 2, 2, 3], size: 2), log(8), accuracy: 1e-12)
        XCTAssertEqual(ZeroCost.logAbsDeterminant([1, 2, 2, 4], size: 2), -.infinity)
        let eigen = ZeroCost.symmetricEigenvalues([2, 1, 0, 1, 2, 0, 0, 0, 5], size: 3)
        XCTAssertEqual(eigen[0], 1, accuracy: 1e-12)
        XCTAssertEqual(eigen[1], 3, accuracy: 1e-12)
        XCTAssertEqual(eigen[2], 5, accuracy: 1e-12)
        XCTAssertNil(ZeroCost.correlationMatrix([1, 1, 1, 0, 1, 2], rows: 2, columns: 3), "a constant row has no correlation")
    }

    // MARK: Determinism and every task

    func testSameSeedGivesIdenticalNumbers() throws {
        func run(_ seed: UInt64) throws -> [ZeroCostScores] {
            var request = ZeroCostRequest(space: "small")
            request.random = 2
            request.seed = seed
            request.dataset = "digits"
            request.batchSize = 16
            var results = [ZeroCostScores]()
            try request.run { results.append($0) }
            return results
        }
        let a = try run(7), b = try run(7), c = try run(8)
        XCTAssertEqual(a.count, 2)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x.architecture, y.architecture)
            XCTAssertEqual(Set(x.values.keys), Set(ZeroCostProxy.allCases))
            for p in ZeroCostProxy.allCases { XCTAssertEqual(x[p], y[p], "\(p) differs for the same seed") }
        }
        XCTAssertNotEqual(a[0][.synflow], c[0][.synflow], "another seed draws other weights")
    }

    func testProxiesRunOnEveryTaskSpace() throws {
        var rng = SeededGenerator(seed: 5)
        func uniform(_ n: Int) -> [Float] { (0..<n).map { _ in rng.nextUnitFloat() * 2 - 1 } }
        let n = 6
        let image = FeatureShape(channels: 1, height: 8, width: 8)
        let scene = FeatureShape(channels: 1, height: 32, width: 32)
        let text = FeatureShape(channels: 4, height: 1, width: 32)
        let vocabulary = 500
        let tokens = (0..<(n * text.elementCount)).map { _ in Float(1 + rng.nextInt(below: vocabulary - 1)) }
        let masks = (0..<(n * scene.height * scene.width)).map { _ in Int32(rng.nextInt(below: 4)) }
        let boxes = (0..<n).map { ObjectBox(image: $0, classID: $0 % 3, x1: 4, y1: 6, x2: 20, y2: 26) }
        let cases: [(space: String, shape: FeatureShape, kind: InputKind, data: LabeledArrays)] = [
            ("small", image, .image, LabeledArrays(features: uniform(n * image.elementCount), labels: (0..<n).map { Int32($0 % 3) },
                                                   sampleShape: image, classCount: 3)),
            ("text-small", text, .tokens(vocabularySize: vocabulary),
             LabeledArrays(features: tokens, labels: (0..<n).map { Int32($0 % 3) }, sampleShape: text, classCount: 3)),
            ("segmentation-small", scene, .image, LabeledArrays(features: uniform(n * scene.elementCount), labels: [Int32](repeating: 0, count: n),
                                                                sampleShape: scene, classCount: 3, masks: masks)),
            ("detection-small", scene, .image, LabeledArrays(features: uniform(n * scene.elementCount), labels: [Int32](repeating: 0, count: n),
                                                             sampleShape: scene, classCount: 3, boxes: boxes)),
        ]
        for c in cases {
            let space = try SpaceReference.resolve(c.space).space
            var sampler = SeededGenerator(seed: 11)
            let architecture = space.sample(using: &sampler)
            let batch = try ZeroCostBatch(data: c.data, size: 4, seed: 2)
            let scores = try ZeroCost.scores(space: space, architecture: architecture, inputShape: c.shape, inputKind: c.kind,
                                             classCount: 3, proxies: ZeroCostProxy.allCases, batch: batch, seed: 1)
            XCTAssertEqual(Set(scores.values.keys), Set(ZeroCostProxy.allCases), c.space)
            for (proxy, value) in scores.values {
                XCTAssertTrue(value.isFinite, "\(c.space): \(proxy.rawValue) = \(value) for \(scores.architecture)")
            }
        }
    }

    // MARK: Command line

    func testCommandLinePrintsOneJSONObjectPerArchitecture() throws {
        let out = try CLI.run(["proxies", "--space", "small", "--random", "2", "--seed", "3", "--input", "1x8x8", "--json"])
        XCTAssertEqual(out.status, 0, out.stderr)
        let lines = out.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, out.stdout)
        for line in lines {
            let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            XCTAssertEqual(Set(object.keys), ["architecture", "synflow", "params", "flops"], "no data: data-free proxies only")
        }
        let table = try CLI.run(["proxies", "--space", "small", "--random", "1", "--input", "1x8x8"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertTrue(table.stdout.hasPrefix("synflow"), table.stdout)
    }

    func testCommandLineRejectsBadInput() throws {
        let cases: [(arguments: [String], message: String)] = [
            (["--random", "-1"], "--random must be 0 or more, got -1"),
            (["--random", "2", "--batch-size", "0"], "--batch-size must be a positive integer, got 0"),
            (["--random", "2", "--proxies", "synflow,zen"], "unknown proxy 'zen'"),
            (["--random", "2", "--proxies", "snip"], "proxy 'snip' needs data: pass --dataset NAME"),
            (["--random", "1", "--dataset", "digits", "--input", "1x28x28"], "does not match dataset 'digits'"),
            (["--random", "1", "--dataset", "digits", "--batch-size", "100000"], "exceeds the"),
            (["--arch", "stem.width=999"], "stem.width"),
            (["--input", "28x28x1", "--random", "1"], "channels-last"),
        ]
        for c in cases {
            let out = try CLI.run(["proxies", "--space", "small"] + c.arguments)
            XCTAssertNotEqual(out.status, 0, "\(c.arguments): \(out.stdout)")
            XCTAssertTrue(out.stderr.contains(c.message), "\(c.arguments): \(out.stderr)")
        }
        let fixed = try CLI.run(["proxies", "--space", "small"])
        XCTAssertEqual(fixed.status, 1)
        XCTAssertTrue(fixed.stderr.contains("pass --arch TEXT"), fixed.stderr)
    }

    // MARK: NAS-Bench-201 against NASLib

    static let benchmarkDirectory = CLI.repositoryRoot.deletingLastPathComponent()
        .appendingPathComponent("shared/benchmarks/nasbench201")

    func testNASBench201SynflowParamsAndFlopsRankLikeNASLib() throws {
        let path = Self.benchmarkDirectory.appendingPathComponent("naslib_zc_nasbench201_subset.json").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("NAS-Bench-201 reference data not found at \(path) (../shared is not part of the repository)")
        }
        let raw = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "-Infinity", with: "null").replacingOccurrences(of: "Infinity", with: "null")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(raw.utf8)) as? [String: [String: [String: Any]]])
        let cells = try XCTUnwrap(json["cifar10"])
        let ops = ["skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3"]
        let space = try SpaceReference.resolve("nasbench201").space
        var ours: [ZeroCostProxy: [Double]] = [:], theirs: [ZeroCostProxy: [Double]] = [:]
        let proxies: [ZeroCostProxy] = [.synflow, .params, .flops]
        // Every 12th cell in key order (61 cells): about 30 s in a debug build on 2 cores.
        for key in cells.keys.sorted().enumerated().filter({ $0.offset % 12 == 0 }).map(\.element) {
            let d = key.filter(\.isNumber).compactMap(\.wholeNumberValue).map { ops[$0] }
            let text = "|\(d[0])~0|+|\(d[1])~0|\(d[3])~1|+|\(d[2])~0|\(d[4])~1|\(d[5])~2|"
            let s = try ZeroCost.scores(space: space, architecture: try space.parse(text),
                                        inputShape: FeatureShape(channels: 3, height: 32, width: 32), inputKind: .image,
                                        classCount: 10, proxies: proxies, seed: 0)
            for p in proxies {
                guard let reference = (cells[key]?[p.rawValue] as? [String: Any])?["score"] as? Double else { continue }
                ours[p, default: []].append(s[p]!)
                theirs[p, default: []].append(reference)
            }
        }
        let minimum: [ZeroCostProxy: Double] = [.params: 0.999, .flops: 0.97, .synflow: 0.9]
        for p in proxies {
            let rho = spearman(ours[p]!, theirs[p]!)
            print("NB201 \(p.rawValue): Spearman rho vs NASLib \(rho) over \(ours[p]!.count) cells")
            XCTAssertGreaterThanOrEqual(rho, minimum[p]!, "\(p.rawValue) ranks the cells differently from NASLib")
        }
    }

    /// Spearman's rank correlation (average ranks for ties).
    func spearman(_ a: [Double], _ b: [Double]) -> Double {
        func ranks(_ x: [Double]) -> [Double] {
            let order = x.indices.sorted { x[$0] < x[$1] }
            var r = [Double](repeating: 0, count: x.count)
            var i = 0
            while i < order.count {
                var j = i
                while j + 1 < order.count, x[order[j + 1]] == x[order[i]] { j += 1 }
                for k in i...j { r[order[k]] = Double(i + j) / 2 }
                i = j + 1
            }
            return r
        }
        let ra = ranks(a), rb = ranks(b)
        let ma = ra.reduce(0, +) / Double(ra.count), mb = rb.reduce(0, +) / Double(rb.count)
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in ra.indices {
            sab += (ra[i] - ma) * (rb[i] - mb)
            saa += (ra[i] - ma) * (ra[i] - ma)
            sbb += (rb[i] - mb) * (rb[i] - mb)
        }
        return sab / (saa * sbb).squareRoot()
    }
}
