// Search-side benchmarks:
//
//   naslab-bench nb201 [--seeds 500] [--budget 150] [--table PATH]
//       Tabular NAS-Bench-201 search quality: mean ± std of the best test accuracy found with
//       `budget` evaluations, over `seeds` seeds, for random search, regularized evolution and
//       local search, on CIFAR-10, CIFAR-100 and ImageNet16-120.
//   naslab-bench throughput [--evaluations 2000] [--table PATH] [--output DIR]
//       ask/tell + HDF5 record throughput of a full NASLab tabular search (evaluations/s), and
//       ask/tell alone, on the NB201 table.
import Foundation
import Lab
import Records
import Search
import Spaces

let defaultNB201Table = "../shared/benchmarks/nasbench201/nats_bench_tss_200ep.csv"

func nb201Benchmark(_ arguments: [String]) throws {
    let seeds = UInt64(intOption("seeds", arguments, default: 500))
    let budget = intOption("budget", arguments, default: 150)
    let tablePath = option("table", arguments, default: defaultNB201Table)
    let space = try SearchSpace.shipped(named: "nasbench201")
    let datasets = [("CIFAR-10", "CIFAR10TestAccuracy200Epochs"), ("CIFAR-100", "CIFAR100TestAccuracy200Epochs"),
                    ("ImageNet16-120", "ImageNetTestAccuracy200Epochs")]
    let algorithms: [(String, SearchAlgorithm)] = [
        ("random search", .random()),
        ("regularized evolution (P=100, S=25, no dedup; Real et al.)", .regularizedEvolution(populationSize: 100, sampleSize: 25, deduplicate: false)),
        ("regularized evolution (P=20, S=10, dedup; NASLab default)", .regularizedEvolution()),
        ("local search (n0=10, restarts; NASLab best)", .best),
    ]
    print("NAS-Bench-201 tabular search: \(budget) evaluations per run, seeds 0..<\(seeds), test accuracy (%) of the best found")
    var bestC10 = 0.0
    for (datasetName, column) in datasets {
        let table = try TabularBenchmark(contentsOf: URL(fileURLWithPath: tablePath), metricColumn: column)
        print("\n\(datasetName) (space max \(String(format: "%.3f", table.keys.compactMap { table.lookup($0) }.max() ?? .nan)))")
        for (label, algorithm) in algorithms {
            let t0 = now()
            let summary = try runTabularSearches(algorithm, space: space, seeds: 0..<seeds, budget: budget) {
                table.lookup(space.text(of: $0))
            }
            print("  " + label.padding(toLength: 62, withPad: " ", startingAt: 0)
                  + String(format: " %.3f ± %.3f   (%.1f s)", summary.mean, summary.standardDeviation, now() - t0))
            if column == "CIFAR10TestAccuracy200Epochs", algorithm == .best { bestC10 = summary.mean }
        }
    }
    print("best searcher mean C10 test acc: \(String(format: "%.3f", bestC10))")
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
