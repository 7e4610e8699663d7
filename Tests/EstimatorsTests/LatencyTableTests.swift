import Estimators
import Foundation
import Engine
import NASCore
import Spaces
import XCTest

final class LatencyTableTests: XCTestCase {
    let digits = FeatureShape(channels: 1, height: 8, width: 8)

    func smallGraph(width: Int = 8, kernel: Int = 3) -> NetworkGraph {
        var g = NetworkGraph(inputShape: digits)
        var x = g.add("conv", .conv2d(Conv2dAttributes(outChannels: width, kernel: kernel, padding: kernel / 2)), g.input)
        x = g.add("bn", .batchNorm(affine: true), x)
        let r = g.add("relu", .activation(.relu), x)
        let y = g.add("conv2", .conv2d(Conv2dAttributes(outChannels: width, kernel: 3, padding: 1)), r)
        x = g.add("sum", .add, r, y)
        let c = g.add("cat", .concat, x, r)
        x = g.add("gap", .globalAvgPool, c)
        g.add("fc", .linear(outFeatures: 10, bias: true), x)
        return g
    }

    /// A table with made-up entries for `graph` (so that tests on the arithmetic are exact).
    func syntheticTable(for graph: NetworkGraph) throws -> LatencyTable {
        var table = LatencyTable(machine: .current(threadCount: 1, batchSize: 1))
        for (index, key) in try LatencyKey.keys(for: graph).enumerated() {
            guard let key else { continue }
            table.entries[key] = LatencyEntry(medianMilliseconds: Double(index) * 0.001, minimumMilliseconds: 0, sampleCount: 1)
        }
        table.entries[try LatencyKey.boundary(for: graph)] = LatencyEntry(medianMilliseconds: 0.5, minimumMilliseconds: 0.4, sampleCount: 3)
        return table
    }

