import Datasets
import Foundation
import NASCore
import TestSupport
import XCTest

/// An HDF5 image array stored channels-last (N×H×W×C) is refused with the fix, not trained as
/// C = H, H = W, W = C; channels-first arrays with a small last axis are not mistaken for it.
final class ChannelsLastTests: XCTestCase {
    func testChannelsLastHDF5ImagesAreRefusedWithTheTranspose() throws {
        let nhwc = temporaryPath("nhwc.h5")
        let rgb = temporaryPath("nhwc-rgb.h5")
        let nchw = temporaryPath("nchw-small-width.h5")
        try runPython("""
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], "w") as f:
            f["x"] = np.zeros((4, 28, 28, 1), dtype=np.float32)
            f["y"] = np.array([0, 1, 0, 1])
        with h5py.File(sys.argv[2], "w") as f:
            f["x"] = np.zeros((4, 32, 32, 3), dtype=np.uint8)
            f["y"] = np.array([0, 1, 0, 1])
        with h5py.File(sys.argv[3], "w") as f:
            f["x"] = np.zeros((4, 16, 1, 1), dtype=np.float32)
            f["y"] = np.array([0, 1, 0, 1])
        """, [nhwc, rgb, nchw])
        XCTAssertThrowsError(try Dataset.loadRaw(name: nhwc)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("/x has shape [4, 28, 28, 1], which looks channels-last"), text)
            XCTAssertTrue(text.contains("would train on 28 channels of 28×1"), text)
            XCTAssertTrue(text.contains("N×1×28×28") && text.contains("x.transpose(0, 3, 1, 2)"), text)
        }
        XCTAssertThrowsError(try Dataset.loadRaw(name: rgb)) { error in
            XCTAssertTrue("\(error)".contains("N×3×32×32"), "\(error)")
        }
        XCTAssertEqual(try Dataset.loadRaw(name: nchw).metadata.sampleShape, FeatureShape(channels: 16, height: 1, width: 1))
    }

    func testChannelsLastHeuristic() {
        XCTAssertTrue(FeatureShape.looksChannelsLast(28, 28, 1))
        XCTAssertTrue(FeatureShape.looksChannelsLast(32, 32, 3))
        XCTAssertFalse(FeatureShape.looksChannelsLast(1, 28, 28))
        XCTAssertFalse(FeatureShape.looksChannelsLast(16, 1, 1))
        XCTAssertFalse(FeatureShape.looksChannelsLast(24, 1, 128))
        XCTAssertFalse(FeatureShape.looksChannelsLast(3, 8, 8))
        XCTAssertEqual(FeatureShape(channels: 28, height: 28, width: 1).channelsFirstFromChannelsLast,
                       FeatureShape(channels: 1, height: 28, width: 28))
    }
}
