/// What one sample is, as a network sees it. Together with a `FeatureShape` it says how inputs
/// are laid out:
/// - `.image`: C×H×W floats, standardised per channel on the training split;
/// - `.tokens`: a sequence of token ids stored as floats, shape K×1×L (L = the sequence length,
///   K ids per position: slot 0 the word, the others its subword ids; K = 1 for plain words),
///   id 0 is padding (always at the end of a sequence), id 1 the unknown token;
/// - `.features`: a flat vector F×1×1 of numbers, standardised per feature on the training split.
public enum InputKind: Hashable, Codable, Sendable, CustomStringConvertible {
    case image
    /// Token ids in `0..<vocabularySize` (0 = padding, 1 = unknown).
    case tokens(vocabularySize: Int)
    case features

    /// Id of the padding token of `.tokens` inputs.
    public static let paddingToken = 0
    /// Id of the unknown token of `.tokens` inputs.
    public static let unknownToken = 1

    /// `image`, `tokens` or `features`.
    public var name: String {
        switch self {
        case .image: return "image"
        case .tokens: return "tokens"
        case .features: return "features"
        }
    }

    public var description: String {
        switch self {
        case let .tokens(v): return "tokens(vocabulary: \(v))"
        default: return name
        }
    }

    /// Whether inputs of this kind are standardised (images per channel, features per feature).
    public var isStandardized: Bool {
        switch self {
        case .image, .features: return true
        case .tokens: return false
        }
    }
}
