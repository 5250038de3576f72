/// Byte-level copies between C-order N-D arrays placed in a shared index space, for code that
/// fills one output from many threads (each thread writes a disjoint region through a pointer).
public enum RawCopy {
  /// Copies the voxels of `region ∩ sourceBox ∩ destinationBox` from `source` (C order over
  /// `sourceBox`) to `destination` (C order over `destinationBox`), `elementSize` bytes each.
  /// Nothing else in `destination` is touched.
  public static func copy(
    elementSize: Int, from source: UnsafeRawPointer, sourceBox: Box, to destination: UnsafeMutableRawPointer,
    destinationBox: Box, region: Box? = nil
  ) {
    var shared = sourceBox.intersection(destinationBox)
    if let region { shared = shared.intersection(region) }
    if shared.isEmpty { return }
    let n = shared.rank
    guard n > 0 else {
      destination.copyMemory(from: source, byteCount: elementSize)
      return
    }
    forEachRow(of: shared, in: sourceBox, and: destinationBox) { so, dO, length in
      (destination + dO * elementSize).copyMemory(from: source + so * elementSize, byteCount: length * elementSize)
    }
  }

  /// Calls `body(sourceOffset, destinationOffset, length)` for every row (run along the last
  /// axis) of `region`, with element offsets into C-order arrays over `sourceBox` and
  /// `destinationBox`, which must both contain `region` (rank ≥ 1, region non-empty).
  @inlinable
  public static func forEachRow(
    of region: Box, in sourceBox: Box, and destinationBox: Box, _ body: (Int, Int, Int) -> Void
  ) {
    let n = region.rank
    let srcShape = sourceBox.shape
    let dstShape = destinationBox.shape
    let length = region.upper[n - 1] - region.lower[n - 1]
    var index = region.lower
    while true {
      var so = 0
      var dO = 0
      for d in 0..<n {
        so = so * srcShape[d] + (index[d] - sourceBox.lower[d])
        dO = dO * dstShape[d] + (index[d] - destinationBox.lower[d])
      }
      body(so, dO, length)
      var d = n - 2
      while d >= 0 {
        index[d] += 1
        if index[d] < region.upper[d] { break }
        index[d] = region.lower[d]
        d -= 1
      }
      if d < 0 { return }
    }
  }
}
