#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Softmax cross-entropy on channel-major logits `[classes, batch]`; returns the mean loss and the
/// number of correct arg-max predictions, and writes ∂(mean loss)/∂logits when `gradient` is given.
func softmaxCrossEntropyChannelMajor(logits: UnsafePointer<Float>, classes: Int, batch: Int,
                                     labels: UnsafeBufferPointer<Int32>, labelSmoothing: Float,
                                     gradient: UnsafeMutablePointer<Float>?) -> (loss: Float, correct: Int) {
    var total = 0.0
    var correct = 0
    let eps = Double(labelSmoothing)
    let invBatch = 1 / Double(batch)
    for n in 0..<batch {
        var maxValue = -Float.infinity
        var argmax = 0
        for k in 0..<classes {
            let z = logits[k * batch + n]
            if z > maxValue { maxValue = z; argmax = k }
        }
        let label = Int(labels[n])
        if argmax == label { correct += 1 }
        var sum = 0.0
        var sumLogits = 0.0
        for k in 0..<classes {
            let z = Double(logits[k * batch + n])
            sum += exp(z - Double(maxValue))
            sumLogits += z
        }
        let logSum = Double(maxValue) + log(sum)
        let zLabel = Double(logits[label * batch + n])
        total += (1 - eps) * (logSum - zLabel) + eps * (logSum - sumLogits / Double(classes))
        if let gradient {
            for k in 0..<classes {
                let p = exp(Double(logits[k * batch + n]) - logSum)
                let target = (k == label ? 1 - eps : 0) + eps / Double(classes)
                gradient[k * batch + n] = Float((p - target) * invBatch)
            }
        }
    }
    return (Float(total * invBatch), correct)
}

/// Numerically stable softmax cross-entropy (mean over the batch) with optional label smoothing
/// (PyTorch's `cross_entropy(..., label_smoothing=ε)`: targets (1−ε)·one-hot + ε/K).
///
/// - Parameters:
///   - logits: `[batch, classes]`.
///   - labels: one class index per sample.
/// - Returns: the loss and ∂loss/∂logits (`[batch, classes]`).
public func softmaxCrossEntropy(logits: Tensor, labels: [Int32], labelSmoothing: Float = 0) throws -> (loss: Float, gradient: Tensor) {
    guard logits.shape.count == 2, logits.shape[0] == labels.count else {
        throw EngineError.shapeMismatch("logits \(logits.shape) for \(labels.count) labels")
    }
    let batch = logits.shape[0], classes = logits.shape[1]
    if let bad = labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
        throw EngineError.labelOutOfRange(index: bad, label: labels[bad], classCount: classes)
    }
    // Transpose to channel-major, reuse the kernel, transpose back.
    var cm = [Float](repeating: 0, count: batch * classes)
    for n in 0..<batch { for k in 0..<classes { cm[k * batch + n] = logits.values[n * classes + k] } }
    var g = [Float](repeating: 0, count: batch * classes)
    let (loss, _) = cm.withUnsafeBufferPointer { c in
        labels.withUnsafeBufferPointer { l in
            g.withUnsafeMutableBufferPointer { gp in
                softmaxCrossEntropyChannelMajor(logits: c.baseAddress!, classes: classes, batch: batch, labels: l,
                                                labelSmoothing: labelSmoothing, gradient: gp.baseAddress!)
            }
        }
    }
    var out = [Float](repeating: 0, count: batch * classes)
    for n in 0..<batch { for k in 0..<classes { out[n * classes + k] = g[k * batch + n] } }
    return (loss, Tensor(shape: [batch, classes], values: out))
}

/// Row-wise softmax of `[batch, classes]` logits.
public func softmax(_ logits: Tensor) -> Tensor {
    precondition(logits.shape.count == 2)
    let classes = logits.shape[1]
    var v = logits.values
    for start in stride(from: 0, to: v.count, by: classes) {
        var m = -Float.infinity
        for k in 0..<classes { m = max(m, v[start + k]) }
        var s: Float = 0
        for k in 0..<classes { let e = expf(v[start + k] - m); v[start + k] = e; s += e }
        for k in 0..<classes { v[start + k] /= s }
    }
    return Tensor(shape: logits.shape, values: v)
}
