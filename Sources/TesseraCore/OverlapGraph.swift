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
    let bounds = tileViews.map(\.worldBounds)
    var out: [TileOverlap] = []
    for (i, j) in BoxOverlaps.pairs(lower: bounds.map(\.lower), upper: bounds.map(\.upper)) {
      let (a, b) = (tileViews[i], tileViews[j])
      let lo = zip(bounds[i].lower, bounds[j].lower).map { Swift.max($0, $1) }
      let hi = zip(bounds[i].upper, bounds[j].upper).map { Swift.min($0, $1) }
      let extent = (0..<rank).map { (hi[$0] - lo[$0]) / a.voxelSize[$0] }
      guard extent.allSatisfy({ $0 > minimumVoxels }) else { continue }
      out.append(TileOverlap(tiles: [a.tile, b.tile], lowerUm: lo, upperUm: hi, extentVoxels: extent))
    }
    return out
  }
}

/// Pairs of axis-aligned boxes that overlap, found by sweep and prune.
public enum BoxOverlaps {
  /// Every pair `(i, j)`, `i < j`, of boxes `[lower[k], upper[k])` whose intersection has positive
  /// extent on every axis, in lexicographic order (the order a double loop over `i < j` gives).
  ///
  /// The boxes are sorted along the axis that separates them best (the widest spread of lower
  /// corners relative to the mean box extent), and each box is compared only with those that
  /// start before it ends on that axis: O(n log n + n·k) for n boxes with k neighbours along the
  /// axis, instead of n²/2 comparisons (10,000 tiles: milliseconds instead of seconds).
  public static func pairs(lower: [[Double]], upper: [[Double]]) -> [(Int, Int)] {
    let n = lower.count
    guard n > 1, let rank = lower.first?.count, rank > 0 else { return [] }
    func spread(_ d: Int) -> Double {
      let lows = lower.map { $0[d] }
      let mean = zip(lower, upper).reduce(0.0) { $0 + ($1.1[d] - $1.0[d]) } / Double(n)
      return (lows.max()! - lows.min()!) / max(mean, .leastNormalMagnitude)
    }
    let axis = (0..<rank).max { spread($0) < spread($1) }!
    let order = (0..<n).sorted { (lower[$0][axis], $0) < (lower[$1][axis], $1) }
    var out: [(Int, Int)] = []
    for (k, i) in order.enumerated() {
      var m = k + 1
      while m < n, lower[order[m]][axis] < upper[i][axis] {
        let j = order[m]
        m += 1
        var overlaps = true
        for d in 0..<rank where min(upper[i][d], upper[j][d]) <= max(lower[i][d], lower[j][d]) {
          overlaps = false
          break
        }
        if overlaps { out.append((min(i, j), max(i, j))) }
      }
    }
    return out.sorted { $0 < $1 }
  }
}
