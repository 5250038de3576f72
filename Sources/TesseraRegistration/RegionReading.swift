import TesseraCore

/// Reading the overlap regions: the views standing for each tile, their stored pyramid levels,
/// one chunk cache for all of them, and each pair's regions averaged over channels (and
/// block-averaged in memory when no stored level fits).
extension TileRegistration {
  /// The views standing for each tile at the first timepoint: all channels (averaged), or one.
  static func tileViews(_ dataset: Dataset, channel: Int?) -> [Int: [View]] {
    let timepoint = dataset.timepoints.first ?? 0
    var tileViews: [Int: [View]] = [:]
    for v in dataset.views where v.id.timepoint == timepoint && (channel == nil || v.channel == channel) {
      tileViews[v.tile, default: []].append(v)
    }
    return tileViews
  }

  /// --downsample: the views' stored pyramid level with those factors when every view has one
  /// (BigDataViewer projects do), and 1 left to do in memory; else the views unchanged, and their
  /// overlaps to be block-averaged by `factor` in memory.
  static func leveled(_ tileViews: [Int: [View]], factor: Int) -> (views: [Int: [View]], inMemory: Int) {
    guard factor > 1 else { return (tileViews, factor) }
    let leveled = tileViews.mapValues { views in views.compactMap { levelView($0, factor: factor) } }
    guard leveled.allSatisfy({ tile, views in views.count == tileViews[tile]!.count }) else {
      return (tileViews, factor)
    }
    return (leveled, 1)
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

  /// Every view read through one cache of whole storage chunks: a tile's pairs overlap (the
  /// corner of a face strip is also in the diagonal pair's region, and the views of a tile are
  /// read for each of its pairs), so each chunk is read and decoded once.
  struct CachedTiles {
    let cache: ViewBlockCache
    /// Tile → its views, reading through the cache.
    let views: [Int: [View]]
    /// Tile → its views' keys in the cache.
    let keys: [Int: [Int]]

    /// The cache over the views of every tile (`budget` bytes of decoded blocks).
    init(_ tileViews: [Int: [View]], rank: Int, budget: Int) {
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
      cache = ViewBlockCache(sources: sources, budget: budget)
      var cachedViews: [Int: [View]] = [:]
      var keys: [Int: [Int]] = [:]
      for (key, (tile, v)) in keyed.enumerated() {
        var cached = v
        cached.reader = cache.reader(view: key)
        cachedViews[tile, default: []].append(cached)
        keys[tile, default: []].append(key)
      }
      views = cachedViews
      self.keys = keys
    }

    /// Announces a pair's reads to the cache, `boxA` of the first tile's views and `boxB` of the
    /// second's: a chunk is dropped once the last pair that needs it has read it, and its memory
    /// serves the next ones.
    func expect(_ tiles: [Int], _ boxA: Box, _ boxB: Box) {
      for key in keys[tiles[0]]! { cache.expect(view: key, box: boxA) }
      for key in keys[tiles[1]]! { cache.expect(view: key, box: boxB) }
    }
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

  /// Block mean by `f` in y and x (z keeps its resolution), over blocks counted from the region's
  /// own first voxel (``BlockMean``, summed in Float): the result's voxel q averages the region's
  /// voxels `q·f + k`, 0 ≤ k < f, of those it holds. Origin 0.
  static func downsample(_ region: VolumeBuffer<Float>, _ f: Int) -> VolumeBuffer<Float> {
    let rank = region.rank
    let factors = (0..<rank).map { d in rank == 3 && d == 0 ? 1 : f }
    var local = region
    local.move(to: Array(repeating: 0, count: rank))
    return BlockMean.reduce(AnyVolumeBuffer(local), to: Box(shape: downsampledShape(region.shape, f)), step: factors)
      .converted(to: Float.self)
  }
}
