import Foundation
import TesseraCore

/// Translation registration of tiles: pairwise phase correlation on the overlaps, then a global
/// weighted least-squares solve that rejects inconsistent links. Views of a tile (its channels,
/// illuminations) move together.
public enum TileRegistration {
  /// Registers the tiles of `dataset` and returns the per-tile corrections (µm) and a report:
  /// ``plan(_:options:)``, ``measure(_:_:options:progress:)`` of every pair, then
  /// ``solve(_:measurements:options:)``. A job split into parts runs the same three steps, the
  /// measurement a share at a time.
  ///
  /// - Throws: ``GeometryError`` for tiles that are not translation-only relative to each other;
  ///   reader errors.
  public static func register(
    _ dataset: Dataset, options: RegistrationOptions, progress: (@Sendable (Int, Int) -> Void)? = nil
  )
    throws -> RegistrationReport
  {
    let plan = try plan(dataset, options: options)
    let measured = try measure(plan, plan.pairs.indices, options: options, progress: progress)
    return solve(plan, measurements: measured, options: options)
  }

  /// Measures the pairs `indices` of `plan` by phase correlation, in parallel on
  /// `options.threads`, reading each storage chunk once (a chunk is dropped once the last of
  /// these pairs that needs it has read it). A pair's measurement depends on the pair alone, not
  /// on which other pairs are measured with it, nor on the thread count.
  ///
  /// - Returns: one measurement per pair of `indices`, in their order; nil where no peak was
  ///   found (or the pair shares fewer than 4 voxels on some axis).
  /// - Throws: reader errors; ``Interrupted`` after SIGINT/SIGTERM.
  public static func measure(
    _ plan: PairPlan, _ indices: Range<Int>, options: RegistrationOptions,
    progress: (@Sendable (Int, Int) -> Void)? = nil
  ) throws -> [PairMeasurement?] {
    guard let fullVoxel = plan.voxel, !indices.isEmpty else { return Array(repeating: nil, count: indices.count) }
    let rank = plan.rank
    let factor = plan.factor
    let cached = CachedTiles(plan.views, rank: rank, budget: options.memoryBytes)
    let viewsOfTile = cached.views
    let overlaps = Array(plan.pairs[indices])
    // Every pair's reads are announced to the cache, and the largest transform sizes the FFT
    // buffers (their size does not change the transforms' values).
    var largestTransform = 0
    for o in overlaps {
      let (a, b) = (viewsOfTile[o.tiles[0]]![0], viewsOfTile[o.tiles[1]]![0])
      guard let (boxA, boxB, _, _) = regions(o, a, b) else { continue }
      cached.expect(o.tiles, boxA, boxB)
      let shape = downsampledShape(boxA.shape, factor)
      largestTransform = max(largestTransform, shape.map { PhaseCorrelation.fftSize(max($0, 2)) }.reduce(1, *))
    }
    let plans = FFTPlanCache(bufferCapacity: largestTransform)
    let workspaces = Pool { PairWorkspace() }
    let results = Locked([PairMeasurement?](repeating: nil, count: overlaps.count))
    let done = Locked(0)
    var configured = PhaseCorrelation(
      peaks: options.peaks, maxShift: options.maxShift.map { $0 / Double(options.downsample) })
    configured.uncertaintyFloor = options.uncertaintyFloor
    let correlator = configured
    // Nested work (a block's chunks decoded at once) on the worker's own thread while the pairs
    // fill the threads.
    try Parallel.forEach(
      overlaps.count, threads: options.threads, nested: Parallel.nestedThreads(options.threads, items: overlaps.count)
    ) { i in
      try Interruption.check("nothing was written")
      let o = overlaps[i]
      let m = try measure(
        o, viewsOfTile[o.tiles[0]]!, viewsOfTile[o.tiles[1]]!, factor: factor, fullVoxel: fullVoxel, correlator,
        plans,
        workspaces, clock: options.stageClock)
      results.withLock { $0[i] = m }
      progress?(
        done.withLock {
          $0 += 1
          return $0
        }, overlaps.count)
    }
    let elementBytes = viewsOfTile[plan.tiles.first { viewsOfTile[$0] != nil } ?? 0]?.first?.elementType.byteCount
    options.stageClock?.count(.readDecode, voxels: cached.cache.statistics.bytesRead / max(1, elementBytes ?? 1))
    return results.withLock { $0 }
  }

