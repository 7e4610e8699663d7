import ArgumentParser
import Engine
import Foundation
import Lab
import NASCore

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Predict with a trained model file for every input of a file.",
        discussion: """
            --input: text models read a text file (one input per line) or a CSV with a 'text' column; \
            tabular models a CSV of numeric features with a header row (a 'label' column is ignored); \
            image models (classification, segmentation, detection) an HDF5 file with /x (N×C×H×W or \
            N×H×W, e.g. a dataset or scene file), raw values: the model applies its training normalisation.

            Classification output: one JSON line per input {"index", "predictions": [{"label", \
            "class_index", "score"}, …]} (softmax probabilities, descending), or CSV \
            index,rank,label,class_index,score.

            Segmentation models need --output FILE.h5: an HDF5 file with /masks (N×H×W class ids, \
            0 = background, 1 + k = class k; uint8 when they fit, else int32) and the root attribute \
            class_names (the object classes, as in datasets; class_count without names).

            Detection models: one JSON line per input {"index", "boxes": [[x1, y1, x2, y2], …], \
            "scores": […], "labels": […], "class_ids": […]}, best score first; boxes in input pixels \
            with x2/y2 exclusive; labels are the class names (the decimal class id when the model has \
            none), class_ids the 0-based classes. --score-threshold and --max-detections default to the \
            evaluation's CenterNet decoding (0.01, 100).

            --top-k and --format csv are for classification models; --score-threshold and \
            --max-detections for detection models.
            """)

    @Argument(help: "A model file (naslab train --save).") var model: String
    @Option(help: "The inputs (see above).") var input: String
    @Option(help: "Classification: classes per input, best first (more than the class count: all; default 1).") var topK: Int?
    @Option(name: [.short, .long], help: "Write here instead of standard output (segmentation: the HDF5 file of masks, required).")
    var output: String?
    @Option(help: "Classification: jsonl or csv (default jsonl); detection: jsonl.") var format: String?
    @Option(help: "Detection: smallest box score kept (0...1, default \(BatchPrediction.defaultScoreThreshold)).") var scoreThreshold: Float?
    @Option(help: "Detection: most boxes per input (default \(BatchPrediction.defaultMaxDetections)).") var maxDetections: Int?
    @Option(help: "Compute threads.") var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        if let topK { guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") } }
        if let format { guard BatchPrediction.Format(rawValue: format) != nil else { throw ValidationError("--format must be jsonl or csv") } }
        if let scoreThreshold {
            guard scoreThreshold >= 0, scoreThreshold <= 1 else { throw ValidationError("--score-threshold must be in 0...1") }
        }
        if let maxDetections { guard maxDetections >= 1 else { throw ValidationError("--max-detections must be at least 1") } }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    /// Refuses the flags that do not apply to a model of `task`.
    func checkFlags(for task: TaskKind) throws {
        var misplaced = [String]()
        if !task.isClassification, topK != nil { misplaced.append("--top-k") }
        if task == .segmentation, format != nil { misplaced.append("--format") }
        if task == .detection, format == "csv" { misplaced.append("--format csv") }
        if task != .detection {
            if scoreThreshold != nil { misplaced.append("--score-threshold") }
            if maxDetections != nil { misplaced.append("--max-detections") }
        }
        if let first = misplaced.first {
            let what: String
            switch task {
            case .segmentation: what = "it writes masks to an HDF5 file (--output FILE.h5)"
            case .detection: what = "it writes boxes as JSON lines"
            default: what = "--score-threshold and --max-detections are for detection models"
            }
            throw ValidationError("\(misplaced.count == 1 ? first : misplaced.joined(separator: ", ")) "
                + "\(misplaced.count == 1 ? "does" : "do") not apply to \(model), a \(task) model: \(what)")
        }
        if task == .segmentation {
            guard let output else {
                throw ValidationError("\(model) is a segmentation model: pass --output FILE.h5 for the predicted masks (N×H×W)")
            }
            let lower = output.lowercased()
            guard lower.hasSuffix(".h5") || lower.hasSuffix(".hdf5") else {
                throw ValidationError("--output '\(output)': a segmentation model writes an HDF5 file of masks; name it FILE.h5 or FILE.hdf5")
            }
        }
    }

    func run() throws {
        let trained = try reportingErrors { try TrainedModel.load(from: model) }
        try checkFlags(for: trained.task)
        try reportingErrors { try ComputeContext(threads: threads).run { try predict(trained) } }
    }

    private func predict(_ trained: TrainedModel) throws {
        let predictor = try ModelPredictor(model: trained)
        let text: String
        switch trained.task {
        case .segmentation:
            let masks = try BatchPrediction.predictMasks(predictor, inputPath: input)
            try BatchPrediction.writeMasks(masks, model: trained, to: output!)
            let plane = trained.inputShape.height * trained.inputShape.width
            FileHandle.standardError.write(Data("wrote \(output!): /masks \(masks.count / max(1, plane))×\(trained.inputShape.height)×\(trained.inputShape.width)\n".utf8))
            return
        case .detection:
            text = try BatchPrediction.render(try BatchPrediction.predictBoxes(
                predictor, inputPath: input, scoreThreshold: scoreThreshold ?? BatchPrediction.defaultScoreThreshold,
                maxDetections: maxDetections ?? BatchPrediction.defaultMaxDetections))
        default:
            let rows = try BatchPrediction.predict(predictor, inputPath: input, topK: topK ?? 1)
            text = try BatchPrediction.render(rows, format: BatchPrediction.Format(rawValue: format ?? "jsonl")!)
        }
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
