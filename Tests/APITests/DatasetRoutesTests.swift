import API
import Hummingbird
import Foundation
import XCTest

final class DatasetRoutesTests: XCTestCase {
    func testBuiltinsAreListedForEveryOrganisation() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try await harness.test { api in
            for caller in [APIClient.Caller.acme, .globex] {
                let list = try await api.send(.get, "/v1/datasets", as: caller)
                XCTAssertEqual(list.status, .ok)
                XCTAssertEqual(list.data.compactMap { $0["id"] as? String }, ["digits", "fashion-mnist", "fortunes", "fashion-scenes"])
            }
            let digits = try await api.send(.get, "/v1/datasets/digits")
            XCTAssertEqual(digits["source"] as? String, "builtin")
            XCTAssertEqual(digits["object"] as? String, "dataset")
            XCTAssertEqual(digits["labels"] as? [String], ["classes"])
            XCTAssertEqual(digits["tasks"] as? [String], ["image_classification"])
            let scenes = try await api.send(.get, "/v1/datasets/fashion-scenes")
            XCTAssertEqual(scenes["labels"] as? [String], ["classes", "masks", "boxes"], scenes.text)
            XCTAssertEqual(scenes["tasks"] as? [String], ["image_classification", "segmentation", "detection"])
        }
    }

    func testRegisterServerSideFileThenReadBackAndIsolate() async throws {
        let harness = try APITestHarness()
        defer { harness.removeFiles() }
        try FileManager.default.createDirectory(at: harness.importDirectory, withIntermediateDirectories: true)
        let csv = harness.importDirectory.appendingPathComponent("iris.csv")
        try Data("x1,x2,label\n0.5,1.0,0\n1.5,2.0,1\n".utf8).write(to: csv)
        let hdf5 = harness.importDirectory.appendingPathComponent("arrays.h5")
        try Data([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a] + [UInt8](repeating: 0, count: 64)).write(to: hdf5)
        let fakeHDF5 = harness.importDirectory.appendingPathComponent("fake.h5")
        try Data("not hdf5 at all".utf8).write(to: fakeHDF5)
        let outside = FileManager.default.temporaryDirectory.appendingPathComponent("outside-\(UUID().uuidString).csv")
        try Data("a,b\n".utf8).write(to: outside)
        defer { try? FileManager.default.removeItem(at: outside) }

        try await harness.test { api in
            let created = try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(csv.path)", "name": "iris"}"#)
            XCTAssertEqual(created.status, .ok, created.text)
            let id = try XCTUnwrap(created["id"] as? String)
            XCTAssertTrue(id.hasPrefix("ds_"))
            XCTAssertEqual(created["format"] as? String, "csv")
            XCTAssertEqual(created["size_bytes"] as? Int, 32)
            XCTAssertEqual(created["source"] as? String, "path")

            let fetched = try await api.send(.get, "/v1/datasets/\(id)")
            XCTAssertEqual(fetched["name"] as? String, "iris")
            let listed5 = try await api.send(.get, "/v1/datasets"); XCTAssertEqual(listed5.data.compactMap { $0["id"] as? String },
                           ["digits", "fashion-mnist", "fortunes", "fashion-scenes", id])
            // Registered without a workbench: the file is not loaded, so its labels are unknown.
            XCTAssertTrue(fetched["labels"] is NSNull, fetched.text)
            XCTAssertTrue(fetched["tasks"] is NSNull, fetched.text)
            assertError(try await api.send(.get, "/v1/datasets/\(id)", as: .globex), .notFound, type: "not_found_error")
            let listed6 = try await api.send(.get, "/v1/datasets", as: .globex); XCTAssertEqual(listed6.data.count, 4)

            let h5 = try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(hdf5.path)"}"#)
            XCTAssertEqual(h5["format"] as? String, "hdf5", h5.text)

            assertError(try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(fakeHDF5.path)"}"#),
                        .badRequest, type: "invalid_request_error", param: "path")
            assertError(try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(outside.path)"}"#),
                        .badRequest, type: "invalid_request_error", param: "path")
            let escape = harness.importDirectory.path + "/../naslab.sqlite"
            assertError(try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(escape)"}"#),
                        .badRequest, type: "invalid_request_error", param: "path")
            assertError(try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(harness.importDirectory.path)/missing.csv"}"#),
                        .badRequest, type: "invalid_request_error", param: "path")
            assertError(try await api.send(.post, "/v1/datasets", json: #"{"path": "relative.csv"}"#),
                        .badRequest, type: "invalid_request_error", param: "path")
            assertError(try await api.send(.post, "/v1/datasets", json: #"{"path": "\#(csv.path)", "colour": 1}"#),
                        .badRequest, type: "invalid_request_error", param: "colour")
            assertError(try await api.send(.post, "/v1/datasets", json: #"{"path": 42}"#),
                        .badRequest, type: "invalid_request_error", param: "path")
            assertError(try await api.send(.post, "/v1/datasets", json: #"{"name": "x"}"#),
                        .badRequest, type: "invalid_request_error", param: "path")
        }
    }

    func testUploadIsStoredByteForByteAndLimited() async throws {
        let harness = try APITestHarness(maxUploadBytes: 4096)
        defer { harness.removeFiles() }
        // An IDX label file: magic 0x00000801, 3 items.
        let idx: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]
        try await harness.test { api in
            let created = try await api.send(.post, "/v1/datasets?filename=t10k-labels-idx1-ubyte&name=labels", bytes: idx)
            XCTAssertEqual(created.status, .ok, created.text)
            XCTAssertEqual(created["format"] as? String, "idx")
            XCTAssertEqual(created["source"] as? String, "upload")
            XCTAssertEqual(created["size_bytes"] as? Int, idx.count)
            let id = try XCTUnwrap(created["id"] as? String)
            let stored = harness.dataDirectory.appendingPathComponent("datasets/\(id)/t10k-labels-idx1-ubyte")
            XCTAssertEqual([UInt8](try Data(contentsOf: stored)), idx)

            assertError(try await api.send(.post, "/v1/datasets?filename=big.csv", bytes: [UInt8](repeating: 65, count: 5000)),
                        .contentTooLarge, type: "request_too_large")
            assertError(try await api.send(.post, "/v1/datasets?filename=bad-idx1-ubyte", bytes: [1, 2, 3, 4, 5]),
                        .badRequest, type: "invalid_request_error", param: "filename")
            assertError(try await api.send(.post, "/v1/datasets?filename=data.bin", bytes: [1, 2, 3]),
                        .badRequest, type: "invalid_request_error", param: "filename")
            assertError(try await api.send(.post, "/v1/datasets?filename=../escape.csv", bytes: Array("a,b\n".utf8)),
                        .badRequest, type: "invalid_request_error", param: "filename")
            assertError(try await api.send(.post, "/v1/datasets", bytes: Array("a,b\n".utf8)),
                        .badRequest, type: "invalid_request_error", param: "filename")
            assertError(try await api.send(.post, "/v1/datasets?filename=a.csv", bytes: Array("a,b\n".utf8), contentType: "text/plain"),
                        .unsupportedMediaType, type: "invalid_request_error")
            // Failed uploads leave nothing behind.
            let folders = try FileManager.default.contentsOfDirectory(atPath: harness.dataDirectory.appendingPathComponent("datasets").path)
            XCTAssertEqual(folders, [id])
        }
    }
}
