import Datasets
import Engine
import Estimators
import Foundation
import NASCore
import Search
import Spaces
import Yams

/// One finding of `naslab validate`, located like a compiler diagnostic.
public struct ValidationDiagnostic: Equatable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        /// The file cannot be used as it is.
        case error
        /// The file works, but probably not as meant (e.g. no sampled architecture meets the constraints).
        case warning
    }

    public var file: String
    public var line: Int
    public var column: Int
    public var severity: Severity
    public var message: String

    public init(file: String, line: Int, column: Int, severity: Severity, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.severity = severity
        self.message = message
    }

    /// `file:line:column: message` for errors, `file:line:column: warning: message` for warnings.
    public var description: String {
        "\(file):\(line):\(column): " + (severity == .warning ? "warning: " : "") + message
    }
}

/// What `Validation.validate` found in one file.
public struct ValidationReport: Sendable {
    /// The two kinds of files `naslab validate` checks.
    public enum Kind: String, Sendable, CaseIterable {
        case space
        case experiment
    }

    public var file: String
    /// The kind checked (given or detected); `nil` when the file could not even be read as YAML.
    public var kind: Kind?
    /// Errors and warnings, in file order (line, column).
    public var diagnostics: [ValidationDiagnostic]
    /// One line describing a valid file (space size, dataset, budget …); empty for invalid files.
    public var summary: String

    public var errors: [ValidationDiagnostic] { diagnostics.filter { $0.severity == .error } }
    public var warnings: [ValidationDiagnostic] { diagnostics.filter { $0.severity == .warning } }
    /// No errors (warnings allowed).
    public var isValid: Bool { errors.isEmpty }
}

/// `naslab validate`: checks search-space files and experiment configs without running anything.
///
/// A file is read as YAML (any bytes: binary junk, an empty or truncated file and absurd numbers
/// are reported, never a crash), its kind detected from its keys (or given), then:
/// - a **space** file is loaded (schema, `file:line:column` errors) and sampled architectures are
///   decoded for the default input of its task (`CostEstimate.defaultInputShape`, or `inputShape`);
/// - an **experiment** config is parsed collecting every error the parser can see
///   (`ExperimentConfig.parseCollectingErrors`); then its space must resolve and load, its dataset
///   must load (or, for a tabular evaluator, its table must exist and have the named columns and
///   the space's architectures), sampled architectures must decode for the dataset's sample shape,
///   and at least one sampled architecture must meet the constraints (otherwise a warning with the
///   smallest params, FLOPs and latency seen).
public enum Validation {
    public struct Options: Sendable {
        /// Check the file as this kind (default: detected from its keys).
        public var kind: ValidationReport.Kind?
        /// Architectures sampled for the decoding and constraint checks.
        public var samples: Int = 100
        /// Input shape for space files (default: `CostEstimate.defaultInputShape` of the space's task).
        public var inputShape: FeatureShape?
        /// Architectures whose latency is estimated for a `max_latency_ms` check (the ones with the
        /// fewest FLOPs among those meeting the other constraints).
        public var latencyCandidates: Int = 5

        public init(kind: ValidationReport.Kind? = nil, samples: Int = 100, inputShape: FeatureShape? = nil) {
            self.kind = kind
            self.samples = samples
            self.inputShape = inputShape
        }
    }

    /// Files larger than this are refused unread (configs and spaces are a few kilobytes).
    public static let maximumFileSize = 4 << 20
    /// Flow collections (`[…]`, `{…}`) nested deeper than this are refused before parsing.
    public static let maximumNesting = 100

    static let spaceKeys: Set<String> = ["stages", "stem", "cell", "head", "activation"]
    static let experimentKeys: Set<String> = ["space", "dataset", "searcher", "budget", "training", "constraints", "evaluator",
                                              "executor", "seed", "workers", "threads", "output", "validation_split", "task_type"]

