import Engine
import Foundation
import NASCore
import Spaces

/// The networks of `Benchmarks/engine-suite.sh` (issue "Hardware-aware for real"): one fixed
/// architecture each, the same graph handed to PyTorch as JSON (`Benchmarks/pytorch/suite_bench.py`).
struct SuiteNetwork {
    var name: String
    var space: String
    /// The architecture's text form; nil: the space's fixed network or `seed`'s random draw.
    var architecture: String?
    var seed: UInt64 = 1
    var input: FeatureShape
    var vocabulary: Int? = nil
    var classes: Int
    var trainBatch: Int

    static let all: [SuiteNetwork] = [
        SuiteNetwork(name: "cnn", space: "reference/cnn", input: FeatureShape(channels: 1, height: 28, width: 28),
                     classes: 10, trainBatch: 128),
        SuiteNetwork(name: "medium", space: "medium", input: FeatureShape(channels: 1, height: 28, width: 28),
                     classes: 10, trainBatch: 128),
        SuiteNetwork(name: "nb201", space: "nasbench201",
                     architecture: "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
                     input: FeatureShape(channels: 3, height: 32, width: 32), classes: 10, trainBatch: 128),
        SuiteNetwork(name: "resnet18", space: "reference/resnet18", input: FeatureShape(channels: 3, height: 224, width: 224),
                     classes: 1000, trainBatch: 64),
        SuiteNetwork(name: "mobilenetv2", space: "reference/mobilenet_v2",
                     input: FeatureShape(channels: 3, height: 224, width: 224), classes: 1000, trainBatch: 64),
        SuiteNetwork(name: "text", space: "text-medium", input: FeatureShape(channels: 24, height: 1, width: 128),
                     vocabulary: 120_000, classes: 4, trainBatch: 128),
    ]

    func graph() throws -> NetworkGraph {
        let space = try SearchSpace.shipped(named: self.space)
        let arch: Architecture
        if let architecture { arch = try space.parse(architecture) } else {
            var rng = SeededGenerator(seed: seed)
            arch = space.sample(using: &rng)
        }
        return try space.network(for: arch, inputShape: input, inputKind: vocabulary.map { .tokens(vocabularySize: $0) },
                                 classCount: classes)
    }

    /// `batch` random inputs: normal floats for images, ids in 2..<vocabulary (no padding) for text.
    func inputs(batch: Int, rng: inout SeededGenerator) -> Tensor {
        let count = batch * input.elementCount
        let values: [Float]
        if let vocabulary {
            values = (0..<count).map { _ in Float(2 + rng.nextInt(below: vocabulary - 2)) }
        } else {
            values = (0..<count).map { _ in Float(rng.nextNormal()) }
        }
        return Tensor(shape: [batch, input.channels, input.height, input.width], values: values)
    }
}

