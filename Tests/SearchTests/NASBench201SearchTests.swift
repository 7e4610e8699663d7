import Foundation
import NASCore
import Search
import XCTest

/// NAS-Bench-201 tabular search: 150 evaluations per run, the objective is the table's test
/// accuracy (the searcher only sees the values of architectures it evaluated).
final class NASBench201SearchTests: XCTestCase {
    static let space = NASBench201TestSpace()
    static let metrics = [
        ("CIFAR-10", "CIFAR10TestAccuracy200Epochs"),
        ("CIFAR-100", "CIFAR100TestAccuracy200Epochs"),
        ("ImageNet16-120", "ImageNetTestAccuracy200Epochs"),
    ]

    /// The metric of every architecture, indexed by its choices read as base-5 digits.
    func loadTable(metricColumn: String) throws -> [Double] {
        let table = try TabularBenchmark(contentsOf: try nasBench201TableURL(), metricColumn: metricColumn)
        return GridSpace(optionCounts: [5, 5, 5, 5, 5, 5]).all.map { table.lookup(Self.space.text(of: $0))! }
    }

    static func index(_ a: Architecture) -> Int { a.choices.reduce(0) { $0 * 5 + $1 } }

    /// Best objective found in each of `seeds` runs of 150 evaluations.
    func bestPerSeed<S: Searcher>(_ seeds: Range<UInt64>, table: [Double], make: (UInt64) throws -> S) rethrows -> [Double] {
        try seeds.map { seed in
            var searcher = try make(seed)
            let trace = runTabularSearch(searcher: &searcher, budget: 150) { table[Self.index($0)] }
            precondition(trace.evaluationCount == 150 && trace.evaluated.count == 150)
            return trace.bestObjective!
        }
    }

    static func meanAndStandardDeviation(_ xs: [Double]) -> (mean: Double, std: Double) {
        let mean = xs.reduce(0, +) / Double(xs.count)
        let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(max(1, xs.count - 1))
        return (mean, variance.squareRoot())
    }

    static func format(_ xs: [Double]) -> String {
        let (mean, std) = meanAndStandardDeviation(xs)
        return String(format: "%.3f ± %.3f", mean, std)
    }

    func testLocalSearchBeatsRandomSearchOnCIFAR10() throws {
        // The realistic path: the table keyed by architecture text, looked up through the space.
        let table = try TabularBenchmark(contentsOf: try nasBench201TableURL())
        let lookup: (Architecture) -> Double? = { table.lookup(Self.space.text(of: $0)) }
        var random = [Double](), local = [Double]()
        for seed: UInt64 in 0..<30 {
            var randomSearch = try RandomSearch(space: Self.space, seed: seed)
            let randomTrace = runTabularSearch(searcher: &randomSearch, budget: 150, lookup: lookup)
            var localSearch = try LocalSearch(space: Self.space, seed: seed)
            let localTrace = runTabularSearch(searcher: &localSearch, budget: 150, lookup: lookup)
            for trace in [randomTrace, localTrace] {
                XCTAssertEqual(trace.evaluated.count, 150)
                XCTAssertEqual(Set(trace.entries.map(\.text)).count, 150)
                // The best is the running maximum of what the searcher saw.
                XCTAssertEqual(trace.bestObjective, trace.evaluated.compactMap { table.lookup($0.text) }.max())
            }
            random.append(randomTrace.bestObjective!)
            local.append(localTrace.bestObjective!)
        }
        let randomMean = Self.meanAndStandardDeviation(random).mean
        let localMean = Self.meanAndStandardDeviation(local).mean
        print("NB201 C10, 150 evaluations, 30 seeds: random \(Self.format(random)), local search \(Self.format(local))")
        XCTAssertEqual(randomMean, 93.93, accuracy: 0.15, "random search should be near NB201's reported ≈ 93.9")
        XCTAssertGreaterThan(localMean, randomMean + 0.2)
        XCTAssertGreaterThanOrEqual(localMean, 94.30)
        XCTAssertLessThanOrEqual(local.max()!, 94.3734)
    }

    /// The 500-seed measurement of the report, on seeds not used for tuning; runs only with
    /// NASLAB_LONG=1.
    func testLongMeasurement() throws {
        guard ProcessInfo.processInfo.environment["NASLAB_LONG"] == "1" else {
            throw XCTSkip("500-seed NB201 measurement; set NASLAB_LONG=1 to run")
        }
        let seeds: Range<UInt64> = 10_000..<10_500
        let algorithms: [SearchAlgorithm] = [
            .random(),
            .regularizedEvolution(),
            .regularizedEvolution(deduplicate: false),
            .regularizedEvolution(populationSize: 100, sampleSize: 25, deduplicate: false),
            .localSearch(),
            .localSearch(localOptimumPolicy: .continueFromNextBest),
        ]
        for (label, column) in Self.metrics {
            let table = try TabularBenchmark(contentsOf: try nasBench201TableURL(), metricColumn: column)
            print("NB201 \(label), 150 evaluations, seeds 10000..<10500:")
            for algorithm in algorithms {
                let summary = try runTabularSearches(algorithm, space: Self.space, seeds: seeds, budget: 150) {
                    table.lookup(Self.space.text(of: $0))
                }
                XCTAssertEqual(summary.bestPerSeed.count, 500)
                print("  \(summary)")
            }
        }
    }

    /// Hyper-parameter grid for tuning on CIFAR-10; runs only with NASLAB_TUNE=1.
    func testTuningGrid() throws {
        guard ProcessInfo.processInfo.environment["NASLAB_TUNE"] == "1" else {
            throw XCTSkip("tuning grid; set NASLAB_TUNE=1 to run")
        }
        let seeds: Range<UInt64> = 0..<500
        let table = try loadTable(metricColumn: "CIFAR10TestAccuracy200Epochs")
        for initial in [1, 5, 10, 20, 30] {
            for policy in LocalSearch.LocalOptimumPolicy.allCases {
                let result = bestPerSeed(seeds, table: table) {
                    try! LocalSearch(space: Self.space, seed: $0, initialSampleCount: initial, localOptimumPolicy: policy)
                }
                print("LS n0=\(initial) \(policy): \(Self.format(result))")
            }
        }
        for (population, sample) in [(10, 5), (10, 10), (15, 5), (15, 8), (15, 15), (20, 5), (20, 8), (20, 10), (20, 15), (20, 20), (25, 10), (30, 10), (30, 15)] {
            let result = bestPerSeed(seeds, table: table) {
                try! RegularizedEvolution(space: Self.space, seed: $0, populationSize: population, sampleSize: sample)
            }
            let noDedup = bestPerSeed(seeds, table: table) {
                try! RegularizedEvolution(space: Self.space, seed: $0, populationSize: population, sampleSize: sample,
                                          deduplicate: false)
            }
            print("RE P=\(population) S=\(sample): \(Self.format(result)); without dedup \(Self.format(noDedup))")
        }
    }
}