    /// Validates the file at `path`.
    public static func validate(path: String, options: Options = Options()) -> ValidationReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return failed(path, "no such file")
        }
        guard !isDirectory.boolValue else { return failed(path, "is a directory, expected a YAML file") }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maximumFileSize {
            return failed(path, "the file is \(size) bytes; a search space or experiment config is at most \(maximumFileSize) bytes")
        }
        guard let data = FileManager.default.contents(atPath: path) else { return failed(path, "cannot read the file (permissions?)") }
        return validate(data: data, file: path, options: options)
    }

    /// Validates file contents; `file` names it in diagnostics (and hints the kind by its folder).
    public static func validate(data: Data, file: String, options: Options = Options()) -> ValidationReport {
        var v = Validator(file: file, options: options)
        v.run(data)
        v.diagnostics.sort { ($0.line, $0.column) < ($1.line, $1.column) }
        return ValidationReport(file: file, kind: v.kind, diagnostics: v.diagnostics,
                                summary: v.diagnostics.contains { $0.severity == .error } ? "" : v.summary)
    }

    static func failed(_ file: String, _ message: String) -> ValidationReport {
        ValidationReport(file: file, kind: nil,
                         diagnostics: [ValidationDiagnostic(file: file, line: 1, column: 1, severity: .error, message: message)],
                         summary: "")
    }

    /// `12345` as is; huge counts as `≈1.23e45 (46 digits)`.
    static func formatCount(_ digits: String) -> String {
        guard digits.count > 15 else { return digits }
        let d = Array(digits)
        return "≈\(d[0]).\(String(d[1..<3]))e\(d.count - 1)"
    }

    static func formatNumber(_ x: Double) -> String {
        if x.isNaN { return "?" }
        if x == x.rounded(), abs(x) < 1e15 { return String(Int(x)) }
        return String(format: "%.4g", x)
    }
}

/// The state of one file's validation.
private struct Validator {
    let file: String
    let options: Validation.Options
    var kind: ValidationReport.Kind?
    var diagnostics = [ValidationDiagnostic]()
    var summary = ""
    var root: Node?

    init(file: String, options: Validation.Options) {
        self.file = file
        self.options = options
    }

    mutating func addError(_ line: Int, _ column: Int, _ message: String) {
        diagnostics.append(ValidationDiagnostic(file: file, line: line, column: column, severity: .error, message: message))
    }

    mutating func addWarning(_ line: Int, _ column: Int, _ message: String) {
        diagnostics.append(ValidationDiagnostic(file: file, line: line, column: column, severity: .warning, message: message))
    }

    mutating func addError(at path: [String], _ message: String) {
        let (l, c) = location(path)
        addError(l, c, message)
    }

    mutating func addWarning(at path: [String], _ message: String) {
        let (l, c) = location(path)
        addWarning(l, c, message)
    }

    /// The position of the value at `path` (keys of nested mappings); the deepest existing
    /// ancestor's when it is absent; 1:1 without a document.
    func location(_ path: [String]) -> (Int, Int) {
        guard var node = root else { return (1, 1) }
        var best = node.mark.map { ($0.line, $0.column) } ?? (1, 1)
        if path.isEmpty { return (1, 1) }
        for key in path {
            guard let mapping = node.mapping, let value = mapping.first(where: { $0.key.string == key })?.value else { break }
            node = value
            if let mark = value.mark { best = (mark.line, mark.column) }
        }
        return best
    }

    func has(_ path: [String]) -> Bool {
        guard var node = root else { return false }
        for key in path {
            guard let value = node.mapping?.first(where: { $0.key.string == key })?.value else { return false }
            node = value
        }
        return true
    }

    // MARK: Reading

