/// An affine map of N-dimensional space, `p ↦ A·p + t`, stored as the top N rows of the
/// homogeneous (N+1)×(N+1) matrix (the last row is always `0 … 0 1`).
///
/// Coordinates are continuous and slowest-axis-first, like every index in Tessera. A voxel index
/// `i` names the voxel whose centre is at the continuous coordinate `i` and whose footprint is
/// `[i - 0.5, i + 0.5)` on each axis (the imglib2/BigStitcher and scipy.ndimage convention).
///
/// Transforms are named by direction (`viewToWorld`, `outputToView`) and composed as
/// `compose(bToC, aToB)`, which applies `aToB` first.
public struct AffineTransform: Hashable, Sendable, CustomStringConvertible {
  /// Number of spatial axes.
  public let rank: Int
  /// Row-major N×(N+1): row `r` holds `A[r][0..<N]` then `t[r]`.
  public private(set) var entries: [Double]

  /// The identity of the given rank.
  public init(identity rank: Int) {
    precondition(rank >= 0)
    self.rank = rank
    var e = [Double](repeating: 0, count: rank * (rank + 1))
    for r in 0..<rank { e[r * (rank + 1) + r] = 1 }
    self.entries = e
  }

  /// A pure translation by `offset`.
  public init(translation offset: [Double]) {
    self.init(identity: offset.count)
    for r in 0..<rank { entries[r * (rank + 1) + rank] = offset[r] }
  }

  /// A pure (axis-aligned) scaling by `factors`.
  public init(scale factors: [Double]) {
    self.init(identity: factors.count)
    for r in 0..<rank { entries[r * (rank + 1) + r] = factors[r] }
  }

  /// `p ↦ scale ⊙ p + translation`, the form of every output grid and voxel-size calibration.
  public init(scale factors: [Double], translation offset: [Double]) {
    precondition(factors.count == offset.count, "scale and translation of different rank")
    self.init(scale: factors)
    for r in 0..<rank { entries[r * (rank + 1) + rank] = offset[r] }
  }

  /// A transform from a linear part (N×N, row-major rows) and a translation (N).
  ///
  /// - Throws: ``GeometryError/rankMismatch(expected:got:what:)`` when the sizes disagree.
  public init(linear: [[Double]], translation: [Double]) throws(GeometryError) {
    let n = translation.count
    guard linear.count == n else {
      throw .rankMismatch(expected: n, got: linear.count, what: "rows of the linear part")
    }
    self.init(identity: n)
    for r in 0..<n {
      guard linear[r].count == n else {
        throw .rankMismatch(expected: n, got: linear[r].count, what: "columns of linear row \(r)")
      }
      for c in 0..<n { entries[r * (n + 1) + c] = linear[r][c] }
      entries[r * (n + 1) + n] = translation[r]
    }
  }

  /// A transform from a homogeneous matrix given as rows: either N+1 rows of N+1 values whose
  /// last row is `0 … 0 1`, or just the top N rows of N+1 values (the BigDataViewer form).
  ///
  /// - Throws: ``GeometryError`` when the matrix is not rectangular of a valid size, the last row
  ///   is not `0 … 0 1`, or an entry is not finite.
  public init(matrix rows: [[Double]]) throws(GeometryError) {
    guard let width = rows.first?.count, width >= 1 else {
      throw .invalidMatrix("an affine matrix needs at least one row")
    }
    let n = width - 1
    guard rows.count == n || rows.count == n + 1 else {
      throw .rankMismatch(expected: n + 1, got: rows.count, what: "rows of a \(width)-column affine matrix")
    }
    for (r, row) in rows.enumerated() where row.count != width {
      throw .rankMismatch(expected: width, got: row.count, what: "columns of matrix row \(r)")
    }
    if rows.count == n + 1 {
      let last = rows[n]
      for c in 0..<width where last[c] != (c == n ? 1 : 0) {
        throw .invalidMatrix("the last row of a homogeneous matrix must be 0 … 0 1, got \(last)")
      }
    }
    self.init(identity: n)
    for r in 0..<n {
      for c in 0...n { entries[r * (n + 1) + c] = rows[r][c] }
    }
    guard entries.allSatisfy(\.isFinite) else {
      throw .invalidMatrix("an affine matrix must not contain NaN or infinity")
    }
  }

  /// Entry `(row, column)` of the homogeneous matrix; `row` may be `rank` (the constant last row).
  @inlinable public subscript(row: Int, column: Int) -> Double {
    if row == rank { return column == rank ? 1 : 0 }
    return entries[row * (rank + 1) + column]
  }

  /// The linear part `A` as rows.
  public var linear: [[Double]] {
    (0..<rank).map { r in (0..<rank).map { c in self[r, c] } }
  }

  /// The translation part `t` (the image of the origin).
  public var translation: [Double] { (0..<rank).map { self[$0, rank] } }

