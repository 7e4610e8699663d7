/// The shape of one sample flowing through a network: channels × height × width.
/// Flat feature vectors are `(features, 1, 1)`.
public struct FeatureShape: Hashable, Codable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    /// A flat feature vector of `features` values.
    public init(features: Int) { self.init(channels: features, height: 1, width: 1) }

    public var elementCount: Int { channels * height * width }
    public var description: String { "\(channels)x\(height)x\(width)" }

    /// Parses `CxHxW` (e.g. `1x28x28`) or a plain feature count (`64`).
    public init?(parsing text: String) {
        let parts = text.split(separator: "x").map { Int($0.trimmingCharactersInSpaces()) }
        if parts.count == 3, let c = parts[0], let h = parts[1], let w = parts[2], c > 0, h > 0, w > 0 {
            self.init(channels: c, height: h, width: w)
        } else if parts.count == 1, let f = parts[0], f > 0 {
            self.init(features: f)
        } else {
            return nil
        }
    }
}

extension Substring {
    func trimmingCharactersInSpaces() -> String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