    mutating func run(_ data: Data) {
        guard let text = readText(data) else { return }
        guard checkNesting(text) else { return }
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            let (line, column, message) = Validator.describe(e)
            addError(line, column, message)
            return
        } catch {
            addError(1, 1, "invalid YAML: \(error)")
            return
        }
        guard let root else {
            addError(1, 1, "the file is empty (no YAML document): expected a search space or an experiment config")
            return
        }
        guard let mapping = root.mapping else {
            let (l, c) = root.mark.map { ($0.line, $0.column) } ?? (1, 1)
            let got = root.sequence != nil ? "a list" : "the value '\(String((root.scalar?.string ?? "").prefix(40)))'"
            addError(l, c, "the document must be a mapping of keys to values (a search space or an experiment config), got \(got)")
            return
        }
        let keys = Set(mapping.compactMap { $0.key.string })
        if let given = options.kind {
            kind = given
        } else if !keys.isDisjoint(with: Validation.spaceKeys) && keys.isDisjoint(with: Validation.experimentKeys) {
            kind = .space
        } else if !keys.isDisjoint(with: Validation.experimentKeys) && keys.isDisjoint(with: Validation.spaceKeys) {
            kind = .experiment
        } else {
            let components = (file as NSString).pathComponents
            if components.contains("SearchSpaces") { kind = .space } else if components.contains("Experiments") { kind = .experiment }
        }
        switch kind {
        case .space?: validateSpace(text)
        case .experiment?: validateExperiment(text)
        case nil:
            addError(1, 1, "cannot tell whether this is a search space (keys such as 'stages', 'stem', 'head') or an experiment "
                + "config (keys such as 'space', 'dataset', 'searcher', 'budget'); pass --kind space or --kind experiment")
        }
    }

    /// The text, or `nil` after reporting why the bytes are not YAML text (invalid UTF-8, control characters).
    mutating func readText(_ data: Data) -> String? {
        var iterator = data.makeIterator()
        var decoder = UTF8()
        var line = 1, column = 1, offset = 0
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                let v = scalar.value
                let printable = v == 0x9 || v == 0xA || v == 0xD || (0x20...0x7E).contains(v) || v == 0x85
                    || (0xA0...0xD7FF).contains(v) || (0xE000...0xFFFD).contains(v) || (0x10000...0x10FFFF).contains(v)
                guard printable else {
                    addError(line, column, String(format: "not a text file: control character U+%04X at byte %d (a search space or experiment config is YAML text)", v, offset))
                    return nil
                }
                offset += UTF8.width(scalar)
                if v == 0xA { line += 1; column = 1 } else { column += 1 }
            case .emptyInput:
                break loop
            case .error:
                let byte = offset < data.count ? data[data.startIndex + offset] : 0
                addError(line, column, String(format: "not UTF-8 text: invalid byte 0x%02X at byte %d (a search space or experiment config is YAML text)", byte, offset))
                return nil
            }
        }
        if offset == 0 || String(decoding: data, as: UTF8.self).allSatisfy({ $0.isWhitespace }) {
            addError(1, 1, "the file is empty: expected a search space or an experiment config")
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Refuses flow collections nested deeper than `Validation.maximumNesting` (the YAML composer recurses).
    mutating func checkNesting(_ text: String) -> Bool {
        var depth = 0, line = 1, column = 0
        var inComment = false
        for ch in text.unicodeScalars {
            column += 1
            switch ch {
            case "\n": line += 1; column = 0; inComment = false
            case "#": inComment = true
            case "[" where !inComment, "{" where !inComment:
                depth += 1
                if depth > Validation.maximumNesting {
                    addError(line, column, "lists or mappings nested more than \(Validation.maximumNesting) levels deep")
                    return false
                }
            case "]" where !inComment, "}" where !inComment: depth = max(0, depth - 1)
            default: break
            }
        }
        var indentLine = 0
        for l in text.split(separator: "\n", omittingEmptySubsequences: false) {
            indentLine += 1
            let indent = l.prefix { $0 == " " || $0 == "-" }.count
            if indent > 4 * Validation.maximumNesting {
                addError(indentLine, 1, "indented more than \(4 * Validation.maximumNesting) columns (nesting too deep)")
                return false
            }
        }
        return true
    }

    static func describe(_ e: YamlError) -> (Int, Int, String) {
        switch e {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let text = context.map { "\($0.text) " } ?? ""
            return (mark.line, mark.column, "invalid YAML: \(text)\(problem)")
        case let .reader(problem, offset, _, yaml):
            var line = 1, column = 1
            if let offset {
                for ch in yaml.prefix(offset) { if ch == "\n" { line += 1; column = 1 } else { column += 1 } }
            }
            return (line, column, "invalid YAML: \(problem)")
        default:
            return (1, 1, "invalid YAML: \(e)")
        }
    }

    // MARK: Space files

    mutating func validateSpace(_ text: String) {
        let space: SearchSpace
        do {
            space = try SearchSpace.load(yaml: text, fileName: file)
        } catch let SpaceError.invalid(_, line, column, message) {
            addError(line, column, message)
            return
        } catch {
            addError(1, 1, "\(error)")
            return
        }
        let shape = options.inputShape ?? CostEstimate.defaultInputShape(for: space.task)
        let kind = CostEstimate.defaultInputKind(for: space.task)
        let decoded = decodeSamples(space, seed: 0, inputShape: shape, inputKind: kind, classCount: 10, at: [])
        let size = Validation.formatCount(space.size.description)
        var line = "\(file): valid search space '\(space.name)' (\(space.task)): \(size) architecture\(size == "1" ? "" : "s"), "
            + "\(space.decisions.count) decision\(space.decisions.count == 1 ? "" : "s")"
        if let minimum = decoded.map(\.params).min(), let maximum = decoded.map(\.params).max() {
            line += decoded.count == 1 ? "; decodes for \(shape), 10 classes (params \(minimum))"
                : "; \(decoded.count) sampled architectures decode for \(shape), 10 classes (params \(minimum)…\(maximum))"
        }
        summary = line
    }

    struct Sampled {
        var architecture: Architecture
        var text: String
        var graph: NetworkGraph
        var params: Int
        var flops: Int
    }

    /// Samples `options.samples` architectures (half uniform per decision, which favours small
    /// ones, half uniform over distinct architectures), decodes and costs them; reports an error
    /// when none decodes and a warning when some do not.
    mutating func decodeSamples(_ space: SearchSpace, seed: UInt64, inputShape: FeatureShape, inputKind: InputKind,
                                classCount: Int, at path: [String]) -> [Sampled] {
        var rng = SeededGenerator(seed: seed)
        var architectures = [Architecture]()
        var seen = Set<Architecture>()
        let wanted = max(1, options.samples)
        for i in 0..<wanted {
            let a = space.isFixed ? Architecture(choices: [])
                : (i % 2 == 0 ? space.canonical(space.sample(using: &rng)) : space.sampleUniformly(using: &rng))
            if seen.insert(a).inserted { architectures.append(a) }
        }
        var decoded = [Sampled]()
        var failures = [(String, String)]()
        for a in architectures {
            let text = space.text(of: a)
            do {
                let graph = try space.network(for: a, inputShape: inputShape, inputKind: inputKind, classCount: classCount)
                let cost = try graph.cost()
                decoded.append(Sampled(architecture: a, text: text, graph: graph, params: cost.parameters, flops: cost.flops))
            } catch {
                failures.append((text, "\(error)"))
            }
        }
        if decoded.isEmpty, let (text, reason) = failures.first {
            addError(at: path, "no sampled architecture of space '\(space.name)' decodes for input \(inputShape) "
                + "(\(failures.count) tried), e.g. '\(text)': \(reason)")
        } else if let (text, reason) = failures.first {
            addWarning(at: path, "\(failures.count) of \(architectures.count) sampled architectures of space '\(space.name)' do not decode "
                + "for input \(inputShape) (a search records them as failed), e.g. '\(text)': \(reason)")
        }
        return decoded
    }

    // MARK: Experiment configs

    mutating func validateExperiment(_ text: String) {
        let parsed = ExperimentConfig.parseCollectingErrors(yaml: text, file: file)
        for e in parsed.errors { addError(e.line, e.column, e.message) }
        guard let config = parsed.config else { return }
        let parseFailed = !parsed.errors.isEmpty

        // The space.
        let spacePath = has(["space"]) ? ["space"] : []
        let spaceName = has(["space"]) ? "'\(config.space)'" : "'\(config.space)' (the default)"
        var space: SearchSpace?
        do {
            space = try SpaceReference.resolve(config.space).space
        } catch let e as SpaceError {
            switch e {
            case let .notFound(_, searched):
                addError(at: spacePath, "no search space \(spaceName): not a file, nor a shipped space "
                    + "(\(SpaceListing.shippedNames.joined(separator: ", ")); looked in \(searched.joined(separator: ", ")))")
            default:
                addError(at: spacePath, "search space \(spaceName) does not load: \(e)")
            }
        } catch {
            addError(at: spacePath, "search space \(spaceName) does not load: \(error)")
        }
        if let space, let named = TaskKind(rawValue: config.taskType), named != space.task {
            addError(at: has(["task_type"]) ? ["task_type"] : spacePath,
                  "task_type \(config.taskType) does not match space \(spaceName), a \(space.task) space")
        }

        // The data: a dataset to train on, or a table to look results up in.
        var inputShape: FeatureShape?
        var inputKind = InputKind.image
        var classCount = 10
        var dataDescription = ""
        if config.evaluator.kind == "tabular" {
            if let table = config.evaluator.table {
                dataDescription = checkTable(table, config: config, space: space)
            }
            inputShape = FeatureShape(channels: 3, height: 32, width: 32)
        } else {
            let datasetPath = has(["dataset"]) ? ["dataset"] : []
            do {
                let data = try DatasetCache().dataset(config.dataset, validationSplit: config.validationSplit, seed: config.seed)
                let m = data.metadata
                if let space, !space.task.accepts(m.inputKind) {
                    let holds = TaskKind(inputKind: m.inputKind)
                    addError(at: datasetPath, "dataset '\(config.dataset)' holds \(holds.inputDescription), but space \(spaceName) is a "
                        + "\(space.task) space: use a \(holds) space")
                } else {
                    inputShape = m.sampleShape
                }
                inputKind = m.inputKind
                classCount = m.classCount
                dataDescription = "dataset \(config.dataset) (\(m.sampleShape), \(m.classCount) classes, "
                    + "\(data.train.count)/\(data.validation.count)/\(data.test.count) train/validation/test)"
            } catch {
                addError(at: datasetPath, "dataset '\(config.dataset)'\(has(["dataset"]) ? "" : " (the default)") does not load: \(error)")
            }
        }

        // Decoding and constraints.
        var feasibility = ""
        if let space, let inputShape {
            let decoded = decodeSamples(space, seed: config.seed, inputShape: inputShape, inputKind: inputKind,
                                        classCount: classCount, at: spacePath)
            if !config.constraints.isEmpty, !decoded.isEmpty {
                feasibility = checkConstraints(decoded, config: config)
            }
        }
        checkEnvironment(config)

        guard !parseFailed, let space else { return }
        let size = Validation.formatCount(space.size.description)
        var budget = "budget \(config.budget.candidates) candidates"
        if let w = config.budget.wallMinutes { budget += " or \(Validation.formatNumber(w)) min" }
        var training = config.evaluator.kind == "tabular" ? "table lookups" : "\(config.training.epochs) epochs each"
        if let schedule = try? config.scheduler?.schedule() {
            training = "\(schedule.kind.rawValue) over rungs of \(schedule.rungEpochs.map(String.init).joined(separator: "/")) epochs, eta \(schedule.eta)"
        }
        var searcher = "\(config.searcher.kind) searcher"
        if !config.searcher.proxies.isEmpty {
            searcher += " guided by \(config.searcher.proxies.joined(separator: "+")) (warm start \(config.searcher.warmStart)"
                + (config.searcher.prescreenQuantile.map { ", pre-screen below quantile \(Validation.formatNumber($0))" } ?? "") + ")"
        }
        summary = "\(file): valid experiment '\(config.name)': space \(config.space) (\(space.task), \(size) architectures), "
            + "\(dataDescription), \(budget) (\(training)), \(searcher)" + feasibility
    }

    /// Checks a tabular evaluator's table: the file, its columns, and that the space's architectures are its keys.
    mutating func checkTable(_ table: String, config: ExperimentConfig, space: SearchSpace?) -> String {
        let e = config.evaluator
        guard FileManager.default.fileExists(atPath: table) else {
            var message = "table '\(table)' not found (relative paths are read from the current directory, "
                + "\(FileManager.default.currentDirectoryPath))"
            if table.contains("nasbench201") { message += "; NAS-Bench-201 is expected in ../shared/benchmarks/nasbench201/" }
            addError(at: ["evaluator", "table"], message)
            return ""
        }
        let benchmark: TabularBenchmark
        do {
            benchmark = try TabularBenchmark(contentsOf: URL(fileURLWithPath: table), keyColumn: e.keyColumn, metricColumn: e.metricColumn)
        } catch let TabularBenchmarkError.missingColumn(_, column, available) {
            let key = column == e.keyColumn ? "key_column" : "metric_column"
            addError(at: has(["evaluator", key]) ? ["evaluator", key] : ["evaluator", "table"],
                  "table '\(table)' has no column '\(column)' (columns: \(available.joined(separator: ", ")))")
            return ""
        } catch {
            addError(at: ["evaluator", "table"], "table '\(table)' does not load: \(error)")
            return ""
        }
        if !e.reportColumns.isEmpty, let header = Validator.headerColumns(table) {
            for column in e.reportColumns where !header.contains(column) {
                addError(at: ["evaluator", "report_columns"], "table '\(table)' has no column '\(column)' (columns: \(header.joined(separator: ", ")))")
            }
        }
        if let space {
            var rng = SeededGenerator(seed: config.seed)
            let texts = (0..<max(1, min(options.samples, 50))).map { _ in space.text(of: space.sample(using: &rng)) }
            let missing = texts.filter { benchmark.lookup($0) == nil }
            if missing.count == texts.count {
                addError(at: has(["evaluator", "key_column"]) ? ["evaluator", "key_column"] : ["evaluator", "table"],
                      "none of \(texts.count) sampled architectures of space '\(space.name)' is a key of table '\(table)' "
                        + "(column '\(e.keyColumn)'), e.g. '\(texts[0])': every candidate would fail")
            } else if !missing.isEmpty {
                addWarning(at: ["evaluator", "table"], "\(missing.count) of \(texts.count) sampled architectures are not in table '\(table)' "
                    + "(e.g. '\(missing[0])'); a search records them as failed")
            }
        }
        return "table \((table as NSString).lastPathComponent) (\(benchmark.count) rows, metric \(e.metricColumn))"
    }

    static func headerColumns(_ path: String) -> [String]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let chunk = handle.readData(ofLength: 64 * 1024)
        guard let firstLine = String(decoding: chunk, as: UTF8.self).split(whereSeparator: \.isNewline).first else { return nil }
        return firstLine.split(separator: ",", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
    }

    /// Warns when no sampled architecture meets every constraint; returns the summary's feasibility note.
    mutating func checkConstraints(_ decoded: [Sampled], config: ExperimentConfig) -> String {
        let c = config.constraints
        func meetsCounts(_ s: Sampled) -> Bool {
            (c.maxParams.map { s.params <= $0 } ?? true) && (c.maxFlops.map { Double(s.flops) <= $0 } ?? true)
        }
        var feasible = decoded.filter(meetsCounts)
        var latencies = [(Sampled, Double)]()
        var latencyHow = ""
        if let maxLatency = c.maxLatencyMs {
            let pool = (feasible.isEmpty ? decoded : feasible).sorted { $0.flops < $1.flops }.prefix(max(1, options.latencyCandidates))
            let threads = config.executor.kind == "slurm" ? config.executor.cpusPerTask : max(1, config.threads / max(1, config.workers))
            var table: LatencyTable?
            if c.latency == "predicted" {
                let path = c.latencyTable
                if FileManager.default.fileExists(atPath: path) {
                    do {
                        if let loaded = try LatencyTable.load(path: path, threads: threads),
                           loaded.machine.isCompatible(with: LatencyMachine.current(threadCount: threads, batchSize: 1)) {
                            table = loaded
                        } else {
                            addWarning(at: has(["constraints", "latency_table"]) ? ["constraints", "latency_table"] : ["constraints"],
                                    "latency table '\(path)' was measured on another machine or thread count; the search starts a new "
                                        + "one (ops measured when first met)")
                        }
                    } catch {
                        addWarning(at: has(["constraints", "latency_table"]) ? ["constraints", "latency_table"] : ["constraints"],
                                "latency table '\(path)' cannot be read (\(error)); the search starts a new one")
                    }
                }
            }
            var predicted = 0, measured = 0
            for s in pool {
                if let table, let p = try? table.predict(s.graph) {
                    latencies.append((s, p.totalMilliseconds))
                    predicted += 1
                } else if let m = try? LatencyMeasurement.measure(s.graph, batchSize: 1, threads: threads, warmup: 1, repeats: 5) {
                    latencies.append((s, m.medianMilliseconds))
                    measured += 1
                }
            }
            latencyHow = predicted > 0 && measured == 0 ? "predicted" : (measured > 0 && predicted == 0 ? "measured" : "predicted/measured")
            feasible = feasible.filter { s in latencies.contains { $0.0.text == s.text && $0.1 <= maxLatency } }
        }
        if !feasible.isEmpty {
            guard c.maxLatencyMs != nil else {
                return ", constraints met by \(feasible.count) of \(decoded.count) sampled architectures"
            }
            let counted = c.maxParams != nil || c.maxFlops != nil
                ? "\(decoded.filter(meetsCounts).count) of \(decoded.count) sampled architectures meet max_params/max_flops, " : ""
            return ", constraints satisfiable: \(counted)\(feasible.count) of the \(latencies.count) with the fewest FLOPs "
                + "meet max_latency_ms (\(latencyHow))"
        }
        var seen = [String]()
        if let p = c.maxParams { seen.append("params \(decoded.map(\.params).min()!) (max_params \(p))") }
        if let f = c.maxFlops { seen.append("FLOPs \(decoded.map(\.flops).min()!) (max_flops \(Validation.formatNumber(f)))") }
        if let l = c.maxLatencyMs, let best = latencies.map(\.1).min() {
            seen.append(String(format: "latency %.4g ms %@ (max_latency_ms %g)", best, latencyHow, l))
        }
        addWarning(at: ["constraints"], "no sampled architecture meets the constraints (\(decoded.count) sampled); smallest seen: "
            + seen.joined(separator: ", ") + "; the search would reject every candidate and stop with 'no feasible architecture found'")
        return ", constraints met by none of \(decoded.count) sampled architectures"
    }

    /// Warnings about the machine the config would run on: the Slurm shared directory, an existing record.
    mutating func checkEnvironment(_ config: ExperimentConfig) {
        if config.executor.kind == "slurm", let dir = config.executor.sharedDirectory {
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory) || !isDirectory.boolValue {
                addWarning(at: ["executor", "shared_dir"], "shared_dir '\(dir)' is not a directory here (the coordinator must see it)")
            }
        }
        let record = config.outputPath
        if FileManager.default.fileExists(atPath: record) {
            addWarning(at: has(["output"]) ? ["output"] : ["name"], "record '\(record)' exists: `naslab search` refuses to replace it "
                + "without --overwrite (`naslab resume \(record)` continues it)")
        }
    }
}
