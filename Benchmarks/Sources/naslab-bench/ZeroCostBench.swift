// Zero-cost proxies of every NAS-Bench-201 cell:
//
//   naslab-bench nb201-proxies [--table PATH] [--output FILE.csv] [--proxies synflow,params,flops]
//       Computes NASLab's data-free proxies for all 15,625 cells (CIFAR-10 input 3×32×32, 10
//       classes, proxy seed 0) through `ZeroCostGuide`, so the per-user cache that proxy-guided
//       searches read is filled as a side effect; writes one CSV row per cell with the three test
//       accuracies of the table.
import Foundation
import Lab
import NASCore
import Search
import Spaces

/// The zero-cost guide proxy-guided NB201 searches use (the runner's tabular input).
func nb201Guide(proxies: [ZeroCostProxy], warmStart: Int, prescreenQuantile: Double?) throws -> ZeroCostGuide {
    let reference = try SpaceReference.resolve("nasbench201")
    let input = ExperimentRunner.tabularInput
    return try ZeroCostGuide(settings: ZeroCostGuide.Settings(proxies: proxies, warmStart: warmStart, prescreenQuantile: prescreenQuantile),
                             space: reference.space, spaceYAML: reference.yaml, inputShape: input.shape, inputKind: input.kind,
                             classCount: input.classes, batchData: nil, datasetName: nil)
}

func nb201ProxiesBenchmark(_ arguments: [String]) throws {
    let tablePath = option("table", arguments, default: defaultNB201Table)
    let output = option("output", arguments, default: "nb201-proxies.csv")
    let proxies = try option("proxies", arguments, default: "synflow,params,flops").split(separator: ",").map { name in
        guard let p = ZeroCostProxy(rawValue: String(name)), !p.needsData else {
            throw LabError.invalid("--proxies: '\(name)' is not a data-free proxy (synflow, params, flops)")
        }
        return p
    }
    let guide = try nb201Guide(proxies: proxies, warmStart: 0, prescreenQuantile: nil)
    let columns = ["CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs", "ImageNetTestAccuracy200Epochs"]
    let tables = try columns.map { try TabularBenchmark(contentsOf: URL(fileURLWithPath: tablePath), metricColumn: $0) }
    let keys = tables[0].keys.sorted()
    var text = "architecture," + proxies.map(\.rawValue).joined(separator: ",") + ",c10,c100,in16\n"
    let t0 = now()
    for (i, key) in keys.enumerated() {
        let values = try guide.values(of: try guide.space.parse(key))
        text += "\"\(key)\"," + values.map { "\($0)" }.joined(separator: ",") + ","
            + tables.map { $0.lookup(key).map { "\($0)" } ?? "" }.joined(separator: ",") + "\n"
        if (i + 1) % 500 == 0 || i + 1 == keys.count {
            FileHandle.standardError.write(String(format: "  %d/%d cells, %.1f s\n", i + 1, keys.count, now() - t0).data(using: .utf8)!)
        }
    }
    guide.saveCache()
    try text.write(toFile: output, atomically: true, encoding: .utf8)
    print(String(format: "wrote %@: %d cells, %.1f ms per cell", output, keys.count, (now() - t0) * 1000 / Double(keys.count)))
}
