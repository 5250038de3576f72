// Reading a 64×256×256 uint16 tile (8 MiB) from HDF5, one core: gzip-1 chunks of 16×128×128 (as
// users have them) through Tessera's chunk reader, and the same tile stored contiguous and
// uncompressed (a labelled extra: few users have it).
import Benchmark
import Foundation
import Tessera

/// Writes one tile with these storage settings; its view.
func tile(_ name: String, deflate: Int?, chunks: [Int]?) throws -> View {
  let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bench-read-\(name)")
  try? FileManager.default.removeItem(at: dir)
  let acquisition = SyntheticAcquisition(tileShape: [64, 256, 256], grid: [1, 1, 1], channels: 1, seed: 3)
  let paths = try acquisition.writeHDF5Tiles(to: dir.path, deflateLevel: deflate, chunkShape: chunks).tiles
  return try DatasetLoader.open(paths).dataset.views[0]
}

let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .throughput, .mallocCountTotal], timeUnits: .milliseconds, warmupIterations: 1,
    scalingFactor: .one, maxDuration: .seconds(2), maxIterations: 30)

  for (name, deflate, chunks) in [
    ("gzip-1 chunks 16×128×128", Optional(1), Optional([16, 128, 128])), ("contiguous, uncompressed", nil, nil),
  ] {
    Benchmark("read 64×256×256 uint16 tile, HDF5 \(name)") { benchmark in
      let view = try tile(name.filter(\.isLetter), deflate: deflate, chunks: chunks)
      Parallel.limitThreads(to: 1)
      var out = [UInt8](repeating: 0, count: view.bounds.volume * 2)
      benchmark.startMeasurement()
      for _ in benchmark.scaledIterations {
        try out.withUnsafeMutableBytes { try view.reader.read(view.bounds, level: 0, into: $0) }
        blackHole(out)
      }
    }
  }
}
