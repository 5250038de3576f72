import Foundation
import TesseraCore

/// Translation registration of tiles: pairwise phase correlation on the overlaps, then a global
/// weighted least-squares solve that rejects inconsistent links. Views of a tile (its channels,
/// illuminations) move together.
public enum TileRegistration {
  /// Registers the tiles of `dataset` and returns the per-tile corrections (µm) and a report.
  ///
  /// - Throws: ``GeometryError`` for tiles that are not translation-only relative to each other;
  ///   reader errors.
  public static func register(
    _ dataset: Dataset, options: RegistrationOptions, progress: (@Sendable (Int, Int) -> Void)? = nil
  )
    throws -> RegistrationReport
  {
    let rank = dataset.rank
    let tileViews = Self.tileViews(dataset, channel: options.channel)
    guard let firstTile = tileViews.keys.min(), let fullVoxel = tileViews[firstTile]?.first?.voxelSize else {
      // No view at the first timepoint (in the chosen channel): nothing to register.
      return RegistrationReport(
        links: [], tiles: [], accepted: 0, rejected: 0, maxResidualVoxels: 0, rmsResidualVoxels: 0)
    }
    let (leveledViews, factor) = leveled(tileViews, factor: options.downsample)
    let cached = CachedTiles(leveledViews, rank: rank, budget: options.memoryBytes)
    let viewsOfTile = cached.views
    let overlaps = pairs(dataset, options: options).filter {
      viewsOfTile[$0.tiles[0]] != nil && viewsOfTile[$0.tiles[1]] != nil
    }
    // Checked before any parallel work: every pair registers a translation. Then every pair's
    // reads are announced to the cache, and the largest transform sizes the FFT buffers.
    var largestTransform = 0
    for o in overlaps {
      let (a, b) = (viewsOfTile[o.tiles[0]]![0], viewsOfTile[o.tiles[1]]![0])
      try checkTranslation(a, b)
      guard let (boxA, boxB, _, _) = regions(o, a, b) else { continue }
      cached.expect(o.tiles, boxA, boxB)
      let shape = downsampledShape(boxA.shape, factor)
      largestTransform = max(largestTransform, shape.map { PhaseCorrelation.fftSize(max($0, 2)) }.reduce(1, *))
    }
    let plans = FFTPlanCache(bufferCapacity: largestTransform)
    let workspaces = Pool { PairWorkspace() }
    let results = Locked([Measurement?](repeating: nil, count: overlaps.count))
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
    let measured = results.withLock { $0 }
    options.stageClock?.count(
      .readDecode,
      voxels: cached.cache.statistics.bytesRead / max(1, viewsOfTile[firstTile]?.first?.elementType.byteCount ?? 1))
    var links: [RegistrationLink] = []
    for (i, o) in overlaps.enumerated() {
      var link = RegistrationLink(
        tiles: o.tiles, overlapVoxels: o.extentVoxels, shiftVoxels: nil, shiftUm: nil, correlation: nil,
        accepted: false, reason: nil)
      switch measured[i] {
      case nil: link.reason = .noPeak
      case let m?:
        link.shiftVoxels = m.voxels
        link.shiftUm = m.um
        link.correlation = m.correlation
        link.uncertaintyVoxels = m.uncertainty
        if m.correlation < options.minCorrelation {
          link.reason = .lowCorrelation(m.correlation, minimum: options.minCorrelation)
        } else {
          link.accepted = true
        }
      }
      links.append(link)
    }
    return options.stageClock.time(.globalSolve) {
      solve(tiles: dataset.tiles, links: links, rank: rank, voxel: fullVoxel, options: options, overlaps: overlaps)
    }
  }

  struct Measurement: Sendable {
    var voxels: [Double]
    var um: [Double]
    var correlation: Double
    /// Per-axis standard deviation, voxels of the first tile's views.
    var uncertainty: [Double]?
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
  ) throws -> Measurement? {
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
    return Measurement(
      voxels: zip(um, fullVoxel).map { $0 / $1 }, um: um, correlation: m.correlation, uncertainty: sigma)
  }
}
