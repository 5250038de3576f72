/// A regular grid of chunks over an array: the array `[0, shape)` is cut into chunks of
/// `chunkShape`, chunk index `k` covering `[k * chunkShape, (k + 1) * chunkShape)` clipped to the
/// array (edge chunks are smaller in the array, full-size on disk: that is the writer's business).
///
/// The chunk index of a coordinate is floor division by the chunk shape. Chunks are enumerated in
/// C order (last axis fastest), and the *linear* index of a chunk is its position in that order.
public struct ChunkGrid: Hashable, Sendable, CustomStringConvertible {
  /// Whether `outer` holds whole `inner` blocks: same rank, every extent a positive multiple (the
  /// rule for Zarr shards of inner chunks).
  public static func holdsWhole(_ inner: [Int], in outer: [Int]) -> Bool {
    outer.count == inner.count && zip(outer, inner).allSatisfy { $1 > 0 && $0 > 0 && $0 % $1 == 0 }
  }

  /// The array's extent.
  public let shape: [Int]
  /// The extent of one (interior) chunk; every entry is positive.
  public let chunkShape: [Int]
  /// Chunks per axis: `ceil(shape / chunkShape)`.
  public let gridShape: [Int]

  /// - Throws: ``GeometryError`` when the ranks differ, a chunk extent is not positive, or an
  ///   array extent is negative.
  public init(shape: [Int], chunkShape: [Int]) throws(GeometryError) {
    guard shape.count == chunkShape.count else {
      throw .rankMismatch(expected: shape.count, got: chunkShape.count, what: "chunk shape axes")
    }
    guard chunkShape.allSatisfy({ $0 > 0 }) else {
      throw .invalidMatrix("chunk shape \(chunkShape) must be positive on every axis")
    }
    guard shape.allSatisfy({ $0 >= 0 }) else {
      throw .invalidMatrix("array shape \(shape) must not be negative")
    }
    self.shape = shape
    self.chunkShape = chunkShape
    self.gridShape = zip(shape, chunkShape).map { $0 / $1 + ($0 % $1 == 0 ? 0 : 1) }  // no overflow near Int.max
  }

  @inlinable public var rank: Int { shape.count }

  /// The whole array as a box.
  public var bounds: Box { Box(shape: shape) }

  /// Number of chunks in the grid.
  public var chunkCount: Int { gridShape.reduce(1, *) }

  /// The box of array voxels in chunk `index`, clipped to the array.
  public func box(ofChunk index: [Int]) -> Box {
    precondition(index.count == rank, "chunk index rank \(index.count) != grid rank \(rank)")
    let lower = zip(index, chunkShape).map { $0 * $1 }
    let upper = (0..<rank).map { Swift.min(lower[$0] + chunkShape[$0], shape[$0]) }
    return Box(lower: lower, upper: upper)
  }

  /// The full, unclipped box of chunk `index` (what a chunk occupies on disk).
  public func fullBox(ofChunk index: [Int]) -> Box {
    Box(origin: zip(index, chunkShape).map { $0 * $1 }, shape: chunkShape)
  }

  /// The chunk containing a voxel (floor division; works for coordinates outside the array).
  public func chunk(containing point: [Int]) -> [Int] {
    zip(point, chunkShape).map { Self.floorDiv($0, $1) }
  }

  /// The box of chunk indices whose chunks intersect `box` (clipped to the grid).
  public func chunkRange(intersecting box: Box) -> Box {
    precondition(box.rank == rank, "box rank \(box.rank) != grid rank \(rank)")
    let clipped = box.intersection(bounds)
    if clipped.isEmpty { return Box(shape: Array(repeating: 0, count: rank)) }
    return Box(
      lower: zip(clipped.lower, chunkShape).map { Self.floorDiv($0, $1) },
      upper: zip(clipped.upper, chunkShape).map { Self.floorDiv($0 - 1, $1) + 1 })
  }

  /// The indices of the chunks that intersect `box`, in C order.
  public func chunks(intersecting box: Box) -> [[Int]] {
    var out: [[Int]] = []
    let range = chunkRange(intersecting: box)
    out.reserveCapacity(range.volume)
    range.forEachIndex { out.append($0) }
    return out
  }

  /// All chunk indices in C order.
  public var allChunks: [[Int]] { chunks(intersecting: bounds) }

  /// The position of chunk `index` in C order.
  public func linearIndex(ofChunk index: [Int]) -> Int {
    precondition(index.count == rank, "chunk index rank \(index.count) != grid rank \(rank)")
    var linear = 0
    for d in 0..<rank {
      precondition(index[d] >= 0 && index[d] < gridShape[d], "chunk index \(index) outside grid \(gridShape)")
      linear = linear * gridShape[d] + index[d]
    }
    return linear
  }

  /// The chunk at position `linear` in C order.
  public func chunkIndex(linear: Int) -> [Int] {
    precondition(linear >= 0 && linear < chunkCount, "linear chunk index \(linear) outside 0..<\(chunkCount)")
    var rest = linear
    var index = [Int](repeating: 0, count: rank)
    for d in stride(from: rank - 1, through: 0, by: -1) {
      index[d] = rest % gridShape[d]
      rest /= gridShape[d]
    }
    return index
  }

  /// Floor division (rounds toward negative infinity), for a positive divisor.
  @inlinable public static func floorDiv(_ a: Int, _ b: Int) -> Int {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
  }

  public var description: String { "ChunkGrid(shape: \(shape), chunks: \(chunkShape))" }
}
