// naslab-bench: measurements that are not unit tests.
//
//   naslab-bench engine  [--threads 2] [--batch 128] [--steps 40] [--warmup 5] [--size 28]
//       Training and forward-only samples/s of the engine on the reference CNN
//       (conv3×3 1→16, ReLU, conv3×3 16→32, ReLU, padding 1, global average pool, linear 32→10),
//       random inputs, SGD; plus GFLOP/s of the largest GEMM and of a 1024² sgemm.
//   naslab-bench fashion [--threads 2] [--epochs 5] [--batch 128] [--directory /usr/share/datasets/fashion-mnist] [--progress]
//       Trains a small CNN on Fashion-MNIST and reports test accuracy and time.
import Dispatch
import Engine
import Foundation
import NASCore

func option(_ name: String, _ arguments: [String], default value: String) -> String {
    if let i = arguments.firstIndex(of: "--" + name), i + 1 < arguments.count { return arguments[i + 1] }
    return value
}

func intOption(_ name: String, _ arguments: [String], default value: Int) -> Int {
    guard let v = Int(option(name, arguments, default: String(value))) else {
        FileHandle.standardError.write("naslab-bench: --\(name) needs an integer\n".data(using: .utf8)!)
        exit(2)
    }
    return v
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

func referenceGraph(size: Int) -> NetworkGraph {
    var g = NetworkGraph(inputShape: FeatureShape(channels: 1, height: size, width: size))
    var x = g.add("conv1", .conv2d(Conv2dAttributes(outChannels: 16, kernel: 3, padding: 1, bias: true)), g.input)
    x = g.add("relu1", .activation(.relu), x)
    x = g.add("conv2", .conv2d(Conv2dAttributes(outChannels: 32, kernel: 3, padding: 1, bias: true)), x)
    x = g.add("relu2", .activation(.relu), x)
    x = g.add("gap", .globalAvgPool, x)
    g.add("fc", .linear(outFeatures: 10, bias: true), x)
    return g
}

func engineBenchmark(_ arguments: [String]) throws {
    let threads = intOption("threads", arguments, default: 2)
    let batch = intOption("batch", arguments, default: 128)
    let steps = intOption("steps", arguments, default: 40)
    let warmup = intOption("warmup", arguments, default: 5)
    let size = intOption("size", arguments, default: 28)
    var rng = SeededGenerator(seed: 1)
    let network = try Network(graph: referenceGraph(size: size), classCount: 10, rng: &rng)
    let x = Tensor(shape: [batch, 1, size, size], values: (0..<(batch * size * size)).map { _ in Float(rng.nextNormal()) })
    let labels = (0..<batch).map { _ in Int32(rng.nextInt(below: 10)) }
    let optimizer = SGD(learningRate: 0.01, momentum: 0.9)
    func step() throws {
        _ = try network.lossAndGradients(input: x, labels: labels)
        optimizer.update(network.parameters)
    }
    for _ in 0..<warmup { try step() }
    var t = now()
    for _ in 0..<steps { try step() }
    let trainRate = Double(steps * batch) / (now() - t)
    for _ in 0..<warmup { _ = try network.forward(x, training: false) }
    t = now()
    for _ in 0..<steps { _ = try network.forward(x, training: false) }
    let forwardRate = Double(steps * batch) / (now() - t)
    // Per-node profile of a few training steps (forward + backward).
    network.isProfiling = true
    for _ in 0..<5 { try step() }
    network.isProfiling = false
    let profiled = network.profile
    let conv2Flops = 2.0 * 32 * Double(batch * size * size) * 144
    let largest = measureGEMM(m: 32, n: batch * size * size, k: 16 * 9, threads: threads)
    let square = measureGEMM(m: 1024, n: 1024, k: 1024, threads: threads)
    print("naslab OpenBLAS core: \(EngineConfiguration.openBLASCoreName), threads: \(threads), batch: \(batch), input: 1x\(size)x\(size), steps: \(steps)")
    print(String(format: "naslab train samples/s: %.1f", trainRate))
    print(String(format: "naslab forward samples/s: %.1f", forwardRate))
    print(String(format: "naslab largest GEMM (conv2 forward, M=32 N=%d K=144) GFLOP/s: %.1f", batch * size * size, largest))
    print(String(format: "naslab sgemm 1024^2 GFLOP/s: %.1f", square))
    if let conv2 = profiled["conv2"] {
        print(String(format: "naslab conv2 forward (im2col + GEMMs, batch split over threads) GFLOP/s: %.1f", conv2Flops * 5 / conv2.forward * 1e-9))
    }
    for node in network.graph.nodes.dropFirst() {
        if let p = profiled[node.name] {
            print(String(format: "  profile %-6@ forward %7.2f ms  backward %7.2f ms", node.name, p.forward * 200, p.backward * 200))
        }
    }
}

/// Reads an IDX file compressed with gzip (through `zcat`).
func readIDX(_ path: String) throws -> (dimensions: [Int], bytes: [UInt8]) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/zcat")
    process.arguments = [path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let bytes = [UInt8](data)
    guard bytes.count >= 4, bytes[2] == 0x08 else { throw EngineError.invalidConfiguration("\(path): not an unsigned-byte IDX file") }
    let rank = Int(bytes[3])
    var dims = [Int]()
    for r in 0..<rank {
        let o = 4 + 4 * r
        dims.append(Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3]))
    }
    let start = 4 + 4 * rank
    guard bytes.count == start + dims.reduce(1, *) else { throw EngineError.invalidConfiguration("\(path): truncated") }
    return (dims, Array(bytes[start...]))
}

