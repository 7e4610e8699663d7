import Engine
import Estimators
import Foundation
import NASCore
import Spaces

/// `naslab-bench latency [options]`: accuracy of the lookup-table latency predictor.
///
/// Options: `--threads N` (default 1), `--table PATH` (load if present, else build and save),
/// `--table-samples N` (architectures per space for the table, default 300), `--count N` (test
/// architectures per space, default 100), `--calibration N` (calibration architectures per space,
/// default 30; 0 disables), `--repeats N` (timed runs per measured network, default 41),
/// `--eviction BYTES`, `--iterations N`, `--verbose`.
///
/// Seeds: table 1, calibration 2, test 3 (disjoint draws). The last line is `within 10%: <percent>`.
func runLatencyBenchmark(_ arguments: [String]) throws {
    var options = [String: String]()
    var flags = Set<String>()
    var index = 0
    while index < arguments.count {
        let a = arguments[index]
        if a == "--verbose" { flags.insert(a); index += 1; continue }
        guard a.hasPrefix("--"), index + 1 < arguments.count else {
            throw LatencyTableError.invalidArgument("bad argument '\(a)'")
        }
        options[String(a.dropFirst(2))] = arguments[index + 1]
        index += 2
    }
    func int(_ name: String, _ fallback: Int) -> Int { options[name].flatMap(Int.init) ?? fallback }
    let threads = int("threads", 1)
    let tableSamples = int("table-samples", 300)
    let count = int("count", 100)
    let calibrationCount = int("calibration", 0)
    guard let finalStatistic = LatencyStatistic(rawValue: options["statistic"] ?? "median") else {
        throw LatencyTableError.invalidArgument("--statistic must be median or minimum")
    }
    let repeats = int("repeats", 41)
    let verbose = flags.contains("--verbose")
    guard let clock = LatencyMeasurement.Clock(rawValue: options["clock"] ?? "wall") else {
        throw LatencyTableError.invalidArgument("--clock must be wall or thread-cpu")
    }
    let clocks = [clock] + LatencyMeasurement.Clock.allCases.filter { $0 != clock }
    let rounds = int("rounds", 3)
    let settings = LatencyTableSettings(samples: int("samples", 31), warmup: 3, iterations: int("iterations", 1),
                                        evictionBytes: int("eviction", 0), rounds: rounds)

    let cases: [(space: SearchSpace, input: FeatureShape)] = [
        (try SearchSpace.shipped(named: "small"), FeatureShape(channels: 1, height: 8, width: 8)),
        (try SearchSpace.shipped(named: "medium"), FeatureShape(channels: 1, height: 28, width: 28)),
    ]
    func draw(_ seed: UInt64, _ n: Int) throws -> [[NetworkGraph]] {
        try cases.enumerated().map { offset, c in
            var rng = SeededGenerator(seed: seed).derived(stream: UInt64(offset))
            return try (0..<n).map { _ in
                try c.space.network(for: c.space.sample(using: &rng), inputShape: c.input, classCount: 10)
            }
        }
    }
    print("latency predictor benchmark: threads \(threads), batch 1, load \(loadAverage())")
    print("cpu: \(LatencyMachine.current(threadCount: threads, batchSize: 1).cpuModel); \(EngineConfiguration.blasDescription)")

    if let diagnose = options["diagnose"].flatMap(Int.init) {
        try diagnoseLatency(draw(3, diagnose), table: LatencyTable.empty(threads: threads, batchSize: 1, settings: settings), threads: threads,
                            verbose: verbose)
        return
    }

    // 1. The table.
    var table: LatencyTable
    let started = Date()
    if let path = options["table"], FileManager.default.fileExists(atPath: path) {
        table = try LatencyTable.load(path: path)
        guard table.machine.threadCount == threads else {
            throw LatencyTableError.invalidArgument("table \(path) has \(table.machine.threadCount) threads, asked \(threads)")
        }
        print("table: loaded \(path) (\(table.entries.count) entries)")
    } else {
        table = LatencyTable.empty(threads: threads, batchSize: 1, settings: settings)
        let graphs = try draw(1, tableSamples).flatMap { $0 }
        try table.measureMissingEntries(for: graphs)
        print(String(format: "table: built from %d architectures per space, %d entries in %.1f s (load %@)",
                     tableSamples, table.entries.count, Date().timeIntervalSince(started), loadAverage()))
    }

    /// Median latency under each clock of `clocks` (first: the primary one) and the raw prediction.
    /// Every network is measured in `rounds` passes over all networks; its latency is the median
    /// of its passes' medians (a transient slowdown of the shared machine hits one pass only).
    func measureAll(_ graphs: [NetworkGraph]) throws -> [(measured: [Double], minimum: [Double], raw: LatencyPrediction)] {
        let predictions = try graphs.map { try table.predict($0, measuringMissing: true) }
        var perRound = [[[Double]]](repeating: [[Double]](repeating: [], count: clocks.count), count: graphs.count)
        var minima = [[Double]](repeating: [Double](repeating: .infinity, count: clocks.count), count: graphs.count)
        for _ in 0..<max(1, rounds) {
            for (i, graph) in graphs.enumerated() {
                for (c, clockUsed) in clocks.enumerated() {
                    let m = try LatencyMeasurement.measure(graph, batchSize: 1, threads: threads, warmup: 5,
                                                           repeats: repeats, clock: clockUsed)
                    perRound[i][c].append(m.medianMilliseconds)
                    minima[i][c] = min(minima[i][c], m.minimumMilliseconds)
                }
            }
        }
        return graphs.indices.map { i in
            (perRound[i].map { values in let s = values.sorted(); return s[s.count / 2] }, minima[i], predictions[i])
        }
    }

    // 2. Calibration of the global overhead terms on separate architectures (seed 2).
    if calibrationCount > 0 && table.calibrationNote.isEmpty {
        table.perNodeOverheadMilliseconds = 0
        table.perNetworkOverheadMilliseconds = 0
        let results = try draw(2, calibrationCount).flatMap { try measureAll($0) }
        // Least squares of measured − predicted = a · nodes + b, in relative terms (weights 1/measured²).
        var sxx = 0.0, sx = 0.0, sw = 0.0, sxy = 0.0, sy = 0.0
        for r in results {
            let w = 1 / (r.measured[0] * r.measured[0])
            let x = Double(r.raw.nodes.count), y = r.measured[0] - r.raw.totalMilliseconds
            sw += w; sx += w * x; sxx += w * x * x; sy += w * y; sxy += w * x * y
        }
        let det = sw * sxx - sx * sx
        let a = det != 0 ? (sw * sxy - sx * sy) / det : 0
        let b = det != 0 ? (sy - a * sx) / sw : 0
        table.perNodeOverheadMilliseconds = a
        table.perNetworkOverheadMilliseconds = b
        table.calibrationNote = "weighted least squares of measured − table sum = a·nodes + b over \(results.count) architectures (seed 2), \(clock.rawValue) clock"
        print(String(format: "calibration (%@ clock): %d architectures, per node %+.5f ms, per network %+.5f ms (load %@)",
                     clock.rawValue, results.count, a, b, loadAverage()))
    }
    if let path = options["table"], !FileManager.default.fileExists(atPath: path) {
        try table.save(path: path)
        print("table: saved \(path)")
    }

    // 3. Test architectures (seed 3).
    let entriesBefore = table.entries.count
    var totals = [(within: Int, count: Int)](repeating: (0, 0), count: clocks.count)
    var minimumTotals = totals
    for (offset, graphs) in try draw(3, count).enumerated() {
        let results = try measureAll(graphs)
        let predicted = try graphs.map { try table.predict($0).totalMilliseconds }
        let predictedMinimum = try graphs.map { try table.predict($0, statistic: .minimum).totalMilliseconds }
        for (c, clockUsed) in clocks.enumerated() {
            for statistic in [LatencyStatistic.minimum, .median] {
                var errors = [Double]()
                for (i, r) in results.enumerated() {
                    let (p, m) = statistic == .median ? (predicted[i], r.measured[c]) : (predictedMinimum[i], r.minimum[c])
                    errors.append((p - m) / m)
                    if verbose {
                        print(String(format: "  %@ #%d %@ %@ measured %.4f ms predicted %.4f ms (%+.1f %%)", cases[offset].space.name, i,
                                     clockUsed.rawValue, statistic.rawValue, m, p, 100 * errors.last!))
                    }
                }
                let within = errors.filter { abs($0) <= 0.10 }.count
                if statistic == .median {
                    totals[c].within += within
                    totals[c].count += errors.count
                } else {
                    minimumTotals[c].within += within
                    minimumTotals[c].count += errors.count
                }
                let absolute = errors.map(abs).sorted()
                let measured = results.map { statistic == .median ? $0.measured[c] : $0.minimum[c] }.sorted()
                print(String(format: "%@ (%@), %@ clock, %@: %d architectures, measured median %.4f ms [%.4f … %.4f], within 10%%: %.1f %%, "
                             + "mean |error| %.1f %%, median |error| %.1f %%, max |error| %.1f %%, mean error %+.1f %% (load %@)",
                             cases[offset].space.name, cases[offset].input.description, clockUsed.rawValue, statistic.rawValue,
                             errors.count, measured[measured.count / 2], measured.first!, measured.last!,
                             100 * Double(within) / Double(errors.count),
                             100 * absolute.reduce(0, +) / Double(absolute.count), 100 * absolute[absolute.count / 2],
                             100 * absolute.last!, 100 * errors.reduce(0, +) / Double(errors.count), loadAverage()))
            }
        }
    }
    for (c, clockUsed) in clocks.enumerated().reversed() {
        print(String(format: "overall, %@ clock, minimum: within 10%%: %.1f %%", clockUsed.rawValue,
                     100 * Double(minimumTotals[c].within) / Double(minimumTotals[c].count)))
    }
    for (c, clockUsed) in clocks.enumerated().reversed() {
        print(String(format: "overall, %@ clock, median: within 10%%: %.1f %%", clockUsed.rawValue,
                     100 * Double(totals[c].within) / Double(totals[c].count)))
    }
    print("keys measured on the fly during the test: \(table.entries.count - entriesBefore)")
    let final = finalStatistic == .median ? totals[0] : minimumTotals[0]
    print("final line: \(clock.rawValue) clock, \(finalStatistic.rawValue) of measured vs predicted")
    print(String(format: "within 10%%: %.1f", 100 * Double(final.within) / Double(final.count)))
}

