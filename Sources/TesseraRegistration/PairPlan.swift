import TesseraCore

/// What a registration measures, fixed before any voxel is read: the views standing for each
/// tile (at the stored pyramid level `--downsample` picks, when there is one), the pairs of
/// overlapping tiles in their deterministic order, and each pair's predicted work. Every process
/// of a job split into parts builds the same plan from the dataset and options alone, so all of
/// them agree on the pairs and on each part's share without talking to each other.
public struct PairPlan: Sendable {
  /// The dataset's tiles, sorted: the unknowns of the global solve.
  public let tiles: [Int]
  /// Number of spatial axes.
  public let rank: Int
  /// The pairs to measure: those of ``TileRegistration/pairs(_:options:)`` whose tiles both have
  /// a view to register, in that order.
  public let pairs: [TileOverlap]
  /// Each pair's predicted work: the voxels of its overlap region at the registration's
  /// downsampling (what the phase correlation transforms); 0 for a pair too thin to measure.
  public let work: [Double]
  /// µm per voxel of the first tile's views, the unit of every measured shift in voxels; nil
  /// when no view is registered (no view of the chosen channel at the first timepoint).
  public let voxel: [Double]?
  /// Tile → the views read for it (averaged over channels), at the stored level when one fits.
  let views: [Int: [View]]
  /// The block averaging left to do in memory (1 when a stored level provides it).
  let factor: Int

  /// The pairs of part `part`: contiguous ranges of the pair list, balanced by ``work``
  /// (``Part/contiguousShares(work:count:)``). The shares of all parts cover every pair once.
  public func share(_ part: Part) -> Range<Int> {
    Part.contiguousShares(work: work, count: part.count)[part.index]
  }
}

extension TileRegistration {
  /// The plan for registering `dataset`'s tiles with `options`.
  ///
  /// - Throws: ``GeometryError`` when the two views of some pair are not translation-only
  ///   relative to each other (checked for every pair here, before any voxel is read).
  public static func plan(_ dataset: Dataset, options: RegistrationOptions) throws -> PairPlan {
    let tileViews = Self.tileViews(dataset, channel: options.channel)
    guard let firstTile = tileViews.keys.min(), let voxel = tileViews[firstTile]?.first?.voxelSize else {
      return PairPlan(
        tiles: dataset.tiles, rank: dataset.rank, pairs: [], work: [], voxel: nil, views: [:], factor: 1)
    }
    let (views, factor) = leveled(tileViews, factor: options.downsample)
    let overlaps = pairs(dataset, options: options).filter { views[$0.tiles[0]] != nil && views[$0.tiles[1]] != nil }
    var work: [Double] = []
    for o in overlaps {
      let (a, b) = (views[o.tiles[0]]![0], views[o.tiles[1]]![0])
      try checkTranslation(a, b)
      let shape = regions(o, a, b).map { downsampledShape($0.0.shape, factor) }
      work.append(shape.map { Double($0.reduce(1, *)) } ?? 0)
    }
    return PairPlan(
      tiles: dataset.tiles, rank: dataset.rank, pairs: overlaps, work: work, voxel: voxel, views: views,
      factor: factor)
  }
}
