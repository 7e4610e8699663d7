import HDF5Kit
import TestSupport
import XCTest

final class HDF5KitTests: XCTestCase {
    func testNumericRoundTripAllTypesAndShapes() throws {
        let path = temporaryPath("numeric.h5")
        do {
            let file = try H5File.create(path: path)
            try file.write("f32", values: (0..<24).map { Float($0) * 0.5 }, shape: [2, 3, 4])
            try file.write("f64", values: [1.5, -2.25, .pi], shape: [3])
            try file.write("i32", values: [Int32.min, 0, Int32.max, 7], shape: [2, 2])
            try file.write("i64", values: [Int64.min, -1, Int64.max])
            try file.write("u8", values: [0, 128, 255] as [UInt8], shape: [3, 1])
            try file.write("scalar", values: [42.0], shape: [])
            try file.write("deep/nested/empty", values: [Float](), shape: [0, 5])
            try file.close()
        }
        let file = try H5File.open(path: path)
        let f32: HDF5Array<Float> = try file.read("f32")
        XCTAssertEqual(f32.shape, [2, 3, 4])
        XCTAssertEqual(f32.values, (0..<24).map { Float($0) * 0.5 })
        XCTAssertEqual(try file.read("f64", as: Double.self).values, [1.5, -2.25, .pi])
        XCTAssertEqual(try file.read("i32", as: Int32.self), HDF5Array(shape: [2, 2], values: [Int32.min, 0, Int32.max, 7]))
        XCTAssertEqual(try file.read("i64", as: Int64.self).values, [Int64.min, -1, Int64.max])
        XCTAssertEqual(try file.read("u8", as: UInt8.self), HDF5Array(shape: [3, 1], values: [0, 128, 255]))
        XCTAssertEqual(try file.read("scalar", as: Double.self), HDF5Array(shape: [], values: [42]))
        XCTAssertEqual(try file.read("deep/nested/empty", as: Float.self).shape, [0, 5])
        // Conversion between numeric types on read.
        XCTAssertEqual(try file.read("u8", as: Float.self).values, [0, 128, 255])
        XCTAssertEqual(try file.datasetInfo("u8").elementType, .integer(bytes: 1, signed: false))
        XCTAssertEqual(try file.datasetInfo("f32").elementType, .float(bytes: 4))
        XCTAssertEqual(try file.children(), ["deep", "f32", "f64", "i32", "i64", "scalar", "u8"])
        XCTAssertEqual(try file.kind(of: "deep/nested"), .group)
        XCTAssertTrue(file.exists("deep/nested/empty"))
        XCTAssertFalse(file.exists("deep/missing/empty"))
    }

    func testGroupsAttributesAndStrings() throws {
        let path = temporaryPath("groups.h5")
        let file = try H5File.create(path: path)
        let group = try file.createGroup("a/b")
        try group.setAttribute("name", "héllo wörld")
        try group.setAttribute("count", 12)
        try group.setAttribute("rate", 0.125)
        try group.setAttribute("labels", ["cat", "dog", ""])
        try group.setAttribute("count", 13) // replace
        try file.writeStrings("texts", ["alpha", "βeta", "", String(repeating: "x", count: 10_000)])
        try file.writeString("yaml", "a: 1\nb: [2, 3]\n")
        XCTAssertThrowsError(try file.createGroup("a/b"))
        try file.close()

        let reader = try H5File.open(path: path)
        let b = try reader.openGroup("a/b")
        XCTAssertEqual(try b.stringAttribute("name"), "héllo wörld")
        XCTAssertEqual(try b.intAttribute("count"), 13)
        XCTAssertEqual(try b.doubleAttribute("rate"), 0.125)
        XCTAssertEqual(try b.stringsAttribute("labels"), ["cat", "dog", ""])
        XCTAssertEqual(try b.attributeNames(), ["count", "labels", "name", "rate"])
        XCTAssertEqual(try reader.readStrings("texts"), ["alpha", "βeta", "", String(repeating: "x", count: 10_000)])
        XCTAssertEqual(try reader.readString("yaml"), "a: 1\nb: [2, 3]\n")
        XCTAssertThrowsError(try b.intAttribute("rate")) { error in
            XCTAssertTrue("\(error)".contains("float64"), "\(error)")
        }
        XCTAssertThrowsError(try b.stringAttribute("missing")) { error in
            XCTAssertEqual(error as? HDF5Error, .objectNotFound(path: path, object: "/a/b@missing"))
        }
    }

