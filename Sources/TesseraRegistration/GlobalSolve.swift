import Foundation
import TesseraCore

extension TileRegistration {
  /// Global weighted least squares for one translation per tile, with iterative rejection of
  /// links that disagree with the others (never disconnecting a tile), then neighbours' average
  /// for tiles without links.
  ///
  /// Each link i → j with measured shift m and per-axis standard deviation σ (its own, or
  /// ``RegistrationOptions/defaultUncertainty``; kept within 10⁻³…10³ voxels) contributes
  /// `(t_j − t_i − m)² / σ²` per axis (``LinkSystem``). After each solve every link's
  /// leave-one-out disagreement is computed: the difference between its measurement and the path
  /// through all the other links, `eₖ = rₖ / (1 − hₖ)` (r the residual), where `hₖ = wₖ·Rₖ` is
  /// the link's leverage (its weight times the effective resistance between its tiles), and the
  /// studentized value `zₖ = rₖ / (σₖ √(1 − hₖ))`, which compares eₖ with the link's σ and the
  /// path's together (Cook & Weisberg, "Residuals and influence in regression", 1982). A link
  /// with `z = √Σₖzₖ² > maxNormalizedResidual` and `|e| > minDiscrepancy` voxels is a suspect.
  ///
  /// Suspects are dropped in order of z (of several within 10 % of its z that interact with one,
  /// the least certain — in a single loop every link disagrees equally and the weakest is the
  /// likeliest culprit), unless dropping one would disconnect its tiles (a bridge, h = 1, is not
  /// checked). Dropping link c moves the solution by `A⁻¹u_c·w_c·r_c/(1 − h_c)` and changes the
  /// leverage of link b by `w_b·w_c·(u_bᵀA⁻¹u_c)²/(1 − h_c)` (Sherman–Morrison, u the links'
  /// ±1 vectors, A the normal matrix): suspects whose residual that would move by more than a
  /// quarter of their σ, or whose leverage by more than 0.02, wait for the next round, and so
  /// does a suspect whose verdict a stronger suspect left in place would change (or that is next
  /// to one, a cheap test first) — so the links dropped together are ones a one-at-a-time
  /// rejection would drop too, far enough apart not to change each other's verdict. The solve
  /// repeats with the remaining links until a round drops none. The order of operations is
  /// fixed, so the result is deterministic (and independent of `options.threads`, which only
  /// runs the axes side by side).
  ///
  /// Each round factorises the normal equations once per axis (``SparseCholesky``: the symbolic
  /// analysis is done once), takes every link's effective resistance from the inverse on the
  /// factor's pattern, and costs one sparse solve per axis for each suspect examined: 10,000
  /// tiles on a grid with 214 wrong links take 0.7 s on one thread here. Public
  /// for benchmarks and for callers with pairwise shifts of their own: `links` carry `shiftUm`
  /// (and optionally `uncertaintyVoxels`), `voxel` is the µm per voxel the uncertainties are in,
  /// `overlaps` the overlapping pairs (tiles without links take their neighbours' mean
  /// correction).
  public static func solve(
    tiles: [Int], links input: [RegistrationLink], rank: Int, voxel: [Double], options: RegistrationOptions,
    overlaps: [TileOverlap]
  ) -> RegistrationReport {
    var links = input
    // A tile listed twice is one tile (its first place).
    let index = Dictionary(tiles.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    let voxelUsable = voxel.count == rank && voxel.allSatisfy { $0.isFinite && $0 > 0 }
    // Links taking part: accepted, between two known tiles, with a finite shift of the right rank.
    for l in links.indices where links[l].accepted {
      let t = links[l].tiles
      let problem: RegistrationLink.Reason? =
        !voxelUsable
        ? .unusableVoxelSize(voxel, rank: rank)
        : t.count != 2 || t[0] == t[1]
          ? .notTwoTiles
          : !t.allSatisfy({ index[$0] != nil })
            ? .unknownTile(t.first { index[$0] == nil }!)
            : links[l].shiftUm?.count != rank || !links[l].shiftUm!.allSatisfy(\.isFinite)
              ? .noFiniteShift(rank: rank) : nil
      if let problem {
        links[l].accepted = false
        links[l].reason = problem
      }
    }
    let initial = links.indices.filter { links[$0].accepted }
    let voxel = voxelUsable ? voxel : [Double](repeating: 1, count: rank)  // no link takes part then
    // Per link, per axis: standard deviation in voxels and µm, and the weight 1/σ² (µm⁻²).
    let sigma: [[Double]] = links.map { l in
      if let u = l.uncertaintyVoxels, u.count == rank, u.allSatisfy({ $0.isFinite && $0 > 0 }) {
        return u.map { min(max($0, 1e-3), 1e3) }
      }
      return [Double](repeating: options.defaultUncertainty, count: rank)
    }
    let weight: [[Double]] = sigma.map { s in (0..<rank).map { d in 1 / ((s[d] * voxel[d]) * (s[d] * voxel[d])) } }
    let system = LinkSystem(
      tiles: tiles.count, pairs: initial.map { (index[links[$0].tiles[0]]!, index[links[$0].tiles[1]]!) })
    var pairOf = [Int](repeating: -1, count: links.count)  // link → its position in `initial`
    var incident = [[Int]](repeating: [], count: tiles.count)  // tile → its links
    for (k, l) in initial.enumerated() {
      pairOf[l] = k
      for t in Set(links[l].tiles) { incident[index[t]!].append(l) }
    }

    /// `body(d)` for every axis d, on up to `options.threads` threads.
    func eachAxis<T: Sendable>(_ body: @Sendable (Int) -> T) -> [T] {
      let results = Locked([T?](repeating: nil, count: rank))
      try? Parallel.forEach(rank, threads: options.threads) { d in
        let value = body(d)
        results.withLock { $0[d] = value }
      }
      return results.withLock { $0.map { $0! } }
    }
    var corrections = [[Double]](repeating: [Double](repeating: 0, count: rank), count: tiles.count)
    var residuals = [[Double]](repeating: [], count: links.count)
    var chi = [Double](repeating: 0, count: links.count)
    // Per link, the last round's leave-one-out values (nil: a bridge, or never examined).
    var examined = [(z: Double, e: Double)?](repeating: nil, count: links.count)
    var rounds = 0
    while true {
      let active = initial.filter { links[$0].accepted }
      let present = active.map { (pair: pairOf[$0], weight: weight[$0], shift: links[$0].shiftUm!) }
      let factors = eachAxis { d in system.factorise(present.map { ($0.pair, $0.weight[d]) }) }
      let perAxis = eachAxis { d in
        var b = [Double](repeating: 0, count: tiles.count)
        for p in present {
          let (i, j) = system.pairs[p.pair]
          let v = p.weight[d] * p.shift[d]
          b[j] += v
          b[i] -= v
        }
        return system.solve(factors[d], b)
      }
      for i in 0..<tiles.count { corrections[i] = (0..<rank).map { perAxis[$0][i] } }
      for l in active {
        let (i, j) = system.pairs[pairOf[l]]
        let r = (0..<rank).map { d in (perAxis[d][j] - perAxis[d][i] - links[l].shiftUm![d]) / voxel[d] }
        residuals[l] = r
        var c2 = 0.0
        for d in 0..<rank { c2 += r[d] * r[d] / (sigma[l][d] * sigma[l][d]) }
        chi[l] = c2.squareRoot()
      }
      for l in active { examined[l] = nil }
      guard rounds < initial.count else { break }
      rounds += 1
      // Leave-one-out checks of every link.
      let resistance = eachAxis { system.resistances(factors[$0]) }
      var suspects: [Suspect] = []
      for l in active {
        let p = pairOf[l]
        // h = w·R per axis; a bridge (h = 1 on an axis) has no other path and is not checked.
        guard (0..<rank).allSatisfy({ weight[l][$0] * resistance[$0][p] < 1 - 1e-6 }) else { continue }
        var z2 = 0.0
        var e2 = 0.0
        for d in 0..<rank {
          let (r, h) = (residuals[l][d], weight[l][d] * resistance[d][p])
          z2 += r * r / (sigma[l][d] * sigma[l][d] * (1 - h))
          e2 += r * r / ((1 - h) * (1 - h))
        }
        let (z, e) = (z2.squareRoot(), e2.squareRoot())
        examined[l] = (z, e)
        if z > options.maxNormalizedResidual, e > options.minDiscrepancy {
          let h = (0..<rank).map { weight[l][$0] * resistance[$0][p] }
          suspects.append(
            Suspect(
              link: l, z: z, e: e, h: h,
              move: (0..<rank).map { d in weight[l][d] * abs(residuals[l][d] * voxel[d]) / (1 - h[d]) },
              lever: (0..<rank).map { d in weight[l][d] / (1 - h[d]) }))
        }
      }
      suspects.sort { ($0.z, $1.link) > ($1.z, $0.link) }
      func uncertainty(_ l: Int) -> Double { sigma[l].map { $0 * $0 }.reduce(0, +) }
      /// Whether dropping suspect c changes the verdict on suspect l, given their coupling
      /// `g = u_lᵀA⁻¹u_c` per axis: l's studentized residual `r/(σ√(1 − h))` moves by more than
      /// 1/3 on some axis, or its `1 − h` by more than 4 % (at a grid's typical h = ½: a residual
      /// move of σ/4, a leverage move of 0.02).
      func changes(_ c: Suspect, _ l: Suspect, _ g: (Int) -> Double) -> Bool {
        for d in 0..<rank {
          let coupling = g(d)
          let free = 1 - l.h[d]
          if abs(coupling) * c.move[d] > sigma[l.link][d] * voxel[d] * free.squareRoot() / 3 { return true }
          if weight[l.link][d] * c.lever[d] * coupling * coupling > 0.04 * free { return true }
        }
        return false
      }
      /// `A⁻¹u_c` per axis, per tile.
      func response(_ c: Suspect) -> [[Double]] {
        let (i, j) = system.pairs[pairOf[c.link]]
        return eachAxis { system.response(factors[$0], i, j) }
      }
      /// The suspects whose verdict dropping c would change (c included): only suspects can be
      /// dropped in this round, the others are examined afresh in the next.
      func influenced(by c: Suspect, _ a: [[Double]]) -> [Int] {
        suspects.filter { l in l.link == c.link || changes(c, l) { system.coupling(pairOf[l.link], a[$0]) } }
          .map(\.link)
      }
      /// Whether a stronger suspect left in place would change c's verdict (`a`: c's response).
      func blocked(_ c: Suspect, _ a: [[Double]]) -> Bool {
        inPlace.contains { q in changes(suspects[q], c) { system.coupling(pairOf[suspects[q].link], a[$0]) } }
      }
      var waiting = [Bool](repeating: false, count: links.count)
      var inPlace: [Int] = []  // suspects examined and not dropped, in order of z
      var placed = [Bool](repeating: false, count: links.count)
      /// Whether a suspect left in place shares a tile with link l or with one of the links at
      /// l's tiles: a cheap sign that l's verdict may depend on it (waiting is always safe).
      func nextToPlaced(_ l: Int) -> Bool {
        for t in links[l].tiles {
          for m in incident[index[t]!] where links[m].accepted {
            if placed[m] { return true }
            for u in links[m].tiles where u != t {
              for q in incident[index[u]!] where placed[q] { return true }
            }
          }
        }
        return false
      }
      var droppedNow = 0
      for (k, s) in suspects.enumerated() {
        guard !waiting[s.link], !nextToPlaced(s.link) else {
          inPlace.append(k)
          placed[s.link] = true
          continue
        }
        // A stronger suspect left in place that would change this one's verdict: next round.
        let a = response(s)
        guard !blocked(s, a) else {
          inPlace.append(k)
          placed[s.link] = true
          continue
        }
        let near = influenced(by: s, a)
        // Of the suspects interacting with s within 10 % of its z, still free to drop, the least
        // certain first (each as free of the round's other verdicts as s).
        let nearSet = Set(near)
        let group = suspects[k...].filter { c in
          c.link == s.link
            || (c.z >= 0.9 * s.z && nearSet.contains(c.link) && links[c.link].accepted && !waiting[c.link]
              && !nextToPlaced(c.link))
        }
        .sorted { p, q in (uncertainty(p.link), p.z, q.link) > (uncertainty(q.link), q.z, p.link) }
        for l in near { waiting[l] = true }
        var chosen: (suspect: Suspect, response: [[Double]])?
        for c in group where !system.disconnects(pairOf[c.link], links, initial) {
          if c.link == s.link {
            chosen = (c, a)
            break
          }
          let ac = response(c)
          if !blocked(c, ac) {
            chosen = (c, ac)
            break
          }
        }
        guard let (worst, worstResponse) = chosen else {
          inPlace.append(k)
          placed[s.link] = true
          continue
        }
        links[worst.link].accepted = false
        links[worst.link].residualVoxels = residuals[worst.link].map { $0 * $0 }.reduce(0, +).squareRoot()
        links[worst.link].normalizedResidual = worst.z
        links[worst.link].reason = .inconsistent(discrepancy: worst.e, normalized: worst.z)
        droppedNow += 1
        if worst.link != s.link {
          inPlace.append(k)
          placed[s.link] = true
          for l in influenced(by: worst, worstResponse) { waiting[l] = true }
        }
      }
      if droppedNow == 0 { break }
    }
    for l in initial where links[l].accepted {
      let norm = residuals[l].map { $0 * $0 }.reduce(0, +).squareRoot()
      links[l].residualVoxels = norm
      if let (z, e) = examined[l] {
        links[l].normalizedResidual = z
        links[l].reason = .consistent(residual: norm, discrepancy: e, normalized: z)
      } else {
        links[l].normalizedResidual = chi[l]
        links[l].reason = .kept(residual: norm, normalized: chi[l])
      }
    }
    return report(
      tiles: tiles, links: links, corrections: corrections, index: index, sigma: sigma, overlaps: overlaps,
      rank: rank, options: options)
  }

  /// The outcome of a solve: tiles without accepted links take the stated position plus the
  /// mean correction of overlapping neighbours that have one; per-tile summaries; weak tiles.
  static func report(
    tiles: [Int], links: [RegistrationLink], corrections solved: [[Double]], index: [Int: Int], sigma: [[Double]],
    overlaps: [TileOverlap], rank: Int, options: RegistrationOptions
  ) -> RegistrationReport {
    var corrections = solved
    var linked = Set<Int>()
    for l in links where l.accepted { linked.formUnion(l.tiles) }
    var neighbours: [Int: [Int]] = [:]
    for o in overlaps where o.tiles.count == 2 {
      neighbours[o.tiles[0], default: []].append(o.tiles[1])
      neighbours[o.tiles[1], default: []].append(o.tiles[0])
    }
    var source = tiles.map { linked.contains($0) ? TileCorrection.Source.solved : .unchanged }
    for (i, t) in tiles.enumerated() where !linked.contains(t) {
      let from = (neighbours[t] ?? []).compactMap { linked.contains($0) ? index[$0] : nil }
      if from.isEmpty {
        corrections[i] = [Double](repeating: 0, count: rank)
      } else {
        corrections[i] = (0..<rank).map { d in from.map { corrections[$0][d] }.reduce(0, +) / Double(from.count) }
        source[i] = .fromNeighbours
      }
    }
    let accepted = links.indices.filter { links[$0].accepted }
    let residualNorms = accepted.compactMap { links[$0].residualVoxels }
    var byTile: [Int: [Int]] = [:]
    for l in accepted { for t in links[l].tiles { byTile[t, default: []].append(l) } }
    let tileReports = tiles.enumerated().map { i, t in
      let mine = byTile[t] ?? []
      return TileCorrection(
        tile: t, correctionUm: corrections[i], links: mine.count,
        maxResidualVoxels: mine.compactMap { links[$0].residualVoxels }.max() ?? 0, source: source[i])
    }
    let weak = tiles.filter { t in
      guard let mine = byTile[t], !mine.isEmpty else { return false }
      return mine.allSatisfy { l in sigma[l].contains { $0 > options.weakUncertainty } }
    }
    return RegistrationReport(
      links: links, tiles: tileReports, accepted: accepted.count, rejected: links.count - accepted.count,
      maxResidualVoxels: residualNorms.max() ?? 0,
      rmsResidualVoxels: residualNorms.isEmpty
        ? 0 : (residualNorms.map { $0 * $0 }.reduce(0, +) / Double(residualNorms.count)).squareRoot(),
      weaklyLinkedTiles: weak)
  }

  /// A link the rejection examined whose leave-one-out disagreement is too large.
  struct Suspect {
    let link: Int
    let z: Double
    let e: Double
    /// Per axis, the leverage.
    let h: [Double]
    /// Per axis: how far dropping it moves the solution per unit of coupling, `w·|r|/(1 − h)`
    /// (µm⁻¹), and how much it changes other links' leverages, `w/(1 − h)` (µm⁻²).
    let move: [Double]
    let lever: [Double]
  }
}
