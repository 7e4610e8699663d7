import Foundation
import NASCore
import Spaces
import XCTest

/// The repository root, found from this file's path (Tests/SpacesTests/TestSupport.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func loadSpace(_ name: String) throws -> SearchSpace {
    try SearchSpace.load(path: repositoryRoot.appendingPathComponent("SearchSpaces/\(name).yaml").path)
}

let shippedSpaceNames = ["small", "medium", "large", "nasbench201", "reference/cnn", "reference/resnet18", "reference/mobilenet_v2"]

let inputShapes: [(FeatureShape, Int)] = [
    (FeatureShape(channels: 1, height: 8, width: 8), 10),
    (FeatureShape(channels: 1, height: 28, width: 28), 10),
    (FeatureShape(channels: 3, height: 32, width: 32), 100),
]