    func testTableAppendReopenAndRead() throws {
        let path = temporaryPath("table.h5")
        let columns = [HDF5Column("id", .int64), HDF5Column("name", .string(capacity: 8)),
                       HDF5Column("score", .float64), HDF5Column("small", .float32), HDF5Column("n", .int32)]
        do {
            let file = try H5File.create(path: path)
            let table = try file.createTable("runs/table", columns: columns, chunkRows: 4)
            for i in 0..<10 {
                try table.append([.int(Int64(i)), .string("r\(i)"), .double(Double(i) / 4), .double(0.5), .int(Int64(-i))])
                try table.flush()
            }
            XCTAssertThrowsError(try table.append([.int(1), .string("too long!"), .double(0), .double(0), .int(0)])) { error in
                XCTAssertTrue("\(error)".contains("capacity of 8 bytes"), "\(error)")
            }
            XCTAssertThrowsError(try table.append([.string("x"), .string("a"), .double(0), .double(0), .int(0)]))
            XCTAssertEqual(table.rowCount, 10)
        }
        do {
            let file = try H5File.open(path: path, mode: .readWrite)
            let table = try file.openTable("runs/table")
            XCTAssertEqual(table.columns, columns)
            XCTAssertEqual(table.rowCount, 10)
            try table.append(rows: [[.int(10), .string("ten"), .double(.nan), .double(1), .int(3)]])
        }
        let table = try H5File.open(path: path).openTable("runs/table")
        let rows = try table.readAll()
        XCTAssertEqual(rows.count, 11)
        XCTAssertEqual(rows[3], [.int(3), .string("r3"), .double(0.75), .double(0.5), .int(-3)])
        guard case let .double(nan) = rows[10][2] else { return XCTFail("expected double") }
        XCTAssertTrue(nan.isNaN)
        XCTAssertEqual(rows[10][1], .string("ten"))
    }

    func testTensorsRoundTripKeepsOrderAndNesting() throws {
        let path = temporaryPath("tensors.h5")
        let tensors: [NamedTensor] = [
            ("stem/conv/weight", [2, 1, 3, 3], (0..<18).map { Float($0) / 7 }),
            ("stem/conv/bias", [2], [0.5, -0.5]),
            ("head/weight", [3, 2], [1, 2, 3, 4, 5, 6]),
        ]
        do {
            let file = try H5File.create(path: path)
            try file.requireGroup("weights").writeTensors(tensors)
            XCTAssertThrowsError(try file.requireGroup("weights").writeTensors([("a/../b", [1], [1])]))
        }
        let back = try H5File.open(path: path).openGroup("weights").readTensors()
        XCTAssertEqual(back.map(\.name), tensors.map(\.name))
        for (a, b) in zip(back, tensors) {
            XCTAssertEqual(a.shape, b.shape)
            XCTAssertEqual(a.values, b.values)
        }
        // h5dump sees the nested layout.
        let dump = try runTool("/usr/bin/h5dump", ["-H", path])
        XCTAssertEqual(dump.status, 0, dump.output)
        XCTAssertTrue(dump.output.contains("GROUP \"stem\""), dump.output)
        XCTAssertTrue(dump.output.contains("DATASET \"weight\""), dump.output)
        XCTAssertTrue(dump.output.contains("H5T_IEEE_F32LE"), dump.output)
    }

