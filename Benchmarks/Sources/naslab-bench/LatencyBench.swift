import Engine
import Estimators
import Foundation
import Lab
import NASCore
import Spaces

/// `naslab-bench latency [options]`: accuracy of the kernel-level latency predictor on held-out
/// random architectures of every space (docs/latency.md).
///
/// Options: `--threads N` (default 1), `--spaces a,b,…` (default: small, medium, large, the text
/// and the segmentation spaces), `--table PATH` (load this thread count's table if the file has one,
/// else build it and save it there), `--table-samples N` (architectures per space for the table,
/// default 100), `--adaptive-rounds N` (1), `--adaptive-kernels N` (200), `--calibration N`
/// (architectures per space measured whole to calibrate, default `LatencyTable.defaultCalibrationNetworksPerSpace`), `--count N` (held-out
/// architectures per space, default 40), `--rounds N` / `--repeats N` (measurement protocol,
/// 3 / 31), `--clock wall|thread-cpu` (default: the protocol's), `--repeat-measurement 1` (measure
/// every held-out network a second time and print how often the two measurements agree within
/// ±10 %: what the measurement itself repeats to, a bound for any predictor), `--verbose`.
///
/// Seeds: table 1, calibration 2, held-out 3 (disjoint draws). Held-out kernels the table lacks are
/// predicted by the regressors (nothing is measured for them); each space's predictions are made at
/// the machine's slowdown against the table measured just before (`LatencyTable.currentSlowdown`, the reference network
/// only). The last line is `within 10%: <percent>`.
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
    let spaces = (options["spaces"] ?? "small,medium,large,text-small,text-medium,text-large,segmentation-small,segmentation-medium,segmentation-large")
        .split(separator: ",").map(String.init)
    let verbose = flags.contains("--verbose")
    var protocolSettings = LatencyProtocol(repeats: int("repeats", 31), rounds: int("rounds", 3))
    if let c = options["clock"] {
        guard let clock = LatencyMeasurement.Clock(rawValue: c) else { throw LatencyTableError.invalidArgument("--clock must be wall or thread-cpu") }
        protocolSettings.clock = clock
    }
    print("latency predictor benchmark: threads \(threads), batch 1, load \(loadAverage())")
    print("cpu: \(LatencyMachine.current(threadCount: threads, batchSize: 1).cpuModel); \(EngineConfiguration.blasDescription)")
    print("measurement protocol: \(protocolSettings.rounds) rounds × \(protocolSettings.repeats) passes, \(protocolSettings.clock(threads: threads).rawValue) clock, "
          + "reference network within \(Int(protocolSettings.referenceTolerance * 100)) % (≤ \(protocolSettings.retries) retries)")

    // 1. The table (seed 1), built unless the file has one for this thread count.
    var table: LatencyTable
    let started = Date()
    if let path = options["table"], FileManager.default.fileExists(atPath: path), let loaded = try LatencyTable.load(path: path, threads: threads) {
        table = loaded
        print("table: loaded \(path) (\(table.entries.count) kernels, built \(table.machine.date))")
    } else {
        let graphs = try LatencyTableBuilding.sampleNetworks(spaces: spaces, inputShapes: [], classCounts: [10],
                                                             samples: int("table-samples", 100), seed: 1)
        var last = Date.distantPast
        table = try LatencyTable.build(graphs: graphs, threads: threads, adaptiveRounds: int("adaptive-rounds", 1),
                                       adaptiveKernelsPerRound: int("adaptive-kernels", 200), naslabVersion: "bench",
                                       progress: { event in
            if case let .measured(_, done, total, _) = event, Date().timeIntervalSince(last) > 5 || done == total {
                last = Date()
                FileHandle.standardError.write(Data("table: \(done)/\(total) kernel timings\n".utf8))
            }
        })
        print(String(format: "table: %d kernels from %d networks (%d per space) + adaptive sampling, %.1f s, reference %.4f ms (load %@)",
                     table.entries.count, graphs.count, int("table-samples", 100), Date().timeIntervalSince(started),
                     table.referenceMilliseconds, loadAverage()))
        // 2. Optional calibration on whole networks (seed 2).
        let calibration = int("calibration", LatencyTable.defaultCalibrationNetworksPerSpace)
        if calibration > 0 {
            let networks = try LatencyTableBuilding.sampleNetworks(spaces: spaces, inputShapes: [], classCounts: [10], samples: calibration, seed: 2)
            let errors = try table.calibrate(measuring: networks, protocol: protocolSettings, note: "benchmark: \(networks.count) networks, seed 2")
            print(String(format: "calibration: %d networks, scales %@, per kernel %+.5f ms, per network %+.5f ms, per MB %+.4f ms, %.1f %% within 10%% on them (load %@)",
                         networks.count, table.scales.keys.sorted().map { k in String(format: "%@ %.3f", k, table.scales[k]!) }.joined(separator: ", "), table.perKernelOverheadMilliseconds, table.perNetworkOverheadMilliseconds, table.perMegabyteMilliseconds,
                         LatencyTable.percentWithin(errors), loadAverage()))
            if let check = table.networkModelCrossValidation() {
                func meanAbsolute(_ e: [Double]) -> Double { 100 * e.reduce(0) { $0 + abs($1) } / Double(e.count) }
                print(String(format: "network-level model: %@; 5-fold cross-validation on the calibration networks: within 10%% %.1f %% (mean |error| %.1f %%), linear terms alone %.1f %% (%.1f %%)",
                             check.modelIsBetter ? "used" : "not used", LatencyTable.percentWithin(check.model), meanAbsolute(check.model),
                             LatencyTable.percentWithin(check.linear), meanAbsolute(check.linear)))
            }
        }
        if let path = options["table"] {
            try table.save(path: path)
            print("table: saved \(path)")
        }
    }
    let families = table.regressors()
    print("regressors: \(families.count) kernel families (\(families.keys.sorted().joined(separator: ", ")))")

    // 3. Held-out architectures (seed 3), every space.
    let count = int("count", 40)
    var allErrors = [Double]()
    var tableSpeedErrors = [Double]()   // the same predictions without the slowdown (at the table's speed)
    var ownSpeedErrors = [Double]()     // at the slowdown of the reference timed around each network's own measurement
    var heldOut = [(graph: NetworkGraph, measured: ProtocolLatency)]()
    var disturbed = 0, retries = 0
    for space in spaces {
        let graphs = try LatencyTableBuilding.sampleNetworks(spaces: [space], inputShapes: [], classCounts: [10], samples: count, seed: 3)
        // Predicted as a search screens: at the machine's speed just before (nothing of them is measured).
        let slowdown = try table.currentSlowdown(protocol: protocolSettings)
        let predictions = try graphs.map { try table.predict($0, slowdown: slowdown) }
        let atTableSpeed = predictions.map { $0.totalMilliseconds / slowdown }
        let measured = try LatencyMeasurement.measure(graphs, threads: threads, protocol: protocolSettings)
        var errors = [Double]()
        for (i, (p, m)) in zip(predictions, measured).enumerated() {
            let e = (p.totalMilliseconds - m.medianMilliseconds) / m.medianMilliseconds
            errors.append(e)
            disturbed += m.disturbedRounds > 0 ? 1 : 0
            retries += m.retries
            if verbose {
                print(String(format: "  %@ #%d measured %.4f ms (rounds %@; reference ×%@) predicted %.4f ms (%+.1f %%), %d/%d kernels regressed",
                             space, i, m.medianMilliseconds, m.roundMedians.map { String(format: "%.4f", $0) }.joined(separator: " "),
                             m.referenceRatios.map { String(format: "%.2f", $0) }.joined(separator: " "),
                             p.totalMilliseconds, 100 * e, p.regressedKernelCount, p.kernels.count))
            }
        }
        allErrors += errors
        tableSpeedErrors += zip(atTableSpeed, measured).map { ($0 - $1.medianMilliseconds) / $1.medianMilliseconds }
        ownSpeedErrors += zip(atTableSpeed, measured).map { p, m in
            let atTable = m.medianMilliseconds(atReference: table.referenceMilliseconds)
            return (p - atTable) / atTable
        }
        heldOut += zip(graphs, measured).map { ($0, $1) }
        let absolute = errors.map(abs).sorted()
        let ms = measured.map(\.medianMilliseconds).sorted()
        let regressed = predictions.reduce(0) { $0 + $1.regressedKernelCount }, kernels = predictions.reduce(0) { $0 + $1.kernels.count }
        print(String(format: "%@: %d architectures, measured median %.4f ms [%.4f … %.4f], within 10%%: %.1f %%, mean |error| %.1f %%, "
                     + "max |error| %.1f %%, mean error %+.1f %%, kernels regressed %d/%d, slowdown %.3f (load %@)",
                     space, errors.count, ms[ms.count / 2], ms.first!, ms.last!,
                     LatencyTable.percentWithin(errors),
                     100 * absolute.reduce(0, +) / Double(absolute.count), 100 * absolute.last!,
                     100 * errors.reduce(0, +) / Double(errors.count), regressed, kernels, slowdown, loadAverage()))
    }
    // 4. Optionally the measurement's own repeatability: every held-out network measured again (all
    //    spaces in one round-robin), compared with its first measurement — the bound any predictor meets.
    if int("repeat-measurement", 0) > 0 {
        let again = try LatencyMeasurement.measure(heldOut.map(\.graph), threads: threads, protocol: protocolSettings)
        // Relative changes from the first measurement: as measured, then with both measurements
        // expressed at the table's speed (each over the reference's time around it).
        func changes(_ milliseconds: (ProtocolLatency) -> Double) -> String {
            let c = zip(heldOut, again).map { (milliseconds($1) - milliseconds($0.measured)) / milliseconds($0.measured) }
            let sorted = c.map(abs).sorted()
            return String(format: "within 10%% of the first measurement %.1f %%, median |change| %.1f %%, mean change %+.1f %%",
                          LatencyTable.percentWithin(c), 100 * sorted[sorted.count / 2], 100 * c.reduce(0, +) / Double(c.count))
        }
        print("measurement repeatability: \(heldOut.count) held-out networks measured again: \(changes(\.medianMilliseconds)) (load \(loadAverage()))")
        print("measurement repeatability at one speed (each measurement over the reference's time around it): "
              + changes { $0.medianMilliseconds(atReference: table.referenceMilliseconds) })
    }
    print(String(format: "without the slowdown (predicted at the table's speed): within 10%% %.1f %%",
                 LatencyTable.percentWithin(tableSpeedErrors)))
    print(String(format: "at the speed of each network's own measurement (the reference timed around it): within 10%% %.1f %%",
                 LatencyTable.percentWithin(ownSpeedErrors)))
    print("overall: \(allErrors.count) held-out architectures of \(spaces.count) spaces, \(disturbed) with a round still disturbed after retries, "
          + "\(retries) timings repeated; load \(loadAverage())")
    print(String(format: "within 10%%: %.1f", LatencyTable.percentWithin(allErrors)))
}

/// The 1-, 5- and 15-minute load averages from /proc/loadavg.
func loadAverage() -> String {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "?" }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}
