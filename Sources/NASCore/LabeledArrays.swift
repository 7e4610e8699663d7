/// A labelled set of samples held in memory: the hand-off between data loaders and the engine.
///
/// `features` holds `count` samples of `sampleShape` each, sample-major
/// (sample i occupies `features[i * sampleShape.elementCount ..< (i + 1) * sampleShape.elementCount]`,
/// each sample in C×H×W order). `labels[i]` is in `0..<classCount`.
public struct LabeledArrays: Sendable, Equatable {
    public var features: [Float]
    public var labels: [Int32]
    public var sampleShape: FeatureShape
    public var classCount: Int

    public init(features: [Float], labels: [Int32], sampleShape: FeatureShape, classCount: Int) {
        precondition(features.count == labels.count * sampleShape.elementCount, "features and labels disagree")
        self.features = features
        self.labels = labels
        self.sampleShape = sampleShape
        self.classCount = classCount
    }

    public var count: Int { labels.count }

    /// The samples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabeledArrays {
        let n = sampleShape.elementCount
        var f = [Float]()
        f.reserveCapacity(indices.count * n)
        var l = [Int32]()
        l.reserveCapacity(indices.count)
        for i in indices {
            f.append(contentsOf: features[i * n ..< (i + 1) * n])
            l.append(labels[i])
        }
        return LabeledArrays(features: f, labels: l, sampleShape: sampleShape, classCount: classCount)
    }
}
