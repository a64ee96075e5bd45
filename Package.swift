// swift-tools-version:6.1
import PackageDescription

/// Settings every ClusDB target shares: Swift 6 language mode and explicit existentials.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// The replica and the simulator are optimized in debug builds too: `swift test` runs thousands of
/// simulated clusters, about five times faster so (preconditions stay on: -O keeps them).
let simulatedSettings: [SwiftSetting] = strictSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "ClusDB",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "clusdb", targets: ["clusdb"]),
        .library(name: "ClusAPI", targets: ["ClusAPI"]),
        // The C library: libclusapi.so with include/clusapi.h.
        .library(name: "clusapi", type: .dynamic, targets: ["clusapi"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Already in the graph through Hummingbird; named because the server's set-value handler
        // sits in its NIO pipeline.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
    ],
    targets: [
        // Vocabulary shared by client and server: keys, typed values, commands, errors, limits.
        .target(name: "ClusDBModel", swiftSettings: strictSettings),
        // The pure Raft replica: no I/O, no clock, no threads (docs/ARCHITECTURE.md "Consensus").
        .target(name: "ClusDBRaft", dependencies: ["ClusDBModel"], swiftSettings: simulatedSettings),
        // The processor's CRC-32C instruction, for ClusDBStore's CRC32C (see crc32c.c for why C).
        .target(name: "CClusDBCRC32C"),
        // Durable storage: quorum log segments, cluster checkpoints, the hive on SQLite.
        .target(
            name: "ClusDBStore",
            dependencies: [
                "ClusDBModel", "ClusDBRaft", "CClusDBCRC32C",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Backups: the directory layout of DESIGN §6, its manifest, verification, the stream
        // format, and restore into a stopped node's data directory.
        .target(
            name: "ClusDBBackup",
            dependencies: [
                "ClusDBModel", "ClusDBStore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // The driver: propose -> append + fsync -> commit -> apply -> answer.
        .target(
            name: "ClusDBNode",
            dependencies: [
                "ClusDBModel", "ClusDBRaft", "ClusDBStore", "ClusDBBackup",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The daemon: HTTP/JSON client API, lifecycle, data-directory lock.
        .target(name: "ClusDBPeer", dependencies: ["ClusDBModel", "ClusDBRaft", "ClusDBStore"], swiftSettings: strictSettings),
        .target(
            name: "ClusDBServer",
            dependencies: [
                "ClusDBModel", "ClusDBStore", "ClusDBNode", "ClusDBBackup", "ClusDBPeer", "ClusDBRaft",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The Swift client library. It never imports the node or server modules; restore acts on
        // the local data directory, so it uses the backup module.
        .target(name: "ClusAPI", dependencies: ["ClusDBModel", "ClusDBStore", "ClusDBBackup"], swiftSettings: strictSettings),
        // The C entry points of include/clusapi.h, over ClusAPI.
        .target(name: "clusapi", dependencies: ["ClusAPI", "ClusDBModel"], swiftSettings: strictSettings),
        .executableTarget(
            name: "clusdb",
            dependencies: [
                "ClusAPI", "ClusDBServer", "ClusDBModel", "ClusDBStore", "ClusDBBackup",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // The deterministic simulator (replicas over a faulty network with crashes, checkers) and
        // the linearizability checker for its client histories.
        .target(name: "ClusDBSimulation", dependencies: ["ClusDBRaft", "ClusDBModel", "ClusDBStore"], swiftSettings: simulatedSettings),
        // Runs the simulator from the command line: one seed's report, or a long sweep.
        .executableTarget(name: "clusdb-simulate", dependencies: ["ClusDBSimulation", "ClusDBRaft", "ClusDBModel"], swiftSettings: strictSettings),
        // Helpers the test targets share.
        .target(name: "ClusDBTestSupport", dependencies: ["ClusDBStore", "ClusDBModel", "ClusDBPeer", "ClusDBRaft"], path: "Tests/ClusDBTestSupport", swiftSettings: strictSettings),
        .testTarget(name: "ClusDBRaftTests", dependencies: ["ClusDBRaft", "ClusDBModel"], swiftSettings: strictSettings),
        .testTarget(name: "ClusDBPeerTests", dependencies: ["ClusDBTestSupport", "ClusDBPeer", "ClusDBRaft", "ClusDBModel", "ClusDBStore"], swiftSettings: strictSettings),
        .testTarget(name: "ClusDBModelTests", dependencies: ["ClusDBTestSupport", "ClusDBModel"], swiftSettings: strictSettings),
        .testTarget(
            name: "ClusDBStoreTests",
            dependencies: ["ClusDBTestSupport", "ClusDBStore", "ClusDBModel"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ClusDBBackupTests",
            dependencies: ["ClusDBTestSupport", "ClusDBBackup", "ClusDBStore", "ClusDBModel"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ClusDBNodeTests",
            dependencies: ["ClusDBTestSupport", "ClusDBNode", "ClusDBBackup", "ClusDBStore", "ClusDBRaft", "ClusDBModel"],
            // Files written by release 1 (Scripts/make-release1-fixture.sh), read by UpgradeTests.
            exclude: ["Fixtures"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ClusDBServerTests",
            dependencies: [
                "ClusDBServer", "ClusDBNode", "ClusDBModel", "ClusDBStore", "ClusAPI", "ClusDBTestSupport", "ClusDBPeer", "ClusDBRaft",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ClusDBSimulationTests", dependencies: ["ClusDBSimulation", "ClusDBRaft", "ClusDBModel", "ClusDBStore"], swiftSettings: strictSettings),
        .testTarget(
            name: "ClusDBProcessTests",
            dependencies: ["ClusDBTestSupport", "ClusAPI", "ClusDBModel", "clusdb"],
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
