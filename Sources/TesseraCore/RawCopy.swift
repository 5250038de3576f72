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
    let srcShape = sourceBox.shape
    let dstShape = destinationBox.shape
    let rowBytes = (shared.upper[n - 1] - shared.lower[n - 1]) * elementSize
    var index = shared.lower
    while true {
      var so = 0
      var dO = 0
      for d in 0..<n {
        so = so * srcShape[d] + (index[d] - sourceBox.lower[d])
        dO = dO * dstShape[d] + (index[d] - destinationBox.lower[d])
      }
      (destination + dO * elementSize).copyMemory(from: source + so * elementSize, byteCount: rowBytes)
      var d = n - 2
      while d >= 0 {
        index[d] += 1
        if index[d] < shared.upper[d] { break }
        index[d] = shared.lower[d]
        d -= 1
      }
      if d < 0 { return }
    }
  }
}
