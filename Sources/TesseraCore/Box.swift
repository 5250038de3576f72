/// A half-open box of integer voxel indices, `[lower, upper)` on every axis.
///
/// Axes are slowest-first (`z, y, x` in 3D, `y, x` in 2D). A box whose `upper` is not greater
/// than its `lower` on some axis is empty; empty boxes compare by their bounds, so use
/// ``isEmpty`` rather than `==` to test emptiness. The rank is the number of axes and is not fixed
/// by the type: 2D and 3D boxes are the same type, and operations on boxes of different rank trap
/// (a programming error, not an input error).
public struct Box: Hashable, Sendable, CustomStringConvertible {
  /// Inclusive lower corner.
  public var lower: [Int]
  /// Exclusive upper corner.
  public var upper: [Int]

  /// A box from its corners; both must have the same rank.
  public init(lower: [Int], upper: [Int]) {
    precondition(lower.count == upper.count, "Box corners of different rank")
    self.lower = lower
    self.upper = upper
  }

  /// The box `[0, shape)`.
  public init(shape: [Int]) {
    self.init(lower: Array(repeating: 0, count: shape.count), upper: shape)
  }

  /// The box `[origin, origin + shape)`.
  public init(origin: [Int], shape: [Int]) {
    precondition(origin.count == shape.count, "Box origin and shape of different rank")
    self.init(lower: origin, upper: zip(origin, shape).map { $0 + $1 })
  }

  /// Number of axes.
  @inlinable public var rank: Int { lower.count }

  /// Extent per axis, never negative (an empty axis has extent 0).
  public var shape: [Int] { zip(lower, upper).map { Swift.max(0, $1 - $0) } }

  /// True if the box holds no voxel.
  public var isEmpty: Bool { zip(lower, upper).contains { $1 <= $0 } }

  /// Number of voxels (0 when empty).
  public var volume: Int { isEmpty ? 0 : shape.reduce(1, *) }

  /// True if `point` lies inside the box.
  public func contains(_ point: [Int]) -> Bool {
    precondition(point.count == rank, "point rank \(point.count) != box rank \(rank)")
    for d in 0..<rank where point[d] < lower[d] || point[d] >= upper[d] { return false }
    return true
  }

  /// True if every voxel of `other` lies in this box. An empty box is contained in every box.
  public func contains(_ other: Box) -> Bool {
    precondition(other.rank == rank, "box rank \(other.rank) != box rank \(rank)")
    if other.isEmpty { return true }
    for d in 0..<rank where other.lower[d] < lower[d] || other.upper[d] > upper[d] { return false }
    return true
  }

  /// The voxels in both boxes. The result may be empty.
  public func intersection(_ other: Box) -> Box {
    precondition(other.rank == rank, "box rank \(other.rank) != box rank \(rank)")
    return Box(
      lower: zip(lower, other.lower).map { Swift.max($0, $1) },
      upper: zip(upper, other.upper).map { Swift.min($0, $1) })
  }

  /// True if the two boxes share at least one voxel.
  public func intersects(_ other: Box) -> Bool { !intersection(other).isEmpty }

  /// The smallest box containing both boxes (their bounding box; an empty operand is ignored).
  public func union(_ other: Box) -> Box {
    precondition(other.rank == rank, "box rank \(other.rank) != box rank \(rank)")
    if isEmpty { return other }
    if other.isEmpty { return self }
    return Box(
      lower: zip(lower, other.lower).map { Swift.min($0, $1) },
      upper: zip(upper, other.upper).map { Swift.max($0, $1) })
  }

  /// The box moved by `offset` voxels.
  public func translated(by offset: [Int]) -> Box {
    precondition(offset.count == rank, "offset rank \(offset.count) != box rank \(rank)")
    return Box(lower: zip(lower, offset).map { $0 + $1 }, upper: zip(upper, offset).map { $0 + $1 })
  }

  /// The box grown by `margin[d]` voxels on both sides of axis `d` (a negative margin shrinks it).
  public func grown(by margin: [Int]) -> Box {
    precondition(margin.count == rank, "margin rank \(margin.count) != box rank \(rank)")
    return Box(lower: zip(lower, margin).map { $0 - $1 }, upper: zip(upper, margin).map { $0 + $1 })
  }

  /// The box grown by `margin` voxels on both sides of every axis.
  public func grown(by margin: Int) -> Box { grown(by: Array(repeating: margin, count: rank)) }

  public var description: String {
    "[" + (0..<rank).map { "\(lower[$0])..<\(upper[$0])" }.joined(separator: ", ") + "]"
  }
}

extension Box {
  /// Calls `body` with every voxel index of the box, in C order (last axis fastest).
  ///
  /// Meant for tests and planning, not for voxel loops: it allocates one index array per call and
  /// reuses it, so `body` must not keep a reference to it.
  public func forEachIndex(_ body: ([Int]) throws -> Void) rethrows {
    if isEmpty { return }
    var index = lower
    while true {
      try body(index)
      var d = rank - 1
      while d >= 0 {
        index[d] += 1
        if index[d] < upper[d] { break }
        index[d] = lower[d]
        d -= 1
      }
      if d < 0 { return }
    }
  }
}
