import Datasets
import Foundation
import Lab
import TestSupport
import XCTest

final class TrainedModelTests: XCTestCase {
    func testSavedModelReloadsWithIdenticalPredictionsAndH5dumpReadsIt() throws {
        let dir = try CLI.scratch("model")
        let path = dir.appendingPathComponent("cnn.h5").path
        var o = TrainingRun.Options(space: CLI.repositoryRoot.appendingPathComponent("SearchSpaces/reference/cnn.yaml").path)
        o.training.epochs = 6
        o.threads = 1
        o.seed = 4
        o.progress = false
        o.saveWeights = path
        let metrics = try TrainingRun.run(o)
        XCTAssertEqual(metrics.status, "completed")

        let model = try TrainedModel.load(from: path)
        XCTAssertEqual(model.inputShape.description, "1x8x8")
        XCTAssertEqual(model.classCount, 10)
        let a = try ModelPredictor(model: model), b = try ModelPredictor(model: try TrainedModel.load(from: path))

        // Raw test images of the same split: the predictor normalises them itself.
        let raw = try Dataset.load(name: "digits", validationSplit: 0.1, normalize: false, seed: 4).test
        let n = raw.sampleShape.elementCount
        let inputs = (0..<raw.count).map { Array(raw.features[($0 * n)..<(($0 + 1) * n)]) }
        let pa = try a.predict(inputs, topK: 3), pb = try b.predict(inputs, topK: 3)
        XCTAssertEqual(pa, pb, "two loads of the file predict identically")
        let correct = zip(pa, raw.labels).filter { $0.0[0].classIndex == Int($0.1) }.count
        XCTAssertEqual(Double(correct) / Double(raw.count), try XCTUnwrap(metrics.test_accuracy), accuracy: 1e-9,
                       "the reloaded model has exactly the trained model's test accuracy")
        for p in pa[0] { XCTAssertTrue(p.score > 0 && p.score <= 1) }
        XCTAssertGreaterThanOrEqual(pa[0][0].score, pa[0][1].score)
        // Temperature flattens the distribution; the ranking stays.
        let hot = try a.predict([inputs[0]], topK: 10, temperature: 10)[0]
        XCTAssertEqual(hot[0].classIndex, pa[0][0].classIndex)
        XCTAssertLessThan(hot[0].score, pa[0][0].score)
        XCTAssertThrowsError(try a.predict([[1, 2, 3]]))

        let dump = Process()
        dump.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        dump.arguments = ["h5dump", "-H", path]
        let out = Pipe()
        dump.standardOutput = out
        try dump.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        dump.waitUntilExit()
        XCTAssertEqual(dump.terminationStatus, 0)
        XCTAssertTrue(text.contains("GROUP \"weights\""), text)
        XCTAssertTrue(text.contains("DATASET \"weight\""), text)
        XCTAssertTrue(text.contains("ATTRIBUTE \"architecture\""), text)
    }
}
