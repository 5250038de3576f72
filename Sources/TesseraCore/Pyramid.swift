/// Multi-resolution pyramids: which axes halve at each level.
public enum Pyramid {
  /// Cumulative downsampling factors per level (level 0 is all ones), slowest axis first.
  ///
  /// y and x halve at every level. In 3D, z halves too while that leaves its voxels no coarser
  /// than y and x after the step (so an anisotropic stack first becomes isotropic, then shrinks
  /// evenly) — BigStitcher's and OME-Zarr's usual convention.
  public static func factors(levels: Int, voxelSize: [Double]) -> [[Int]] {
    let rank = voxelSize.count
    var out = [Array(repeating: 1, count: rank)]
    for _ in 1..<max(1, levels) {
      var next = out.last!
      for d in next.indices where !(rank == 3 && d == 0) { next[d] *= 2 }
      if rank == 3, voxelSize[0] * Double(next[0] * 2) <= voxelSize[1] * Double(next[1]) { next[0] *= 2 }
      out.append(next)
    }
    return out
  }

  /// Shape of each level: the level-0 shape divided by the factors, rounded up (edge blocks
  /// average what they hold).
  public static func shapes(_ shape: [Int], factors: [[Int]]) -> [[Int]] {
    factors.map { f in zip(shape, f).map { ($0 + $1 - 1) / $1 } }
  }

  /// Enough levels that the coarsest is at most `overview` voxels along y and x (at least 1).
  public static func levelsToReach(overview: Int, shape: [Int], voxelSize: [Double], maximum: Int = 12) -> Int {
    var levels = 1
    while levels < maximum {
      let f = factors(levels: levels, voxelSize: voxelSize).last!
      let s = shapes(shape, factors: [f])[0]
      if s.suffix(2).allSatisfy({ $0 <= overview }) { break }
      levels += 1
    }
    return levels
  }
}
