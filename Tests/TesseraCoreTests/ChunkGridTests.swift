import Testing

@testable import TesseraCore

@Suite struct ChunkGridTests {
  @Test func edgeChunksAreClipped() throws {
    let g = try ChunkGrid(shape: [10, 7], chunkShape: [4, 4])
    #expect(g.gridShape == [3, 2])
    #expect(g.chunkCount == 6)
    #expect(g.box(ofChunk: [2, 1]) == Box(lower: [8, 4], upper: [10, 7]))
    #expect(g.fullBox(ofChunk: [2, 1]) == Box(lower: [8, 4], upper: [12, 8]))
    #expect(g.chunk(containing: [9, 3]) == [2, 0])
    #expect(g.chunk(containing: [-1, -5]) == [-1, -2])  // floor division
    #expect(g.allChunks == [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]])
    #expect(try ChunkGrid(shape: [0, 5], chunkShape: [2, 2]).chunkCount == 0)
  }

  @Test func linearIndexRoundTrip() throws {
    let g = try ChunkGrid(shape: [9, 10, 11], chunkShape: [2, 3, 4])
    for (i, c) in g.allChunks.enumerated() {
      #expect(g.linearIndex(ofChunk: c) == i)
      #expect(g.chunkIndex(linear: i) == c)
    }
  }

  @Test func floorDivision() {
    for a in -20...20 {
      for b in 1...5 {
        #expect(ChunkGrid.floorDiv(a, b) == Int((Double(a) / Double(b)).rounded(.down)))
      }
    }
  }

  /// Every voxel of `box ∩ array` is covered by exactly one of the chunks the grid returns,
  /// and each returned chunk's box meets `box`.
  static func checkPartition(_ g: ChunkGrid, _ box: Box) {
    let chunks = g.chunks(intersecting: box)
    let target = box.intersection(g.bounds)
    var covered = [Int](repeating: 0, count: g.bounds.volume)
    for c in chunks {
      let piece = g.box(ofChunk: c).intersection(box)
      #expect(!piece.isEmpty, "chunk \(c) does not meet \(box)")
      piece.forEachIndex { p in
        var o = 0
        for d in 0..<g.rank { o = o * g.shape[d] + p[d] }
        covered[o] += 1
      }
    }
    var o = 0
    g.bounds.forEachIndex { p in
      #expect(covered[o] == (target.contains(p) ? 1 : 0), "voxel \(p) of \(box) covered \(covered[o])×")
      o += 1
    }
  }

  @Test func chunksPartitionEveryBoxExhaustively2D() throws {
    for shape in [[5, 7], [4, 4], [1, 6]] {
      for chunkShape in [[1, 1], [2, 3], [4, 4], [5, 8]] {
        let g = try ChunkGrid(shape: shape, chunkShape: chunkShape)
        let range = -1...8
        for l0 in range {
          for u0 in l0...9 {
            for l1 in range {
              for u1 in l1...9 {
                Self.checkPartition(g, Box(lower: [l0, l1], upper: [u0, u1]))
              }
            }
          }
        }
      }
    }
  }

  @Test func chunksPartitionEveryBoxExhaustively3D() throws {
    for (shape, chunkShape) in [([4, 5, 3], [2, 2, 2]), ([3, 3, 3], [1, 3, 2]), ([5, 2, 4], [3, 1, 4])] {
      let g = try ChunkGrid(shape: shape, chunkShape: chunkShape)
      let range = -1...4
      for l0 in range {
        for u0 in l0...5 {
          for l1 in range {
            for u1 in l1...5 {
              for l2 in range {
                for u2 in l2...5 {
                  Self.checkPartition(g, Box(lower: [l0, l1, l2], upper: [u0, u1, u2]))
                }
              }
            }
          }
        }
      }
    }
  }
}
