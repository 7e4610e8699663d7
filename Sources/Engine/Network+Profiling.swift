import Dispatch
import NASCore

/// Per-node forward timings of one network, in nanoseconds (see `Network.profileForward`).
public struct ForwardProfile: Hashable, Sendable {
    /// Time of each node's forward computation (0 for the input node), in graph order.
    public var nodeNanoseconds: [Double]
    /// Time spent outside the nodes: checking and loading the NCHW input, converting the output.
    public var boundaryNanoseconds: Double
    /// Wall time of the whole pass, timers included.
    public var totalNanoseconds: Double
}

/// Engine-level timing hooks used by the latency estimators.
///
/// All timings use the monotonic clock (`DispatchTime`) and evaluation mode (`training: false`).
extension Network {
    @inline(__always)
    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Median cost of one pair of clock reads, in nanoseconds (subtracted by `timeNode`).
    public static func timerOverheadNanoseconds(samples: Int = 201) -> Double {
        var values = [Double]()
        values.reserveCapacity(samples)
        for _ in 0..<samples {
            let t0 = now()
            let t1 = now()
            values.append(Double(t1 - t0))
        }
        values.sort()
        return values[values.count / 2]
    }

    /// Runs one evaluation-mode forward pass, timing every node separately. A fused chain
    /// (``InferenceFusion``) runs as one kernel, timed at its convolution (its batch norm and
    /// activation get 0).
    ///
    /// - Parameter input: `[batch, C, H, W]` in NCHW order.
    /// - Returns: the per-node times and the boundary time of this one pass (clock reads included).
    public func profileForward(_ input: Tensor) throws -> ForwardProfile {
        let start = Network.now()
        let n = try checkBatch(input, shape: inputShape, what: "input")
        input.values.withUnsafeBufferPointer { loadInput($0.baseAddress!, batch: n) }
        let afterLoad = Network.now()
        var nodeTimes = [Double](repeating: 0, count: layers.count)
        let fused = fusesInference && !fusion.chains.isEmpty
        lastForwardFused = fused
        for i in layers.indices where layers[i] != nil {
            let t0 = Network.now()
            if runNode(i, training: false, fused: fused) { nodeTimes[i] = Double(Network.now() - t0) }
        }
        let beforeOutput = Network.now()
        _ = tensor(fromChannelMajor: activations[graph.output], shape: outputShape)
        let end = Network.now()
        return ForwardProfile(nodeNanoseconds: nodeTimes,
                              boundaryNanoseconds: Double(afterLoad - start) + Double(end - beforeOutput),
                              totalNanoseconds: Double(end - start))
    }

    /// Times the forward computation of node `index` alone, `samples` times.
    ///
    /// Each sample first runs the whole network up to node `index` (untimed) so that the node's
    /// inputs are freshly computed, as inside a real pass; then, if `evictionBytes > 0`, a
    /// buffer of that size is written (evicting the node's weights from the caches, as the other
    /// layers of a large network would) and the inputs are re-read; then the node runs
    /// `iterations` times in a timed loop. The clock overhead is subtracted.
    ///
    /// - Parameters:
    ///   - index: the node (not the input node).
    ///   - input: `[batch, C, H, W]` NCHW input of the network.
    ///   - samples: timed samples returned.
    ///   - warmup: untimed samples first.
    ///   - iterations: node runs per timed sample (the sample is their mean).
    ///   - evictionBytes: bytes written between samples to cool the caches (0: none).
    /// - Returns: nanoseconds per node run, one value per sample.
    public func timeNode(_ index: Int, input: Tensor, samples: Int, warmup: Int = 2, iterations: Int = 1,
                         evictionBytes: Int = 0) throws -> [Double] {
        guard index > 0, index < layers.count, let layer = layers[index] else {
            throw EngineError.invalidConfiguration("node \(index) is not a computing node of this \(layers.count)-node network")
        }
        precondition(samples >= 1 && iterations >= 1 && warmup >= 0)
        let n = try checkBatch(input, shape: inputShape, what: "input")
        let overhead = Network.timerOverheadNanoseconds()
        let eviction = FloatBuffer(count: max(0, evictionBytes / MemoryLayout<Float>.size))
        var sink: Float = 0
        var result = [Double]()
        result.reserveCapacity(samples)
        for sample in 0..<(warmup + samples) {
            input.values.withUnsafeBufferPointer { loadInput($0.baseAddress!, batch: n) }
            for i in 1..<index {
                layers[i]?.forward(inputBuffers[i], activations[i], batch: batchSize, training: false, context: context)
            }
            if eviction.count > 0 {
                let p = eviction.pointer
                for i in stride(from: 0, to: eviction.count, by: 16) { p[i] = Float(i) }
                for buffer in inputBuffers[index] {
                    let q = buffer.pointer
                    for i in stride(from: 0, to: buffer.count, by: 16) { sink += q[i] }
                }
            }
            let t0 = Network.now()
            for _ in 0..<iterations {
                layer.forward(inputBuffers[index], activations[index], batch: batchSize, training: false, context: context)
            }
            let elapsed = Double(Network.now() - t0)
            if sample >= warmup { result.append(max(0, elapsed - overhead) / Double(iterations)) }
        }
        if sink.isNaN { result.append(0) }  // keeps the eviction reads alive
        return result
    }

    /// Times what `forward` does besides running the nodes — checking and loading the NCHW input
    /// and converting the output node's buffer to a `Tensor` — `samples` times (nanoseconds each).
    public func timeBoundary(input: Tensor, samples: Int, warmup: Int = 2) throws -> [Double] {
        precondition(samples >= 1 && warmup >= 0)
        let overhead = Network.timerOverheadNanoseconds()
        var result = [Double]()
        result.reserveCapacity(samples)
        for sample in 0..<(warmup + samples) {
            let t0 = Network.now()
            let n = try checkBatch(input, shape: inputShape, what: "input")
            input.values.withUnsafeBufferPointer { loadInput($0.baseAddress!, batch: n) }
            let output = tensor(fromChannelMajor: activations[graph.output], shape: outputShape)
            let elapsed = Double(Network.now() - t0)
            if output.values.isEmpty { continue }
            if sample >= warmup { result.append(max(0, elapsed - overhead)) }
        }
        return result
    }
}
