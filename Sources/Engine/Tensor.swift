/// A dense Float32 tensor in row-major order (the public exchange format of the engine).
///
/// Image batches use PyTorch's NCHW order: `shape == [batch, channels, height, width]`;
/// logits and probabilities are `[batch, classes]`. Internally the engine stores activations
/// channel-major (CNHW, see `Network`); conversion happens at the network's boundary only.
///
/// ```swift
/// let x = Tensor(shape: [2, 1, 8, 8], values: [Float](repeating: 0, count: 128))
/// ```
public struct Tensor: Equatable, Sendable {
    public var shape: [Int]
    public var values: [Float]

    /// Creates a tensor; `values.count` must equal the product of `shape`.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.values = values
    }

    /// A tensor of zeros.
    public init(zeros shape: [Int]) {
        self.init(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *)))
    }

    /// Number of elements.
    public var elementCount: Int { values.count }
}

/// A manually managed Float32 buffer whose storage is reused across steps (grows, never shrinks).
final class FloatBuffer {
    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int
    private(set) var count: Int

    init(count: Int) {
        capacity = max(count, 1)
        pointer = .allocate(capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
        self.count = count
    }

    /// Sets the logical size; reallocates (contents undefined → zeroed) only when growing past capacity.
    func resize(_ newCount: Int) {
        if newCount > capacity {
            pointer.deallocate()
            capacity = newCount
            pointer = .allocate(capacity: capacity)
            pointer.initialize(repeating: 0, count: capacity)
        }
        count = newCount
    }

    func zero() { pointer.update(repeating: 0, count: count) }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    func copy(from values: [Float]) {
        precondition(values.count == count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
    }

    deinit { pointer.deallocate() }
}
