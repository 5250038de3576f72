import Testing

@testable import Tessera

/// The fusion input cache groups small storage chunks into blocks of at least 1 MiB.
@Suite struct CacheBlockShapeTests {
  @Test func smallChunksAreGroupedIntoMebibyteBlocks() {
    // BigDataViewer's 4×32×32 and 16×16×16 blocks and a 16×128×128 layout share one cache block.
    for chunks in [[4, 32, 32], [16, 16, 16], [16, 128, 128]] {
      #expect(FusionJob.cacheBlockShape(chunks: chunks, view: [64, 256, 256], elementSize: 2) == [32, 128, 128])
    }
    #expect(FusionJob.cacheBlockShape(chunks: [64, 64, 64], view: [64, 256, 256], elementSize: 2) == [64, 64, 128])
    // Never beyond the view, and it stops when the whole view is one block.
    #expect(FusionJob.cacheBlockShape(chunks: [4, 8, 8], view: [10, 40, 50], elementSize: 2) == [10, 40, 50])
    // 2-D: whole chunks, grown along x then y.
    let plane = FusionJob.cacheBlockShape(chunks: [32, 32], view: [4000, 5000], elementSize: 2)
    #expect(plane == [512, 1024])
    #expect(plane.reduce(2, *) >= 1 << 20)
  }
}