func fashionSet(_ directory: String, _ prefix: String) throws -> LabeledArrays {
    let images = try readIDX("\(directory)/\(prefix)-images-idx3-ubyte.gz")
    let labels = try readIDX("\(directory)/\(prefix)-labels-idx1-ubyte.gz")
    let features = images.bytes.map { (Float($0) / 255 - 0.2860) / 0.3530 }
    return LabeledArrays(features: features, labels: labels.bytes.map { Int32($0) },
                         sampleShape: FeatureShape(channels: 1, height: images.dimensions[1], width: images.dimensions[2]), classCount: 10)
}

func fashionBenchmark(_ arguments: [String]) throws {
    let threads = intOption("threads", arguments, default: 2)
    let epochs = intOption("epochs", arguments, default: 5)
    let batch = intOption("batch", arguments, default: 128)
    let directory = option("directory", arguments, default: "/usr/share/datasets/fashion-mnist")
    let train = try fashionSet(directory, "train")
    let test = try fashionSet(directory, "t10k")
    // conv3×3 1→16, BN, ReLU, maxpool 2 → conv3×3 16→32, BN, ReLU, maxpool 2 → conv3×3 32→64, BN, ReLU, GAP, linear.
    var g = NetworkGraph(inputShape: train.sampleShape)
    var x = g.input
    for (i, width) in [16, 32, 64].enumerated() {
        x = g.add("conv\(i + 1)", .conv2d(Conv2dAttributes(outChannels: width, kernel: 3, padding: 1)), x)
        x = g.add("bn\(i + 1)", .batchNorm(affine: true), x)
        x = g.add("relu\(i + 1)", .activation(.relu), x)
        if i < 2 { x = g.add("pool\(i + 1)", .maxPool(PoolAttributes(kernel: 2, stride: 2)), x) }
    }
    x = g.add("gap", .globalAvgPool, x)
    g.add("fc", .linear(outFeatures: 10, bias: true), x)
    var rng = SeededGenerator(seed: 42)
    let network = try Network(graph: g, classCount: 10, rng: &rng)
    let configuration = TrainingConfiguration(epochs: epochs, batchSize: batch, learningRate: 0.1, optimizer: .sgd, momentum: 0.9,
                                              nesterov: true, weightDecay: 5e-4, schedule: .cosine(minimumFactor: 0),
                                              warmupEpochs: 1, seed: 7, threads: threads)
    let result = try Trainer(configuration: configuration, observers: [ProgressBar(force: arguments.contains("--progress"))]).fit(network, train: train, test: test, rng: &rng)
    print("fashion-mnist: \(network.parameterCount) parameters, \(epochs) epochs, batch \(batch), threads \(threads)")
    for m in result.epochs {
        print(String(format: "epoch %d: train loss %.4f, train accuracy %.4f, %.1f s", m.epoch + 1, m.trainLoss, m.trainAccuracy, m.seconds))
    }
    print(String(format: "fashion-mnist test accuracy: %.4f, status: %@, wall seconds: %.1f",
                 result.testAccuracy ?? .nan, "\(result.status)", result.wallSeconds))
}

EngineConfiguration.relaunchWithOptimizedOpenBLASIfNeeded()
let arguments = Array(CommandLine.arguments.dropFirst())
// Every benchmark runs in the ComputeContext of its --threads (latency, machine-noise: default 1; others: 2).
let context = ComputeContext(threads: intOption("threads", arguments, default: ["latency", "machine-noise"].contains(arguments.first ?? "") ? 1 : 2))
do {
    switch arguments.first {
    case "engine": try context.run { try engineBenchmark(arguments) }
    case "fashion": try context.run { try fashionBenchmark(arguments) }
    case "nb201": try context.run { try nb201Benchmark(arguments) }
    case "throughput": try context.run { try throughputBenchmark(arguments) }
    case "latency": try context.run { try runLatencyBenchmark(Array(arguments.dropFirst())) }
    case "nb201-proxies": try context.run { try nb201ProxiesBenchmark(arguments) }
    case "suite": try context.run { try suiteBenchmark(arguments) }
    case "machine-noise": try context.run { try runMachineNoiseBenchmark(arguments) }
    default:
        print("usage: naslab-bench engine [--threads N] [--batch N] [--steps N] [--warmup N] [--size N]\n       naslab-bench fashion [--threads N] [--epochs N] [--batch N] [--directory DIR] [--progress]\n       naslab-bench nb201 [--seeds N] [--budget N] [--table CSV]\n       naslab-bench nb201-proxies [--table CSV] [--output CSV] [--proxies synflow,params,flops]\n       naslab-bench throughput [--evaluations N] [--table CSV]\n       naslab-bench latency [options: see Benchmarks/latency-predictor.sh]\n       naslab-bench machine-noise [--seconds N] [--threads N] [--megabytes N]\n       naslab-bench suite --network NAME --mode train|latency [--threads N] [--steps N] [--repeats N] [--graph-out FILE]")
        exit(arguments.isEmpty ? 0 : 2)
    }
} catch {
    FileHandle.standardError.write("naslab-bench: \(error)\n".data(using: .utf8)!)
    exit(1)
}
