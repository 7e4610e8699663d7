import Foundation
import HDF5Kit
import NASCore

/// Synthetic scenes of Fashion-MNIST items for segmentation and detection (built-in dataset
/// `fashion-scenes`, CLI `naslab datasets make fashion-scenes`).
///
/// Each scene is a `size`×`size` one-channel canvas (uint8 values 0…255, stored as `Float` in
/// ``LabeledArrays``) holding 1…`maxObjects` 28×28 items. The training scenes use Fashion-MNIST's
/// 60,000 training items, the test scenes its 10,000 test items.
///
/// **Random choices** (all from injected ``SeededGenerator``s): the seed's generator
/// `SeededGenerator(seed:)` gives the training stream `derived(stream: 1)` and the test stream
/// `derived(stream: 2)`; per scene, in order: the item count `1 + nextInt(below: maxObjects)`, then
/// per item its source index `nextInt(below: items)`, its left `nextInt(below: size − 27)` and its
/// top `nextInt(below: size − 27)` (items lie fully inside the canvas). Scene *i* only depends on
/// the scenes before it, so a larger `count` extends a smaller one.
///
/// **Painting** (items in order, later items on top): a source pixel with value
/// `v > pixelThreshold` (25, i.e. `v > 0.1 · 255`) is an *item pixel*: it overwrites the canvas and
/// the item owns that pixel (taking it from any earlier item). A pixel with `v ≤ 25` (the faint
/// rim) never overwrites an owned pixel: it only raises an unowned canvas pixel to `max(canvas, v)`.
/// So a pixel is owned exactly when its canvas value is above 25.
///
/// **Labels from the pixels**:
/// - mask: 0 where no item owns the pixel, else `1 + class` of the owner;
/// - an item's *visible pixels* are the pixels it owns at the end; an item with at least
///   ``minimumVisiblePixels`` (20) of them gets a box, the tight extent of its visible pixels
///   (`x1 = min column, x2 = max column + 1`, likewise rows); a more occluded item gets no box, but
///   its visible pixels stay in the mask;
/// - `labels[i]`: the dominant class, the class with the most visible (mask) pixels, ties to the
///   smaller class (``SceneDatasetFile/dominantClasses(masks:count:pixelsPerSample:classCount:)``).
public enum FashionScenes {
    /// The built-in dataset name.
    public static let name = "fashion-scenes"
    /// Training scenes (10,000).
    public static let defaultCount = 10_000
    /// Test scenes (2,000).
    public static let defaultTestCount = 2_000
    /// Canvas side in pixels (64).
    public static let defaultSize = 64
    /// Most items per scene (4).
    public static let defaultMaxObjects = 4
    /// Seed (0).
    public static let defaultSeed: UInt64 = 0
    /// A source pixel belongs to its item when its value is above this (25: `v > 0.1 · 255 = 25.5`).
    public static let pixelThreshold: UInt8 = 25
    /// Visible pixels an item needs to get a box (20).
    public static let minimumVisiblePixels = 20
    /// Allowed canvas sides (items are 28×28).
    public static let sizeRange = 28...1024
    /// Allowed `maxObjects`.
    public static let maxObjectsRange = 1...64
    /// Stream numbers of the training and test generators derived from the seed's generator.
    public static let trainStream: UInt64 = 1
    public static let testStream: UInt64 = 2
    /// Version of the generator's output; part of the cache file name, raised whenever the same
    /// seed would give other scenes.
    public static let formatVersion = 1

    /// What to generate.
    public struct Options: Hashable, Codable, Sendable {
        public var count: Int
        /// Test scenes; 0 writes no test part (a split is then held out of the training scenes).
        public var testCount: Int
        public var size: Int
        public var maxObjects: Int
        public var seed: UInt64

        public init(count: Int = FashionScenes.defaultCount, testCount: Int = FashionScenes.defaultTestCount,
                    size: Int = FashionScenes.defaultSize, maxObjects: Int = FashionScenes.defaultMaxObjects,
                    seed: UInt64 = FashionScenes.defaultSeed) {
            self.count = count
            self.testCount = testCount
            self.size = size
            self.maxObjects = maxObjects
            self.seed = seed
        }

