import ArgumentParser
import Foundation
import Lab

/// `naslab draw`: an architecture as an SVG graph (ops, kernels, widths, output shapes; blocks and
/// cells as clusters). `naslab analyze --plot DIR` draws a record's best candidate the same way.
struct DrawCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "draw", abstract: "Draw an architecture of a space as an SVG graph.")

    @Option(help: "A search-space file or shipped name (e.g. small, reference/resnet18).") var space: String
    @Option(help: "The architecture's text form (omit for fixed spaces).") var arch: String?
    @Option(help: "Input shape CxHxW (default by the space's task, as for estimate).") var input: String?
    @Option(help: "Number of classes.") var classes = 10
    @Option(name: [.short, .long], help: "The SVG file to write.") var output: String

    func run() throws {
        try reportingErrors {
            let shape = try input.map { try FeatureShapeParser.parseChecked($0) }
            let svg = try ArchitectureDiagram.svg(space: space, architecture: arch, inputShape: shape, classCount: classes)
            try svg.write(toFile: output, atomically: true, encoding: .utf8)
            print("wrote \(output)")
        }
    }
}