  /// The report from every pair's measurement (`measurements[k]` of `plan.pairs[k]`, nil for no
  /// peak): a link per pair, those below `options.minCorrelation` rejected, then the global
  /// solve (``solve(tiles:links:rank:voxel:options:overlaps:)``).
  public static func solve(
    _ plan: PairPlan, measurements: [PairMeasurement?], options: RegistrationOptions
  ) -> RegistrationReport {
    precondition(measurements.count == plan.pairs.count, "one measurement (or nil) per pair of the plan")
    guard let voxel = plan.voxel else {
      // No view at the first timepoint (in the chosen channel): nothing to register.
      return RegistrationReport(
        links: [], tiles: [], accepted: 0, rejected: 0, maxResidualVoxels: 0, rmsResidualVoxels: 0)
    }
    var links: [RegistrationLink] = []
    for (o, measured) in zip(plan.pairs, measurements) {
      var link = RegistrationLink(
        tiles: o.tiles, overlapVoxels: o.extentVoxels, shiftVoxels: nil, shiftUm: nil, correlation: nil,
        accepted: false, reason: nil)
      switch measured {
      case nil: link.reason = .noPeak
      case let m?:
        link.shiftVoxels = m.shiftVoxels
        link.shiftUm = m.shiftUm
        link.correlation = m.correlation
        link.uncertaintyVoxels = m.uncertaintyVoxels
        if m.correlation < options.minCorrelation {
          link.reason = .lowCorrelation(m.correlation, minimum: options.minCorrelation)
        } else {
          link.accepted = true
        }
      }
      links.append(link)
    }
    return options.stageClock.time(.globalSolve) {
      solve(tiles: plan.tiles, links: links, rank: plan.rank, voxel: voxel, options: options, overlaps: plan.pairs)
    }
  }

  /// Throws unless views `a` and `b` differ by a translation (axis-aligned, equal voxel sizes),
  /// which is what phase correlation measures.
  static func checkTranslation(_ a: View, _ b: View) throws(GeometryError) {
    guard a.viewToWorld.isAxisAligned, b.viewToWorld.isAxisAligned, a.voxelSize == b.voxelSize else {
      throw GeometryError.invalidMatrix(
        "refine-positions registers translations: views \(a.name) and \(b.name) must be axis-aligned with equal voxel sizes"
      )
    }
  }

  /// Phase correlation of one pair on their overlap at the stated positions.
  static func measure(
    _ overlap: TileOverlap, _ viewsA: [View], _ viewsB: [View], factor: Int, fullVoxel: [Double],
    _ correlator: PhaseCorrelation, _ plans: FFTPlanCache, _ workspaces: Pool<PairWorkspace>,
    clock: StageClock? = nil
  ) throws -> PairMeasurement? {
    let a = viewsA[0]
    let b = viewsB[0]
    try checkTranslation(a, b)
    let rank = a.rank
    let v = a.voxelSize
    guard let (boxA, boxB, k, delta) = regions(overlap, a, b) else { return nil }
    let found = try workspaces.withWorkspace { w -> PhaseCorrelation.Result? in
      try clock.time(.readDecode) {
        try averaged(viewsA, boxA, into: &w.a, w)
        try averaged(viewsB, boxB, into: &w.b, w)
      }
      return clock.time(.phaseCorrelation, voxels: boxA.volume + boxB.volume) {
        if factor > 1 { return correlator.measure(downsample(w.a, factor), downsample(w.b, factor), plans: plans) }
        return correlator.measure(w.a, w.b, plans: plans)
      }
    }
    guard let m = found else { return nil }
    // Correction of B in these views' voxels: the measured shift (scaled back from the in-memory
    // downsampling, which leaves z alone) minus what the stated positions already imply (k − Δ).
    let scale = (0..<rank).map { d in rank == 3 && d == 0 ? 1 : Double(factor) }
    let correction = (0..<rank).map { m.shift[$0] * scale[$0] - (Double(k[$0]) - delta[$0]) }
    let um = zip(correction, v).map { $0 * $1 }
    // Per-axis standard deviation in the first tile's voxels (nil unless finite on every axis).
    let sigma = m.uncertainty.flatMap { $0.allSatisfy(\.isFinite) ? $0 : nil }.map { u in
      (0..<rank).map { max(correlator.uncertaintyFloor, u[$0] * scale[$0] * v[$0] / fullVoxel[$0]) }
    }
    return PairMeasurement(
      shiftVoxels: zip(um, fullVoxel).map { $0 / $1 }, shiftUm: um, correlation: m.correlation,
      uncertaintyVoxels: sigma)
  }
}

/// One pair's phase-correlation result: the correction of the pair's second tile relative to
/// its first.
public struct PairMeasurement: Sendable, Codable, Equatable {
  /// The correction in voxels of the first tile's views (``PairPlan/voxel``).
  public var shiftVoxels: [Double]
  /// The correction in µm (z, y, x).
  public var shiftUm: [Double]
  /// Verified normalised cross-correlation at the peak.
  public var correlation: Double
  /// Per-axis standard deviation, voxels of the first tile's views (nil unless finite on every axis).
  public var uncertaintyVoxels: [Double]?

  public init(shiftVoxels: [Double], shiftUm: [Double], correlation: Double, uncertaintyVoxels: [Double]?) {
    self.shiftVoxels = shiftVoxels
    self.shiftUm = shiftUm
    self.correlation = correlation
    self.uncertaintyVoxels = uncertaintyVoxels
  }
}
