import Foundation
import Hummingbird

/// Dataset registration: a server-side file inside an import root (JSON body) or an upload (raw body).
///
/// Content is checked by its signature (HDF5 superblock signature, IDX magic number, gzip magic,
/// CSV as NUL-free UTF-8 text); with a workbench (as in `naslab serve`) HDF5 files are also loaded
/// by the Datasets module (`Dataset.loadRaw(name:)`), so a file that registers is one training and
/// searches can read.
extension APIRoutes {
    func listDatasets(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        _ = try query(request, allowed: [])
        let own = try await store.datasets(organization: organization)
        let items = (DatasetRecord.builtins + own).map(\.json)
        return json(listJSON(items, hasMore: false))
    }

    func getDataset(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let id = try context.parameters.require("dataset_id")
        return json(try await dataset(id, organization: try context.requireOrganization(), param: "dataset_id").json)
    }

    func createDataset(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        let organization = try context.requireOrganization()
        let contentType = request.headers[.contentType]?.lowercased() ?? "application/json"
        let record: DatasetRecord
        if contentType.hasPrefix("application/json") {
            _ = try query(request, allowed: [])
            record = try await registerServerFile(request, organization: organization)
        } else if contentType.hasPrefix("application/octet-stream") {
            record = try await storeUpload(request, organization: organization)
        } else {
            throw APIError(status: .unsupportedMediaType, type: "invalid_request_error",
                           message: "Content-Type must be application/json (register a server-side path) or application/octet-stream (upload a file)")
        }
        try await store.insertDataset(record)
        return json(record.json)
    }

