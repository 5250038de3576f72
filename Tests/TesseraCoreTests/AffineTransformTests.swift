import Testing

@testable import TesseraCore

@Suite struct AffineTransformTests {
  /// A random well-conditioned affine: a rotation-like matrix times modest scales and shear,
  /// plus a translation.
  static func randomAffine(rank: Int, using rng: inout SeededRandom) -> AffineTransform {
    while true {
      let linear = (0..<rank).map { r in
        (0..<rank).map { c in
          (r == c ? Double.random(in: 0.5...2, using: &rng) : 0) + Double.random(in: -0.4...0.4, using: &rng)
        }
      }
      let t = (0..<rank).map { _ in Double.random(in: -100...100, using: &rng) }
      let a = try! AffineTransform(linear: linear, translation: t)
      if abs(a.determinant) > 0.2 { return a }
    }
  }

  static func maxDifference(_ a: AffineTransform, _ b: AffineTransform) -> Double {
    zip(a.entries, b.entries).map { abs($0 - $1) }.max() ?? 0
  }

  @Test(arguments: [2, 3])
  func inverseComposedWithTransformIsIdentity(rank: Int) throws {
    var rng = SeededRandom.forTest("Affine.inverse rank \(rank)")
    for _ in 0..<500 {
      let t = Self.randomAffine(rank: rank, using: &rng)
      let inv = try t.inverse()
      #expect(Self.maxDifference(compose(inv, t), AffineTransform(identity: rank)) < 1e-9)
      #expect(Self.maxDifference(compose(t, inv), AffineTransform(identity: rank)) < 1e-9)
      let p = (0..<rank).map { _ in Double.random(in: -50...50, using: &rng) }
      let back = inv.apply(t.apply(p))
      #expect(zip(back, p).allSatisfy { abs($0 - $1) < 1e-9 })
    }
  }

  @Test func composeAppliesRightOperandFirst() {
    let shift = AffineTransform(translation: [1, 2, 3])
    let scale = AffineTransform(scale: [2, 2, 2])
    // scale ∘ shift: shift first, then scale.
    #expect(compose(scale, shift).apply([0.0, 0, 0]) == [2, 4, 6])
    #expect(compose(shift, scale).apply([0.0, 0, 0]) == [1, 2, 3])
    #expect(compose(scale, shift).apply([1.0, 1, 1]) == [4, 6, 8])
  }

  @Test func predicatesAndAccessors() throws {
    #expect(AffineTransform(translation: [0.5, -3]).isTranslationOnly)
    #expect(!AffineTransform(scale: [1, 2]).isTranslationOnly)
    #expect(AffineTransform(scale: [1, 2], translation: [3, 4]).isAxisAligned)
    let m = try AffineTransform(matrix: [[1, 0.1, 5], [0, 1, 6], [0, 0, 1]])
    #expect(!m.isTranslationOnly)
    #expect(m.isTranslationOnly(tolerance: 0.2))
    #expect(m.translation == [5, 6])
    #expect(m.linear == [[1, 0.1], [0, 1]])
    #expect(m.homogeneousMatrix.last == [0, 0, 1])
    // The BigDataViewer form: top rows only.
    #expect(try AffineTransform(matrix: [[1, 0.1, 5], [0, 1, 6]]) == m)
    #expect(abs(try AffineTransform(matrix: [[0, 2, 0], [3, 0, 0]]).determinant + 6) < 1e-12)
  }

