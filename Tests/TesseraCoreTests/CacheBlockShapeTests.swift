import Foundation
import Testing

@testable import TesseraCore

/// The fusion input cache groups small storage chunks into blocks of at least 1 MiB.
@Suite struct CacheBlockShapeTests {
  /// The block shape fusion asks for (FusionJob): at least 32×64×64 (64×64 in 2D) and 1 MiB.
  func fusionBlock(_ chunks: [Int], _ view: [Int]) -> [Int] {
    ViewBlockCache.blockShape(
      chunk: chunks, shape: view, minimum: view.indices.map { view.count == 3 && $0 == 0 ? 32 : 64 },
      elementSize: 2, minimumBytes: 1 << 20)
  }

  @Test func smallChunksAreGroupedIntoMebibyteBlocks() {
    // BigDataViewer's 4×32×32 and 16×16×16 blocks and a 16×128×128 layout share one cache block.
    for chunks in [[4, 32, 32], [16, 16, 16], [16, 128, 128]] {
      #expect(fusionBlock(chunks, [64, 256, 256]) == [32, 128, 128])
    }
    #expect(fusionBlock([64, 64, 64], [64, 256, 256]) == [64, 64, 128])
    // Never beyond the view, and it stops when the whole view is one block.
    #expect(fusionBlock([4, 8, 8], [10, 40, 50]) == [10, 40, 50])
    // 2-D: whole chunks, grown along x then y.
    let plane = fusionBlock([32, 32], [4000, 5000])
    #expect(plane == [512, 1024])
    #expect(plane.reduce(2, *) >= 1 << 20)
  }
}

/// Announced reads: a block stays until its last announced read, then goes at once; reads never
/// change.
@Suite struct ViewBlockCacheUsesTests {
  struct Ramp: ViewReader {
    let shape: [Int]
    func read(_ box: Box, level: Int) throws -> AnyVolumeBuffer {
      var v = VolumeBuffer<UInt16>(box: box)
      box.forEachIndex { p in v[p] = UInt16(truncatingIfNeeded: p[0] * 1000 + p[1]) }
      return AnyVolumeBuffer(v)
    }
  }

  func read(_ cache: ViewBlockCache, _ box: Box) throws -> [UInt16] {
    var out = [UInt16](repeating: 0, count: box.volume)
    try out.withUnsafeMutableBytes { try cache.read(view: 0, box: box, into: $0) }
    return out
  }

  @Test func blocksGoAfterTheirLastAnnouncedRead() throws {
    let shape = [40, 40]
    let source = ViewBlockCache.Source(
      reader: Ramp(shape: shape), shape: shape, elementType: .uint16, blockShape: [10, 10])
    let cache = ViewBlockCache(sources: [0: source], budget: 1 << 30)
    let a = Box(lower: [0, 0], upper: [10, 15])  // blocks (0,0) and (0,1)
    let b = Box(lower: [0, 12], upper: [10, 20])  // block (0,1) again
    cache.expect(view: 0, box: a)
    cache.expect(view: 0, box: b)
    let first = try read(cache, a)
    #expect(cache.statistics.misses == 2)
    // (0,0) had one announced read and is gone; (0,1) is kept for b.
    let second = try read(cache, b)
    #expect(cache.statistics.misses == 2 && cache.statistics.hits == 1)
    // Both are gone now: reading a again decodes both blocks again, with the same voxels.
    #expect(try read(cache, a) == first)
    #expect(cache.statistics.misses == 4)
    #expect(second == (try Ramp(shape: shape).read(b, level: 0)).converted(to: UInt16.self).storage)
    // Unannounced blocks stay (least recently used order only).
    _ = try read(cache, a)
    #expect(cache.statistics.misses == 4)
  }

  /// A ramp that takes a while per block, so concurrent readers meet blocks another is loading.
  struct SlowRamp: ViewReader {
    let shape: [Int]
    func read(_ box: Box, level: Int) throws -> AnyVolumeBuffer {
      usleep(2000)
      return try Ramp(shape: shape).read(box, level: level)
    }
  }

  @Test func concurrentReadsOfSharedBlocksAreExactAndLoadEachOnce() throws {
    let shape = [40, 40]
    let source = ViewBlockCache.Source(
      reader: SlowRamp(shape: shape), shape: shape, elementType: .uint16, blockShape: [10, 10])
    let cache = ViewBlockCache(sources: [0: source], budget: 1 << 30)
    // Seeded boxes, most crossing several blocks; every thread reads all of them, in its own order.
    var rng = SplitMix64(seed: 42)
    let boxes = (0..<24).map { _ -> Box in
      let lower = [Int(rng.next() % 30), Int(rng.next() % 30)]
      return Box(lower: lower, upper: [lower[0] + 1 + Int(rng.next() % 10), lower[1] + 1 + Int(rng.next() % 10)])
    }
    let results = Locked([[UInt16]](repeating: [], count: 4 * boxes.count))
    try Parallel.forEach(4 * boxes.count, threads: 4) { i in
      let box = boxes[(i * 7) % boxes.count]
      let voxels = try read(cache, box)
      results.withLock { $0[i] = voxels }
    }
    let got = results.withLock { $0 }
    for i in got.indices {
      let box = boxes[(i * 7) % boxes.count]
      #expect(got[i] == (try Ramp(shape: shape).read(box, level: 0)).converted(to: UInt16.self).storage)
    }
    let touched = Set(
      boxes.flatMap { b in
        (b.lower[0] / 10...(b.upper[0] - 1) / 10).flatMap { y in
          (b.lower[1] / 10...(b.upper[1] - 1) / 10).map { [y, $0] }
        }
      })
    #expect(cache.statistics.misses == touched.count)
  }
}
