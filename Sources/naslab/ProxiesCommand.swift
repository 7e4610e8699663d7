import ArgumentParser
import Foundation
import Lab

struct ProxiesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxies", abstract: "Zero-cost proxies (synflow, naswot, jacov, snip, grad_norm, params, flops) of untrained architectures.",
        discussion: """
            synflow, params and flops need no data; naswot, jacov, snip and grad_norm use a seeded mini-batch of \
            --dataset's training split (left out without --dataset). The seed fixes --random's sample, the weights and \
            the mini-batch: the same seed gives the same numbers. Definitions: docs/zero-cost.md.
            """)

    @Option(help: "A search-space file or shipped name.") var space: String
    @Option(help: "An architecture's text form (repeatable).") var arch: [String] = []
    @Option(help: "Score N random architectures of the space.") var random: Int?
    @Option(help: "Seed of --random, the initial weights and the mini-batch.") var seed: UInt64 = 0
    @Option(help: "Input shape CxHxW (default: the dataset's, else by the space's task as in 'estimate').") var input: String?
    @Option(help: "Number of classes (default: the dataset's, else 10).") var classes: Int?
    @Option(help: "A dataset (digits, fashion-mnist, fashion-scenes, fortunes, a file) for the data-dependent proxies.") var dataset: String?
    @Option(help: "Mini-batch size of the data-dependent proxies.") var batchSize = 64
    @Option(help: "Token ids of text spaces without --dataset (default 120000).") var vocabulary: Int?
    @Option(help: "Comma-separated proxies to compute (default: all the inputs allow).") var proxies: String?
    @Flag(help: "One JSON object per line and architecture.") var json = false

    func validate() throws {
        try requireNonNegative(random, "--random")
        try requirePositive(classes, "--classes")
        try requirePositive(batchSize, "--batch-size")
        try requirePositive(vocabulary, "--vocabulary")
        if random == 0, arch.isEmpty { throw ValidationError("--random must be a positive integer when no --arch is given, got 0") }
        _ = try selectedProxies()
    }

    func selectedProxies() throws -> [ZeroCostProxy]? {
        guard let proxies else { return nil }
        return try proxies.split(separator: ",").map { name in
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let p = ZeroCostProxy(rawValue: trimmed) else {
                throw ValidationError("unknown proxy '\(trimmed)' in --proxies; known: \(ZeroCostProxy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return p
        }
    }

    func run() throws {
        try reportingErrors {
            var request = ZeroCostRequest(space: space)
            request.architectures = arch
            request.random = random
            request.seed = seed
            if let input { request.inputShape = try FeatureShapeParser.parseChecked(input) }
            request.classCount = classes
            request.dataset = dataset
            request.batchSize = batchSize
            request.vocabulary = vocabulary
            request.proxies = try selectedProxies()
            let encoder = CandidateJSON.encoder()
            var printedHeader = false
            try request.run { scores in
                if json {
                    print(String(decoding: try encoder.encode(scores), as: UTF8.self))
                    fflush(stdout)
                    return
                }
                let columns = ZeroCostProxy.allCases.filter { scores.values[$0] != nil }
                if !printedHeader {
                    print(columns.map { $0.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0) }.joined(separator: " ") + " architecture")
                    printedHeader = true
                }
                let cells = columns.map { p -> String in
                    let v = scores.values[p]!
                    let text = (p == .params || p == .flops) && v.isFinite ? String(Int(v)) : String(format: "%.4f", v)
                    return text.padding(toLength: 12, withPad: " ", startingAt: 0)
                }
                print(cells.joined(separator: " ") + " " + scores.architecture)
            }
        }
    }
}