        /// Throws ``DatasetError/invalidArgument(detail:)`` naming the first bad value.
        public func validate() throws {
            guard count >= 1, count <= 1 << 24 else { throw DatasetError.invalidArgument(detail: "count must be in 1...\(1 << 24), got \(count)") }
            guard testCount >= 0, testCount <= 1 << 24 else {
                throw DatasetError.invalidArgument(detail: "test count must be in 0...\(1 << 24), got \(testCount)")
            }
            guard FashionScenes.sizeRange.contains(size) else {
                throw DatasetError.invalidArgument(detail: "size must be in \(FashionScenes.sizeRange) (items are 28×28), got \(size)")
            }
            guard FashionScenes.maxObjectsRange.contains(maxObjects) else {
                throw DatasetError.invalidArgument(detail: "max objects must be in \(FashionScenes.maxObjectsRange), got \(maxObjects)")
            }
        }
    }

    /// Items to place: `count` grey-scale `itemHeight`×`itemWidth` images (row-major bytes) and their classes.
    public struct Source: Sendable, Equatable {
        public var images: [UInt8]
        public var labels: [UInt8]
        public var itemHeight: Int
        public var itemWidth: Int

        public init(images: [UInt8], labels: [UInt8], itemHeight: Int, itemWidth: Int) {
            precondition(images.count == labels.count * itemHeight * itemWidth, "images and labels disagree")
            self.images = images
            self.labels = labels
            self.itemHeight = itemHeight
            self.itemWidth = itemWidth
        }

        public var count: Int { labels.count }

        /// Fashion-MNIST's training (`t10k: false`) or test (`t10k: true`) items from `directory`.
        /// - Throws: ``DatasetError/notInstalled(dataset:path:hint:)`` when the files are missing.
        public static func fashionMNIST(directory: String = IDXLoader.defaultFashionMNISTDirectory, t10k: Bool) throws -> Source {
            let prefix = t10k ? "t10k" : "train"
            func file(_ stem: String) throws -> String {
                for candidate in [stem + ".gz", stem] {
                    let path = (directory as NSString).appendingPathComponent(candidate)
                    if FileManager.default.fileExists(atPath: path) { return path }
                }
                throw DatasetError.notInstalled(dataset: FashionScenes.name, path: (directory as NSString).appendingPathComponent(stem + "[.gz]"),
                                                hint: "install Debian's 'dataset-fashion-mnist' package or point NASLAB_FASHION_MNIST_DIR at the IDX files")
            }
            let imagesPath = try file("\(prefix)-images-idx3-ubyte"), labelsPath = try file("\(prefix)-labels-idx1-ubyte")
            let images = try IDXLoader.read(path: imagesPath, magic: IDXLoader.imagesMagic)
            let labels = try IDXLoader.read(path: labelsPath, magic: IDXLoader.labelsMagic)
            guard images.dimensions.count == 3, images.dimensions[0] == labels.dimensions[0] else {
                throw DatasetError.malformed(path: labelsPath, detail: "\(labels.dimensions[0]) labels but '\(imagesPath)' has dimensions \(images.dimensions)")
            }
            let classes = IDXLoader.fashionMNISTClassNames.count
            if let bad = labels.bytes.firstIndex(where: { Int($0) >= classes }) {
                throw DatasetError.labelOutOfRange(path: labelsPath, index: bad - labels.bytes.startIndex,
                                                   label: Int64(labels.bytes[bad]), classCount: classes)
            }
            return Source(images: [UInt8](images.bytes), labels: [UInt8](labels.bytes),
                          itemHeight: images.dimensions[1], itemWidth: images.dimensions[2])
        }
    }

    /// One placed item.
    public struct Item: Hashable, Codable, Sendable {
        /// The scene.
        public var image: Int
        public var classID: Int
        /// Its index in the ``Source``.
        public var sourceIndex: Int
        /// Its top-left corner on the canvas.
        public var x: Int
        public var y: Int
        /// Pixels it owns in the finished scene.
        public var visiblePixels: Int
        /// Its box (tight extent of its visible pixels), when it has at least ``minimumVisiblePixels``.
        public var box: ObjectBox?
    }

