import Testing

@testable import TesseraCore

@Suite struct BoxOverlapsTests {
  /// The sweep finds exactly the pairs a double loop finds, in the same order: random boxes in
  /// 1–3 dimensions, grids of abutting and overlapping tiles, duplicates and empty boxes.
  @Test func sweepEqualsDoubleLoop() {
    var rng = SeededRandom.forTest("BoxOverlaps.sweepEqualsDoubleLoop")
    for trial in 0..<200 {
      let rank = 1 + trial % 3
      let n = Int.random(in: 0...60, using: &rng)
      var lower: [[Double]] = []
      var upper: [[Double]] = []
      for _ in 0..<n {
        let lo = (0..<rank).map { _ in Double(Int.random(in: 0...40, using: &rng)) / 2 }
        // Sizes 0 (empty) to 12; some boxes repeat the previous one exactly.
        if !lower.isEmpty, Int.random(in: 0..<10, using: &rng) == 0 {
          lower.append(lower.last!)
          upper.append(upper.last!)
          continue
        }
        lower.append(lo)
        upper.append(lo.map { $0 + Double(Int.random(in: 0...24, using: &rng)) / 2 })
      }
      var expected: [(Int, Int)] = []
      for i in 0..<n {
        for j in (i + 1)..<max(i + 1, n)
        where (0..<rank).allSatisfy({ min(upper[i][$0], upper[j][$0]) > max(lower[i][$0], lower[j][$0]) }) {
          expected.append((i, j))
        }
      }
      let found = BoxOverlaps.pairs(lower: lower, upper: upper)
      #expect(found.map { [$0.0, $0.1] } == expected.map { [$0.0, $0.1] }, "trial \(trial)")
    }
  }

  /// A 100×100 grid of tiles with 15 % overlap: each tile meets its 8 neighbours (abutting tiles
  /// do not count), quickly.
  @Test func largeGrid() {
    let size = 512.0
    let step = 435.0
    var lower: [[Double]] = []
    var upper: [[Double]] = []
    for i in 0..<100 {
      for j in 0..<100 {
        lower.append([Double(i) * step, Double(j) * step])
        upper.append([Double(i) * step + size, Double(j) * step + size])
      }
    }
    let pairs = BoxOverlaps.pairs(lower: lower, upper: upper)
    // Horizontal, vertical and both diagonals.
    #expect(pairs.count == 2 * 100 * 99 + 2 * 99 * 99)
  }
}