  /// The (N+1)×(N+1) homogeneous matrix as rows.
  public var homogeneousMatrix: [[Double]] {
    (0...rank).map { r in (0...rank).map { c in self[r, c] } }
  }

  /// True if the linear part is exactly the identity: the transform only shifts.
  public var isTranslationOnly: Bool {
    for r in 0..<rank {
      for c in 0..<rank where self[r, c] != (r == c ? 1 : 0) { return false }
    }
    return true
  }

  /// True if the linear part is the identity within `tolerance` per entry.
  public func isTranslationOnly(tolerance: Double) -> Bool {
    for r in 0..<rank {
      for c in 0..<rank where abs(self[r, c] - (r == c ? 1 : 0)) > tolerance { return false }
    }
    return true
  }

  /// True if the linear part is diagonal (scale and translation only).
  public var isAxisAligned: Bool {
    for r in 0..<rank {
      for c in 0..<rank where r != c && self[r, c] != 0 { return false }
    }
    return true
  }

  /// The image of a point.
  public func apply(_ point: [Double]) -> [Double] {
    precondition(point.count == rank, "point rank \(point.count) != transform rank \(rank)")
    var out = [Double](repeating: 0, count: rank)
    for r in 0..<rank {
      var s = entries[r * (rank + 1) + rank]
      for c in 0..<rank { s += entries[r * (rank + 1) + c] * point[c] }
      out[r] = s
    }
    return out
  }

  /// The image of an integer point (a voxel centre).
  public func apply(_ point: [Int]) -> [Double] { apply(point.map(Double.init)) }

  /// The image of a direction vector (the linear part only; translation ignored).
  public func applyLinear(_ vector: [Double]) -> [Double] {
    precondition(vector.count == rank, "vector rank \(vector.count) != transform rank \(rank)")
    return (0..<rank).map { r in (0..<rank).reduce(0.0) { $0 + self[r, $1] * vector[$1] } }
  }

  /// Determinant of the linear part.
  public var determinant: Double {
    let (lu, _, sign) = Self.luDecompose(linear)
    guard !lu.isEmpty else { return rank == 0 ? 1 : 0 }
    return (0..<rank).reduce(Double(sign)) { $0 * lu[$1][$1] }
  }

  public var description: String {
    "Affine"
      + (0..<rank).map { r in "[" + (0...rank).map { "\(self[r, $0])" }.joined(separator: ", ") + "]" }
      .joined()
  }
}

/// `bToC ∘ aToB`: the transform that applies `aToB` first, then `bToC`.
public func compose(_ bToC: AffineTransform, _ aToB: AffineTransform) -> AffineTransform {
  precondition(bToC.rank == aToB.rank, "composing transforms of rank \(bToC.rank) and \(aToB.rank)")
  let n = aToB.rank
  var e = [Double](repeating: 0, count: n * (n + 1))
  for r in 0..<n {
    for c in 0...n {
      var s = c == n ? bToC[r, n] : 0
      for k in 0..<n { s += bToC[r, k] * aToB[k, c] }
      e[r * (n + 1) + c] = s
    }
  }
  return AffineTransform(uncheckedRank: n, entries: e)
}

extension AffineTransform {
  /// Builds from raw entries without validation (`entries.count == rank * (rank + 1)`).
  @usableFromInline init(uncheckedRank rank: Int, entries: [Double]) {
    assert(entries.count == rank * (rank + 1))
    self.rank = rank
    self.entries = entries
  }

  /// Relative size of the smallest pivot, below which a matrix is treated as singular.
  public static let singularityTolerance = 1e-12

  /// The inverse transform.
  ///
  /// Gaussian elimination with partial pivoting on the linear part.
  /// - Throws: ``GeometryError/singular(_:)`` when the linear part is singular or so badly
  ///   conditioned that a pivot falls below ``singularityTolerance`` times the largest entry.
  public func inverse() throws(GeometryError) -> AffineTransform {
    let n = rank
    let (lu, perm, _) = Self.luDecompose(linear)
    guard !lu.isEmpty || n == 0 else {
      throw .singular("cannot invert \(self): its linear part is singular (determinant ≈ 0)")
    }
    // Solve A·X = I column by column.
    var inv = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
    for col in 0..<n {
      var y = [Double](repeating: 0, count: n)
      for i in 0..<n {
        var s = perm[i] == col ? 1.0 : 0.0
        for k in 0..<i { s -= lu[i][k] * y[k] }
        y[i] = s
      }
      var x = [Double](repeating: 0, count: n)
      for i in stride(from: n - 1, through: 0, by: -1) {
        var s = y[i]
        for k in (i + 1)..<n { s -= lu[i][k] * x[k] }
        x[i] = s / lu[i][i]
      }
      for r in 0..<n { inv[r][col] = x[r] }
    }
    let t = translation
    let invT = (0..<n).map { r in -(0..<n).reduce(0.0) { $0 + inv[r][$1] * t[$1] } }
    var e = [Double](repeating: 0, count: n * (n + 1))
    for r in 0..<n {
      for c in 0..<n { e[r * (n + 1) + c] = inv[r][c] }
      e[r * (n + 1) + n] = invT[r]
    }
    return AffineTransform(uncheckedRank: n, entries: e)
  }

