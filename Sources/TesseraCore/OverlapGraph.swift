/// Two tiles whose world bounding boxes overlap.
public struct TileOverlap: Sendable, Hashable, Codable {
  /// The two tile ids, smaller first.
  public var tiles: [Int]
  /// Lower corner of the overlap in world µm (z, y, x).
  public var lowerUm: [Double]
  /// Upper corner of the overlap in world µm.
  public var upperUm: [Double]
  /// Extent of the overlap per axis in voxels of the first tile's view.
  public var extentVoxels: [Double]

  /// Number of (first-tile) voxels in the overlap.
  public var voxelCount: Int { Int(extentVoxels.reduce(1.0) { $0 * $1.rounded() }) }
}

extension Dataset {
  /// The overlap graph of the tiles: every pair of tiles whose world bounding boxes overlap by
  /// more than `minimumVoxels` voxels on every axis.
  ///
  /// Each tile is represented by its view of `channel` (default: the first channel) at the first
  /// timepoint, or by its first view when it has none of that channel. Bounding boxes are
  /// axis-aligned in world space, so for rotated tiles the overlap is an upper bound.
  public func tileOverlaps(channel: Int? = nil, minimumVoxels: Double = 0) -> [TileOverlap] {
    let reference = channel ?? channels.first ?? 0
    let timepoint = timepoints.first ?? 0
    var representative: [Int: View] = [:]
    for v in views where v.id.timepoint == timepoint {
      if let existing = representative[v.tile], existing.channel == reference { continue }
      if representative[v.tile] == nil || v.channel == reference { representative[v.tile] = v }
    }
    let tileViews = representative.values.sorted { $0.tile < $1.tile }
    var out: [TileOverlap] = []
    for i in tileViews.indices {
      let a = tileViews[i]
      let (alo, ahi) = a.worldBounds
      for b in tileViews[(i + 1)...] {
        let (blo, bhi) = b.worldBounds
        let lo = zip(alo, blo).map { Swift.max($0, $1) }
        let hi = zip(ahi, bhi).map { Swift.min($0, $1) }
        let extent = (0..<rank).map { (hi[$0] - lo[$0]) / a.voxelSize[$0] }
        guard extent.allSatisfy({ $0 > minimumVoxels }) else { continue }
        out.append(TileOverlap(tiles: [a.tile, b.tile], lowerUm: lo, upperUm: hi, extentVoxels: extent))
      }
    }
    return out
  }
}
