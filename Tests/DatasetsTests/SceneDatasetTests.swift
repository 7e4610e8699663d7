import Datasets
import Foundation
import HDF5Kit
import NASCore
import TestSupport
import XCTest

/// Fashion scenes (generator, HDF5 layout, built-in cache, CLI) and the scene reader's errors.
final class SceneDatasetTests: XCTestCase {
    static let small = FashionScenes.Options(count: 300, testCount: 100, size: 64, maxObjects: 4, seed: 7)

    func requireFashionMNIST() throws {
        let directory = IDXLoader.defaultFashionMNISTDirectory
        guard FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("train-images-idx3-ubyte.gz"))
            || FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("train-images-idx3-ubyte")) else {
            throw XCTSkip("Fashion-MNIST not installed at \(directory) (Debian package dataset-fashion-mnist)")
        }
    }

    func scratch(_ name: String) throws -> String {
        let dir = try CLI.scratch("scenes-\(name)")
        return dir.path
    }

    // MARK: Generator

    /// Re-paints every scene from its items with the documented rules and checks pixels, masks,
    /// boxes (tight extent of the visible pixels, only for items with ≥ 20 of them) and labels.
    func testScenesFollowThePaintingRules() throws {
        try requireFashionMNIST()
        let options = Self.small
        let scenes = try FashionScenes.generate(options)
        let sources = [try FashionScenes.Source.fashionMNIST(t10k: false), try FashionScenes.Source.fashionMNIST(t10k: true)]
        var uniqueClassScenes = 0, droppedItems = 0, occludedPixels = 0
        for (partIndex, part) in [scenes.train, scenes.test!].enumerated() {
            let source = sources[partIndex]
            let a = part.arrays
            let size = options.size, plane = size * size
            XCTAssertEqual(a.sampleShape, FeatureShape(channels: 1, height: size, width: size))
            XCTAssertEqual(a.count, partIndex == 0 ? options.count : options.testCount)
            XCTAssertEqual(a.classCount, 10)
            let masks = try XCTUnwrap(a.masks), boxes = try XCTUnwrap(a.boxes)
            XCTAssertTrue(masks.allSatisfy { (0...10).contains($0) }, "mask ids in 0...10")
            let itemsByScene = Dictionary(grouping: part.items, by: \.image)
            let boxesByScene = try XCTUnwrap(a.boxesBySample)
            for scene in 0..<a.count {
                let items = try XCTUnwrap(itemsByScene[scene])
                XCTAssertTrue((1...options.maxObjects).contains(items.count))
                // Independent re-painting.
                var canvas = [UInt8](repeating: 0, count: plane), owner = [Int](repeating: -1, count: plane)
                for (j, item) in items.enumerated() {
                    XCTAssertEqual(item.classID, Int(source.labels[item.sourceIndex]))
                    XCTAssertTrue(item.x >= 0 && item.x + 28 <= size && item.y >= 0 && item.y + 28 <= size)
                    for r in 0..<28 {
                        for c in 0..<28 {
                            let v = source.images[item.sourceIndex * 784 + r * 28 + c]
                            let p = (item.y + r) * size + item.x + c
                            if v > 25 {
                                if owner[p] >= 0 { occludedPixels += 1 }
                                canvas[p] = v
                                owner[p] = j
                            } else if owner[p] < 0 {
                                canvas[p] = max(canvas[p], v)
                            }
                        }
                    }
                }
                let features = a.features[(scene * plane)..<((scene + 1) * plane)]
                XCTAssertEqual(Array(features), canvas.map { Float($0) }, "scene \(scene) pixels")
                let mask = Array(masks[(scene * plane)..<((scene + 1) * plane)])
                XCTAssertEqual(mask, owner.map { $0 < 0 ? 0 : Int32(1 + items[$0].classID) }, "scene \(scene) mask")
                XCTAssertEqual(mask.map { $0 != 0 }, canvas.map { $0 > 25 }, "a pixel is labelled exactly when it is above 25")
                var expectedBoxes = [ObjectBox]()
                for (j, item) in items.enumerated() {
                    let visible = owner.indices.filter { owner[$0] == j }
                    XCTAssertEqual(item.visiblePixels, visible.count)
                    if visible.count >= FashionScenes.minimumVisiblePixels {
                        let xs = visible.map { $0 % size }, ys = visible.map { $0 / size }
                        let box = ObjectBox(image: scene, classID: item.classID, x1: Float(xs.min()!), y1: Float(ys.min()!),
                                            x2: Float(xs.max()! + 1), y2: Float(ys.max()! + 1))
                        expectedBoxes.append(box)
                        XCTAssertEqual(item.box, box)
                    } else {
                        XCTAssertNil(item.box)
                        droppedItems += 1
                    }
                }
                XCTAssertEqual(boxesByScene[scene], expectedBoxes, "scene \(scene) boxes")
                // With unique classes, each box is the extent of its class's mask pixels.
                let classes = items.map(\.classID)
                if Set(classes).count == classes.count {
                    uniqueClassScenes += 1
                    for item in items {
                        let pixels = mask.indices.filter { mask[$0] == Int32(1 + item.classID) }
                        let box = boxesByScene[scene].first { $0.classID == item.classID }
                        XCTAssertEqual(box != nil, pixels.count >= FashionScenes.minimumVisiblePixels)
                        if let box {
                            XCTAssertEqual(box.x1, Float(pixels.map { $0 % size }.min()!))
                            XCTAssertEqual(box.x2, Float(pixels.map { $0 % size }.max()! + 1))
                            XCTAssertEqual(box.y1, Float(pixels.map { $0 / size }.min()!))
                            XCTAssertEqual(box.y2, Float(pixels.map { $0 / size }.max()! + 1))
                        }
                    }
                }
                // The label is the class with the most mask pixels (ties: smaller class).
                var histogram = [Int](repeating: 0, count: 10)
                for id in mask where id > 0 { histogram[Int(id) - 1] += 1 }
                XCTAssertEqual(Int(a.labels[scene]), histogram.firstIndex(of: histogram.max()!)!)
            }
            XCTAssertEqual(boxes.count, part.items.filter { $0.visiblePixels >= FashionScenes.minimumVisiblePixels }.count)
        }
        XCTAssertGreaterThan(uniqueClassScenes, 100)
        XCTAssertGreaterThan(droppedItems, 0, "some items are hidden enough to lose their box")
        XCTAssertGreaterThan(occludedPixels, 0)
    }

    func testSameSeedSameScenesOtherSeedOtherScenes() throws {
        try requireFashionMNIST()
        let options = FashionScenes.Options(count: 120, testCount: 30, seed: 11)
        let a = try FashionScenes.generate(options)
        let b = try FashionScenes.generate(options)
        XCTAssertEqual(a, b)
        var other = options
        other.seed = 12
        let c = try FashionScenes.generate(other)
        XCTAssertNotEqual(a.train.arrays.features, c.train.arrays.features)
        XCTAssertNotEqual(a.test!.arrays.masks, c.test!.arrays.masks)
        // Train and test come from different streams and sources.
        XCTAssertNotEqual(Array(a.train.arrays.features.prefix(30 * 4096)), a.test!.arrays.features)
        // A larger count extends a smaller one.
        var more = options
        more.count = 200
        let d = try FashionScenes.generate(more)
        XCTAssertEqual(Array(d.train.arrays.features.prefix(120 * 4096)), a.train.arrays.features)
        XCTAssertEqual(d.test, a.test)
        // Two files written from the same seed hold byte-identical arrays.
        let dir = try scratch("same-seed")
        let first = dir + "/a.h5", second = dir + "/b.h5"
        try a.write(to: first)
        try FashionScenes.generate(options).write(to: second)
        let f1 = try H5File.open(path: first), f2 = try H5File.open(path: second)
        for name in ["x", "masks", "x_test", "masks_test"] {
            let x1: HDF5Array<UInt8> = try f1.read(name), x2: HDF5Array<UInt8> = try f2.read(name)
            XCTAssertEqual(x1, x2, name)
        }
        for name in ["boxes", "boxes_test"] {
            let x1: HDF5Array<Float> = try f1.read(name), x2: HDF5Array<Float> = try f2.read(name)
            XCTAssertEqual(x1, x2, name)
        }
    }

    func testOptionsAreValidated() {
        for bad in [FashionScenes.Options(count: 0), FashionScenes.Options(testCount: -1), FashionScenes.Options(size: 27),
                    FashionScenes.Options(maxObjects: 0), FashionScenes.Options(maxObjects: 65)] {
            XCTAssertThrowsError(try bad.validate()) { error in
                guard case DatasetError.invalidArgument = error else { return XCTFail("\(error)") }
            }
        }
        XCTAssertNoThrow(try FashionScenes.Options().validate())
        XCTAssertEqual(FashionScenes.Options(), FashionScenes.Options(count: 10_000, testCount: 2_000, size: 64, maxObjects: 4, seed: 0))
    }

    // MARK: HDF5 layout

    func testFileLayoutReadByH5py() throws {
        try requireFashionMNIST()
        let scenes = try FashionScenes.generate(FashionScenes.Options(count: 50, testCount: 20, size: 48, maxObjects: 3, seed: 2))
        let path = try scratch("h5py") + "/scenes.h5"
        try scenes.write(to: path)
        let script = """
            import h5py, json, sys
            f = h5py.File(sys.argv[1], "r")
            out = {k: [list(f[k].shape), str(f[k].dtype)] for k in f.keys()}
            out["class_names"] = [s if isinstance(s, str) else s.decode() for s in f.attrs["class_names"]]
            out["mask_sum"] = int(f["masks"][()].astype("int64").sum())
            out["x_sum"] = int(f["x"][()].astype("int64").sum())
            out["box0"] = [float(v) for v in f["boxes"][0]]
            out["seed"] = int(f.attrs["seed"])
            print(json.dumps(out))
            """
        let output = try runPython(script, [path])
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        let b = scenes.train.arrays.boxes!.count, bt = scenes.test!.arrays.boxes!.count
        func entry(_ key: String) -> [String] {
            guard let e = json[key] as? [Any], let shape = e[0] as? [Int], let dtype = e[1] as? String else { return [] }
            return [shape.map(String.init).joined(separator: "x"), dtype]
        }
        XCTAssertEqual(entry("x"), ["50x1x48x48", "uint8"])
        XCTAssertEqual(entry("masks"), ["50x48x48", "uint8"])
        XCTAssertEqual(entry("boxes"), ["\(b)x6", "float32"])
        XCTAssertEqual(entry("x_test"), ["20x1x48x48", "uint8"])
        XCTAssertEqual(entry("masks_test"), ["20x48x48", "uint8"])
        XCTAssertEqual(entry("boxes_test"), ["\(bt)x6", "float32"])
        XCTAssertNil(json["y"])
        XCTAssertEqual(json["class_names"] as? [String], IDXLoader.fashionMNISTClassNames)
        XCTAssertEqual(json["mask_sum"] as? Int, Int(scenes.train.arrays.masks!.reduce(0, +)))
        XCTAssertEqual(json["x_sum"] as? Int, Int(scenes.train.arrays.features.reduce(0.0) { $0 + Double($1) }))
        let box = scenes.train.arrays.boxes![0]
        XCTAssertEqual(json["box0"] as? [Double], [Double(box.image), Double(box.classID), Double(box.x1), Double(box.y1), Double(box.x2), Double(box.y2)])
        XCTAssertEqual(json["seed"] as? Int, 2)
    }

    /// Loading the file gives the generated arrays back; the splits keep masks and boxes with their images.
    func testLoadedSplitsKeepTargetsAligned() throws {
        try requireFashionMNIST()
        let scenes = try FashionScenes.generate(Self.small)
        let path = try scratch("splits") + "/scenes.h5"
        try scenes.write(to: path)
        let raw = try Dataset.loadRaw(name: path)
        XCTAssertEqual(raw.train, scenes.train.arrays)
        XCTAssertEqual(raw.test, scenes.test!.arrays)
        XCTAssertEqual(raw.metadata.classNames, IDXLoader.fashionMNISTClassNames)
        XCTAssertEqual(raw.metadata.inputKind, .image)

        let plane = 64 * 64
        var byPixels = [[Float]: (mask: [Int32], boxes: [ObjectBox], label: Int32)]()
        let all = [scenes.train.arrays, scenes.test!.arrays]
        for part in all {
            let boxes = part.boxesBySample!
            for i in 0..<part.count {
                byPixels[Array(part.features[(i * plane)..<((i + 1) * plane)])] =
                    (Array(part.masks![(i * plane)..<((i + 1) * plane)]), boxes[i], part.labels[i])
            }
        }
        XCTAssertEqual(byPixels.count, 400, "scenes are distinct")
        for normalize in [false, true] {
            let data = try Dataset.load(name: path, normalize: normalize, seed: 3)
            XCTAssertEqual(data.train.count + data.validation.count, 300)
            XCTAssertEqual(data.test.count, 100)
            for split in [data.train, data.validation, data.test] {
                let masks = try XCTUnwrap(split.masks)
                let boxes = try XCTUnwrap(split.boxesBySample)
                XCTAssertEqual(masks.count, split.count * plane)
                for i in 0..<split.count {
                    var pixels = Array(split.features[(i * plane)..<((i + 1) * plane)])
                    if let n = data.normalization { pixels = pixels.map { ($0 * n.std[0] + n.mean[0]).rounded() } }
                    guard let original = byPixels[pixels] else { return XCTFail("split sample \(i) matches no generated scene") }
                    XCTAssertEqual(Array(masks[(i * plane)..<((i + 1) * plane)]), original.mask)
                    XCTAssertEqual(boxes[i].map { var b = $0; b.image = 0; return b }, original.boxes.map { var b = $0; b.image = 0; return b })
                    XCTAssertEqual(split.labels[i], original.label)
                }
            }
            XCTAssertEqual(data.normalization != nil, normalize)
        }
    }

    /// `fashion-scenes` generates the default scenes into the per-user cache once, then reads the file.
    func testBuiltInFashionScenesIsCached() throws {
        try requireFashionMNIST()
        let cache = try scratch("cache")
        let previous = ProcessInfo.processInfo.environment["NASLAB_CACHE_DIR"]
        setenv("NASLAB_CACHE_DIR", cache, 1)
        defer {
            if let previous { setenv("NASLAB_CACHE_DIR", previous, 1) } else { unsetenv("NASLAB_CACHE_DIR") }
            try? FileManager.default.removeItem(atPath: cache)
        }
        XCTAssertEqual(FashionScenes.defaultCachePath, cache + "/fashion-scenes-v1-seed0.h5")
        XCTAssertEqual(UserCache.path("latency-table.h5"), cache + "/latency-table.h5")
        let start = Date()
        let generated = try Dataset.loadRaw(name: "fashion-scenes")
        let generationTime = Date().timeIntervalSince(start)
        XCTAssertTrue(FileManager.default.fileExists(atPath: FashionScenes.defaultCachePath))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache), ["fashion-scenes-v1-seed0.h5"], "no temporary file left")
        XCTAssertEqual(generated.train.count, 10_000)
        XCTAssertEqual(generated.test?.count, 2_000)
        XCTAssertEqual(generated.metadata.name, "fashion-scenes")
        XCTAssertEqual(generated.metadata.sampleShape, FeatureShape(channels: 1, height: 64, width: 64))
        let reread = try Dataset.loadRaw(name: "fashion-scenes")
        XCTAssertEqual(reread.train, generated.train)
        XCTAssertEqual(reread.test, generated.test)
        XCTAssertEqual(reread.metadata.name, "fashion-scenes")
        print("fashion-scenes: generated and written in \(String(format: "%.1f", generationTime)) s")
    }

    func testMakeCommand() throws {
        try requireFashionMNIST()
        guard FileManager.default.isExecutableFile(atPath: CLI.executable.path) else {
            throw XCTSkip("naslab is not built next to the tests (\(CLI.executable.path))")
        }
        let dir = try scratch("make")
        let out = dir + "/s.h5"
        let made = try CLI.run(["datasets", "make", "fashion-scenes", "--output", out, "--count", "40", "--test-count", "10",
                                "--size", "40", "--max-objects", "2", "--seed", "5"])
        XCTAssertEqual(made.status, 0, made.stderr)
        XCTAssertTrue(made.stdout.contains("40 training and 10 test scenes"), made.stdout)
        let raw = try Dataset.loadRaw(name: out)
        let expected = try FashionScenes.generate(FashionScenes.Options(count: 40, testCount: 10, size: 40, maxObjects: 2, seed: 5))
        XCTAssertEqual(raw.train, expected.train.arrays)
        XCTAssertEqual(raw.test, expected.test?.arrays)
        for (arguments, message) in [(["--size", "20"], "--size must be in 28...1024"), (["--max-objects", "0"], "--max-objects must be in 1...64"),
                                     (["--count", "0"], "--count must be"), (["--test-count=-1"], "--test-count must be")] {
            let bad = try CLI.run(["datasets", "make", "fashion-scenes", "--output", dir + "/bad.h5"] + arguments)
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains(message), bad.stderr)
        }
        let unknown = try CLI.run(["datasets", "make", "cifar-scenes", "--output", dir + "/bad.h5"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("unknown generator 'cifar-scenes'"), unknown.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/bad.h5"))
    }

    // MARK: Hand-written scene files

    /// A 2-image 8×8 scene file: masks (int32 with an ignored pixel) and boxes, 3 classes.
    func writeScene(_ path: String, x: [Int] = [2, 1, 8, 8], masks: [Int32]? = nil, maskShape: [Int] = [2, 8, 8],
                    boxes: [Float]? = [0, 1, 1, 1, 4, 5, 1, 2, 0, 0, 8, 8], boxShape: [Int]? = nil,
                    classNames: [String]? = ["a", "b", "c"], extra: (H5File) throws -> Void = { _ in }) throws {
        let file = try H5File.create(path: path)
        try file.write("x", values: [Float](repeating: 1, count: x.reduce(1, *)), shape: x)
        var m = masks ?? [Int32](repeating: 0, count: maskShape.reduce(1, *))
        if masks == nil, m.count == 128 {
            for p in [9, 10, 17] { m[p] = 2 }      // image 0: class 1 (id 2), 3 pixels
            m[20] = 1                              // image 0: class 0, 1 pixel
            m[5] = LabeledArrays.ignoreIndex
            for p in 64..<70 { m[p] = 3 }          // image 1: class 2
        }
        if !maskShape.isEmpty { try file.write("masks", values: m, shape: maskShape) }
        if let boxes { try file.write("boxes", values: boxes, shape: boxShape ?? [boxes.count / 6, 6]) }
        if let classNames { try file.setAttribute("class_names", classNames) }
        try extra(file)
        try file.close()
    }

    func testHandWrittenSceneFileLoads() throws {
        let path = try scratch("hand") + "/d.h5"
        try writeScene(path)
        let raw = try Dataset.loadRaw(name: path)
        XCTAssertEqual(raw.train.classCount, 3)
        XCTAssertEqual(raw.train.labels, [1, 2], "dominant classes from the masks")
        XCTAssertEqual(raw.train.masks?[5], LabeledArrays.ignoreIndex)
        XCTAssertEqual(raw.train.boxes, [ObjectBox(image: 0, classID: 1, x1: 1, y1: 1, x2: 4, y2: 5),
                                         ObjectBox(image: 1, classID: 2, x1: 0, y1: 0, x2: 8, y2: 8)])
        XCTAssertNil(raw.test)
        // Boxes only: labels from the largest box; class count inferred without names.
        let boxesOnly = try scratch("hand") + "/b.h5"
        try writeScene(boxesOnly, maskShape: [], boxes: [0, 0, 0, 0, 2, 2, 0, 2, 0, 0, 3, 3, 1, 1, 0, 0, 1, 1], classNames: nil)
        let b = try Dataset.loadRaw(name: boxesOnly)
        XCTAssertNil(b.train.masks)
        XCTAssertEqual(b.train.classCount, 3)
        XCTAssertEqual(b.train.labels, [2, 1])
        // Masks only, split by Dataset: the held-out test part keeps its masks.
        let masksOnly = try scratch("hand") + "/m.h5"
        try writeScene(masksOnly, x: [10, 8, 8], masks: (0..<640).map { Int32(($0 / 64) % 3) + ($0 % 64 == 0 ? 1 : 0) },
                       maskShape: [10, 8, 8], boxes: nil)
        let data = try Dataset.load(name: masksOnly, validationSplit: 0, testSplit: 0.2, seed: 1)
        XCTAssertEqual(data.test.count + data.train.count, 10)
        XCTAssertEqual(data.test.masks?.count, data.test.count * 64)
        XCTAssertNil(data.test.boxes)
    }

    func assertSceneError(_ path: String, _ fragments: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Dataset.loadRaw(name: path), file: file, line: line) { error in
            let text = "\(error)"
            for fragment in [path] + fragments {
                XCTAssertTrue(text.contains(fragment), "'\(text)' lacks '\(fragment)'", file: file, line: line)
            }
        }
    }

    func testBadSceneFilesNameFileAndDataset() throws {
        let dir = try scratch("bad")
        var n = 0
        func next() -> String { n += 1; return dir + "/bad\(n).h5" }
        var p = next()
        try writeScene(p, maskShape: [3, 8, 8])
        assertSceneError(p, ["/masks has 3 masks but /x has 2 samples"])
        p = next()
        try writeScene(p, maskShape: [2, 8, 7])
        assertSceneError(p, ["/masks masks are 8×7 but /x images are 8×8"])
        p = next()
        var masks = [Int32](repeating: 0, count: 128)
        masks[70] = 4
        try writeScene(p, masks: masks)
        assertSceneError(p, ["/masks: class id 4 of sample 1 at pixel (y 0, x 6) is outside 0...3"])
        p = next()
        masks[70] = -1
        try writeScene(p, masks: masks)
        assertSceneError(p, ["/masks: class id -1"])
        p = next()
        try writeScene(p, boxes: [0, 3, 0, 0, 2, 2])
        assertSceneError(p, ["/boxes row 0 (0, 3, 0, 0, 2, 2): class id must be an integer in 0..<3"])
        p = next()
        try writeScene(p, boxes: [0, 0, 0, 0, 2, 2, 1, 0, 5, 0, 5, 2])
        assertSceneError(p, ["/boxes row 1 (1, 0, 5, 0, 5, 2): x2 must be greater than x1"])
        p = next()
        try writeScene(p, boxes: [1, 0, 0, 3, 2, 1])
        assertSceneError(p, ["/boxes row 0", "y2 must be greater than y1"])
        p = next()
        try writeScene(p, boxes: [1, 0, 4, 0, 9, 2])
        assertSceneError(p, ["/boxes row 0 (1, 0, 4, 0, 9, 2): the box is outside the 8×8 image"])
        p = next()
        try writeScene(p, boxes: [0, 0, -1, 0, 2, 2])
        assertSceneError(p, ["/boxes row 0", "outside the 8×8 image"])
        p = next()
        try writeScene(p, boxes: [2, 0, 0, 0, 2, 2])
        assertSceneError(p, ["/boxes row 0", "image index must be an integer in 0..<2"])
        p = next()
        try writeScene(p, boxes: [0, 0, 0, 0, 2, 2, 0, 0], boxShape: [2, 4])
        assertSceneError(p, ["/boxes has shape [2, 4], expected M×6"])
        p = next()
        try writeScene(p, x: [2, 16])
        assertSceneError(p, ["/x has shape [2, 16]", "needs images"])
        p = next()
        try writeScene(p) { file in
            try file.write("x_test", values: [Float](repeating: 0, count: 64), shape: [1, 1, 8, 8])
            try file.write("boxes_test", values: [Float](), shape: [0, 6])
        }
        assertSceneError(p, ["missing dataset '/masks_test'"])
        p = next()
        try writeScene(p) { file in
            try file.write("x_test", values: [Float](repeating: 0, count: 64), shape: [1, 1, 8, 8])
            try file.write("masks_test", values: [Int32](repeating: 9, count: 64), shape: [1, 8, 8])
            try file.write("boxes_test", values: [Float](), shape: [0, 6])
        }
        assertSceneError(p, ["/masks_test: class id 9 of sample 0"])
        p = next()
        try writeScene(p) { file in try file.write("masks_f", values: [Float](repeating: 0, count: 1)) }
        XCTAssertNoThrow(try Dataset.loadRaw(name: p), "an unrelated extra dataset is fine")
        p = next()
        let file = try H5File.create(path: p)
        try file.write("x", values: [Float](repeating: 0, count: 128), shape: [2, 8, 8])
        try file.write("masks", values: [Float](repeating: 0, count: 128), shape: [2, 8, 8])
        try file.close()
        assertSceneError(p, ["/masks holds float32, expected integer class ids"])
    }

    /// A file with /y stays a classification file.
    func testClassificationLayoutUnchanged() throws {
        let p = try scratch("classification") + "/c.h5"
        let file = try H5File.create(path: p)
        try file.write("x", values: [Float](repeating: 0, count: 2 * 64), shape: [2, 1, 8, 8])
        try file.write("y", values: [Int64(0), 1])
        try file.write("masks", values: [Int32](repeating: 0, count: 128), shape: [2, 8, 8])
        try file.close()
        let raw = try Dataset.loadRaw(name: p)
        XCTAssertEqual(raw.train.labels, [0, 1])
        XCTAssertNil(raw.train.masks)
        XCTAssertNil(raw.train.boxes)
    }

    func testWriterRoundTripsFloatFeaturesAndIgnoredPixels() throws {
        let shape = FeatureShape(channels: 2, height: 4, width: 5)
        var masks = [Int32](repeating: 1, count: 3 * 20)
        masks[7] = LabeledArrays.ignoreIndex
        masks[45] = 2
        let train = LabeledArrays(features: (0..<120).map { Float($0) * 0.5 }, labels: [0, 0, 0], sampleShape: shape, classCount: 2,
                                  masks: masks, boxes: [ObjectBox(image: 2, classID: 1, x1: 0.5, y1: 1, x2: 5, y2: 4)])
        let path = try scratch("roundtrip") + "/sub/r.h5"
        try SceneDatasetFile.write(to: path, train: train, classNames: ["p", "q"])
        let file = try H5File.open(path: path)
        XCTAssertEqual(try file.datasetInfo("x").elementType, .float(bytes: 4))
        XCTAssertEqual(try file.datasetInfo("masks").elementType, .integer(bytes: 4, signed: true))
        let raw = try Dataset.loadRaw(name: path)
        XCTAssertEqual(raw.train.features, train.features)
        XCTAssertEqual(raw.train.masks, masks)
        XCTAssertEqual(raw.train.boxes, train.boxes)
        XCTAssertEqual(raw.train.labels, [0, 0, 0])
        XCTAssertEqual(raw.metadata.classNames, ["p", "q"])
        XCTAssertThrowsError(try SceneDatasetFile.write(to: path + "2", train: LabeledArrays(features: [0], labels: [0],
                             sampleShape: FeatureShape(features: 1), classCount: 1)))
    }
}
