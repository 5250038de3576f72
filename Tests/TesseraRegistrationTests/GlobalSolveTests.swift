import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraRegistration

/// The global solve on its own: many tiles, noisy links, outliers, separate groups.
@Suite struct GlobalSolveTests {
  /// A seeded generator (SplitMix64) for reproducible link sets.
  struct Generator {
    var state: UInt64
    mutating func uniform() -> Double {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
  }

  /// A link i → j whose measured shift is the true difference plus `error` (voxel size 1).
  static func link(_ i: Int, _ j: Int, _ truth: [[Double]], error: [Double]) -> RegistrationLink {
    let shift = (0..<truth[i].count).map { d in truth[j][d] - truth[i][d] + error[d] }
    return RegistrationLink(
      tiles: [i, j], overlapVoxels: [20, 20], shiftVoxels: shift, shiftUm: shift, correlation: 0.9, accepted: true,
      reason: nil)
  }

  /// 400 tiles on a 20×20 grid, 760 links with 0.05-voxel noise and 15 links off by 15–20
  /// voxels (no uncertainties of their own: the default σ applies): the outliers are rejected,
  /// every good link kept, and the corrections recovered.
  @Test func hundredsOfTilesWithOutliers() {
    var g = Generator(state: 2024)
    let side = 20
    let n = side * side
    let truth = (0..<n).map { _ in (0..<2).map { _ in g.uniform() * 10 - 5 } }
    var links: [RegistrationLink] = []
    for y in 0..<side {
      for x in 0..<side {
        let i = y * side + x
        for j in [x + 1 < side ? i + 1 : -1, y + 1 < side ? i + side : -1] where j >= 0 {
          links.append(Self.link(i, j, truth, error: (0..<2).map { _ in (g.uniform() - 0.5) * 0.1 }))
        }
      }
    }
    // Outliers on tiles that have no other outlier (two bad links on one tile can make a good
    // one look worst to a greedy rejection; bad tiles are caught by --min-correlation instead).
    var outliers = Set<Int>()
    var touched = Set<Int>()
    while outliers.count < 15 {
      let l = Int(g.uniform() * Double(links.count))
      guard touched.isDisjoint(with: links[l].tiles) else { continue }
      outliers.insert(l)
      touched.formUnion(links[l].tiles)
    }
    for l in outliers {
      let sign: Double = g.uniform() < 0.5 ? -1 : 1
      links[l].shiftUm![0] += sign * (15 + 5 * g.uniform())
      links[l].shiftVoxels = links[l].shiftUm
    }
    var options = RegistrationOptions(maxShift: [20, 20])
    options.threads = 1
    let report = TileRegistration.solve(
      tiles: Array(0..<n), links: links, rank: 2, voxel: [1, 1], options: options, overlaps: [])
    let rejected = Set(report.links.indices.filter { !report.links[$0].accepted })
    #expect(rejected == outliers)
    // Corrections equal the truth up to the common offset (the gauge: zero mean correction).
    let mean = (0..<2).map { d in truth.map { $0[d] }.reduce(0, +) / Double(n) }
    var squared = 0.0
    for (t, c) in zip(truth, report.tiles) {
      for d in 0..<2 { squared += (c.correctionUm[d] - (t[d] - mean[d])) * (c.correctionUm[d] - (t[d] - mean[d])) }
    }
    #expect((squared / Double(n)).squareRoot() < 0.05)
    #expect(report.maxResidualVoxels < 0.2)
  }

