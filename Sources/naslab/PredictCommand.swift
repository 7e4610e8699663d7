import ArgumentParser
import Foundation
import Lab

struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Predict with a trained model file for every input of a file.",
        discussion: """
            --input: text models read a text file (one input per line) or a CSV with a 'text' column; \
            tabular models a CSV of numeric features with a header row (a 'label' column is ignored); \
            image models an HDF5 file with /x (N×C×H×W). Output: one JSON line per input \
            {"index", "predictions": [{"label", "class_index", "score"}, …]} (softmax probabilities, \
            descending), or CSV index,rank,label,class_index,score.
            """)

    @Argument(help: "A model file (naslab train --save).") var model: String
    @Option(help: "The inputs (see above).") var input: String
    @Option(help: "Classes per input, best first (more than the class count: all).") var topK = 1
    @Option(name: [.short, .long], help: "Write here instead of standard output.") var output: String?
    @Option(help: "jsonl or csv.") var format = "jsonl"
    @Option(help: "Compute threads.") var threads = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
        guard BatchPrediction.Format(rawValue: format) != nil else { throw ValidationError("--format must be jsonl or csv") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() throws {
        try reportingErrors {
            EngineSettings.setThreads(threads)
            let predictor = try ModelPredictor(model: try TrainedModel.load(from: model))
            let rows = try BatchPrediction.predict(predictor, inputPath: input, topK: topK)
            let text = try BatchPrediction.render(rows, format: BatchPrediction.Format(rawValue: format)!)
            if let output {
                try text.write(toFile: output, atomically: true, encoding: .utf8)
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
        }
    }
}