    /// Generated scenes and the items they hold.
    public struct Part: Sendable, Equatable {
        /// Features (canvas values 0…255), dominant-class labels, masks and boxes; classCount 10.
        public var arrays: LabeledArrays
        /// Every placed item, by scene, in painting order.
        public var items: [Item]
    }

    /// A generated dataset: training scenes and (unless `testCount` is 0) test scenes.
    public struct Scenes: Sendable, Equatable {
        public var options: Options
        public var train: Part
        public var test: Part?

        /// As a ``RawDataset`` named `fashion-scenes`, with Fashion-MNIST's class names.
        public func rawDataset(source: String) -> RawDataset {
            RawDataset(metadata: DatasetMetadata(name: FashionScenes.name, source: source, sampleShape: train.arrays.sampleShape,
                                                 classCount: train.arrays.classCount, classNames: IDXLoader.fashionMNISTClassNames,
                                                 inputKind: .image),
                       train: train.arrays, test: test?.arrays)
        }

        /// Writes the scene layout (``SceneDatasetFile``) atomically, with the options as root
        /// attributes (`generator`, `format_version`, `seed`, `size`, `max_objects`, `pixel_threshold`,
        /// `min_visible_pixels`).
        public func write(to path: String) throws {
            try SceneDatasetFile.write(to: path, train: train.arrays, test: test?.arrays,
                                       classNames: IDXLoader.fashionMNISTClassNames) { file in
                try file.setAttribute("generator", FashionScenes.name)
                try file.setAttribute("format_version", FashionScenes.formatVersion)
                try file.setAttribute("seed", number: options.seed)
                try file.setAttribute("size", options.size)
                try file.setAttribute("max_objects", options.maxObjects)
                try file.setAttribute("pixel_threshold", Int(FashionScenes.pixelThreshold))
                try file.setAttribute("min_visible_pixels", FashionScenes.minimumVisiblePixels)
            }
        }
    }

    /// Generates scenes from Fashion-MNIST in `directory` (see the type's documentation).
    public static func generate(_ options: Options = Options(),
                                directory: String = IDXLoader.defaultFashionMNISTDirectory) throws -> Scenes {
        try options.validate()
        let train = try Source.fashionMNIST(directory: directory, t10k: false)
        let test = options.testCount > 0 ? try Source.fashionMNIST(directory: directory, t10k: true) : train
        return try generate(options, train: train, test: test)
    }

    /// Generates scenes from the given sources with the generators derived from `options.seed`.
    public static func generate(_ options: Options, train: Source, test: Source) throws -> Scenes {
        try options.validate()
        let root = SeededGenerator(seed: options.seed)
        var trainRNG = root.derived(stream: trainStream)
        var testRNG = root.derived(stream: testStream)
        let trainPart = try generatePart(count: options.count, size: options.size, maxObjects: options.maxObjects,
                                         source: train, rng: &trainRNG)
        let testPart = options.testCount > 0
            ? try generatePart(count: options.testCount, size: options.size, maxObjects: options.maxObjects, source: test, rng: &testRNG)
            : nil
        return Scenes(options: options, train: trainPart, test: testPart)
    }

