// swift-tools-version: 6.0
import PackageDescription

// Module layout (dependencies flow one way):
//   CBLAS, CHDF5, CZlib        system libraries (OpenBLAS, HDF5 serial, zlib)
//   CKernels                   NASLab's direct-convolution kernels in C (AVX-512 / AVX2 / baseline, picked at run time)
//   NASCore                    seeded RNG, network IR (NetworkGraph), Architecture + ArchitectureSpace
//   Engine                     tensors, kernels on cblas_sgemm, autodiff, layers, optimizers, training loop
//   HDF5Kit                    a small Swift wrapper over the HDF5 C API
//   Datasets                   digits CSV, IDX (Fashion-MNIST), HDF5 arrays; splits and batches
//   Spaces                     YAML search spaces, architectures, decoding to NetworkGraph
//   Estimators                 params, MACs/FLOPs, measured and predicted latency
//   Search                     ask/tell searchers (random, regularized evolution), Pareto fronts
//   Records                    HDF5 experiment records, CSV/JSON export
//   Lab                        the runner: config → search → evaluation → records
//   ONNX                       ONNX export of trained models (swift-protobuf; generated onnx.pb.swift)
//   API                        the HTTP API (Hummingbird 2, GRDB/SQLite state)
//   naslab                     the command-line tool

let package = Package(
    name: "NASLab",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "naslab", targets: ["naslab"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Lab", targets: ["Lab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // MARK: - C libraries
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // NASLab's own SIMD kernels (direct convolution), one C definition compiled per instruction set.
        .target(name: "CKernels"),

        // MARK: - Core and engine
        .target(name: "NASCore"),
        .target(name: "Engine", dependencies: ["CBLAS", "CKernels", "NASCore"]),
        .target(name: "HDF5Kit", dependencies: ["CHDF5"]),
        .target(name: "Datasets", dependencies: ["CZlib", "HDF5Kit", "NASCore"],
                exclude: ["Resources/LICENSE-digits.txt"], resources: [.copy("Resources/digits.csv.gz")]),

        // MARK: - Search side
        .target(name: "Spaces", dependencies: ["NASCore", "Engine", .product(name: "Yams", package: "Yams")]),
        .target(name: "Estimators", dependencies: ["NASCore", "Engine", "HDF5Kit"]),
        .target(name: "Search", dependencies: ["NASCore"]),
        .target(name: "Records", dependencies: ["NASCore", "HDF5Kit"]),

        // MARK: - Apps
        .target(name: "Lab", dependencies: [
            "NASCore", "Engine", "Datasets", "Spaces", "Estimators", "Search", "Records", "HDF5Kit",
            .product(name: "Yams", package: "Yams"),
        ]),
        // ONNX export; Sources/ONNX/onnx.pb.swift is generated once from ONNX's onnx.proto and committed.
        .target(name: "ONNX", dependencies: [
            "Lab", "Engine", "NASCore", "Spaces", "Datasets", "Records", "HDF5Kit",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .target(name: "API", dependencies: [
            "Lab", "Engine", "Datasets", "NASCore", "Spaces", "Records", "ONNX",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "naslab", dependencies: [
            "Lab", "API", "ONNX", "Engine", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        .executableTarget(name: "naslab-bench", dependencies: [
            "Lab", "Engine", "NASCore", "Search", "Spaces", "Records", "Estimators",
        ], path: "Benchmarks/Sources/naslab-bench"),

        // MARK: - Tests
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "NASCoreTests", dependencies: ["NASCore"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CKernels", "NASCore", "HDF5Kit", "TestSupport"],
                    exclude: ["make_fixtures.py", "make_text_fixtures.py", "make_dense_fixtures.py"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HDF5KitTests", dependencies: ["HDF5Kit", "TestSupport"]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "TestSupport"]),
        .testTarget(name: "SpacesTests", dependencies: ["Spaces", "NASCore", "Engine", "Estimators"]),
        .testTarget(name: "EstimatorsTests", dependencies: ["Estimators", "Spaces", "NASCore", "Engine", "TestSupport"]),
        .testTarget(name: "SearchTests", dependencies: ["Search", "NASCore"]),
        .testTarget(name: "RecordsTests", dependencies: ["Records", "HDF5Kit", "NASCore", "TestSupport"]),
        .testTarget(name: "LabTests", dependencies: ["Lab", "naslab", "Datasets", "TestSupport", "Records", "Engine", "Spaces", "NASCore", "Search"]),
        .testTarget(name: "ONNXTests", dependencies: [
            "ONNX", "Lab", "naslab", "Engine", "NASCore", "Spaces", "Datasets", "Records", "TestSupport",
        ]),
        .testTarget(name: "APITests", dependencies: [
            "API", "TestSupport", "Lab", "Datasets", "Records",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ],
    swiftLanguageModes: [.v5]
)
