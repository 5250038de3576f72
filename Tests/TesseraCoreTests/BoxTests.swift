import Testing

@testable import TesseraCore

@Suite struct BoxTests {
  @Test func basicsIn2DAnd3D() {
    let a = Box(lower: [0, 2], upper: [4, 6])
    let b = Box(lower: [2, 0], upper: [6, 3])
    #expect(a.rank == 2)
    #expect(a.shape == [4, 4])
    #expect(a.volume == 16)
    #expect(a.intersection(b) == Box(lower: [2, 2], upper: [4, 3]))
    #expect(a.union(b) == Box(lower: [0, 0], upper: [6, 6]))
    #expect(a.contains([3, 5]))
    #expect(!a.contains([4, 5]))  // upper is exclusive
    #expect(a.translated(by: [1, -2]) == Box(lower: [1, 0], upper: [5, 4]))
    #expect(a.grown(by: 1) == Box(lower: [-1, 1], upper: [5, 7]))
    #expect(a.grown(by: [0, -2]).isEmpty)

    let c = Box(origin: [1, 2, 3], shape: [2, 3, 4])
    #expect(c.upper == [3, 5, 7])
    #expect(c.volume == 24)
    #expect(c.contains(Box(lower: [1, 2, 3], upper: [2, 3, 4])))
    #expect(!c.contains(Box(lower: [0, 2, 3], upper: [2, 3, 4])))
  }

  @Test func emptyBoxes() {
    let e = Box(lower: [3, 0], upper: [3, 5])
    #expect(e.isEmpty)
    #expect(e.volume == 0)
    #expect(e.shape == [0, 5])
    let a = Box(shape: [2, 2])
    #expect(a.union(e) == a)
    #expect(e.union(a) == a)
    #expect(a.contains(e))
    #expect(a.intersection(Box(lower: [5, 5], upper: [6, 6])).isEmpty)
    #expect(!a.intersects(Box(lower: [2, 0], upper: [3, 2])))  // touching is not intersecting
  }

  @Test func forEachIndexIsCOrder() {
    var seen: [[Int]] = []
    Box(lower: [1, 0], upper: [3, 2]).forEachIndex { seen.append($0) }
    #expect(seen == [[1, 0], [1, 1], [2, 0], [2, 1]])
    var none = 0
    Box(lower: [0, 0], upper: [0, 3]).forEachIndex { _ in none += 1 }
    #expect(none == 0)
  }

  @Test func randomIntersectionAndUnionProperties() {
    var rng = SeededRandom.forTest("Box.randomIntersectionAndUnion")
    for rank in [2, 3] {
      for _ in 0..<300 {
        func randomBox() -> Box {
          let lo = (0..<rank).map { _ in Int.random(in: -5...5, using: &rng) }
          return Box(lower: lo, upper: lo.map { $0 + Int.random(in: -1...6, using: &rng) })
        }
        let a = randomBox()
        let b = randomBox()
        let i = a.intersection(b)
        let u = a.union(b)
        // Every voxel of a small probe region is in the intersection iff in both boxes; voxels of
        // either box are in the union.
        Box(lower: Array(repeating: -6, count: rank), upper: Array(repeating: 12, count: rank)).forEachIndex { p in
          #expect(i.contains(p) == (a.contains(p) && b.contains(p)))
          if a.contains(p) || b.contains(p) { #expect(u.contains(p)) }
        }
        #expect(u.contains(a) && u.contains(b))
      }
    }
  }
}
