import ArgumentParser
import Datasets
import HDF5Kit
import Foundation
import Lab
import NASCore

/// `naslab datasets …`: inspect and export datasets as NASLab splits them.
struct DatasetsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "datasets", abstract: "Work with datasets as NASLab loads and splits them.",
        subcommands: [DatasetsExportCommand.self, DatasetsMakeCommand.self])
}

/// `naslab datasets make fashion-scenes --output FILE.h5 …`: generate a synthetic scene dataset.
struct DatasetsMakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make", abstract: "Generate a synthetic dataset (fashion-scenes: segmentation and detection scenes) as HDF5.",
        discussion: """
            fashion-scenes: SIZE×SIZE one-channel canvases with 1 to MAX-OBJECTS Fashion-MNIST items at \
            seeded random positions, later items on top (Debian's dataset-fashion-mnist, or \
            NASLAB_FASHION_MNIST_DIR; training items for the training scenes, test items for the test scenes). \
            An item's pixels above \(FashionScenes.pixelThreshold) are its own; masks hold 0 for background and \
            1 + class elsewhere; an item with at least \(FashionScenes.minimumVisiblePixels) visible pixels gets the \
            tight box of them. The file has /x (uint8 N×1×H×W), /masks (uint8 N×H×W), /boxes (float32 M×6: \
            image, class, x1, y1, x2, y2; x2/y2 exclusive) and the same with _test, and loads with \
            `Dataset.load(name: FILE)` or as an experiment's dataset. The same options and seed give the \
            same arrays. The built-in dataset `fashion-scenes` is this command's default output, cached in \
            the per-user cache directory.
            """)

    @Argument(help: "The generator: fashion-scenes.") var generator: String
    @Option(name: [.short, .long], help: "The HDF5 file to write (replaced atomically).") var output: String
    @Option(help: "Training scenes.") var count = FashionScenes.defaultCount
    @Option(help: "Test scenes (0: no test part).") var testCount = FashionScenes.defaultTestCount
    @Option(help: "Canvas side in pixels (28...1024).") var size = FashionScenes.defaultSize
    @Option(help: "Most items per scene (1...64).") var maxObjects = FashionScenes.defaultMaxObjects
    @Option(help: "Seed of the scenes.") var seed: UInt64 = FashionScenes.defaultSeed

    var options: FashionScenes.Options {
        FashionScenes.Options(count: count, testCount: testCount, size: size, maxObjects: maxObjects, seed: seed)
    }

    func validate() throws {
        guard generator.lowercased() == FashionScenes.name else {
            throw ValidationError("unknown generator '\(generator)'; the only one is '\(FashionScenes.name)'")
        }
        do {
            try options.validate()
        } catch let error as DatasetError {
            if case let .invalidArgument(detail) = error {
                throw ValidationError("--" + detail.replacingOccurrences(of: "test count", with: "test-count")
                    .replacingOccurrences(of: "max objects", with: "max-objects"))
            }
            throw error
        }
        guard !output.isEmpty else { throw ValidationError("--output must name a file") }
    }

    func run() throws {
        try reportingErrors {
            let start = Date()
            let scenes = try FashionScenes.generate(options)
            try scenes.write(to: output)
            let boxes = (scenes.train.arrays.boxes?.count ?? 0) + (scenes.test?.arrays.boxes?.count ?? 0)
            print(String(format: "wrote %@: %d training and %d test scenes of %d×%d, %d boxes, seed %@ (%.1f s)",
                         output, scenes.train.arrays.count, scenes.test?.arrays.count ?? 0, size, size, boxes,
                         String(seed), Date().timeIntervalSince(start)))
        }
    }
}

