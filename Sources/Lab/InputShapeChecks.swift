import Foundation
import NASCore

extension FeatureShapeParser {
    /// The largest sample an `--input` shape may describe (elements), far above any real input.
    public static let maximumElementCount = 1 << 30

    /// Parses a command-line input shape (`CxHxW` or a feature count) and rejects what cannot be
    /// meant: a malformed value, a sample larger than `maximumElementCount`, and a channels-last
    /// image such as `28x28x1` (NASLab reads it as 28 channels of 28×1) — the error names the
    /// channels-first spelling (`1x28x28`).
    ///
    /// - Parameter option: the option's name in messages (`--input`).
    public static func parseChecked(_ text: String, option: String = "--input") throws -> FeatureShape {
        guard let shape = FeatureShape(parsing: text) else {
            throw LabError.invalid("\(option) must look like CxHxW (channels first, e.g. 1x28x28) or a feature count (e.g. 16), got '\(text)'")
        }
        let (hw, o1) = shape.height.multipliedReportingOverflow(by: shape.width)
        let (elements, o2) = hw.multipliedReportingOverflow(by: shape.channels)
        guard !o1, !o2, elements <= maximumElementCount else {
            throw LabError.invalid("\(option) \(text) describes more than \(maximumElementCount) values per sample")
        }
        if FeatureShape.looksChannelsLast(shape.channels, shape.height, shape.width) {
            let fixed = shape.channelsFirstFromChannelsLast
            throw LabError.invalid("\(option) \(text) looks channels-last (height x width x channels): NASLab reads CxHxW, "
                + "so it would mean \(shape.channels) channels of \(shape.height)x\(shape.width); "
                + "for \(shape.channels)x\(shape.height) images with \(shape.width) channel(s) pass \(option) \(fixed)")
        }
        return shape
    }
}
