import Foundation
import NASCore

/// The built-in text dataset `fortunes`: Debian's `fortunes` package (the fortune-mod cookie
/// files), one class per category file.
///
/// - Every regular file without an extension in the directory is a category (its file name is the
///   category's name); `*.dat` index files, `*.u8` symlinks, hidden files, subdirectories (such as
///   `off/`) and symlinks to files already read are skipped.
/// - Entries are separated by lines consisting of `%`; each entry is trimmed of surrounding
///   whitespace and empty entries are dropped.
/// - Every category with at least ``minimumEntries`` (100) entries is a class; the class names are
///   the file names in sorted order. Samples are in class order, then file order.
/// - There is no test part: ``Dataset`` holds out its usual stratified, seeded 20 % test split.
public enum FortunesLoader {
    /// The least number of entries for a category to become a class.
    public static let minimumEntries = 100

    /// `/usr/share/games/fortunes` (Debian package `fortunes`); the environment variable
    /// `NASLAB_FORTUNES_DIR` overrides it.
    public static var defaultDirectory: String {
        ProcessInfo.processInfo.environment["NASLAB_FORTUNES_DIR"] ?? "/usr/share/games/fortunes"
    }

    /// Loads the categories of ``defaultDirectory``.
    public static func load() throws -> RawDataset {
        try load(directory: defaultDirectory)
    }

    /// Loads the categories of `directory` as a raw text dataset named `fortunes`.
    /// - Throws: ``DatasetError/notInstalled(dataset:path:hint:)`` when the directory does not exist,
    ///   ``DatasetError/malformed(path:detail:)`` when fewer than 2 categories have enough entries.
    public static func load(directory: String, minimumEntries: Int = FortunesLoader.minimumEntries) throws -> RawDataset {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DatasetError.notInstalled(dataset: "fortunes", path: directory,
                                            hint: "install Debian's 'fortunes' package (apt-get install fortunes) "
                                                + "or point NASLAB_FORTUNES_DIR at a directory of fortune files")
        }
        let categories = try categoryFiles(in: directory)
        var classNames = [String]()
        var texts = [String]()
        var labels = [Int32]()
        var counts = [String]()
        for (name, path) in categories {
            let entries = try readEntries(path: path)
            counts.append("\(name) \(entries.count)")
            guard entries.count >= minimumEntries else { continue }
            labels.append(contentsOf: repeatElement(Int32(classNames.count), count: entries.count))
            texts.append(contentsOf: entries)
            classNames.append(name)
        }
        guard classNames.count >= 2 else {
            throw DatasetError.malformed(path: directory, detail: "fewer than 2 fortune categories with at least \(minimumEntries) "
                + "entries (found: \(counts.isEmpty ? "no category files" : counts.joined(separator: ", ")))")
        }
        return try RawDataset(name: "fortunes", source: directory, classNames: classNames, trainTexts: texts, trainLabels: labels)
    }

    /// The category files of `directory`, sorted by name: `(name, path)`.
    static func categoryFiles(in directory: String) throws -> [(name: String, path: String)] {
        let fileManager = FileManager.default
        let names: [String]
        do {
            names = try fileManager.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw DatasetError.malformed(path: directory, detail: "cannot list the directory: \(error.localizedDescription)")
        }
        var regular = [(name: String, path: String, resolved: String)]()
        var links = [(name: String, path: String, resolved: String)]()
        for name in names where !name.hasPrefix(".") && (name as NSString).pathExtension.isEmpty {
            let path = (directory as NSString).appendingPathComponent(name)
            guard let type = (try? fileManager.attributesOfItem(atPath: path))?[.type] as? FileAttributeType else { continue }
            let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            if type == .typeRegular {
                regular.append((name, path, resolved))
            } else if type == .typeSymbolicLink {
                var targetIsDirectory: ObjCBool = false
                guard fileManager.fileExists(atPath: resolved, isDirectory: &targetIsDirectory), !targetIsDirectory.boolValue else { continue }
                links.append((name, path, resolved))
            }
        }
        // Regular files first, so a symlink never replaces the file it points to.
        var seen = Set<String>()
        var result = [(name: String, path: String)]()
        for file in regular + links where seen.insert(file.resolved).inserted {
            result.append((file.name, file.path))
        }
        return result.sorted { $0.name < $1.name }
    }

    /// The entries of one fortune file: text between lines consisting of `%`, trimmed, empty ones dropped.
    public static func readEntries(path: String) throws -> [String] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw DatasetError.malformed(path: path, detail: "cannot read the file: \(error.localizedDescription)")
        }
        // Invalid UTF-8 (old Latin-1 files) is replaced by U+FFFD rather than rejected.
        let text = String(decoding: data, as: UTF8.self)
        var entries = [String]()
        var current = [Substring]()
        func finish() {
            let entry = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            if !entry.isEmpty { entries.append(entry) }
            current.removeAll(keepingCapacity: true)
        }
        // "\r\n" is a single Character, so CRLF files split too.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            if line.trimmingCharacters(in: .whitespaces) == "%" {
                finish()
            } else {
                current.append(line)
            }
        }
        finish()
        return entries
    }
}
