import TesseraCore

/// Pair geometry: which tiles overlap, and the boxes of their views a pair reads.
extension TileRegistration {
  /// The pairs of tiles to register: every two tiles (represented by one view each) whose world
  /// bounding boxes overlap by at least `minOverlap` voxels on every axis.
  public static func pairs(_ dataset: Dataset, options: RegistrationOptions) -> [TileOverlap] {
    dataset.tileOverlaps(channel: options.channel, minimumVoxels: options.minOverlap)
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
}
