import Foundation
import TesseraCore

/// Options of `refine-positions`.
public struct RegistrationOptions: Sendable {
  /// Channel whose views are registered; nil averages all channels of a tile.
  public var channel: Int?
  /// Largest correction per axis, voxels (of the first tile's views).
  public var maxShift: [Double]
  /// Links whose verified correlation is lower are rejected.
  public var minCorrelation: Double = 0.6
  /// Pairs overlapping by fewer voxels (on any axis) are not registered.
  public var minOverlap: Double = 8
  /// Block-average the regions by this factor in y and x (z too when it is as fine) first.
  public var downsample: Int = 1
  /// Phase-correlation peaks to verify.
  public var peaks: Int = 5
  public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
  /// Bytes of decoded input blocks kept while registering (default: a quarter of physical memory,
  /// at most 4 GiB). Neighbouring pairs share chunks of a tile, so each is decoded once.
  public var memoryBytes: Int = Int(min(ProcessInfo.processInfo.physicalMemory / 4, 4 << 30))
  /// Global solve: links are dropped (the worst first) while their leave-one-out disagreement with the other
  /// links exceeds both this many standard deviations (its own and the path's, combined)…
  public var maxNormalizedResidual: Double = 4
  /// …and this many voxels.
  public var minDiscrepancy: Double = 0.5
  /// Standard deviation (voxels, per axis) assumed for links that carry none of their own.
  public var defaultUncertainty: Double = 0.25
  /// Tiles all of whose accepted links are less certain than this (voxels, on some axis) are
  /// reported as weakly linked.
  public var weakUncertainty: Double = 0.25
  /// Smallest per-axis standard deviation a pairwise measurement reports, voxels.
  public var uncertaintyFloor: Double = 0.02
  /// Where reading (``Stage/readDecode``), pairwise registration (``Stage/phaseCorrelation``,
  /// with the voxels of both regions) and the global solve are timed, or nil.
  public var stageClock: StageClock?

  public init(maxShift: [Double]) { self.maxShift = maxShift }
}

/// One registered pair of tiles.
public struct RegistrationLink: Sendable, Codable, Hashable {
  public var tiles: [Int]
  /// Overlap extent per axis at the stated positions, voxels.
  public var overlapVoxels: [Double]
  /// Measured correction of the second tile relative to the first, voxels and µm (nil if none).
  public var shiftVoxels: [Double]?
  public var shiftUm: [Double]?
  public var correlation: Double?
  public var accepted: Bool
  /// Why the link was kept or rejected.
  public var reason: String?
  /// Residual of the link after the global solve, voxels.
  public var residualVoxels: Double?
  /// Per-axis standard deviation of the measured shift, voxels (from the pair's own fit; nil if
  /// none: the solve then assumes ``RegistrationOptions/defaultUncertainty``).
  public var uncertaintyVoxels: [Double]? = nil
  /// The residual in units of its standard deviation, √Σₖ(rₖ/σₖ)²; for links the rejection
  /// examined, the leave-one-out (studentized) value.
  public var normalizedResidual: Double? = nil
}

extension RegistrationLink {
  /// A link from a pairwise measurement: `shiftUm` is the second tile's correction relative to
  /// the first (nil when none was found), `uncertaintyVoxels` its per-axis standard deviation.
  public init(
    tiles: [Int], overlapVoxels: [Double], shiftVoxels: [Double]?, shiftUm: [Double]?, correlation: Double?,
    accepted: Bool, uncertaintyVoxels: [Double]?
  ) {
    self.init(
      tiles: tiles, overlapVoxels: overlapVoxels, shiftVoxels: shiftVoxels, shiftUm: shiftUm, correlation: correlation,
      accepted: accepted, reason: nil, uncertaintyVoxels: uncertaintyVoxels)
  }
}