  /// A 70×70 grid with links as confident as the pairwise fit makes them (σ 0.05 voxel, noise
  /// ±0.05) and 1 % of them 3 voxels wrong, on any tile (so some tiles have two): the wrong links
  /// are dropped together, several per round, and no good link with them.
  @Test func manyWrongLinksDroppedInFewRounds() {
    var g = Generator(state: 77)
    let side = 70
    var links: [RegistrationLink] = []
    var wrong = Set<Int>()
    for y in 0..<side {
      for x in 0..<side {
        let i = y * side + x
        for j in [x + 1 < side ? i + 1 : -1, y + 1 < side ? i + side : -1] where j >= 0 {
          let bad = g.uniform() < 0.01
          if bad { wrong.insert(links.count) }
          let shift = [(g.uniform() - 0.5) * 0.1 + (bad ? 3 : 0), (g.uniform() - 0.5) * 0.1]
          var l = RegistrationLink(
            tiles: [i, j], overlapVoxels: [20, 20], shiftVoxels: shift, shiftUm: shift, correlation: 0.9,
            accepted: true, reason: nil)
          l.uncertaintyVoxels = [0.05, 0.05]
          links.append(l)
        }
      }
    }
    let report = TileRegistration.solve(
      tiles: Array(0..<(side * side)), links: links, rank: 2, voxel: [1, 1],
      options: RegistrationOptions(maxShift: [20, 20]), overlaps: [])
    let rejected = Set(report.links.indices.filter { !report.links[$0].accepted })
    #expect(wrong.count > 60)
    #expect(rejected == wrong)
    #expect(report.maxResidualVoxels < 0.2)
  }

  /// Links that cannot take part are dropped with their reason (a self-link, an unknown tile, no
  /// shift, a bad voxel size: every link), and 10,000 separate pairs of tiles — 10,000 components,
  /// one unknown each after grounding — order and solve at once.
  @Test func unusableLinksAndManyComponents() {
    let truth: [[Double]] = [[0, 0], [3, 1], [1, -2]]
    var links = [
      Self.link(0, 1, truth, error: [0, 0]), Self.link(1, 1, truth, error: [0, 0]),
      Self.link(1, 2, truth, error: [0, 0]), Self.link(0, 2, truth, error: [0, 0]),
    ]
    links[3].tiles = [0, 9]
    links.append(
      RegistrationLink(
        tiles: [0, 2], overlapVoxels: [20, 20], shiftVoxels: nil, shiftUm: nil, correlation: nil, accepted: true,
        uncertaintyVoxels: nil))
    let options = RegistrationOptions(maxShift: [20, 20])
    let report = TileRegistration.solve(
      tiles: [0, 1, 2], links: links, rank: 2, voxel: [1, 1], options: options, overlaps: [])
    #expect(report.links.map(\.accepted) == [true, false, true, false, false])
    #expect(report.links[1].reason?.description == "dropped: a link joins two different tiles")
    #expect(report.links[3].reason?.description == "dropped: tile 9 is not among the tiles solved for")
    #expect(report.links[4].reason?.description == "dropped: no finite shift of 2 values")
    let c = report.tiles.map(\.correctionUm)
    #expect(abs((c[2][1] - c[0][1]) - (truth[2][1] - truth[0][1])) < 1e-9)
    for voxel in [[1.0, 0], [1, .nan], [1]] {
      let bad = TileRegistration.solve(
        tiles: [0, 1, 2], links: links, rank: 2, voxel: voxel, options: options, overlaps: [])
      #expect(
        bad.accepted == 0 && bad.links.allSatisfy { $0.reason?.description.hasPrefix("dropped: voxel size") == true })
    }
    let pairs = 10_000
    let separate = (0..<pairs).map { p in
      RegistrationLink(
        tiles: [2 * p, 2 * p + 1], overlapVoxels: [20, 20], shiftVoxels: [1, 2], shiftUm: [1, 2], correlation: 0.9,
        accepted: true, uncertaintyVoxels: [0.1, 0.1])
    }
    let many = TileRegistration.solve(
      tiles: Array(0..<(2 * pairs)), links: separate, rank: 2, voxel: [1, 1], options: options, overlaps: [])
    #expect(many.accepted == pairs)
    for (t, expected) in [(0, [-0.5, -1.0]), (1, [0.5, 1.0]), (2 * pairs - 1, [0.5, 1.0])] {
      #expect(zip(many.tiles[t].correctionUm, expected).allSatisfy { abs($0 - $1) < 1e-12 })
    }
  }

