// naslab-bench <section> [options]: each section lives in its own file.
import Foundation
let benchmarkArguments = Array(CommandLine.arguments.dropFirst())
switch benchmarkArguments.first {
case "latency":
    do { try runLatencyBenchmark(Array(benchmarkArguments.dropFirst())) } catch {
        print("naslab-bench latency: \(error)")
        exit(1)
    }
default:
    print("naslab-bench: under construction (sections: latency)")
}
