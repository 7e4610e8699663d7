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
///
/// Storage starts on a cache line (``alignment`` bytes): with the allocator's 16-byte alignment a
/// kernel's 64-byte vector loads straddle two cache lines or not depending on where the heap
/// happened to put its buffers, and the same network ran up to 1.5× slower from one instance
/// to the next (measured: the latency protocol's reference network, 0.050 vs 0.077 ms).
final class FloatBuffer {
    /// Bytes the storage is aligned to: one cache line, one AVX-512 vector.
    static let alignment = 64

    private(set) var pointer: UnsafeMutablePointer<Float>
    private(set) var capacity: Int
    private(set) var count: Int

    init(count: Int) {
        capacity = max(count, 1)
        pointer = Self.allocate(capacity)
        self.count = count
    }

    private static func allocate(_ capacity: Int) -> UnsafeMutablePointer<Float> {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Float>.stride, alignment: alignment)
        let pointer = raw.bindMemory(to: Float.self, capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
        return pointer
    }

    /// Sets the logical size; reallocates (contents undefined → zeroed) only when growing past capacity.
    func resize(_ newCount: Int) {
        if newCount > capacity {
            UnsafeMutableRawPointer(pointer).deallocate()
            capacity = newCount
            pointer = Self.allocate(capacity)
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

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