/// `naslab datasets export NAME --output FILE.csv`: the train / validation / test split a search uses, as CSV.
struct DatasetsExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a dataset's train/validation/test split, exactly as a search uses it, as CSV.",
        discussion: """
            The dataset is loaded and split as a search does (the same cache, `Dataset.load` with the \
            experiment's `validation_split`, splits seeded with the experiment's `seed` — a search uses its \
            seed unchanged as the dataset seed), so `--seed` and `--validation-split` take the values of \
            the experiment config (its defaults: seed 0, validation split 0.1).

            Columns (RFC 4180, CRLF line ends, header row): text datasets `split,label,text` with the \
            original texts (not token ids); image and tabular datasets `split,label,f0,f1,…` with the \
            features NASLab trains on (standardised with the statistics of the training split). \
            `split` is train, validation or test; `label` is the class name (the class index when the \
            dataset names no classes). Rows are in NASLab's order within each split.

            After writing, the file is read back and checked: rows per split equal the dataset's split \
            sizes, labels match, every text re-encodes with the dataset's tokenizer to exactly the token \
            ids NASLab trains on (features: the same values); any mismatch is an error.

            Scene datasets (segmentation / detection: fashion-scenes or an HDF5 file with /masks or \
            /boxes) are written as HDF5 instead (--output FILE.h5): one group per split, /train, \
            /validation and /test, each in the scene layout of docs/datasets.md — x (float32 N×C×H×W, \
            the standardised features NASLab trains on), masks (N×H×W class ids, 0 = background, \
            1 + k = class k; uint8 when they fit, else int32), boxes (M×6 float32 rows image_index, \
            class_id, x1, y1, x2, y2 with image indices within the split) — plus labels (int32 N, the \
            dominant classes that stratify the splits); root attribute class_names (or class_count) and \
            datasets /normalization_mean, /normalization_std (per channel). The file is read back and \
            compared array by array.
            """)

    @Argument(help: "digits, fashion-mnist, fortunes, or a dataset file (.csv text/tabular, HDF5, IDX directory).")
    var name: String
    @Option(name: [.short, .long], help: "The CSV file to write (scene datasets: an HDF5 file, FILE.h5).") var output: String
    @Option(help: "The experiment's seed (the dataset seed of a search).") var seed: UInt64 = 0
    @Option(help: "Fraction of the training part held out for validation (the experiment's validation_split).")
    var validationSplit = Dataset.defaultValidationSplit

    func validate() throws {
        guard validationSplit >= 0, validationSplit < 1 else { throw ValidationError("--validation-split must be in [0, 1)") }
    }

    func run() throws {
        try reportingErrors {
            let start = Date()
            let export = try DatasetExport.make(name: name, validationSplit: validationSplit, seed: seed)
            if export.isScenes {
                let lower = output.lowercased()
                guard lower.hasSuffix(".h5") || lower.hasSuffix(".hdf5") else {
                    throw DatasetExport.Failure.usage("'\(name)' is a scene dataset (masks/boxes): export it to an HDF5 file, "
                        + "--output FILE.h5 (a CSV cannot hold its masks and boxes)")
                }
                try export.writeScenes(to: output)
                let counts = DatasetExport.splits.map { "\($0.count(export.dataset)) \($0.name)" }.joined(separator: ", ")
                let kinds = [export.dataset.train.masks != nil ? "masks" : nil, export.dataset.train.boxes != nil ? "boxes" : nil]
                    .compactMap { $0 }.joined(separator: " and ")
                print(String(format: "wrote %@: %@ scenes (%@) with %@, %d classes; read back and verified in %.1f s",
                             output, String(export.rowCount), counts, kinds, export.dataset.metadata.classCount,
                             Date().timeIntervalSince(start)))
                return
            }
            try export.write(to: output)
            let counts = DatasetExport.splits.map { "\($0.count(export.dataset)) \($0.name)" }.joined(separator: ", ")
            print(String(format: "wrote %@: %@ rows (%@), %d classes; read back and verified in %.1f s",
                         output, String(export.rowCount), counts, export.dataset.metadata.classCount,
                         Date().timeIntervalSince(start)))
        }
    }
}

/// A dataset split as a search splits it, with the original texts of each split for text datasets.
struct DatasetExport {
    enum Failure: Error, CustomStringConvertible {
        case check(String)
        case usage(String)
        var description: String {
            switch self {
            case let .check(detail): return "export self-check failed: \(detail)"
            case let .usage(detail): return detail
            }
        }
    }

    struct Split {
        let name: String
        let part: (Dataset) -> LabeledArrays
        func count(_ d: Dataset) -> Int { part(d).count }
    }

    static let splits = [Split(name: "train", part: { $0.train }), Split(name: "validation", part: { $0.validation }),
                         Split(name: "test", part: { $0.test })]

    let dataset: Dataset
    /// The texts of each split in `splits` order (text datasets only).
    let texts: [[String]]?

    var rowCount: Int { dataset.train.count + dataset.validation.count + dataset.test.count }

