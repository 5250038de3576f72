// Encode/decode throughput of each output codec on realistic data: a 64×256×256 uint16 block
// of the synthetic acquisition (blobs on a noisy background), one core.
import Benchmark
import Tessera

let block: [UInt8] = {
  let acquisition = SyntheticAcquisition(tileShape: [64, 256, 256], grid: [1, 1, 1], seed: 42)
  return acquisition.renderVolume(channel: 0).withUnsafeBytes { Array($0) }
}()

let codecs: [(String, any BytesCodec)] = [
  ("zstd-1", ZstdCodec(level: 1)),
  ("zstd-3", ZstdCodec(level: 3)),
  ("blosc-lz4-5-shuffle", BloscCodec(compressor: "lz4", level: 5, shuffle: .byte, typeSize: 2)),
  ("blosc-zstd-1-shuffle", BloscCodec(compressor: "zstd", level: 1, shuffle: .byte, typeSize: 2)),
  ("blosc-zstd-3-shuffle", BloscCodec(compressor: "zstd", level: 3, shuffle: .byte, typeSize: 2)),
  ("blosc-lz4-1-shuffle", BloscCodec(compressor: "lz4", level: 1, shuffle: .byte, typeSize: 2)),
  ("gzip-1", DeflateCodec(level: 1, container: .gzip)),
]

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .throughput], timeUnits: .milliseconds, warmupIterations: 1,
    scalingFactor: .one, maxDuration: .seconds(3), maxIterations: 20)

  for (name, codec) in codecs {
    Benchmark("encode \(name) (\(block.count >> 20) MiB uint16)") { benchmark in
      for _ in benchmark.scaledIterations { blackHole(try codec.encode(block)) }
    }
    let encoded = try! codec.encode(block)
    Benchmark("decode \(name) (ratio \(Double(block.count) / Double(encoded.count)))") { benchmark in
      for _ in benchmark.scaledIterations { blackHole(try codec.decode(encoded, decodedSize: block.count)) }
    }
  }
}