    func testH5dumpReadsValues() throws {
        let path = temporaryPath("dump.h5")
        do {
            let file = try H5File.create(path: path)
            try file.write("m", values: [1, 2, 3, 4, 5, 6] as [Int32], shape: [2, 3])
            try file.setAttribute("note", "hello")
        }
        let result = try runTool("/usr/bin/h5dump", ["-d", "/m", "-y", "-w", "0", path])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("DATASPACE  SIMPLE { ( 2, 3 ) / ( 2, 3 ) }"), result.output)
        XCTAssertTrue(result.output.contains("1, 2, 3,") && result.output.contains("4, 5, 6"), result.output)
        let attribute = try runTool("/usr/bin/h5dump", ["-a", "/note", path])
        XCTAssertTrue(attribute.output.contains("\"hello\""), attribute.output)
    }

    func testH5pyReadsWhatWeWriteAndWeReadWhatH5pyWrites() throws {
        let ours = temporaryPath("ours.h5")
        do {
            let file = try H5File.create(path: ours)
            try file.write("x", values: [1, 2, 3, 4, 5, 6] as [Float], shape: [3, 2])
            try file.writeStrings("names", ["a", "βb"])
            try file.setAttribute("title", "run 1")
            try file.setAttribute("seed", 7)
            let table = try file.createTable("t", columns: [HDF5Column("id", .int64), HDF5Column("s", .string(capacity: 4))])
            try table.append(rows: [[.int(5), .string("ok")], [.int(6), .string("no")]])
            try file.requireGroup("w").writeTensors([("a/b", [2], [0.25, 0.5])])
        }
        try runPython("""
        import sys, h5py, numpy as np
        f = h5py.File(sys.argv[1], "r")
        assert f["x"].dtype == np.float32 and f["x"].shape == (3, 2), f["x"]
        assert f["x"][2, 1] == 6
        assert [s.decode() for s in f["names"][:]] == ["a", "βb"], f["names"][:]
        assert f.attrs["title"] == "run 1", f.attrs["title"]
        assert int(f.attrs["seed"]) == 7
        t = f["t"][:]
        assert list(t.dtype.names) == ["id", "s"], t.dtype
        assert list(t["id"]) == [5, 6] and list(t["s"]) == [b"ok", b"no"], t
        assert list(f["w/a/b"][:]) == [0.25, 0.5]
        """, [ours])

        let theirs = temporaryPath("theirs.h5")
        try runPython("""
        import sys, h5py, numpy as np
        f = h5py.File(sys.argv[1], "w")
        f["x"] = np.arange(12, dtype=np.float64).reshape(2, 2, 3)
        f["y"] = np.array([3, 1, 2], dtype=np.int16)
        f["s"] = np.array([b"abc", b"de"], dtype="S5")
        f["v"] = ["vlen", "strings"]
        f.attrs["class_names"] = ["zero", "one"]
        f.attrs["fixed"] = np.bytes_("fixed")
        f.close()
        """, [theirs])
        let file = try H5File.open(path: theirs)
        XCTAssertEqual(try file.read("x", as: Float.self), HDF5Array(shape: [2, 2, 3], values: (0..<12).map(Float.init)))
        XCTAssertEqual(try file.read("y", as: Int64.self).values, [3, 1, 2])
        XCTAssertEqual(try file.datasetInfo("y").elementType, .integer(bytes: 2, signed: true))
        XCTAssertEqual(try file.readStrings("s"), ["abc", "de"])
        XCTAssertEqual(try file.readStrings("v"), ["vlen", "strings"])
        XCTAssertEqual(try file.stringsAttribute("class_names"), ["zero", "one"])
        XCTAssertEqual(try file.stringAttribute("fixed"), "fixed")
    }

    func testBadFilesGiveClearErrors() throws {
        let missing = temporaryPath("does-not-exist.h5")
        XCTAssertThrowsError(try H5File.open(path: missing)) { error in
            XCTAssertEqual(error as? HDF5Error, .fileNotFound(path: missing))
            XCTAssertTrue("\(error)".contains(missing))
        }
        let text = temporaryPath("not-hdf5.h5")
        try "just text\n".write(toFile: text, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try H5File.open(path: text)) { error in
            XCTAssertEqual(error as? HDF5Error, .notHDF5(path: text))
            XCTAssertEqual("\(error)", "HDF5 file '\(text)': not an HDF5 file")
        }
        XCTAssertThrowsError(try H5File.create(path: "/nonexistent-dir/x.h5")) { error in
            XCTAssertTrue("\(error)".contains("/nonexistent-dir/x.h5"), "\(error)")
        }

        let path = temporaryPath("types.h5")
        let file = try H5File.create(path: path)
        try file.writeStrings("s", ["a"])
        try file.write("n", values: [1.0, 2.0])
        try file.createGroup("g")
        XCTAssertThrowsError(try file.read("s", as: Float.self)) { error in
            XCTAssertEqual(error as? HDF5Error, .typeMismatch(path: path, object: "/s", expected: "a number (float32)", found: "string (variable-length)"))
        }
        XCTAssertThrowsError(try file.readStrings("n")) { error in
            XCTAssertTrue("\(error)".contains("'/n' has element type float64, expected string"), "\(error)")
        }
        XCTAssertThrowsError(try file.read("g", as: Float.self)) { error in
            XCTAssertEqual(error as? HDF5Error, .wrongObjectKind(path: path, object: "/g", expected: "dataset", found: "group"))
        }
        XCTAssertThrowsError(try file.read("nope", as: Float.self)) { error in
            XCTAssertEqual(error as? HDF5Error, .objectNotFound(path: path, object: "/nope"))
        }
        XCTAssertThrowsError(try file.write("n", values: [1.0])) // exists, no overwrite
        try file.write("n", values: [3.0], overwrite: true)
        XCTAssertEqual(try file.read("n", as: Double.self).values, [3.0])
        XCTAssertThrowsError(try file.write("bad", values: [1, 2, 3] as [Float], shape: [2, 2])) { error in
            XCTAssertTrue("\(error)".contains("shape [2, 2] needs 4 values, got 3"), "\(error)")
        }
        try file.close()
        XCTAssertThrowsError(try file.write("after", values: [1.0])) { error in
            XCTAssertEqual(error as? HDF5Error, .fileClosed(path: path))
        }
        let readOnly = try H5File.open(path: path)
        XCTAssertThrowsError(try readOnly.write("x", values: [1.0])) { error in
            XCTAssertTrue("\(error)".contains(path), "\(error)")
        }
        XCTAssertTrue(HDF5Library.version.hasPrefix("1."))
    }

    func testConcurrentUseFromSeveralThreads() throws {
        let path = temporaryPath("threads.h5")
        let file = try H5File.create(path: path)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            try? file.write("d\(i)", values: [Float](repeating: Float(i), count: 1000), shape: [10, 100])
        }
        for i in 0..<8 {
            XCTAssertEqual(try file.read("d\(i)", as: Float.self).values, [Float](repeating: Float(i), count: 1000))
        }
    }

    func testNumberAttributesAndTableResize() throws {
        let path = temporaryPath("resize.h5")
        let file = try H5File.create(path: path)
        try file.setAttribute("seed", number: UInt64.max)
        try file.setAttribute("ratio", number: Float(0.5))
        XCTAssertEqual(try file.numberAttribute("seed", as: UInt64.self), UInt64.max)
        XCTAssertEqual(try file.numberAttribute("ratio", as: Double.self), 0.5)
        let table = try file.createTable("t", columns: [HDF5Column("v", .int64)])
        try table.append(rows: (0..<5).map { [.int($0)] })
        try table.resize(rowCount: 3)
        XCTAssertEqual(try table.readAll(), [[.int(0)], [.int(1)], [.int(2)]])
        try table.append([.int(9)])
        try file.close()
        XCTAssertEqual(try H5File.open(path: path).openTable("t").readAll().map { $0[0] }, [.int(0), .int(1), .int(2), .int(9)])
    }

    func testAtomicReplaceFilesChangeOnDiskOnlyAtAFlushAndHaveOneWriter() throws {
        let path = temporaryPath("atomic.h5")
        try? FileManager.default.removeItem(atPath: path)
        let columns = [HDF5Column("id", .int64), HDF5Column("s", .string(capacity: 8))]
        let file = try H5File.create(path: path, truncate: false, persistence: .atomicReplace)
        XCTAssertEqual(file.persistence, .atomicReplace)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "nothing on disk before the first flush")
        let table = try file.createTable("t", columns: columns, chunkRows: 4, compressionLevel: 4)
        try table.append([.int(0), .string("zero")])
        try file.flush()
        try table.append([.int(1), .string("one")])
        // A reader (ours, then h5py) sees the flushed state while the writer has the file open.
        XCTAssertEqual(try H5File.open(path: path).openTable("t").readAll().map { $0[0] }, [.int(0)])
        try runPython("""
        import sys, h5py
        assert list(h5py.File(sys.argv[1], "r")["t"][:]["id"]) == [0]
        """, [path])
        // A second writer is refused; so is replacing or re-creating the file.
        XCTAssertThrowsError(try H5File.open(path: path, mode: .readWrite, persistence: .atomicReplace)) { error in
            XCTAssertTrue("\(error)".contains("another process is writing it"), "\(error)")
        }
        XCTAssertThrowsError(try H5File.create(path: path, truncate: true, persistence: .atomicReplace)) { error in
            XCTAssertTrue("\(error)".contains("another process is writing it"), "\(error)")
        }
        XCTAssertThrowsError(try H5File.create(path: path, truncate: false, persistence: .atomicReplace)) { error in
            XCTAssertTrue("\(error)".contains("file already exists"), "\(error)")
        }
        try file.flush()
        XCTAssertEqual(try H5File.open(path: path).openTable("t").readAll().map { $0[0] }, [.int(0), .int(1)])
        try table.append([.int(2), .string("two")])
        table.close()
        try file.close()   // closing flushes and gives up the lock
        // What a writer killed during a flush leaves behind is removed by the next writer.
        let directory = (path as NSString).deletingLastPathComponent
        let abandoned = (directory as NSString).appendingPathComponent(".atomic.h5.99999.partial")
        XCTAssertTrue(FileManager.default.createFile(atPath: abandoned, contents: Data([1, 2, 3])))
        let again = try H5File.open(path: path, mode: .readWrite, persistence: .atomicReplace)
        let reopened = try again.openTable("t")
        XCTAssertEqual(try reopened.readAll(), [[.int(0), .string("zero")], [.int(1), .string("one")], [.int(2), .string("two")]])
        try reopened.append([.int(3), .string("three")])
        reopened.close()
        try again.close()
        XCTAssertEqual(try H5File.open(path: path).openTable("t").readAll().count, 4)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".partial") }, [],
                       "no temporary file is left behind")
    }
}