    /// Loads `name` through `DatasetCache` — the call a search makes — with each split's original
    /// texts for a text dataset (`Dataset.texts`).
    static func make(name: String, validationSplit: Double, seed: UInt64) throws -> DatasetExport {
        let dataset = try DatasetCache().dataset(name, validationSplit: validationSplit, seed: seed)
        guard dataset.tokenizer != nil else { return DatasetExport(dataset: dataset, texts: nil) }
        guard let texts = dataset.texts else { throw Failure.check("text dataset '\(name)' has no split texts") }
        return DatasetExport(dataset: dataset, texts: [texts.train, texts.validation, texts.test])
    }

    /// The CSV header's fields.
    var header: [String] {
        if texts != nil { return ["split", "label", "text"] }
        return ["split", "label"] + (0..<dataset.train.sampleShape.elementCount).map { "f\($0)" }
    }

    func labelName(_ label: Int32) -> String {
        if let names = dataset.metadata.classNames, Int(label) < names.count { return names[Int(label)] }
        return String(label)
    }

    /// Writes the CSV to a temporary file next to `path`, reads it back and checks it (``verify(file:)``),
    /// then moves it into place; on any failure the temporary file is removed and `path` is left alone.
    func write(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw Failure.check("cannot create \(temporary.path)")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            var buffer = [UInt8]()
            buffer.reserveCapacity(1 << 20)
            func line(_ fields: [String]) throws {
                for (i, field) in fields.enumerated() {
                    if i > 0 { buffer.append(UInt8(ascii: ",")) }
                    DatasetExport.appendQuoted(field, to: &buffer)
                }
                buffer.append(contentsOf: [13, 10])
                if buffer.count >= 1 << 20 {
                    try handle.write(contentsOf: buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try line(header)
            for (s, split) in DatasetExport.splits.enumerated() {
                let part = split.part(dataset)
                let width = part.sampleShape.elementCount
                for i in 0..<part.count {
                    if let texts {
                        try line([split.name, labelName(part.labels[i]), texts[s][i]])
                    } else {
                        try line([split.name, labelName(part.labels[i])]
                                 + part.features[i * width ..< (i + 1) * width].map { "\($0)" })
                    }
                }
            }
            try handle.write(contentsOf: buffer)
            try handle.close()
            try verify(file: temporary.path)
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            try FileManager.default.moveItem(at: temporary, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    /// RFC 4180: quoted (quotes doubled) when the field contains `,`, `"`, CR or LF.
    static func appendQuoted(_ field: String, to buffer: inout [UInt8]) {
        let bytes = Array(field.utf8)
        guard bytes.contains(where: { $0 == 44 || $0 == 34 || $0 == 10 || $0 == 13 }) else {
            buffer.append(contentsOf: bytes)
            return
        }
        buffer.append(34)
        for b in bytes {
            if b == 34 { buffer.append(34) }
            buffer.append(b)
        }
        buffer.append(34)
    }

    /// Parses RFC 4180 CSV (as written by ``write(to:)``) into records of fields.
    static func parseCSV(_ bytes: [UInt8]) throws -> [[String]] {
        var records = [[String]]()
        var record = [String]()
        var field = [UInt8]()
        var inQuotes = false
        var i = 0
        func endField() {
            record.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
        }
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            if inQuotes {
                if b == 34 {
                    if i < bytes.count, bytes[i] == 34 { field.append(34); i += 1 } else { inQuotes = false }
                } else {
                    field.append(b)
                }
            } else if b == 34 && field.isEmpty {
                inQuotes = true
            } else if b == 44 {
                endField()
            } else if b == 13 || b == 10 {
                if b == 13, i < bytes.count, bytes[i] == 10 { i += 1 }
                endField()
                records.append(record)
                record.removeAll(keepingCapacity: true)
            } else {
                field.append(b)
            }
        }
        if inQuotes { throw Failure.check("the CSV ends inside a quoted field") }
        if !field.isEmpty || !record.isEmpty { endField(); records.append(record) }
        return records
    }

    /// Reads `file` back and checks it against the dataset NASLab trains on (see the command's discussion).
    func verify(file: String) throws {
        let records = try DatasetExport.parseCSV(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
        guard records.first == header else { throw Failure.check("the header read back differs from the one written") }
        var rows = records.dropFirst()[...]
        for split in DatasetExport.splits {
            let part = split.part(dataset)
            let width = part.sampleShape.elementCount
            let mine = rows.prefix(while: { $0.first == split.name })
            rows = rows.dropFirst(mine.count)
            guard mine.count == part.count else {
                throw Failure.check("\(mine.count) \(split.name) rows read back, but the dataset's \(split.name) split has \(part.count) samples")
            }
            for (i, row) in mine.enumerated() {
                let where_ = "\(split.name) row \(i)"
                guard row.count == header.count else {
                    throw Failure.check("\(where_) has \(row.count) fields, expected \(header.count)")
                }
                guard row[1] == labelName(part.labels[i]) else {
                    throw Failure.check("\(where_): label '\(row[1])' but NASLab trains on '\(labelName(part.labels[i]))'")
                }
                let expected = part.features[i * width ..< (i + 1) * width]
                if let tokenizer = dataset.tokenizer {
                    let ids = tokenizer.encode(row[2]).ids
                    guard ids.count == width, zip(ids, expected).allSatisfy({ Float($0) == $1 }) else {
                        throw Failure.check("\(where_): the exported text does not re-encode to the token ids NASLab trains on")
                    }
                } else {
                    guard zip(row.dropFirst(2), expected).allSatisfy({ Float($0) == $1 }) else {
                        throw Failure.check("\(where_): the exported features differ from the ones NASLab trains on")
                    }
                }
            }
        }
        guard rows.isEmpty else { throw Failure.check("\(rows.count) rows read back beyond the three splits") }
    }
}

// MARK: - Scene datasets

extension DatasetExport {
    /// Whether the dataset carries masks or boxes (a scene dataset, exported as HDF5).
    var isScenes: Bool { dataset.train.masks != nil || dataset.train.boxes != nil }

    /// Writes the three splits in the scene layout, one group each (see the command's discussion),
    /// to a temporary file next to `path`, reads it back and compares every array, then moves it
    /// into place; on any failure the temporary file is removed and `path` is left alone.
    func writeScenes(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp")
        do {
            let file = try H5File.create(path: temporary.path, truncate: true)
            for split in DatasetExport.splits {
                let part = split.part(dataset)
                let group = try file.createGroup(split.name)
                let s = part.sampleShape
                try group.write("x", values: part.features, shape: [part.count, s.channels, s.height, s.width])
                try group.write("labels", values: part.labels, shape: [part.count])
                if let masks = part.masks {
                    let shape = [part.count, s.height, s.width]
                    if masks.allSatisfy({ $0 >= 0 && $0 <= 255 }) {
                        try group.write("masks", values: masks.map { UInt8($0) }, shape: shape)
                    } else {
                        try group.write("masks", values: masks, shape: shape)
                    }
                }
                if let boxes = part.boxes {
                    try group.write("boxes", values: DatasetExport.boxRows(boxes), shape: [boxes.count, 6])
                }
            }
            if let names = dataset.metadata.classNames {
                try file.setAttribute("class_names", names)
            } else {
                try file.setAttribute("class_count", dataset.metadata.classCount)
            }
            try file.setAttribute("dataset", dataset.metadata.name)
            if let n = dataset.normalization {
                try file.write("normalization_mean", values: n.mean, shape: [n.mean.count])
                try file.write("normalization_std", values: n.std, shape: [n.std.count])
            }
            try file.flush()
            try file.close()
            try verifyScenes(file: temporary.path)
            if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
            try FileManager.default.moveItem(at: temporary, to: url)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw error
        }
    }

    static func boxRows(_ boxes: [ObjectBox]) -> [Float] {
        boxes.flatMap { [Float($0.image), Float($0.classID), $0.x1, $0.y1, $0.x2, $0.y2] }
    }

    /// Reads a file written by ``writeScenes(to:)`` back and compares it with the splits.
    func verifyScenes(file path: String) throws {
        let file = try H5File.open(path: path)
        defer { try? file.close() }
        for split in DatasetExport.splits {
            let part = split.part(dataset)
            let group = try file.openGroup(split.name)
            guard try group.read("x", as: Float.self).values == part.features else {
                throw Failure.check("/\(split.name)/x read back differs from the features NASLab trains on")
            }
            guard try group.read("labels", as: Int32.self).values == part.labels else {
                throw Failure.check("/\(split.name)/labels read back differ from the split's labels")
            }
            if let masks = part.masks {
                guard try group.read("masks", as: Int32.self).values == masks else {
                    throw Failure.check("/\(split.name)/masks read back differ from the split's masks")
                }
            }
            if let boxes = part.boxes {
                guard try group.read("boxes", as: Float.self).values == DatasetExport.boxRows(boxes) else {
                    throw Failure.check("/\(split.name)/boxes read back differ from the split's boxes")
                }
            }
        }
    }
}
