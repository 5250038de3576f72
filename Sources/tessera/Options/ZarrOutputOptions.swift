import ArgumentParser
import Tessera

/// Output options shared by every command that writes Zarr.
struct ZarrOutputOptions: ParsableArguments {
  @Option(help: "Zarr format: 3 (OME-NGFF 0.5) or 2 (OME-NGFF 0.4).")
  var zarrFormat: Int = 3

  @Option(help: "Chunk compressor: blosc-lz4 (default; byte shuffle), blosc-zstd, zstd, gzip or none.")
  var codec: Codec = .bloscLZ4

  @Option(help: "Compression level (default: blosc 5, zstd 1, gzip 1).")
  var level: Int?

  @Option(help: "Chunk shape, slowest axis first (spatial axes only for images), e.g. 64,256,256.")
  var chunks: String?

  @Option(help: "Shard shape (Zarr v3 sharding), a multiple of the chunk shape, e.g. 256,1024,1024.")
  var shard: String?

  enum Codec: String, ExpressibleByArgument, CaseIterable {
    case zstd
    case bloscLZ4 = "blosc-lz4"
    case bloscZstd = "blosc-zstd"
    case gzip, none
  }

  var format: ZarrFormat {
    get throws {
      guard let f = ZarrFormat(rawValue: zarrFormat) else { throw UsageError("--zarr-format must be 2 or 3") }
      return f
    }
  }

  var compressor: ZarrCompressor {
    switch codec {
    case .zstd: .zstd(level: level ?? 1)
    case .bloscLZ4: .blosc(cname: "lz4", level: level ?? 5, shuffle: .byte)
    case .bloscZstd: .blosc(cname: "zstd", level: level ?? 5, shuffle: .byte)
    case .gzip: .gzip(level: level ?? 1)
    case .none: .none
    }
  }

  func chunkShape(rank: Int, default fallback: [Int]) throws -> [Int] {
    guard let chunks else { return fallback }
    let c = try parseList(chunks, as: Int.self, name: "--chunks")
    guard c.count == rank, c.allSatisfy({ $0 > 0 }) else {
      throw UsageError("--chunks needs \(rank) positive values")
    }
    return c
  }

  func shardShape(rank: Int) throws -> [Int]? {
    guard let shard else { return nil }
    guard zarrFormat == 3 else { throw UsageError("--shard needs --zarr-format 3") }
    let s = try parseList(shard, as: Int.self, name: "--shard")
    guard s.count == rank, s.allSatisfy({ $0 > 0 }) else {
      throw UsageError("--shard needs \(rank) positive values")
    }
    return s
  }
}