/// One tile's outcome.
public struct TileCorrection: Sendable, Codable, Hashable {
  public var tile: Int
  /// Correction added to the stated position, µm (z, y, x).
  public var correctionUm: [Double]
  /// Accepted links touching the tile.
  public var links: Int
  /// Largest residual among them, voxels.
  public var maxResidualVoxels: Double
  /// How the correction was found: "solved", "from neighbours", "unchanged".
  public var source: String
}

/// The outcome of a registration.
public struct RegistrationReport: Sendable, Codable {
  public var links: [RegistrationLink]
  public var tiles: [TileCorrection]
  public var accepted: Int
  public var rejected: Int
  public var maxResidualVoxels: Double
  public var rmsResidualVoxels: Double
  /// Solved tiles whose position rests on weak links only (every accepted link touching them
  /// has a standard deviation above ``RegistrationOptions/weakUncertainty`` on some axis).
  public var weaklyLinkedTiles: [Int] = []
}

/// Translation registration of tiles: pairwise phase correlation on the overlaps, then a global
/// weighted least-squares solve that rejects inconsistent links. Views of a tile (its channels,
/// illuminations) move together.
public enum TileRegistration {
  /// The pairs of tiles to register: every two tiles (represented by one view each) whose world
  /// bounding boxes overlap by at least `minOverlap` voxels on every axis.
  public static func pairs(_ dataset: Dataset, options: RegistrationOptions) -> [TileOverlap] {
    dataset.tileOverlaps(channel: options.channel, minimumVoxels: options.minOverlap)
  }

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
    let timepoint = dataset.timepoints.first ?? 0
    // The views standing for each tile (all channels averaged, or one channel).
    var tileViews: [Int: [View]] = [:]
    for v in dataset.views where v.id.timepoint == timepoint && (options.channel == nil || v.channel == options.channel)
    {
      tileViews[v.tile, default: []].append(v)
    }
    // --downsample: read the views' stored pyramid level with those factors when every view has
    // one (BigDataViewer projects do), else block-average full-resolution overlaps in memory.
    guard let firstTile = tileViews.keys.min(), let fullVoxel = tileViews[firstTile]?.first?.voxelSize else {
      // No view at the first timepoint (in the chosen channel): nothing to register.
      return RegistrationReport(
        links: [], tiles: [], accepted: 0, rejected: 0, maxResidualVoxels: 0, rmsResidualVoxels: 0)
    }
    var inMemoryFactor = options.downsample
    if options.downsample > 1 {
      let leveled = tileViews.mapValues { views in views.compactMap { levelView($0, factor: options.downsample) } }
      if leveled.allSatisfy({ tile, views in views.count == tileViews[tile]!.count }) {
        tileViews = leveled
        inMemoryFactor = 1
      }
    }
    // Every view is read through one cache of whole storage chunks: a tile's pairs overlap (the
    // corner of a face strip is also in the diagonal pair's region, and the views of a tile are
    // read for each of its pairs), so each chunk is read and decoded once.
    var sources: [Int: ViewBlockCache.Source] = [:]
    var keyed: [(tile: Int, view: View)] = []
    for (tile, views) in tileViews.sorted(by: { $0.key < $1.key }) {
      for v in views {
        let block = v.reader.preferredBlockShape(level: 0).map {
          ViewBlockCache.blockShape(
            chunk: $0, shape: v.shape, minimum: (0..<rank).map { rank == 3 && $0 == 0 ? 16 : 32 })
        }
        sources[keyed.count] = .init(reader: v.reader, shape: v.shape, elementType: v.elementType, blockShape: block)
        keyed.append((tile, v))
      }
    }
    let cache = ViewBlockCache(sources: sources, budget: options.memoryBytes)
    var cachedViews: [Int: [View]] = [:]
    var keys: [Int: [Int]] = [:]
    for (key, (tile, v)) in keyed.enumerated() {
      var cached = v
      cached.reader = cache.reader(view: key)
      cachedViews[tile, default: []].append(cached)
      keys[tile, default: []].append(key)
    }
    let viewsOfTile = cachedViews
    let factor = inMemoryFactor
    let overlaps = pairs(dataset, options: options).filter {
      viewsOfTile[$0.tiles[0]] != nil && viewsOfTile[$0.tiles[1]] != nil
    }
    // Every pair's reads announced to the cache: a chunk is dropped once the last pair that needs
    // it has read it, and its memory serves the next ones. The largest transform sizes the FFT
    // buffers.
    var largestTransform = 0
    for o in overlaps {
      let (a, b) = (viewsOfTile[o.tiles[0]]![0], viewsOfTile[o.tiles[1]]![0])
      guard a.viewToWorld.isAxisAligned, b.viewToWorld.isAxisAligned, a.voxelSize == b.voxelSize,
        let (boxA, boxB, _, _) = regions(o, a, b)
      else { continue }
      for key in keys[o.tiles[0]]! { cache.expect(view: key, box: boxA) }
      for key in keys[o.tiles[1]]! { cache.expect(view: key, box: boxB) }
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
      .readDecode, voxels: cache.statistics.bytesRead / max(1, keyed.first?.view.elementType.byteCount ?? 1))
    var links: [RegistrationLink] = []
    for (i, o) in overlaps.enumerated() {
      var link = RegistrationLink(
        tiles: o.tiles, overlapVoxels: o.extentVoxels, shiftVoxels: nil, shiftUm: nil, correlation: nil,
        accepted: false, reason: nil)
      switch measured[i] {
      case nil: link.reason = "no peak with enough overlap within the maximum shift"
      case let m?:
        link.shiftVoxels = m.voxels
        link.shiftUm = m.um
        link.correlation = m.correlation
        link.uncertaintyVoxels = m.uncertainty
        if m.correlation < options.minCorrelation {
          link.reason = String(
            format: "correlation %.3f below --min-correlation %.2f", m.correlation, options.minCorrelation)
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

  /// Phase correlation of one pair on their overlap at the stated positions.
  static func measure(
    _ overlap: TileOverlap, _ viewsA: [View], _ viewsB: [View], factor: Int, fullVoxel: [Double],
    _ correlator: PhaseCorrelation, _ plans: FFTPlanCache, _ workspaces: Pool<PairWorkspace>,
    clock: StageClock? = nil
  ) throws -> Measurement? {
    let a = viewsA[0]
    let b = viewsB[0]
    guard a.viewToWorld.isAxisAligned, b.viewToWorld.isAxisAligned, a.voxelSize == b.voxelSize else {
      throw GeometryError.invalidMatrix(
        "refine-positions registers translations: views \(a.name) and \(b.name) must be axis-aligned with equal voxel sizes"
      )
    }
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

  /// The regions of views `a` and `b` a pair reads: A's voxels whose centres lie in the world
  /// overlap, and B's matching voxels (`k`, the nearest integer offset between the stated
  /// positions; `delta` the exact one, whose fraction is added back to the measurement); nil when
  /// they share fewer than 4 voxels on some axis.
  static func regions(_ overlap: TileOverlap, _ a: View, _ b: View) -> (Box, Box, [Int], [Double])? {
    let rank = a.rank
    let v = a.voxelSize
    let originA = a.viewToWorld.translation
    let originB = b.viewToWorld.translation
    let lowerA = (0..<rank).map { Int(((overlap.lowerUm[$0] - originA[$0]) / v[$0] + 0.5).rounded(.up)) }
    let upperA = (0..<rank).map { Int(((overlap.upperUm[$0] - originA[$0]) / v[$0] - 0.5).rounded(.down)) + 1 }
    let delta = (0..<rank).map { (originA[$0] - originB[$0]) / v[$0] }
    let k = delta.map { Int($0.rounded()) }
    var boxA = Box(lower: lowerA, upper: upperA).intersection(a.bounds)
    var boxB = boxA.translated(by: k).intersection(b.bounds)
    boxA = boxB.translated(by: k.map { -$0 }).intersection(boxA)
    boxB = boxA.translated(by: k)
    guard !boxA.isEmpty, boxA.shape.allSatisfy({ $0 >= 4 }) else { return nil }
    return (boxA, boxB, k, delta)
  }

  /// The view as seen at its stored pyramid level with downsampling `factor` in y and x (and in z
  /// either 1 or `factor`), or nil if it has no such level.
  static func levelView(_ view: View, factor: Int) -> View? {
    let rank = view.rank
    guard
      let level = view.levels.indices.first(where: { l in
        let f = view.levels[l].factors
        return (0..<rank).allSatisfy { d in
          f[d] == Double(factor) || (rank == 3 && d == 0 && f[d] == 1)
        }
      })
    else { return nil }
    let info = view.levels[level]
    var v = view
    v.shape = info.shape
    v.voxelSize = zip(view.voxelSize, info.factors).map { $0 * $1 }
    v.viewToWorld = compose(view.viewToWorld, info.levelToLevel0)
    v.levels = [ResolutionLevel(factors: Array(repeating: 1, count: rank), shape: info.shape)]
    v.reader = LevelReader(base: view.reader, level: level)
    return v
  }

  /// Reads level `level` of another reader as if it were level 0.
  struct LevelReader: ViewReader {
    let base: any ViewReader
    let level: Int
    func read(_ box: Box, level _: Int) throws -> AnyVolumeBuffer { try base.read(box, level: level) }
    func read(_ box: Box, level _: Int, into output: UnsafeMutableRawBufferPointer) throws {
      try base.read(box, level: level, into: output)
    }
    func preferredBlockShape(level _: Int) -> [Int]? { base.preferredBlockShape(level: level) }
  }

  /// Memory one registration task reuses from pair to pair: the two regions and the read and
  /// conversion scratch, so pairs after the first neither allocate nor page-fault in fresh buffers.
  final class PairWorkspace {
    var a = VolumeBuffer<Float>(shape: [0])
    var b = VolumeBuffer<Float>(shape: [0])
    let raw = ScratchBuffer()
    let other = ScratchBuffer()
  }

  /// Writes the mean over views (channels) of one region, as Float, into `region`.
  static func averaged(_ views: [View], _ box: Box, into region: inout VolumeBuffer<Float>, _ w: PairWorkspace)
    throws
  {
    region.reuse(for: box)
    let count = box.volume
    try region.storage.withUnsafeMutableBufferPointer { sum in
      let dst = sum.baseAddress!
      for (k, v) in views.enumerated() {
        let raw = w.raw.bytes(count * v.elementType.byteCount)
        try v.reader.read(box, level: 0, into: raw)
        // The first view straight into the region, the others through scratch and added.
        let target = k == 0 ? dst : w.other.floats(count)
        ElementConversion.convert(count, from: v.elementType, raw.baseAddress!, to: .float32, target)
        if k > 0 { for i in 0..<count { dst[i] += target[i] } }
      }
      if views.count > 1 { for i in 0..<count { dst[i] /= Float(views.count) } }
    }
  }

  /// The shape ``downsample(_:_:)`` makes of a region of `shape`.
  static func downsampledShape(_ shape: [Int], _ f: Int) -> [Int] {
    let rank = shape.count
    return (0..<rank).map { d in max(1, shape[d] / (rank == 3 && d == 0 ? 1 : f)) }
  }

  /// Block mean by `f` in y and x (z keeps its resolution).
  static func downsample(_ region: VolumeBuffer<Float>, _ f: Int) -> VolumeBuffer<Float> {
    let shape = region.shape
    let rank = shape.count
    let factors = (0..<rank).map { d in rank == 3 && d == 0 ? 1 : f }
    let out = downsampledShape(shape, f)
    var result = VolumeBuffer<Float>(shape: out)
    var k = 0
    Box(shape: out).forEachIndex { q in
      var s: Float = 0
      var c: Float = 0
      Box(lower: zip(q, factors).map { $0 * $1 }, upper: zip(q, factors).map { ($0 + 1) * $1 }).forEachIndex { p in
        s += region[p]
        c += 1
      }
      result.storage[k] = s / c
      k += 1
    }
    return result
  }
}
