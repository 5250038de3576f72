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
