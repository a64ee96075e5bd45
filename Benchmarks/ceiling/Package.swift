// swift-tools-version:6.0
// The raw answerer of Benchmarks/ceiling/run.sh: a measurement tool, not part of ClusDB's package.
import PackageDescription

let package = Package(
    name: "RawAnswerer",
    dependencies: [.package(url: "https://github.com/apple/swift-nio", from: "2.101.3")],
    targets: [
        .executableTarget(
            name: "RawAnswerer",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")])
    ]
)
