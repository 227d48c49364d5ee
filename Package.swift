// swift-tools-version: 6.1
//
// SMMUSim — a cycle-approximate emulator of an Arm SMMUv3 system.
// Layering (dependencies point down only), see the DocC catalogs and README:
//
//   smmusim (thin executable) → SMMUSimCommands (CLI as a library)
//   SimSystem (a whole system from a YAML/JSON configuration: memory, SMMUs, endpoints, devices)
//   Endpoint (PCIe link and endpoint: ATS/ATC, PRI, the DMA data path)
//   DevicePlatform (accelerator: RV64 core + SRAM, DMA channels, queues, boot loop)
//   RVCore (RV64IMAC interpreter) · ELFImage (libelf loader, over CLibELF)
//   SMMU (the SMMUv3 model: registers, queues, walker, caches)
//   SMMUArch (SMMUv3 encodings: registers, STE, CD, commands, events — pure values)
//   GuestKernel (Linux-like guest: CPUs, threads, locks, RCU/SRCU, kmalloc lifetimes)
//   Memory (sparse physical memory, DRAM timing, device-local SRAM)
//   SimKernel (time, events, deterministic executor, statistics, trace)
import PackageDescription

let package = Package(
    name: "SMMUSim",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "smmusim", targets: ["smmusim"]),
        .library(name: "SMMUSimCommands", targets: ["SMMUSimCommands"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .target(
            name: "SimKernel",
            dependencies: [
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(name: "Memory", dependencies: ["SimKernel"]),
        .systemLibrary(
            name: "CLibELF",
            pkgConfig: "libelf",
            providers: [.apt(["libelf-dev"])]
        ),
        .target(name: "ELFImage", dependencies: ["CLibELF"]),
        .target(name: "RVCore", dependencies: ["Memory"]),
        .target(name: "SMMUArch"),
        .target(name: "GuestKernel", dependencies: ["SimKernel", "Memory"]),
        .target(name: "SMMU", dependencies: ["SMMUArch", "SimKernel", "Memory"]),
        .target(name: "DevicePlatform", dependencies: ["SimKernel", "Memory", "RVCore", "ELFImage"]),
        .target(name: "Endpoint", dependencies: ["SMMU", "SMMUArch", "SimKernel", "Memory", "DevicePlatform"]),
        .target(
            name: "SimSystem",
            dependencies: [
                "SimKernel", "Memory", "SMMUArch", "SMMU", "Endpoint", "DevicePlatform", "ELFImage",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "SMMUSimCommands",
            dependencies: [
                "DevicePlatform", "SimKernel", "SMMUArch", "SMMU", "Memory", "SimSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "smmusim", dependencies: ["SMMUSimCommands"]),

        .testTarget(name: "SimKernelTests", dependencies: ["SimKernel"]),
        .testTarget(name: "MemoryTests", dependencies: ["Memory", "SimKernel"]),
        .testTarget(name: "ELFImageTests", dependencies: ["ELFImage"]),
        .testTarget(name: "RVCoreTests", dependencies: ["RVCore", "Memory"]),
        .testTarget(name: "DevicePlatformTests", dependencies: ["DevicePlatform", "ELFImage", "RVCore", "SimKernel"]),
        .testTarget(name: "SMMUArchTests", dependencies: ["SMMUArch"]),
        // Table builders shared by the SMMU and endpoint tests.
        .target(name: "SMMUTestSupport", dependencies: ["Memory", "SMMUArch"], path: "Tests/SMMUTestSupport"),
        .testTarget(name: "SMMUTests", dependencies: ["SMMU", "SMMUArch", "SimKernel", "Memory", "SMMUTestSupport"]),
        .testTarget(name: "SimSystemTests", dependencies: ["SimSystem", "Endpoint", "DevicePlatform", "SMMU", "SMMUArch", "SimKernel", "Memory"]),
        .testTarget(name: "EndpointTests", dependencies: ["Endpoint", "SMMU", "SMMUArch", "SimKernel", "Memory", "DevicePlatform",
                                                         "SMMUTestSupport"]),
        .testTarget(name: "GuestKernelTests", dependencies: ["GuestKernel", "SimKernel", "Memory"]),
        .testTarget(name: "SMMUSimCommandsTests", dependencies: ["SMMUSimCommands", "SMMUArch", "smmusim"]),
    ]
)
