import Engine
import Estimators
import NASCore
import XCTest

/// Costs and latency-table keys of the decoder ops (`upsample`, `convTranspose2d`).
final class DecoderOpsEstimatorsTests: XCTestCase {
    /// conv 3→8 (s2) → convTranspose2d 8→4 (k2 s2, bias) → bilinear ×2, concatenated with the
    /// input upsampled (nearest ×2) → conv 7→2 (1×1).
    func decoderGraph() -> NetworkGraph {
        var g = NetworkGraph(inputShape: FeatureShape(channels: 3, height: 8, width: 8))
        let enc = g.add("enc", .conv2d(Conv2dAttributes(outChannels: 8, kernel: 3, stride: 2, padding: 1)), g.input)  // 8×4×4
        let dec = g.add("dec", .convTranspose2d(outChannels: 4, kernel: 2, stride: 2, bias: true), enc)              // 4×8×8
        let up = g.add("up", .upsample(scale: 2, mode: .bilinear), dec)                                            // 4×16×16
        let skip = g.add("skip", .upsample(scale: 2, mode: .nearest), g.input)                                     // 3×16×16
        let cat = g.add("cat", .concat, up, skip)                                                                  // 7×16×16
        g.add("head", .conv2d(Conv2dAttributes(outChannels: 2, kernel: 1)), cat)                                   // 2×16×16
        return g
    }

    func testNetworkCostCountsTheDecoderOps() throws {
        let cost = try NetworkCost(decoderGraph())
        let byName = Dictionary(uniqueKeysWithValues: cost.layers.map { ($0.name, $0) })
        // convTranspose2d: 8·4·2² = 128 weights + 4 biases; MACs 128 · 4·4 = 2048; + 4·8·8 bias adds.
        XCTAssertEqual(byName["dec"]?.parameters, 132)
        XCTAssertEqual(byName["dec"]?.multiplyAccumulates, 2048)
        XCTAssertEqual(byName["dec"]?.nasBench201Flops, 2048 + 256)
        XCTAssertEqual(byName["dec"]?.outputShape, FeatureShape(channels: 4, height: 8, width: 8))
        for name in ["up", "skip"] {
            XCTAssertEqual(byName[name]?.parameters, 0, name)
            XCTAssertEqual(byName[name]?.multiplyAccumulates, 0, name)
            XCTAssertEqual(byName[name]?.nasBench201Flops, 0, name)
        }
        XCTAssertEqual(byName["up"]?.outputShape, FeatureShape(channels: 4, height: 16, width: 16))
        // enc 8·3·9 = 216 weights, 216·16 MACs; head 2·7 weights, 14·256 MACs.
        XCTAssertEqual(cost.parameters, 216 + 132 + 14)
        XCTAssertEqual(cost.multiplyAccumulates, 216 * 16 + 2048 + 14 * 256)
        var rng = SeededGenerator(seed: 1)
        XCTAssertEqual(try Network(graph: decoderGraph(), rng: &rng).parameterCount, cost.parameters)
    }

    func testLatencyKeysAndMeasurement() throws {
        let shape = FeatureShape(channels: 4, height: 8, width: 8)
        XCTAssertEqual(LatencyKey.key(for: Upsample(scale: 2, mode: .bilinear), inputShapes: [shape]),
                       "upsample(scale:2,mode:bilinear)@4x8x8")
        XCTAssertEqual(LatencyKey.key(for: ConvTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1, bias: true),
                                      inputShapes: [shape]),
                       "convTranspose2d(out:4,kernel:3,stride:2,padding:1,output_padding:1,bias:true)@4x8x8")
        var keys = Set<String?>()
        for op: any GraphOp in [Upsample(scale: 2, mode: .bilinear), Upsample(scale: 2, mode: .nearest), Upsample(scale: 3, mode: .nearest),
                                ConvTranspose2d(outChannels: 4, kernel: 2, stride: 2), ConvTranspose2d(outChannels: 4, kernel: 2, stride: 2, bias: true),
                                ConvTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1),
                                ConvTranspose2d(outChannels: 4, kernel: 3, stride: 2, padding: 1, outputPadding: 1)] {
            XCTAssertTrue(keys.insert(LatencyKey.key(for: op, inputShapes: [shape])).inserted, "\(op)")
        }
        // A table for the decoder measures every node, the new ops included, and predicts it.
        let graph = decoderGraph()
        var table = LatencyTable(machine: .current(threadCount: 1, batchSize: 1))
        table.settings = LatencyTableSettings(samples: 3, warmup: 1, rounds: 1)
        let added = try table.measureMissingEntries(for: [graph])
        XCTAssertTrue(added.contains("convTranspose2d(out:4,kernel:2,stride:2,padding:0,output_padding:0,bias:true)@8x4x4"), "\(added)")
        XCTAssertTrue(added.contains("upsample(scale:2,mode:bilinear)@4x8x8"), "\(added)")
        XCTAssertTrue(added.contains("upsample(scale:2,mode:nearest)@3x8x8"), "\(added)")
        XCTAssertEqual(try table.missingKeys(for: graph), [])
        let prediction = try table.predict(graph)
        XCTAssertEqual(Set(prediction.kernels.flatMap { $0.name.split(separator: "+").map(String.init) }),
                       Set(graph.nodes.dropFirst().map(\.name)))
        XCTAssertGreaterThan(prediction.totalMilliseconds, 0)
    }
}
