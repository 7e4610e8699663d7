import Foundation
import NASCore

/// How ``CSVLoader`` reads a CSV file: the names of the label and text columns and which kind of
/// dataset to make.
public struct CSVOptions: Sendable, Hashable {
    /// Which dataset a CSV file becomes.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// A text dataset when the file has the text column, otherwise a tabular one.
        case automatic
        /// A text dataset; the text column is required.
        case text
        /// A tabular dataset; every column but the label column must be numeric (a column named
        /// like ``CSVOptions/textColumn`` is then an ordinary numeric column).
        case tabular
    }

    /// The column holding the texts of a text dataset (default `text`).
    public var textColumn: String
    /// The column holding the class labels (default `label`).
    public var labelColumn: String
    /// Text, tabular or decided by the header (default ``Kind/automatic``).
    public var kind: Kind

    public init(textColumn: String = "text", labelColumn: String = "label", kind: Kind = .automatic) {
        self.textColumn = textColumn
        self.labelColumn = labelColumn
        self.kind = kind
    }
}

/// Loads a classification dataset from a CSV file (RFC 4180).
///
/// **Format**: UTF-8 (an initial byte-order mark is skipped), fields separated by commas, records by
/// LF or CRLF (a lone CR is also accepted). A field may be quoted with `"`; a quoted field can hold
/// commas and line breaks, and `""` inside it is one `"`. Completely empty lines are skipped. The
/// first record is the **header** naming the columns (names are trimmed of surrounding whitespace).
///
/// - **Text dataset**: the header has a text column (`text`, see ``CSVOptions``): one sample per row,
///   its text and its label; other columns are ignored.
/// - **Tabular dataset**: no text column: every column but the label column is a numeric feature
///   (Swift `Double` syntax, e.g. `3`, `-0.5`, `1e-3`; surrounding spaces allowed; finite values
///   only, no missing values); samples are F×1×1 with the features in column order.
///
/// **Labels** (column `label`, trimmed, non-empty) are strings or integers. The class names are the
/// distinct label strings in sorted order — numerically when every label is an integer — and a
/// label's class index is its position in that list. There must be at least 2 classes and every
/// class needs at least 2 samples (the test and validation splits are stratified).
///
/// Every problem is a ``DatasetError/csv(path:line:column:message:)``, described as
/// `path:line:column: message` with the 1-based physical line of the file where the offending field
/// starts and the 1-based CSV column (field number).
public enum CSVLoader {
    /// Loads `path` as a raw text or tabular dataset (no test part: ``Dataset`` holds one out).
    public static func load(path: String, options: CSVOptions = CSVOptions()) throws -> RawDataset {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            if !FileManager.default.fileExists(atPath: path) { throw DatasetError.fileNotFound(path: path) }
            throw DatasetError.malformed(path: path, detail: "cannot read the file: \(error.localizedDescription)")
        }
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        return try load(data: data, path: path, name: name, options: options)
    }

    /// Loads CSV `data` (as read from a file); `path` is used in errors and as the metadata source.
    public static func load(data: Data, path: String, name: String, options: CSVOptions = CSVOptions()) throws -> RawDataset {
        func fail(_ line: Int, _ column: Int, _ message: String) -> DatasetError {
            .csv(path: path, line: line, column: column, message: message)
        }
        let (rows, _) = try parse(data, path: path)
        guard let headerRow = rows.first else {
            throw fail(1, 1, "empty file: a CSV dataset needs a header row naming its columns, then one row per sample")
        }
        let names = headerRow.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        var firstColumn = [String: Int]()
        for (index, columnName) in names.enumerated() where !columnName.isEmpty {
            if let previous = firstColumn[columnName] {
                throw fail(headerRow.line, index + 1, "duplicate column name '\(columnName)' (also column \(previous + 1))")
            }
            firstColumn[columnName] = index
        }
        let columnList = names.map { "'\($0)'" }.joined(separator: ", ")
        guard let labelIndex = firstColumn[options.labelColumn] else {
            throw fail(headerRow.line, 1, "no label column '\(options.labelColumn)'; the columns are \(columnList) "
                + "(name the label column '\(options.labelColumn)' or set CSVOptions.labelColumn)")
        }
        let textIndex: Int?
        switch options.kind {
        case .tabular: textIndex = nil
        case .automatic: textIndex = options.textColumn == options.labelColumn ? nil : firstColumn[options.textColumn]
        case .text:
            guard let index = firstColumn[options.textColumn], options.textColumn != options.labelColumn else {
                throw fail(headerRow.line, 1, "no text column '\(options.textColumn)'; the columns are \(columnList) "
                    + "(name the text column '\(options.textColumn)' or set CSVOptions.textColumn)")
            }
            textIndex = index
        }
        let featureColumns = textIndex == nil ? names.indices.filter { $0 != labelIndex } : []
        if textIndex == nil && featureColumns.isEmpty {
            throw fail(headerRow.line, 1, "no feature columns: besides the label column '\(options.labelColumn)' a CSV dataset needs "
                + "numeric feature columns (tabular) or a text column '\(options.textColumn)' (text)")
        }
        let dataRows = rows.dropFirst()
        guard !dataRows.isEmpty else {
            throw fail(headerRow.endLine + 1, 1, "no data rows: the file has only a header")
        }

        var labelStrings = [String]()
        labelStrings.reserveCapacity(dataRows.count)
        var labelLines = [Int]()
        labelLines.reserveCapacity(dataRows.count)
        var texts = [String]()
        var features = [Float]()
        features.reserveCapacity(dataRows.count * featureColumns.count)
        for row in dataRows {
            guard row.fields.count == names.count else {
                let column = min(row.fields.count, names.count) + 1
                let line = row.fields.count > names.count ? row.fieldLines[names.count] : row.endLine
                throw fail(line, column, "expected \(names.count) fields like the header, found \(row.fields.count)")
            }
            let label = row.fields[labelIndex].trimmingCharacters(in: .whitespaces)
            guard !label.isEmpty else { throw fail(row.fieldLines[labelIndex], labelIndex + 1, "empty label") }
            labelStrings.append(label)
            labelLines.append(row.fieldLines[labelIndex])
            if let textIndex {
                texts.append(row.fields[textIndex])
                continue
            }
            for column in featureColumns {
                let cell = row.fields[column].trimmingCharacters(in: .whitespaces)
                guard let value = Double(cell), value.isFinite, abs(value) <= Double(Float.greatestFiniteMagnitude) else {
                    let what: String
                    if cell.isEmpty {
                        what = "empty value in numeric column '\(names[column])' (missing values are not supported)"
                    } else if Double(cell) != nil {
                        what = "\(quoted(cell)) in column '\(names[column])' is not a finite 32-bit number"
                    } else {
                        let hint = options.kind == .automatic
                            ? "; for a text dataset name the text column '\(options.textColumn)'" : ""
                        what = "\(quoted(cell)) in column '\(names[column])' is not a number (every column but the label "
                            + "column '\(options.labelColumn)' of a tabular CSV must be numeric\(hint))"
                    }
                    throw fail(row.fieldLines[column], column + 1, what)
                }
                features.append(Float(value))
            }
        }

        // Classes: sorted distinct labels (numerically when all are integers).
        var distinct = Array(Set(labelStrings))
        let integerLabels = distinct.compactMap { label in Int(label).map { (label, $0) } }
        if integerLabels.count == distinct.count {
            distinct = integerLabels.sorted { a, b in a.1 != b.1 ? a.1 < b.1 : a.0 < b.0 }.map(\.0)
        } else {
            distinct.sort()
        }
        let classIndex = Dictionary(uniqueKeysWithValues: distinct.enumerated().map { ($1, Int32($0)) })
        let labels = labelStrings.map { classIndex[$0] ?? 0 }
        var classSizes = [Int](repeating: 0, count: distinct.count)
        for label in labels { classSizes[Int(label)] += 1 }
        if let single = labels.firstIndex(where: { classSizes[Int($0)] < 2 }) {
            throw fail(labelLines[single], labelIndex + 1,
                       "class \(quoted(labelStrings[single])) has 1 sample; every class needs at least 2 for a stratified split")
        }
        guard distinct.count >= 2 else {
            throw fail(headerRow.line, labelIndex + 1,
                       "column '\(options.labelColumn)' has only one class \(quoted(distinct.first ?? "")); classification needs at least 2")
        }

        if textIndex != nil {
            return try RawDataset(name: name, source: path, classNames: distinct, trainTexts: texts, trainLabels: labels)
        }
        let shape = FeatureShape(features: featureColumns.count)
        return RawDataset(
            metadata: DatasetMetadata(name: name, source: path, sampleShape: shape, classCount: distinct.count,
                                      classNames: distinct, inputKind: .features),
            train: LabeledArrays(features: features, labels: labels, sampleShape: shape, classCount: distinct.count),
            test: nil)
    }

    /// A value for an error message: in single quotes, shortened to 40 characters.
    static func quoted(_ value: String) -> String {
        let short = value.count > 40 ? value.prefix(40) + "…" : Substring(value)
        return "'\(short)'"
    }

    // MARK: - RFC 4180 parsing

    /// One CSV record.
    public struct Record: Sendable, Equatable {
        /// The line where the record starts.
        public var line: Int
        /// The line where the record ends (after its last field, before the line break).
        public var endLine: Int
        /// The fields, unquoted.
        public var fields: [String]
        /// The line where each field starts.
        public var fieldLines: [Int]
    }

    /// Splits CSV `data` into records (see the type's documentation for the syntax).
    /// - Returns: the records and the number of lines of the file.
    /// - Throws: ``DatasetError/csv(path:line:column:message:)`` for an unterminated quote, a
    ///   character after a closing quote, a NUL byte or invalid UTF-8.
    public static func parse(_ data: Data, path: String) throws -> (records: [Record], lineCount: Int) {
        let bytes = [UInt8](data)
        let n = bytes.count
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")
        var i = 0
        if n >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { i = 3 }
        var line = 1
        var records = [Record]()
        var field = [UInt8]()

        /// Skips a line break at `i` (CRLF, LF or CR).
        func skipLineBreak() {
            if bytes[i] == cr && i + 1 < n && bytes[i + 1] == lf { i += 2 } else { i += 1 }
            line += 1
        }

        while i < n {
            if bytes[i] == lf || bytes[i] == cr {   // an empty line
                skipLineBreak()
                continue
            }
            var record = Record(line: line, endLine: line, fields: [], fieldLines: [])
            while true {
                let column = record.fields.count + 1
                let fieldLine = line
                field.removeAll(keepingCapacity: true)
                if i < n && bytes[i] == quote {
                    i += 1
                    while true {
                        guard i < n else {
                            throw DatasetError.csv(path: path, line: fieldLine, column: column,
                                                   message: "unterminated quoted field: the quote opened here is never closed")
                        }
                        let byte = bytes[i]
                        if byte == quote {
                            if i + 1 < n && bytes[i + 1] == quote {
                                field.append(quote)
                                i += 2
                                continue
                            }
                            i += 1
                            break
                        }
                        if byte == lf || (byte == cr && !(i + 1 < n && bytes[i + 1] == lf)) { line += 1 }
                        field.append(byte)
                        i += 1
                    }
                    if i < n && bytes[i] != comma && bytes[i] != lf && bytes[i] != cr {
                        throw DatasetError.csv(path: path, line: line, column: column,
                                               message: "unexpected character after the closing quote of a quoted field "
                                                   + "(a quote inside a quoted field must be doubled: \"\")")
                    }
                } else {
                    while i < n && bytes[i] != comma && bytes[i] != lf && bytes[i] != cr {
                        field.append(bytes[i])
                        i += 1
                    }
                }
                if let problem = binaryProblem(field) {
                    throw DatasetError.csv(path: path, line: fieldLine, column: column, message: problem)
                }
                record.fields.append(String(decoding: field, as: UTF8.self))
                record.fieldLines.append(fieldLine)
                record.endLine = line
                if i < n && bytes[i] == comma {
                    i += 1
                    continue
                }
                if i < n { skipLineBreak() }
                break
            }
            records.append(record)
        }
        return (records, line)
    }

    /// Why `bytes` is not UTF-8 text (a NUL byte or invalid UTF-8), or `nil`.
    static func binaryProblem(_ bytes: [UInt8]) -> String? {
        if bytes.contains(0) { return "NUL byte: this is binary data, not a UTF-8 text CSV file" }
        if let offset = firstInvalidUTF8(bytes) {
            return "invalid UTF-8 (byte 0x\(String(bytes[offset], radix: 16, uppercase: true))): the file must be UTF-8 text"
        }
        return nil
    }

    /// The offset of the first byte of `bytes` that starts an invalid UTF-8 sequence (overlong forms,
    /// surrogates and values above U+10FFFF are invalid: the standard library's UTF-8 parser), or `nil`.
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}
