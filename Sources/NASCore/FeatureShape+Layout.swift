extension FeatureShape {
    /// Whether three axes meant as C×H×W look like an image stored channels last (H×W×C): the
    /// last axis holds 1 or 3 values (grey or RGB channels) and the two before it are spatial
    /// sizes (more than 4 each). NASLab is channels first, so `28x28x1` would be read as 28 channels
    /// of 28×1 — an input shape nobody means.
    public static func looksChannelsLast(_ first: Int, _ second: Int, _ last: Int) -> Bool {
        (last == 1 || last == 3) && first > 4 && second > 4
    }

    /// The channels-first shape a channels-last reading of `self` stands for (`28x28x1` → `1x28x28`).
    public var channelsFirstFromChannelsLast: FeatureShape {
        FeatureShape(channels: width, height: channels, width: height)
    }
}
