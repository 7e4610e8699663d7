import Engine
import Estimators
import Foundation

/// `naslab-bench machine-noise [--seconds 20] [--threads 1] [--megabytes 64]`: how steady this
/// machine's speed is over seconds — what bounds any latency measurement and predictor on it.
///
/// Each second it alternates two probes and keeps each one's median for that second:
/// - the measurement protocol's **reference network** (`LatencyProtocol.referenceGraph`, batch 1,
///   its protocol timing of 15 passes on the protocol's clock for the thread count): small and
///   cache-resident, it sees the cores' speed (frequency, a neighbour on the same core);
/// - a **memory stream**: one read of every cache line of a `--megabytes` buffer (far larger than
///   the caches), on the wall clock: it sees the memory bandwidth the host's other tenants leave.
///
/// Networks whose activations and weights outgrow the caches (large, segmentation) run partly at
/// the second speed, which the reference network cannot see. The last line is
/// `per-second spread: reference <x> %, memory stream <y> %` (the largest per-second median over the
/// smallest, minus 1): a machine where either is above ~10 % cannot show a ±10 % predictor.
/// `--megabytes 0` times the reference network alone (the stream's evictions then cannot matter).
func runMachineNoiseBenchmark(_ arguments: [String]) throws {
    let seconds = intOption("seconds", arguments, default: 20)
    let threads = intOption("threads", arguments, default: 1)
    let megabytes = intOption("megabytes", arguments, default: 64)
    let protocolSettings = LatencyProtocol()
    let timer = try NetworkTimer.reference(threads: threads, protocol: protocolSettings)
    let count = megabytes << 18   // floats
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { buffer.deallocate() }
    for i in 0..<count { buffer[i] = Float(i & 1023) }
    var sink: Float = 0
    func stream() -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        var s: Float = 0
        var i = 0
        while i < count { s += buffer[i]; i += 16 }   // one float per 64-byte line
        sink += s
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
    }
    print("machine noise: \(seconds) s, threads \(threads), reference network (\(protocolSettings.referenceRepeats) passes, "
          + "\(protocolSettings.clock(threads: threads).rawValue) clock) and a \(megabytes) MB memory stream, load \(loadAverage())")
    var referenceMedians = [Double](), streamMedians = [Double]()
    for second in 0..<seconds {
        var reference = [Double](), streams = [Double]()
        let start = now()
        while now() - start < 1 {
            reference.append(try timer.referenceTime())
            if count > 0 { streams.append(stream()) }
        }
        reference.sort(); streams.sort()
        referenceMedians.append(reference[reference.count / 2])
        var line = String(format: "second %2d: reference median %.4f ms [%.4f … %.4f] (%d)", second,
                          reference[reference.count / 2], reference.first!, reference.last!, reference.count)
        if !streams.isEmpty {
            streamMedians.append(streams[streams.count / 2])
            line += String(format: ", stream median %.3f ms [%.3f … %.3f] (%d)",
                           streams[streams.count / 2], streams.first!, streams.last!, streams.count)
        }
        print(line)
    }
    func spread(_ v: [Double]) -> Double { 100 * (v.max()! / v.min()! - 1) }
    if sink == .infinity { print("") }   // keeps the stream's reads
    let streamSpread = streamMedians.isEmpty ? "not run" : String(format: "%.1f %%", spread(streamMedians))
    print(String(format: "per-second spread: reference %.1f %%, memory stream %@ (load %@)",
                 spread(referenceMedians), streamSpread, loadAverage()))
}
