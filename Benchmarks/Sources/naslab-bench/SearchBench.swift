// Search-side benchmarks:
//
//   naslab-bench nb201 [--seeds 500] [--budget 150] [--table PATH]
//       Tabular NAS-Bench-201 search quality: the budget curve (mean ± std of the best test
//       accuracy after 25, 50, 100, 150 queries) over `seeds` seeds, for random search,
//       regularized evolution and local search, with and without zero-cost guidance (synflow),
//       on CIFAR-10, CIFAR-100 and ImageNet16-120.
//   naslab-bench throughput [--evaluations 2000] [--table PATH] [--output DIR]
//       ask/tell + HDF5 record throughput of a full NASLab tabular search (evaluations/s), and
//       ask/tell alone, on the NB201 table.
import Foundation
import Lab
import NASCore
import Records
import Search
import Spaces

let defaultNB201Table = "../shared/benchmarks/nasbench201/nats_bench_tss_200ep.csv"

/// A searcher of the NB201 benchmark: an algorithm, optionally guided by zero-cost proxies
/// (`ZeroCostGuide`: warm start of `warmStart` scored architectures, pre-screening below the
/// `prescreenQuantile` of their scores) exactly as `searcher.proxies` guides a NASLab search.
struct NB201Searcher {
    var label: String
    var algorithm: SearchAlgorithm
    var proxies: [ZeroCostProxy] = []
    var warmStart = 0
    var prescreenQuantile: Double?
}

let nb201Checkpoints = [25, 50, 100, 150]

/// Mean (and std) of the best test accuracy found after each checkpoint's evaluations, over seeds.
func nb201Curve(_ searcher: NB201Searcher, space: SearchSpace, seeds: Range<UInt64>, budget: Int,
                lookup: (Architecture) -> Double?) throws -> [Int: (mean: Double, std: Double)] {
    let guide = searcher.proxies.isEmpty ? nil
        : try nb201Guide(proxies: searcher.proxies, warmStart: searcher.warmStart, prescreenQuantile: searcher.prescreenQuantile)
    var bests = [Int: [Double]]()
    for seed in seeds {
        var s = try AnySearcher(searcher.algorithm, space: space, seed: seed)
        var feasible: (Architecture) -> Bool = { _ in true }
        if let guide {
            s.setWarmStart(guide.searcherStart(try guide.warmStart(seed: seed)))
            feasible = guide.admits
        }
        let trace = runTabularSearch(searcher: &s, budget: budget, isFeasible: feasible, lookup: lookup)
        for checkpoint in nb201Checkpoints where checkpoint <= budget {
            let best = trace.entries.last { $0.evaluationsSoFar <= checkpoint }?.bestObjectiveSoFar
            bests[checkpoint, default: []].append(best ?? .nan)
        }
    }
    return bests.mapValues { values in
        let mean = values.reduce(0, +) / Double(values.count)
        let variance = values.count > 1 ? values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1) : 0
        return (mean, variance.squareRoot())
    }
}