    private func registerServerFile(_ request: Request, organization: String) async throws -> DatasetRecord {
        let body = try JSONObjectReader(try await body(request), allowed: ["path", "name", "format"])
        let path = try body.require("path") { try body.string($0) }
        let format = try body.string("format", allowed: DatasetFormat.allCases.map(\.rawValue)).flatMap(DatasetFormat.init(rawValue:))
        guard path.hasPrefix("/") else { throw APIError.invalidRequest("'path' must be absolute; got '\(path)'", param: "path") }
        let file = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        let roots = settings.datasetImportRoots.map { $0.standardizedFileURL.resolvingSymlinksInPath().path }
        guard roots.contains(where: { file.path.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
            throw APIError.invalidRequest(
                "'path' must be inside an import directory of this server (\(roots.joined(separator: ", ")))", param: "path")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory), !isDirectory.boolValue,
              FileManager.default.isReadableFile(atPath: file.path) else {
            throw APIError.invalidRequest("no readable file at '\(path)'", param: "path")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.int64Value ?? 0
        let checked = try DatasetFormat.check(file: file, declared: format, param: "path")
        let labels = try await loadable(file: file, format: checked, param: "path")
        return DatasetRecord(id: Identifier.make("ds_"), organization: organization,
                             name: try body.string("name", maxLength: 200) ?? file.lastPathComponent,
                             format: checked.rawValue, source: "path", path: file.path, sizeBytes: size,
                             createdAt: APIStore.now(), labels: labels)
    }

    /// With a workbench, loads an HDF5 or (uncompressed) CSV file with the Datasets module; a file
    /// it cannot read is a 400 (CSV errors name the line and column). Returns the file's labels
    /// when it was loaded (`nil`: not known).
    private func loadable(file: URL, format: DatasetFormat, param: String) async throws -> DatasetLabels? {
        guard settings.workbench != nil,
              format == .hdf5 || (format == .csv && file.pathExtension.lowercased() == "csv") else { return nil }
        do {
            return try await LabWorkbench.checkDatasetLoads(path: file.path)
        } catch {
            throw APIError.invalidRequest("'\(file.lastPathComponent)' cannot be loaded as a dataset: \(error)", param: param)
        }
    }

    private func storeUpload(_ request: Request, organization: String) async throws -> DatasetRecord {
        let query = try query(request, allowed: ["filename", "name", "format"])
        guard let filename = query["filename"], !filename.isEmpty else {
            throw APIError.invalidRequest("missing query parameter 'filename' (its extension gives the format)", param: "filename")
        }
        guard !filename.contains("/"), filename != ".", filename != "..", filename.count <= 200 else {
            throw APIError.invalidRequest("'filename' must be a plain file name", param: "filename")
        }
        var format: DatasetFormat?
        if let text = query["format"] {
            guard let value = DatasetFormat(rawValue: text) else {
                throw APIError.invalidRequest("'format' must be one of csv, idx, hdf5; got '\(text)'", param: "format")
            }
            format = value
        }
        let limit = settings.maxUploadBytes
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > Int64(limit) {
            throw APIError.tooLarge(limit: limit)
        }
        let id = Identifier.make("ds_")
        let directory = store.dataDirectory.appendingPathComponent("datasets").appendingPathComponent(id)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent(filename)
        do {
            guard FileManager.default.createFile(atPath: file.path, contents: nil) else {
                throw APIError.server("cannot write the upload")
            }
            let handle = try FileHandle(forWritingTo: file)
            defer { try? handle.close() }
            var size = 0
            for try await buffer in request.body {
                size += buffer.readableBytes
                if size > limit { throw APIError.tooLarge(limit: limit) }
                try handle.write(contentsOf: Data(buffer.readableBytesView))
            }
            guard size > 0 else { throw APIError.invalidRequest("the upload is empty") }
            let checked = try DatasetFormat.check(file: file, declared: format, param: "filename")
            let labels = try await loadable(file: file, format: checked, param: "filename")
            return DatasetRecord(id: id, organization: organization, name: query["name"] ?? filename,
                                 format: checked.rawValue, source: "upload", path: file.path, sizeBytes: Int64(size),
                                 createdAt: APIStore.now(), labels: labels)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }
}

/// The dataset file formats the API accepts.
enum DatasetFormat: String, CaseIterable {
    case csv, idx, hdf5

    /// The format a file name implies (`.csv`, `.csv.gz`, `.idx`, `*-ubyte`, `*-ubyte.gz`, `.h5`, `.hdf5`).
    static func infer(from name: String) -> DatasetFormat? {
        var name = name.lowercased()
        if name.hasSuffix(".gz") { name.removeLast(3) }
        if name.hasSuffix(".csv") { return .csv }
        if name.hasSuffix(".idx") || name.hasSuffix("-ubyte") || name.range(of: #"\.idx\d-ubyte$"#, options: .regularExpression) != nil {
            return .idx
        }
        if name.hasSuffix(".h5") || name.hasSuffix(".hdf5") { return .hdf5 }
        return nil
    }

    /// Checks that the file's first bytes match its format; returns the format.
    static func check(file: URL, declared: DatasetFormat?, param: String) throws -> DatasetFormat {
        guard let format = declared ?? infer(from: file.lastPathComponent) else {
            throw APIError.invalidRequest(
                "cannot tell the format of '\(file.lastPathComponent)': use .csv, .idx / *-ubyte, .h5 / .hdf5 (optionally .gz for csv/idx) or give 'format'",
                param: param)
        }
        guard let handle = try? FileHandle(forReadingFrom: file) else {
            throw APIError.invalidRequest("cannot read '\(file.lastPathComponent)'", param: param)
        }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 4096)) ?? Data())
        let compressed = head.count >= 2 && head[0] == 0x1f && head[1] == 0x8b
        func refuse(_ why: String) -> APIError {
            .invalidRequest("'\(file.lastPathComponent)' is not a valid \(format.rawValue) file: \(why)", param: param)
        }
        switch format {
        case .hdf5:
            let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]
            guard head.starts(with: signature) else { throw refuse("missing the HDF5 signature") }
        case .idx:
            if compressed { break }
            guard head.count >= 4, head[0] == 0, head[1] == 0, [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e].contains(head[2]),
                  (1...4).contains(head[3]) else {
                throw refuse("missing the IDX magic number (0x00 0x00 <type> <dimensions>)")
            }
            guard head.count >= 4 + 4 * Int(head[3]) else { throw refuse("truncated header") }
        case .csv:
            if compressed { break }
            guard !head.contains(0) else { throw refuse("binary content") }
            var text = head
            while let last = text.last, last & 0xC0 == 0x80 { text.removeLast() }   // a cut multi-byte character
            if let last = text.last, last >= 0xC0 { text.removeLast() }
            guard String(validating: text, as: UTF8.self) != nil else { throw refuse("not UTF-8 text") }
        }
        return format
    }
}
