// swift-tools-version: 6.1
// Tessera: N-dimensional tile registration and out-of-core fusion into OME-Zarr.
import PackageDescription

let package = Package(
  name: "Tessera",
  platforms: [.macOS(.v15)],
  products: [
    .library(name: "Tessera", targets: ["Tessera"]),
    .executable(name: "tessera", targets: ["tessera"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2")
  ],
  targets: [
    // C libraries from Debian packages. Each is imported by exactly one Swift module.
    .systemLibrary(
      name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5-serial",
      providers: [.apt(["libhdf5-dev"])]),
    .systemLibrary(
      name: "CFFTW", path: "Sources/CFFTW", pkgConfig: "fftw3f",
      providers: [.apt(["libfftw3-dev"])]),
    .systemLibrary(
      name: "CZstd", path: "Sources/CZstd", pkgConfig: "libzstd",
      providers: [.apt(["libzstd-dev"])]),
    .systemLibrary(
      name: "CBlosc", path: "Sources/CBlosc", pkgConfig: "blosc",
      providers: [.apt(["libblosc-dev"])]),
    .systemLibrary(
      name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
      providers: [.apt(["zlib1g-dev"])]),
    // glibc's mallopt (malloc.h), for the command line's allocator tuning.
    .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
    .systemLibrary(
      name: "CDeflate", path: "Sources/CDeflate", pkgConfig: "libdeflate",
      providers: [.apt(["libdeflate-dev"])]),
    .systemLibrary(
      name: "CIsal", path: "Sources/CIsal", pkgConfig: "libisal",
      providers: [.apt(["libisal-dev"])]),
    .systemLibrary(
      name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
      providers: [.apt(["libpng-dev"])]),

    // Geometry and typed N-D buffers: pure Swift, no dependencies.
    .target(name: "TesseraCore"),
    // File formats: HDF5 (the only importer of CHDF5), codecs (zstd, blosc, zlib, libdeflate, ISA-L), PNG.
    .target(
      name: "TesseraIO",
      dependencies: ["TesseraCore", "CHDF5", "CZstd", "CBlosc", "CZlib", "CDeflate", "CIsal", "CPNG"]),
    // FFT plans and registration (the only importer of CFFTW).
    .target(name: "TesseraRegistration", dependencies: ["TesseraCore", "CFFTW"]),
    // Resampling, blending, fusion plans.
    .target(name: "TesseraFusion", dependencies: ["TesseraCore"]),
    // The library product: formats meet algorithms here.
    .target(
      name: "Tessera",
      dependencies: ["TesseraCore", "TesseraIO", "TesseraRegistration", "TesseraFusion"]),
    .executableTarget(
      name: "tessera",
      dependencies: [
        "Tessera", "CMalloc",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),

    .testTarget(name: "TesseraCoreTests", dependencies: ["TesseraCore"]),
    .testTarget(name: "TesseraIOTests", dependencies: ["TesseraIO", "TesseraCore"]),
    .testTarget(
      name: "TesseraRegistrationTests", dependencies: ["TesseraRegistration", "TesseraCore", "TesseraIO"]),
    .testTarget(name: "TesseraFusionTests", dependencies: ["TesseraFusion", "TesseraCore"]),
    .testTarget(name: "TesseraTests", dependencies: ["Tessera"]),
  ],
  swiftLanguageModes: [.v6]
)