/// The 1-, 5- and 15-minute load averages from /proc/loadavg.
func loadAverage() -> String {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

/// Per-node comparison of in-context timings (profiled full passes) with isolated table entries.
func diagnoseLatency(_ spaces: [[NetworkGraph]], table original: LatencyTable, threads: Int, verbose: Bool) throws {
    var table = original
    for graphs in spaces {
        for graph in graphs {
            try table.measureMissingEntries(for: [graph])
            let prediction = try table.predict(graph)
            var rng = SeededGenerator(seed: 0)
            let network = try Network(graph: graph, rng: &rng)
            let shape = graph.inputShape
            let input = Tensor(shape: [1, shape.channels, shape.height, shape.width],
                               values: (0..<shape.elementCount).map { _ in rng.nextUnitFloat() })
            var profiles = [ForwardProfile]()
            for _ in 0..<45 { profiles.append(try network.profileForward(input)) }
            profiles.removeFirst(5)
            func med(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
            let measured = try LatencyMeasurement.measure(graph, batchSize: 1, threads: threads, warmup: 5, repeats: 41)
            let boundary = med(profiles.map(\.boundaryNanoseconds)) / 1e6
            let total = med(profiles.map(\.totalNanoseconds)) / 1e6
            print(String(format: "net: measured %.4f (min %.4f), profiled total %.4f, predicted %.4f; boundary in-context %.4f vs table %.4f",
                         measured.medianMilliseconds, measured.minimumMilliseconds, total, prediction.totalMilliseconds, boundary, prediction.boundaryMilliseconds))
            var sumContext = 0.0, sumTable = 0.0
            for (i, node) in prediction.nodes.enumerated() {
                let context = med(profiles.map { $0.nodeNanoseconds[i + 1] }) / 1e6
                sumContext += context; sumTable += node.milliseconds
                if verbose { print(String(format: "  %8.4f %8.4f %5.2f  %@", context, node.milliseconds, node.milliseconds / max(context, 1e-9), node.key)) }
            }
            print(String(format: "  sum in-context %.4f, sum table %.4f", sumContext, sumTable))
        }
    }
}
