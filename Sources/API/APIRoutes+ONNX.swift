import Foundation
import Hummingbird
import Lab
import ONNX

/// `GET /v1/models/{model_id}/onnx`: the model's current weights as an ONNX model.
extension APIRoutes {
    /// 200 `application/octet-stream` (an `.onnx` file; see docs/onnx.md); 400 for a bad `opset`;
    /// 404 for a model the caller's organisation cannot see; 409 while the model has no trained weights.
    func exportModelONNX(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let query = try query(request, allowed: ["opset"])
        var opset = ONNXExporter.defaultOpset
        if let text = query["opset"] {
            let range = ONNXExporter.supportedOpsets
            guard let value = Int(text), range.contains(value) else {
                throw APIError.invalidRequest("'opset' must be an integer between \(range.lowerBound) and \(range.upperBound); got '\(text)'",
                                              param: "opset")
            }
            opset = value
        }
        let model = try await model(request, context)
        guard let artifact = model.artifactPath, FileManager.default.fileExists(atPath: artifact) else {
            throw APIError.conflict("model '\(model.id)' has no trained weights (status \(model.status)); train it first")
        }
        // Loading and converting is CPU work: off the request's executor.
        let data: Data
        do {
            data = try await Task.detached(priority: .userInitiated) { () throws -> Data in
                try TrainedModel.load(from: artifact).onnxData(opset: opset)
            }.value
        } catch let error as ONNXExportError {
            throw APIError.server("model '\(model.id)': \(error)")
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.contentDisposition] = "attachment; filename=\"\(model.id).onnx\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