/// `naslab-bench suite --network NAME --mode train|latency [--steps N | --seconds S] [--warmup N]
/// [--repeats N] [--profile [--profile-ops]] [--graph-out FILE]`, run inside `--threads T` (main.swift's compute context).
///
/// - train: samples/s of SGD steps (momentum 0.9, softmax cross-entropy) at the network's batch:
///   `--steps` steps, or as many as fit in `--seconds` (default 5; at least 2), after `--warmup` (2).
/// - latency: median milliseconds of `repeats` batch-1 evaluation-mode forward passes after
///   max(5, `--warmup`) untimed ones.
/// - `--graph-out`: writes `{"graph": …, "classes", "vocabulary", "train_batch", "parameters"}` for
///   PyTorch (which checks that its translation has the same trainable parameter count).
func suiteBenchmark(_ arguments: [String]) throws {
    let name = option("network", arguments, default: "cnn")
    guard let entry = SuiteNetwork.all.first(where: { $0.name == name }) else {
        throw EngineError.invalidConfiguration("unknown suite network '\(name)' (\(SuiteNetwork.all.map(\.name).joined(separator: ", ")))")
    }
    let graph = try entry.graph()
    let graphOut = option("graph-out", arguments, default: "")
    if !graphOut.isEmpty {
        let encoder = JSONEncoder()
        let graphJSON = try JSONSerialization.jsonObject(with: encoder.encode(graph))
        var rng = SeededGenerator(seed: 1)
        let parameters = try Network(graph: graph, classCount: entry.classes, rng: &rng).parameterCount
        var object: [String: Any] = ["graph": graphJSON, "classes": entry.classes, "train_batch": entry.trainBatch, "name": entry.name,
                                     "parameters": parameters]
        if let v = entry.vocabulary { object["vocabulary"] = v }
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: graphOut))
        return
    }
    let mode = option("mode", arguments, default: "latency")
    let threads = ComputeContext.current.threads
    var rng = SeededGenerator(seed: 1)
    let network = try Network(graph: graph, classCount: entry.classes, rng: &rng)
    switch mode {
    case "train":
        let batch = entry.trainBatch
        // Timed steps: --steps N, or as many as fit in --seconds (default 5, at least 2 steps).
        let fixedSteps = intOption("steps", arguments, default: 0)
        let seconds = Double(option("seconds", arguments, default: "5")) ?? 5
        let warmup = intOption("warmup", arguments, default: 2)
        let x = entry.inputs(batch: batch, rng: &rng)
        let labels = (0..<batch).map { _ in Int32(rng.nextInt(below: entry.classes)) }
        let optimizer = SGD(learningRate: 0.01, momentum: 0.9)
        func step() throws {
            _ = try network.lossAndGradients(input: x, labels: labels)
            optimizer.update(network.parameters)
        }
        for _ in 0..<warmup { try step() }
        let t = now()
        var steps = 0
        while fixedSteps > 0 ? steps < fixedSteps : (steps < 2 || now() - t < seconds) {
            try step()
            steps += 1
        }
        let rate = Double(steps * batch) / (now() - t)
        if arguments.contains("--profile") {
            // Where a training step's time goes, by op kind, or by op and attributes with --profile-ops
            // (forward + backward, 2 profiled steps).
            network.isProfiling = true
            for _ in 0..<2 { try step() }
            network.isProfiling = false
            var byKind = [String: (forward: Double, backward: Double)]()
            for node in graph.nodes {
                guard let p = network.profile[node.name] else { continue }
                let key = arguments.contains("--profile-ops") ? node.op.description : node.op.kind
                let entry = byKind[key] ?? (0, 0)
                byKind[key] = (entry.forward + p.forward / 2, entry.backward + p.backward / 2)
            }
            for (kind, p) in byKind.sorted(by: { $0.value.forward + $0.value.backward > $1.value.forward + $1.value.backward }) {
                print(String(format: "  %-18@ forward %8.1f ms  backward %8.1f ms per step", kind, p.forward * 1000, p.backward * 1000))
            }
        }
        print(String(format: "naslab %@ train threads %d: %.2f samples/s", entry.name, threads, rate))
    case "latency":
        let repeats = intOption("repeats", arguments, default: 30)
        let warmup = max(5, intOption("warmup", arguments, default: 5))
        let x = entry.inputs(batch: 1, rng: &rng)
        for _ in 0..<warmup { _ = try network.forward(x, training: false) }
        var times = [Double]()
        for _ in 0..<repeats {
            let t = now()
            _ = try network.forward(x, training: false)
            times.append((now() - t) * 1000)
        }
        times.sort()
        if arguments.contains("--profile") {
            // Where a batch-1 pass goes, by node (median of 10 profiled passes; fused chains at their conv).
            var perNode = [[Double]](repeating: [], count: graph.nodes.count)
            for _ in 0..<10 {
                let p = try network.profileForward(x)
                for (i, t) in p.nodeNanoseconds.enumerated() { perNode[i].append(t / 1e6) }
            }
            let medians = perNode.map { $0.sorted()[$0.count / 2] }
            for i in medians.indices.sorted(by: { medians[$0] > medians[$1] }).prefix(12) where medians[i] > 0 {
                print(String(format: "  %-36@ %-14@ %8.3f ms", graph.nodes[i].name, graph.nodes[i].op.kind, medians[i]))
            }
        }
        print(String(format: "naslab %@ latency threads %d: %.4f ms", entry.name, threads, times[times.count / 2]))
    default:
        throw EngineError.invalidConfiguration("--mode must be train or latency")
    }
}