    func testKeysOfEqualOpsAreEqualAndDifferForAttributesAndShapes() throws {
        let conv = Conv2d(outChannels: 16, kernel: 3, padding: 1)
        let shape = FeatureShape(channels: 8, height: 28, width: 28)
        let key = LatencyKey.key(for: conv, inputShapes: [shape])
        XCTAssertEqual(key, "conv2d(out:16,kernel:3,stride:1,padding:1,dilation:1,groups:1,bias:false)@8x28x28")
        XCTAssertEqual(key, LatencyKey.key(for: .conv2d(Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1)), inputShapes: [shape]))
        var variants = Set<String?>([key])
        for attributes in [Conv2dAttributes(outChannels: 24, kernel: 3, padding: 1),
                           Conv2dAttributes(outChannels: 16, kernel: 5, padding: 1),
                           Conv2dAttributes(outChannels: 16, kernel: 3, stride: 2, padding: 1),
                           Conv2dAttributes(outChannels: 16, kernel: 3, padding: 2),
                           Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1, dilation: 2),
                           Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1, groups: 8),
                           Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1, bias: true)] {
            XCTAssertTrue(variants.insert(LatencyKey.key(for: .conv2d(attributes), inputShapes: [shape])).inserted, "\(attributes)")
        }
        XCTAssertTrue(variants.insert(LatencyKey.key(for: conv, inputShapes: [FeatureShape(channels: 8, height: 14, width: 14)])).inserted)
        XCTAssertNotEqual(LatencyKey.key(for: .activation(.relu), inputShapes: [shape]),
                          LatencyKey.key(for: .activation(.relu6), inputShapes: [shape]))
        XCTAssertNotEqual(LatencyKey.key(for: .maxPool(PoolAttributes(kernel: 3, stride: 1, padding: 1)), inputShapes: [shape]),
                          LatencyKey.key(for: .avgPool(PoolAttributes(kernel: 3, stride: 1, padding: 1)), inputShapes: [shape]))
        XCTAssertEqual(LatencyKey.key(for: .add, inputShapes: [shape, shape]), "add@8x28x28+8x28x28")
        XCTAssertNotEqual(LatencyKey.key(for: .add, inputShapes: [shape, shape]),
                          LatencyKey.key(for: .add, inputShapes: [shape, shape, shape]))
        XCTAssertNil(LatencyKey.key(for: .input, inputShapes: []))
        // Evaluation-mode cost does not depend on the dropout rate: one key.
        XCTAssertEqual(LatencyKey.key(for: .dropout(rate: 0.1), inputShapes: [shape]),
                       LatencyKey.key(for: .dropout(rate: 0.5), inputShapes: [shape]))
        // Equal blocks in one network share keys.
        let keys = try LatencyKey.keys(for: smallGraph())
        XCTAssertEqual(keys.count, smallGraph().nodes.count)
        XCTAssertEqual(keys.compactMap { $0 }.count, keys.count - 1)
        XCTAssertEqual(try LatencyKey.boundary(for: smallGraph()), "network(output:10x1x1)@1x8x8")
    }

    func testPredictionIsTheSumOfNodeEntriesPlusOverheads() throws {
        let graph = smallGraph()
        var table = try syntheticTable(for: graph)
        table.perNodeOverheadMilliseconds = 0.01
        table.perNetworkOverheadMilliseconds = -0.2
        let prediction = try table.predict(graph)
        let nodeSum = (1..<graph.nodes.count).reduce(0.0) { $0 + Double($1) * 0.001 }
        let computing = graph.nodes.count - 1
        XCTAssertEqual(prediction.nodes.count, computing)
        XCTAssertEqual(prediction.nodes.map(\.name), graph.nodes.dropFirst().map(\.name))
        XCTAssertEqual(prediction.boundaryMilliseconds, 0.5)
        XCTAssertEqual(prediction.overheadMilliseconds, 0.01 * Double(computing) - 0.2, accuracy: 1e-12)
        XCTAssertEqual(prediction.totalMilliseconds, nodeSum + 0.5 + 0.01 * Double(computing) - 0.2, accuracy: 1e-12)
    }

    func testMissingKeysAreReportedAndCanBeMeasured() throws {
        let graph = smallGraph()
        var table = try syntheticTable(for: graph)
        let wider = smallGraph(width: 16)
        XCTAssertThrowsError(try table.predict(wider)) { error in
            guard case let LatencyTableError.missingKeys(keys) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(keys, try? table.missingKeys(for: wider))
            XCTAssertTrue(keys.contains("conv2d(out:16,kernel:3,stride:1,padding:1,dilation:1,groups:1,bias:false)@1x8x8"), "\(keys)")
            XCTAssertTrue(keys.contains("linear(out:10,bias:true)@32x1x1"), "\(keys)")
            XCTAssertFalse(keys.contains("network(output:10x1x1)@1x8x8"), "present in the table: \(keys)")
            XCTAssertTrue("\(error)".contains("no entry for \(keys.count) key"), "\(error)")
        }
        table.settings = LatencyTableSettings(samples: 5, warmup: 1, rounds: 2)
        let before = table.entries
        let added = try table.measureMissingEntries(for: [wider])
        XCTAssertEqual(Set(added), Set(try LatencyTable(machine: table.machine, entries: before).missingKeys(for: wider)))
        XCTAssertEqual(table.entries.count, before.count + added.count)
        for key in added { XCTAssertGreaterThanOrEqual(table.entries[key]!.medianMilliseconds, 0); XCTAssertEqual(table.entries[key]!.sampleCount, 10) }
        // Entries that were present are kept as they were.
        for (key, entry) in before { XCTAssertEqual(table.entries[key], entry) }
        XCTAssertNoThrow(try table.predict(wider))
    }

    func testTableRoundTripsThroughHDF5AndH5dumpReadsIt() throws {
        let graph = smallGraph()
        var table = try syntheticTable(for: graph)
        table.perNodeOverheadMilliseconds = 0.0012
        table.perNetworkOverheadMilliseconds = 0.034
        table.calibrationNote = "test"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("latency-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("table.h5").path
        try table.save(path: path)
        let loaded = try LatencyTable.load(path: path)
        XCTAssertEqual(loaded, table)
        XCTAssertEqual(try loaded.predict(graph), try table.predict(graph))

        // A second reader: h5dump.
        let h5dump = ["/usr/bin/h5dump", "/usr/local/bin/h5dump"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let h5dump else { throw XCTSkip("h5dump not installed") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: h5dump)
        process.arguments = ["-d", "/entries/key", "-a", "/cpu_model", path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("network(output:10x1x1)@1x8x8"), text)
        XCTAssertTrue(text.contains("activation(function:relu)@8x8x8"), text)
        XCTAssertTrue(text.contains(table.machine.cpuModel), text)

        // Not a table → clear error.
        let other = directory.appendingPathComponent("other.h5").path
        try LatencyTable(machine: table.machine).save(path: other)
        XCTAssertEqual(try LatencyTable.load(path: other).entries.count, 0)
        XCTAssertThrowsError(try LatencyTable.load(path: directory.appendingPathComponent("missing.h5").path))
    }

    func testBuildCoversSampledArchitecturesAndPredictsMeasuredLatencyLoosely() throws {
        let space = try loadSpace("small")
        var progressCalls = 0
        let table = try LatencyTable.build(
            spaces: [space], network: { s, a, input, classes in try s.network(for: a, inputShape: input, classCount: classes) },
            inputShapes: [digits], classCounts: [10], samplesPerSpace: 6, seed: 7, threads: 1,
            settings: LatencyTableSettings(samples: 21, warmup: 3), progress: { _ in progressCalls += 1 })
        XCTAssertGreaterThan(progressCalls, table.entries.count)
        XCTAssertEqual(table.machine.threadCount, 1)
        XCTAssertEqual(table.machine.batchSize, 1)
        // The same draw is fully covered.
        var rng = SeededGenerator(seed: 7)
        var ratios = [Double]()
        for _ in 0..<6 {
            let graph = try space.network(for: space.sample(using: &rng), inputShape: digits, classCount: 10)
            XCTAssertEqual(try table.missingKeys(for: graph), [])
            let predicted = try table.predict(graph).totalMilliseconds
            let measured = try LatencyMeasurement.measure(graph, batchSize: 1, threads: 1, warmup: 5, repeats: 31).medianMilliseconds
            ratios.append(predicted / measured)
        }
        // Loose (2×) on the median ratio: robust on a busy machine, yet fails for a broken predictor.
        let median = ratios.sorted()[ratios.count / 2]
        XCTAssertGreaterThan(median, 0.5, "\(ratios)")
        XCTAssertLessThan(median, 2.0, "\(ratios)")
        XCTAssertThrowsError(try LatencyTable.build(spaces: [space], network: { s, a, i, c in try s.network(for: a, inputShape: i, classCount: c) },
                                                    inputShapes: [], classCounts: [10], samplesPerSpace: 1, seed: 1, threads: 1))
    }
}
