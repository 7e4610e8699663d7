import CZlib
import Foundation

/// Gzip decompression with zlib (no external processes).
public enum Gzip {
    /// Whether `data` starts with the gzip magic bytes 1f 8b.
    public static func isGzip(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// Decompresses a gzip (or zlib) stream; concatenated gzip members are joined.
    /// - Parameters:
    ///   - data: the compressed bytes.
    ///   - path: the file name used in errors.
    /// - Throws: ``DatasetError/gzip(path:detail:)`` for corrupt or truncated input.
    public static func decompress(_ data: Data, path: String) throws -> Data {
        var output = Data()
        output.reserveCapacity(data.count * 4)
        var stream = z_stream()
        // windowBits 15 + 32: detect gzip or zlib headers automatically.
        var status = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw DatasetError.gzip(path: path, detail: "inflateInit2 failed (\(status))") }
        defer { inflateEnd(&stream) }
        let chunkSize = 1 << 20
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            guard let base = input.bindMemory(to: Bytef.self).baseAddress, !input.isEmpty else {
                throw DatasetError.gzip(path: path, detail: "empty file")
            }
            stream.next_in = UnsafeMutablePointer(mutating: base)
            stream.avail_in = uInt(input.count)
            while true {
                let produced: Int = chunk.withUnsafeMutableBufferPointer { buffer in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(chunkSize)
                    status = inflate(&stream, Z_NO_FLUSH)
                    return chunkSize - Int(stream.avail_out)
                }
                output.append(contentsOf: chunk[0..<produced])
                switch status {
                case Z_OK:
                    if stream.avail_in == 0 && produced == 0 {
                        throw DatasetError.gzip(path: path, detail: "truncated stream (unexpected end of file after \(output.count) decompressed bytes)")
                    }
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 {
                        throw DatasetError.gzip(path: path, detail: "truncated stream (unexpected end of file after \(output.count) decompressed bytes)")
                    }
                case Z_STREAM_END:
                    // Another gzip member may follow.
                    if stream.avail_in == 0 { return }
                    if inflateReset(&stream) != Z_OK { throw DatasetError.gzip(path: path, detail: "cannot reset stream") }
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw DatasetError.gzip(path: path, detail: "corrupt data: \(message)")
                }
            }
        }
        return output
    }

    /// Reads a file, decompressing it if it is gzip.
    public static func readFile(_ path: String) throws -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw DatasetError.fileNotFound(path: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError.malformed(path: path, detail: "cannot read file")
        }
        return isGzip(data) ? try decompress(data, path: path) : data
    }
}