  /// LU decomposition with partial pivoting: `P·A = L·U` packed in one matrix. Returns an empty
  /// matrix when `A` is (numerically) singular.
  static func luDecompose(_ a: [[Double]]) -> (lu: [[Double]], perm: [Int], sign: Int) {
    let n = a.count
    var m = a
    var perm = Array(0..<n)
    var sign = 1
    let scale = a.joined().reduce(0.0) { Swift.max($0, abs($1)) }
    guard scale > 0 || n == 0 else { return ([], perm, sign) }
    for k in 0..<n {
      var p = k
      for i in (k + 1)..<n where abs(m[i][k]) > abs(m[p][k]) { p = i }
      if abs(m[p][k]) <= singularityTolerance * scale || !m[p][k].isFinite { return ([], perm, sign) }
      if p != k {
        m.swapAt(p, k)
        perm.swapAt(p, k)
        sign = -sign
      }
      for i in (k + 1)..<n {
        let f = m[i][k] / m[k][k]
        m[i][k] = f
        for j in (k + 1)..<n { m[i][j] -= f * m[k][j] }
      }
    }
    return (m, perm, sign)
  }
}

extension AffineTransform {
  /// Tolerance used to absorb floating-point noise when rounding transformed coordinates to voxel
  /// indices: a coordinate within this distance of a voxel boundary counts as on it.
  public static let indexTolerance = 1e-6

  /// The lower and upper corners of the axis-aligned continuous bounding box of the images of
  /// `points`' convex hull, given by its corner points.
  public func continuousBounds(ofCorners lo: [Double], _ hi: [Double]) -> (lower: [Double], upper: [Double]) {
    let n = rank
    var outLo = translation
    var outHi = translation
    // For an affine map the extremes over a box are reached at corners; per output axis they are
    // the sums of per-input-axis extremes (the map is separable term by term).
    for r in 0..<n {
      for c in 0..<n {
        let a = self[r, c]
        let u = a * lo[c]
        let v = a * hi[c]
        outLo[r] += Swift.min(u, v)
        outHi[r] += Swift.max(u, v)
      }
    }
    return (outLo, outHi)
  }

  /// The continuous bounding box of the voxel *centres* of `box` after this transform: the
  /// smallest axis-aligned region holding the image of every centre. Empty boxes have no bounds.
  public func centreBounds(of box: Box) -> (lower: [Double], upper: [Double])? {
    precondition(box.rank == rank, "box rank \(box.rank) != transform rank \(rank)")
    if box.isEmpty { return nil }
    return continuousBounds(
      ofCorners: box.lower.map(Double.init), box.upper.map { Double($0 - 1) })
  }

  /// The integer bounding box of a transformed box, under the voxel-centre convention.
  ///
  /// `box`'s continuous footprint is `[lower - 0.5, upper - 0.5)` on each axis. The result is the
  /// smallest box of target voxels whose footprints cover the transformed footprint: every point
  /// of the image lies in the result's footprint, and no side can move inward without losing part
  /// of the image. The identity maps a box to itself; a shift by half a voxel grows it by one.
  /// Coordinates within ``indexTolerance`` of a voxel boundary are snapped to it, so that
  /// round-off in a composed transform does not add a voxel.
  /// An empty box maps to an empty box at the origin.
  public func boundingBox(of box: Box) -> Box {
    precondition(box.rank == rank, "box rank \(box.rank) != transform rank \(rank)")
    if box.isEmpty { return Box(shape: Array(repeating: 0, count: rank)) }
    let (lo, hi) = continuousBounds(
      ofCorners: box.lower.map { Double($0) - 0.5 }, box.upper.map { Double($0) - 0.5 })
    // The image spans [a, b). Voxel j's footprint is [j - 0.5, j + 0.5): the first voxel is the
    // one containing a, floor(a + 0.5); the last is the largest j with j - 0.5 < b, so the
    // exclusive upper bound is ceil(b + 0.5).
    let lower = lo.map { Int((($0 + 0.5) + Self.indexTolerance).rounded(.down)) }
    let upper = hi.map { Int((($0 + 0.5) - Self.indexTolerance).rounded(.up)) }
    return Box(lower: lower, upper: zip(lower, upper).map { Swift.max($0 + 1, $1) })
  }
}

/// Errors of geometric inputs: ranks that disagree, singular or malformed matrices.
public enum GeometryError: Error, Equatable, Sendable, CustomStringConvertible {
  case rankMismatch(expected: Int, got: Int, what: String)
  case singular(String)
  case invalidMatrix(String)

  public var description: String {
    switch self {
    case .rankMismatch(let expected, let got, let what):
      "rank mismatch: expected \(expected) \(what), got \(got)"
    case .singular(let message), .invalidMatrix(let message): message
    }
  }
}
