import TesseraCore

extension OMEZarrImage {
  /// Per channel: min/max of the type (data range for floats), start/end at the 0.1 and 99.9
  /// percentiles of the coarsest level (fill excluded), estimated from an evenly spread subset of
  /// its blocks (about 2 M voxels per channel at most, every 8th voxel of them kept), read one
  /// block at a time, so time and memory stay bounded whatever the level's size.
  func displayWindows() throws -> [[String: Any]] {
    let coarsest = levels.last!
    let lead = spec.leadingAxes.count
    let blocks = coarsest.grid.allChunks
    let blockVoxels = coarsest.metadata.chunkShape.reduce(1, *)
    let perChannel = max(1, blocks.count / spec.channels.count)
    let keepEvery = max(1, perChannel * blockVoxels / 2_000_000)
    let voxelStep = 8
    var samples = [[Double]](repeating: [], count: spec.channels.count)
    var row: [Double] = []
    for (n, block) in blocks.enumerated() where n % keepEvery == 0 {
      guard let data = try coarsest.readBlock(block) else { continue }
      let c = block[lead - 1]
      let clipped = coarsest.grid.box(ofChunk: block)
      // Every `voxelStep`-th voxel of each row inside the array (rows converted through a
      // reused row buffer).
      data.withUnsafeBytes { src in
        clipped.forEachRowStart(in: data.box) { offset, length in
          if row.count < length { row = [Double](repeating: 0, count: length) }
          row.withUnsafeMutableBytes { r in
            ElementConversion.convert(
              length, from: data.elementType, src.baseAddress! + offset * data.elementType.byteCount, to: .float64,
              r.baseAddress!)
          }
          for i in Swift.stride(from: 0, to: length, by: voxelStep) {
            let v = row[i]
            if v != spec.fillValue && !v.isNaN { samples[c].append(v) }
          }
        }
      }
    }
    return samples.map { channel in
      // Percentiles from an evenly thinned subset of at most 200 k samples (sorting millions would
      // cost more than the fusion of a small image).
      let step = max(1, channel.count / 200_000)
      let thinned = Swift.stride(from: 0, to: channel.count, by: step).map { channel[$0] }
      let (lo, hi) = Self.percentiles(thinned, 0.001, 0.999, of: spec.dataType)
      let range =
        spec.dataType.isFloatingPoint
        ? (thinned.min() ?? 0)...(thinned.max() ?? 1) : spec.dataType.range
      return ["min": range.lowerBound, "max": range.upperBound, "start": lo, "end": max(hi, lo + 1e-9)]
    }
  }

  /// The order statistics at ranks ⌊(n − 1)·p⌋ and ⌊(n − 1)·q⌋ of `values` (0 and 1 when empty),
  /// 0 ≤ p ≤ q ≤ 1: for integer types of at most 16 bits by counting the values (linear time),
  /// else by sorting.
  public static func percentiles(_ values: [Double], _ p: Double, _ q: Double, of type: ElementType) -> (Double, Double)
  {
    precondition(0 <= p && p <= q && q <= 1, "percentiles \(p), \(q) out of order")
    guard !values.isEmpty else { return (0, 1) }
    let ranks = [Int(Double(values.count - 1) * p), Int(Double(values.count - 1) * q)]
    guard !type.isFloatingPoint, type.byteCount <= 2 else {
      let sorted = values.sorted()
      return (sorted[ranks[0]], sorted[ranks[1]])
    }
    let lowest = Int(type.range.lowerBound)
    var counts = [Int](repeating: 0, count: Int(type.range.upperBound) - lowest + 1)
    for v in values { counts[Int(v) - lowest] += 1 }
    var found: [Double] = []
    var seen = 0
    var r = 0
    for (i, n) in counts.enumerated() where n > 0 {
      seen += n
      while r < ranks.count, ranks[r] < seen {
        found.append(Double(i + lowest))
        r += 1
      }
      if r == ranks.count { break }
    }
    return (found[0], found[1])
  }
}

extension Box {
  /// Calls `body(offset, length)` for each row of this box inside the C-order array over `outer`.
  func forEachRowStart(in outer: Box, _ body: (Int, Int) -> Void) {
    RawCopy.forEachRow(of: self, in: outer, and: self) { offset, _, length in body(offset, length) }
  }
}