    /// Generates `count` scenes with `rng` (see the type's documentation); class count 10
    /// (Fashion-MNIST's, or more when the source has larger labels).
    public static func generatePart(count: Int, size: Int, maxObjects: Int, source: Source,
                                    rng: inout SeededGenerator) throws -> Part {
        guard source.count > 0, size >= source.itemHeight, size >= source.itemWidth, maxObjects >= 1, count >= 0 else {
            throw DatasetError.invalidArgument(detail: "fashion scenes: \(source.count) source items of \(source.itemHeight)×\(source.itemWidth) "
                + "on \(size)×\(size) canvases, \(maxObjects) objects at most, \(count) scenes")
        }
        let classCount = max(IDXLoader.fashionMNISTClassNames.count, Int(source.labels.max() ?? 0) + 1)
        let plane = size * size
        let (h, w) = (source.itemHeight, source.itemWidth)
        var canvas = [UInt8](repeating: 0, count: count * plane)
        var masks = [Int32](repeating: 0, count: count * plane)
        var labels = [Int32](repeating: 0, count: count)
        var boxes = [ObjectBox]()
        var items = [Item]()
        var owner = [Int](repeating: -1, count: plane)
        let threshold = pixelThreshold
        source.images.withUnsafeBufferPointer { src in
            canvas.withUnsafeMutableBufferPointer { canvas in
                masks.withUnsafeMutableBufferPointer { masks in
                    for scene in 0..<count {
                        let base = scene * plane
                        let k = 1 + rng.nextInt(below: maxObjects)
                        var placed = [Item]()
                        for j in 0..<k {
                            let index = rng.nextInt(below: source.count)
                            let x = rng.nextInt(below: size - w + 1)
                            let y = rng.nextInt(below: size - h + 1)
                            placed.append(Item(image: scene, classID: Int(source.labels[index]), sourceIndex: index, x: x, y: y,
                                               visiblePixels: 0, box: nil))
                            let itemBase = index * h * w
                            for r in 0..<h {
                                let row = (y + r) * size + x
                                for c in 0..<w {
                                    let v = src[itemBase + r * w + c]
                                    let p = row + c
                                    if v > threshold {
                                        canvas[base + p] = v
                                        owner[p] = j
                                    } else if owner[p] < 0 && v > canvas[base + p] {
                                        canvas[base + p] = v
                                    }
                                }
                            }
                        }
                        var minX = [Int](repeating: Int.max, count: k), minY = minX
                        var maxX = [Int](repeating: -1, count: k), maxY = maxX
                        var pixelsByClass = [Int](repeating: 0, count: classCount)
                        for p in 0..<plane {
                            let o = owner[p]
                            guard o >= 0 else { continue }
                            owner[p] = -1
                            let (py, px) = (p / size, p % size)
                            masks[base + p] = Int32(1 + placed[o].classID)
                            placed[o].visiblePixels += 1
                            pixelsByClass[placed[o].classID] += 1
                            minX[o] = min(minX[o], px); maxX[o] = max(maxX[o], px)
                            minY[o] = min(minY[o], py); maxY[o] = max(maxY[o], py)
                        }
                        for j in 0..<k where placed[j].visiblePixels >= minimumVisiblePixels {
                            let box = ObjectBox(image: scene, classID: placed[j].classID, x1: Float(minX[j]), y1: Float(minY[j]),
                                                x2: Float(maxX[j] + 1), y2: Float(maxY[j] + 1))
                            placed[j].box = box
                            boxes.append(box)
                        }
                        var best = 0
                        for c in pixelsByClass.indices where pixelsByClass[c] > pixelsByClass[best] { best = c }
                        labels[scene] = Int32(best)
                        items += placed
                    }
                }
            }
        }
        let arrays = LabeledArrays(features: canvas.map { Float($0) }, labels: labels,
                                   sampleShape: FeatureShape(channels: 1, height: size, width: size), classCount: classCount,
                                   masks: masks, boxes: boxes)
        return Part(arrays: arrays, items: items)
    }

    // MARK: - The built-in dataset

    /// The cache file of the default scenes: `fashion-scenes-v<formatVersion>-seed<seed>.h5` in
    /// ``UserCache/directory`` (`$NASLAB_CACHE_DIR`, else `$XDG_CACHE_HOME/naslab`, else `~/.cache/naslab`).
    public static var defaultCachePath: String { UserCache.path("fashion-scenes-v\(formatVersion)-seed\(defaultSeed).h5") }

    /// The built-in `fashion-scenes`: the default scenes, read from `path` — generated and written
    /// there (atomically) first when the file does not exist or cannot be read.
    public static func loadCached(path: String = defaultCachePath,
                                  directory: String = IDXLoader.defaultFashionMNISTDirectory) throws -> RawDataset {
        if FileManager.default.fileExists(atPath: path), var raw = try? HDF5DatasetLoader.load(path: path),
           raw.train.count == defaultCount, raw.test?.count == defaultTestCount {
            raw.metadata.name = name
            return raw
        }
        let scenes = try generate(Options(), directory: directory)
        try scenes.write(to: path)
        return scenes.rawDataset(source: path)
    }
}
