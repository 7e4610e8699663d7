import ArgumentParser
import Foundation
import Lab
import ONNX
import Spaces

/// `naslab export-onnx MODEL_FILE -o model.onnx [--opset N]`, or `RECORD.h5 [--candidate ID]`.
struct ExportONNXCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-onnx", abstract: "Export a trained model (or a record's candidate) as an ONNX model.",
        discussion: """
            The ONNX model takes the same raw inputs as `naslab predict` (the input standardisation is part \
            of the graph): input 'input', N×C×H×W float for image and tabular models (tabular: N×F×1×1), \
            N×K×L int64 token ids for text models (the tokenizer and its vocabulary are in metadata_props); \
            output 'logits', N×classes, before softmax (segmentation: N×(classes+1)×H×W per-pixel logits; \
            detection: N×(classes+4)×H/4×W/4 CenterNet maps). For an experiment record, the candidate's weights \
            are read from the record's weights directory (run.h5 → run.weights/candidate-ID.h5; a search \
            keeps its best candidate's). See docs/onnx.md.
            """)

    @Argument(help: "A model file (naslab train --save, candidate-ID.h5) or an experiment record (.h5).") var model: String
    @Option(name: [.short, .long], help: "The ONNX file to write.") var output: String
    @Option(help: "ONNX opset (\(ONNXExporter.supportedOpsets.lowerBound)–\(ONNXExporter.supportedOpsets.upperBound)).")
    var opset = ONNXExporter.defaultOpset
    @Option(help: "An experiment record's candidate id (default: the record's best).") var candidate: Int?

    func validate() throws {
        guard ONNXExporter.supportedOpsets.contains(opset) else {
            throw ValidationError("--opset must be between \(ONNXExporter.supportedOpsets.lowerBound) and \(ONNXExporter.supportedOpsets.upperBound), got \(opset)")
        }
        if let candidate { guard candidate >= 0 else { throw ValidationError("--candidate must be 0 or more, got \(candidate)") } }
    }

    func run() throws {
        try reportingErrors {
            let trained = try ONNXModelSource.load(path: model, candidate: candidate)
            let data = try trained.onnxData(opset: opset)
            try data.write(to: URL(fileURLWithPath: output), options: .atomic)
            let input: String
            switch trained.inputKind {
            case .tokens: input = "N×\(trained.inputShape.channels)×\(trained.inputShape.width) int64 token ids"
            case .image, .features:
                input = "N×\(trained.inputShape.channels)×\(trained.inputShape.height)×\(trained.inputShape.width) float"
            }
            let outputShape: String
            switch trained.task {
            case .segmentation: outputShape = "N×\(trained.classCount + 1)×\(trained.inputShape.height)×\(trained.inputShape.width)"
            case .detection:
                let s = SearchSpace.detectionStride
                outputShape = "N×\(trained.classCount + 4)×\(trained.inputShape.height / s)×\(trained.inputShape.width / s)"
            case .imageClassification, .textClassification, .tabularClassification: outputShape = "N×\(trained.classCount)"
            }
            print("wrote \(output) (\(data.count) bytes, opset \(opset)): \(trained.task), input 'input' \(input), output 'logits' \(outputShape)")
        }
    }
}