  @Test func singularMatricesThrowInsteadOfTrapping() {
    #expect(throws: GeometryError.self) { try AffineTransform(scale: [1, 0, 1]).inverse() }
    #expect(throws: GeometryError.self) {
      try AffineTransform(matrix: [[1, 2, 0], [2, 4, 0], [0, 0, 1]]).inverse()
    }
    #expect(throws: GeometryError.self) { try AffineTransform(scale: [0, 0]).inverse() }
    #expect(throws: GeometryError.self) { try AffineTransform(scale: [1e-20, 1]).inverse() }
  }

  @Test func malformedMatricesAreRejected() {
    // Rank mismatches: ragged rows, wrong row count, linear/translation disagreeing.
    #expect(throws: GeometryError.self) { try AffineTransform(matrix: [[1, 0, 0], [0, 1]]) }
    #expect(throws: GeometryError.self) { try AffineTransform(matrix: [[1, 0, 0]]) }
    #expect(throws: GeometryError.self) { try AffineTransform(matrix: []) }
    #expect(throws: GeometryError.self) { try AffineTransform(linear: [[1, 0], [0, 1]], translation: [0, 0, 0]) }
    #expect(throws: GeometryError.self) { try AffineTransform(linear: [[1, 0], [0]], translation: [0, 0]) }
    // Not homogeneous, or not finite.
    #expect(throws: GeometryError.self) { try AffineTransform(matrix: [[1, 0, 0], [0, 1, 0], [0, 1, 1]]) }
    #expect(throws: GeometryError.self) { try AffineTransform(matrix: [[Double.nan, 0, 0], [0, 1, 0]]) }
    #expect(throws: GeometryError.self) { try ChunkGrid(shape: [4, 4], chunkShape: [2]) }
    #expect(throws: GeometryError.self) { try ChunkGrid(shape: [4, 4], chunkShape: [2, 0]) }
  }

  @Test func boundingBoxUsesVoxelCentres() {
    let box = Box(lower: [2, 3, 4], upper: [5, 7, 9])
    #expect(AffineTransform(identity: 3).boundingBox(of: box) == box)
    #expect(AffineTransform(translation: [1, -2, 3]).boundingBox(of: box) == box.translated(by: [1, -2, 3]))
    // Half a voxel: the footprint straddles one more voxel on the far side.
    #expect(
      AffineTransform(translation: [0.5, 0, 0]).boundingBox(of: box) == Box(lower: [2, 3, 4], upper: [6, 7, 9]))
    // Scaling by 2 about the origin: footprint [1.5, 4.5) → [3, 9), which touches voxels 3 … 9
    // (voxel 9's footprint [8.5, 9.5) overlaps it).
    #expect(AffineTransform(scale: [2, 1, 1]).boundingBox(of: box) == Box(lower: [3, 3, 4], upper: [10, 7, 9]))
    // Mirror: x ↦ -x. Footprint [3.5, 8.5) → (-8.5, -3.5] → voxels -8 ... -4.
    #expect(AffineTransform(scale: [1, 1, -1]).boundingBox(of: box) == Box(lower: [2, 3, -8], upper: [5, 7, -3]))
  }

  @Test(arguments: [2, 3])
  func boundingBoxContainsEveryCornerAndIsTight(rank: Int) {
    var rng = SeededRandom.forTest("Affine.boundingBox rank \(rank)")
    let eps = AffineTransform.indexTolerance
    for _ in 0..<500 {
      let t = Self.randomAffine(rank: rank, using: &rng)
      let lo = (0..<rank).map { _ in Int.random(in: -20...20, using: &rng) }
      let box = Box(lower: lo, upper: lo.map { $0 + Int.random(in: 1...15, using: &rng) })
      let result = t.boundingBox(of: box)
      // Images of the footprint's corners.
      var corners: [[Double]] = []
      for mask in 0..<(1 << rank) {
        let c = (0..<rank).map { d in Double(mask & (1 << d) != 0 ? box.upper[d] : box.lower[d]) - 0.5 }
        corners.append(t.apply(c))
      }
      for d in 0..<rank {
        let minC = corners.map { $0[d] }.min()!
        let maxC = corners.map { $0[d] }.max()!
        // Contained: every corner lies in the result's footprint [lower - 0.5, upper - 0.5].
        #expect(minC >= Double(result.lower[d]) - 0.5 - eps)
        #expect(maxC <= Double(result.upper[d]) - 0.5 + eps)
        // Tight: moving either side in by one voxel would leave a corner outside.
        #expect(minC < Double(result.lower[d]) + 0.5)
        #expect(maxC > Double(result.upper[d]) - 1.5)
      }
      // Centre bounds lie inside the footprint bounds.
      let (clo, chi) = t.centreBounds(of: box)!
      for d in 0..<rank {
        #expect(clo[d] >= Double(result.lower[d]) - 0.5 - eps)
        #expect(chi[d] <= Double(result.upper[d]) - 0.5 + eps)
      }
    }
  }
}