  /// The reasons' number formatter prints what `String(format:)` does (random values, no ties).
  @Test func fixedDecimalsMatchFoundation() {
    var g = Generator(state: 9)
    for _ in 0..<2000 {
      let x = (g.uniform() - 0.3) * pow(10, g.uniform() * 8 - 3)
      for digits in [0, 1, 2, 3] {
        #expect(RegistrationLink.Reason.fixed(x, digits) == String(format: "%.\(digits)f", x))
      }
    }
    #expect(RegistrationLink.Reason.fixed(0.0625, 3) == "0.062" || RegistrationLink.Reason.fixed(0.0625, 3) == "0.063")
    #expect(RegistrationLink.Reason.fixed(.infinity, 1) == String(format: "%.1f", Double.infinity))
  }

  /// Two groups of tiles with no link between them: each group's mean correction is zero.
  @Test func separateGroupsKeepZeroMeanEach() {
    let truth: [[Double]] = [[0, 0], [3, 1], [1, -2], [10, 10], [12, 9]]
    let links = [
      Self.link(0, 1, truth, error: [0, 0]), Self.link(1, 2, truth, error: [0, 0]),
      Self.link(0, 2, truth, error: [0, 0]), Self.link(3, 4, truth, error: [0, 0]),
    ]
    let report = TileRegistration.solve(
      tiles: Array(0..<5), links: links, rank: 2, voxel: [1, 1], options: RegistrationOptions(maxShift: [20, 20]),
      overlaps: [])
    let c = report.tiles.map(\.correctionUm)
    for group in [[0, 1, 2], [3, 4]] {
      for d in 0..<2 { #expect(abs(group.map { c[$0][d] }.reduce(0, +)) < 1e-9) }
      for (a, b) in zip(group, group.dropFirst()) {
        for d in 0..<2 { #expect(abs((c[b][d] - c[a][d]) - (truth[b][d] - truth[a][d])) < 1e-9) }
      }
    }
  }

  /// Per-axis weights: a triangle whose third link is uncertain on axis 1 only; the solve
  /// follows the certain links there and the uncertain one on axis 0 where it is as good as the
  /// others. A tile linked only through uncertain links is named weakly linked.
  @Test func weightsPerAxisAndWeakTiles() {
    let truth: [[Double]] = [[0, 0], [3, 1], [1, -2], [4, 4]]
    var links = [
      Self.link(0, 1, truth, error: [0, 0]), Self.link(1, 2, truth, error: [0, 0]),
      Self.link(0, 2, truth, error: [0, 0.3]), Self.link(2, 3, truth, error: [0, 0]),
    ]
    for l in 0..<2 { links[l].uncertaintyVoxels = [0.02, 0.02] }
    links[2].uncertaintyVoxels = [0.02, 1.0]
    links[3].uncertaintyVoxels = [0.5, 0.5]
    let report = TileRegistration.solve(
      tiles: Array(0..<4), links: links, rank: 2, voxel: [1, 1], options: RegistrationOptions(maxShift: [20, 20]),
      overlaps: [])
    let c = report.tiles.map(\.correctionUm)
    // Tile 2 relative to tile 0 on axis 1: the path through tile 1 (exact) wins over the direct,
    // uncertain link that is 0.3 off: within 0.3 / (1 + 1/0.0008) of the truth.
    #expect(abs((c[2][1] - c[0][1]) - (truth[2][1] - truth[0][1])) < 0.001)
    let kept = report.links.filter { $0.accepted && $0.reason?.description.hasPrefix("kept") == true }
    #expect(kept.count == 4)
    #expect(report.weaklyLinkedTiles == [3])
  }
}
