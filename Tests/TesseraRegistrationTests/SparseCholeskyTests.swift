import Testing

@testable import TesseraCore
@testable import TesseraRegistration

/// The sparse factorisation behind the global solve, against dense elimination.
@Suite struct SparseCholeskyTests {
  /// A connected random graph on `n` nodes: a shuffled chain plus `extra` random edges.
  static func graph(_ n: Int, extra: Int, seed: UInt64) -> [(Int, Int)] {
    var rng = SplitMix64(seed: seed)
    var nodes = Array(0..<n)
    for i in stride(from: n - 1, to: 0, by: -1) { nodes.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
    var edges = (1..<n).map { (nodes[$0 - 1], nodes[$0]) }
    while edges.count < n - 1 + extra {
      let (a, b) = (Int(rng.next() % UInt64(n)), Int(rng.next() % UInt64(n)))
      if a != b { edges.append((a, b)) }
    }
    return edges
  }

  /// Dense grounded Laplacian solve (node 0 held at zero), then zero mean: the reference.
  static func dense(_ n: Int, _ edges: [(Int, Int)], _ w: [Double], _ b: [Double]) -> [Double] {
    let m = n - 1
    var a = [Double](repeating: 0, count: m * m)
    for ((i, j), wk) in zip(edges, w) {
      for (p, q) in [(i, j), (j, i)] where p > 0 {
        a[(p - 1) * m + p - 1] += wk
        if q > 0 { a[(p - 1) * m + q - 1] -= wk }
      }
    }
    let x = [0] + SubpixelRefinement.Moments.solve(a, Array(b[1...]), m)!
    let mean = x.reduce(0, +) / Double(n)
    return x.map { $0 - mean }
  }

  /// Random sizes and graphs (seeded): solutions and effective resistances (from the inverse on
  /// the factor's pattern) agree with dense elimination to 1e-9 relative, and so do responses to
  /// sparse right-hand sides; the
  /// nested-dissection order is a permutation.
  @Test(arguments: [(2, 0, 1), (9, 4, 2), (40, 30, 3), (300, 500, 4), (1000, 1, 5)])
  func agreesWithDenseElimination(n: Int, extra: Int, seed: UInt64) {
    let edges = Self.graph(n, extra: extra, seed: seed)
    var rng = SplitMix64(seed: seed &+ 100)
    let w = edges.map { _ in 0.1 + Double(rng.next() % 1000) / 100 }
    let system = TileRegistration.LinkSystem(tiles: n, pairs: edges)
    #expect(Set(system.symbolic.order) == Set(0..<(n - 1)))
    let factor = system.factorise(w.enumerated().map { ($0, $1) })
    var b = (0..<n).map { _ in Double(rng.next() % 2001) / 1000 - 1 }
    let mean = b.reduce(0, +) / Double(n)
    b = b.map { $0 - mean }
    let x = system.solve(factor, b)
    let reference = Self.dense(n, edges, w, b)
    let scale = reference.map(abs).max()!
    for (u, v) in zip(x, reference) { #expect(abs(u - v) <= 1e-9 * scale) }
    let resistances = system.resistances(factor)
    for (p, (i, j)) in edges.enumerated().prefix(40) {
      let r = resistances[p]
      var dipole = [Double](repeating: 0, count: n)
      dipole[j] += 1
      dipole[i] -= 1
      let d = Self.dense(n, edges, w, dipole)
      #expect(abs(r - (d[j] - d[i])) <= 1e-9 * max(r, 1))
      // The response to the dipole (a sparse right-hand side) gives the couplings with others.
      let a = system.response(factor, i, j)
      for (p, (k, l)) in edges.enumerated().prefix(20) {
        #expect(abs(system.coupling(p, a) - (d[l] - d[k])) <= 1e-9 * max(r, 1))
      }
    }
  }

  /// A 60×60 grid has far fewer factor entries than a dense triangle, and separate components
  /// (isolated tiles included) each keep zero mean.
  @Test func gridFillAndComponents() {
    let side = 60
    var edges: [(Int, Int)] = []
    for r in 0..<side {
      for c in 0..<side {
        if c + 1 < side { edges.append((r * side + c, r * side + c + 1)) }
        if r + 1 < side { edges.append((r * side + c, (r + 1) * side + c)) }
      }
    }
    let n = side * side
    let system = TileRegistration.LinkSystem(tiles: n, pairs: edges)
    // Nested dissection: O(n log n) entries, here a few per cent of the dense n²/2.
    #expect(system.symbolic.entries < n * n / 40)
    let two = TileRegistration.LinkSystem(tiles: 5, pairs: [(0, 1), (3, 4)])
    let factor = two.factorise([(0, 1), (1, 2)])
    let x = two.solve(factor, [-1, 1, 0, -2, 2])
    #expect(abs(x[0] + x[1]) < 1e-12 && abs(x[3] + x[4]) < 1e-12 && x[2] == 0)
    #expect(abs((x[1] - x[0]) - 1) < 1e-12 && abs((x[4] - x[3]) - 1) < 1e-12)
  }
}
