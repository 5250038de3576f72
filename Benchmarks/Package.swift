// swift-tools-version: 6.1
// Tessera's benchmark suite (package-benchmark). Run from this directory:
//   swift package --disable-sandbox benchmark            (all)
//   swift package --disable-sandbox benchmark --target Codecs   (also Geometry, Fusion, Registration, Reading)
// Release builds only; report ratios measured in one run (the machine is shared and noisy).
import PackageDescription

let package = Package(
  name: "TesseraBenchmarks",
  platforms: [.macOS(.v15)],
  dependencies: [
    .package(name: "Tessera", path: ".."),
    .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
  ],
  // One executable per suite, each under Benchmarks/<name>.
  targets: ["Codecs", "Geometry", "Fusion", "Registration", "Reading"].map { name in
    .executableTarget(
      name: name,
      dependencies: [
        .product(name: "Tessera", package: "Tessera"),
        .product(name: "Benchmark", package: "benchmark"),
      ],
      path: "Benchmarks/\(name)",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
  },
  swiftLanguageModes: [.v6]
)