func nb201Benchmark(_ arguments: [String]) throws {
    let seeds = UInt64(intOption("seeds", arguments, default: 500))
    let budget = intOption("budget", arguments, default: 150)
    let tablePath = option("table", arguments, default: defaultNB201Table)
    let space = try SearchSpace.shipped(named: "nasbench201")
    let datasets = [("CIFAR-10", "CIFAR10TestAccuracy200Epochs"), ("CIFAR-100", "CIFAR100TestAccuracy200Epochs"),
                    ("ImageNet16-120", "ImageNetTestAccuracy200Epochs")]
    let zeroCost = NB201Searcher(label: "local search + synflow (warm start 1000, pre-screen q=0.8; zero-cost)",
                                 algorithm: .localSearch(), proxies: [.synflow], warmStart: 1000, prescreenQuantile: 0.8)
    let searchers: [NB201Searcher] = [
        NB201Searcher(label: "random search", algorithm: .random()),
        NB201Searcher(label: "regularized evolution (P=100, S=25, no dedup; Real et al.)",
                      algorithm: .regularizedEvolution(populationSize: 100, sampleSize: 25, deduplicate: false)),
        NB201Searcher(label: "regularized evolution (P=20, S=10, dedup; NASLab default)", algorithm: .regularizedEvolution()),
        NB201Searcher(label: "local search (n0=10, restarts)", algorithm: .best),
        NB201Searcher(label: "random search + synflow (warm start 1000, pre-screen q=0.8)", algorithm: .random(),
                      proxies: [.synflow], warmStart: 1000, prescreenQuantile: 0.8),
        NB201Searcher(label: "regularized evolution + synflow (warm start 1000, q=0.8)", algorithm: .regularizedEvolution(),
                      proxies: [.synflow], warmStart: 1000, prescreenQuantile: 0.8),
        zeroCost,
    ]
    let checkpoints = nb201Checkpoints.filter { $0 <= budget }
    print("NAS-Bench-201 tabular search: seeds 0..<\(seeds), mean ± std of the best test accuracy (%) after N queries")
    print("(zero-cost proxies are NASLab's own, computed by its engine; their evaluations are not queries)")
    var lastLine = [String: (Double, Double)]()
    for (datasetName, column) in datasets {
        let table = try TabularBenchmark(contentsOf: URL(fileURLWithPath: tablePath), metricColumn: column)
        print("\n\(datasetName) (space max \(String(format: "%.3f", table.keys.compactMap { table.lookup($0) }.max() ?? .nan)))")
        print("  " + "searcher".padding(toLength: 72, withPad: " ", startingAt: 0)
              + checkpoints.map { "\($0) queries".leftPadded(to: 17) }.joined())
        for searcher in searchers {
            let t0 = now()
            let curve = try nb201Curve(searcher, space: space, seeds: 0..<seeds, budget: budget) { table.lookup(space.text(of: $0)) }
            print("  " + searcher.label.padding(toLength: 72, withPad: " ", startingAt: 0)
                  + checkpoints.map { String(format: "  %7.3f ± %5.3f", curve[$0]!.mean, curve[$0]!.std) }.joined()
                  + String(format: "   (%.1f s)", now() - t0))
            if searcher.label == zeroCost.label || searcher.label == "local search (n0=10, restarts)", let c = curve[50] {
                lastLine["\(datasetName) \(searcher.label == zeroCost.label ? "zero-cost" : "local")"] = (c.mean, c.std)
            }
        }
    }
    for (datasetName, _) in datasets {
        let z = lastLine["\(datasetName) zero-cost"], l = lastLine["\(datasetName) local"]
        print(String(format: "%@ at 50 queries: zero-cost local search %.3f vs local search %.3f", datasetName, z?.0 ?? .nan, l?.0 ?? .nan))
    }
    print("zero-cost searcher mean C10 test acc at 50 queries: \(String(format: "%.3f", lastLine["CIFAR-10 zero-cost"]?.0 ?? .nan))")
}

func throughputBenchmark(_ arguments: [String]) throws {
    let evaluations = intOption("evaluations", arguments, default: 2000)
    let tablePath = option("table", arguments, default: defaultNB201Table)
    let directory = option("output", arguments, default: NSTemporaryDirectory())
    let space = try SearchSpace.shipped(named: "nasbench201")
    let table = try TabularBenchmark(contentsOf: URL(fileURLWithPath: tablePath))

    // 1. ask/tell alone (random search, no records).
    var t0 = now()
    var searcher = try AnySearcher(.random(), space: space, seed: 0)
    let trace = runTabularSearch(searcher: &searcher, budget: evaluations) { table.lookup(space.text(of: $0)) }
    let askTellRate = Double(trace.evaluationCount) / (now() - t0)

    // 2. The full runner: ask → estimate (params/FLOPs) → look up → HDF5 record flushed per candidate → tell.
    var config = ExperimentConfig(name: "throughput")
    config.space = "nasbench201"
    config.searcher.kind = "random"
    config.budget.candidates = evaluations
    config.evaluator.kind = "tabular"
    config.evaluator.table = tablePath
    config.output = (directory as NSString).appendingPathComponent("naslab-throughput-\(getpid()).h5")
    defer { try? FileManager.default.removeItem(atPath: config.output!) }
    let runner = try ExperimentRunner.start(config: config, configYAML: config.yamlText, overwrite: true)
    t0 = now()   // like Optuna's timing: the search loop, not loading the table
    let summary = try runner.run()
    let fullRate = Double(summary.evaluated) / (now() - t0)
    print(String(format: "naslab ask/tell only (random search, table lookup): %.0f evaluations/s", askTellRate))
    print(String(format: "naslab full search (ask, params/FLOPs, lookup, HDF5 record flushed per candidate, tell): %.0f evaluations/s", fullRate))
    print("naslab evaluations/s: \(String(format: "%.1f", fullRate))")
}

extension String {
    /// The string right-aligned in `width` columns.
    func leftPadded(to width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
