import ArgumentParser
import Foundation
import Lab

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Check search-space files and experiment configs without running them.",
        discussion: """
            Each file is read as YAML, its kind detected from its keys (or --kind), then checked: a space \
            file loads and its sampled architectures decode for its task's default input; an experiment \
            config parses (every error the parser can see), its space and dataset (or tabular table) exist \
            and load, a sampled architecture decodes for the dataset's input shape, and at least one \
            sampled architecture meets the constraints (else a warning with the smallest params, FLOPs and \
            latency seen). Errors and warnings go to standard error as `file:line:column: message`; each \
            valid file gets a one-line summary on standard output. Exit status: 0 when every file is valid \
            (warnings allowed), 1 otherwise.
            """)

    @Argument(help: "Search-space files (SearchSpaces/*.yaml) and experiment configs (Experiments/*.yaml).")
    var files: [String] = []
    @Option(help: "Check every file as this kind: space or experiment (default: detected from its keys).")
    var kind: ValidationReport.Kind?
    @Option(help: "Architectures sampled per file for the decoding and constraint checks.") var samples = 100
    @Option(help: "Input shape CxHxW for space files (default by the space's task: 1x28x28 images, 24x1x128 text, 16 features).")
    var input: String?

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("pass one or more files to check") }
        guard (1...100_000).contains(samples) else { throw ValidationError("--samples must be in 1...100000, got \(samples)") }
    }

    func run() throws {
        try reportingErrors {
            var options = Validation.Options(kind: kind, samples: samples)
            if let input { options.inputShape = try FeatureShapeParser.parseChecked(input) }
            var invalid = 0
            for file in files {
                let report = Validation.validate(path: file, options: options)
                for d in report.diagnostics { FileHandle.standardError.write(Data("\(d)\n".utf8)) }
                if report.isValid {
                    print(report.summary)
                } else {
                    invalid += 1
                }
            }
            if invalid > 0 {
                FileHandle.standardError.write(Data("validate: \(invalid) of \(files.count) file(s) invalid\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}

extension ValidationReport.Kind: ExpressibleByArgument {}
