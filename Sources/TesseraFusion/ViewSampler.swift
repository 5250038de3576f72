import TesseraCore

/// How one view is resampled into one output region and blended by `Rule`: set up once per
/// (region, view), then run over the region's output rows a slab at a time, so that the
/// accumulators stay in cache.
///
/// Pull resampling: output voxel q samples the view at `p = outputToView · q`. The view covers
/// p if p lies in its footprint `[−0.5, n − 0.5)` on every axis; samples in the half-voxel rim
/// clamp to the edge voxel. Linear interpolation is bi/trilinear; nearest rounds half up.
/// Translation-only transforms take a fast path whose weights per axis are constant (subpixel)
/// or absent (integer shift: a copy). 2-D data runs through the same code as one z-plane.
///
/// Rows are numbered in C order over the region's (lifted 3-D) shape: row r is z = r / ny,
/// y = r % ny, and holds nx voxels.
struct ViewSampler<Rule: BlendRule> {
  /// Region and source geometry, lifted to 3-D (a leading axis of extent 1 for 2-D data).
  let outLower: [Int]
  let outShape: [Int]
  let srcLower: [Int]
  let srcShape: [Int]
  /// View shape.
  let n: [Int]
  /// outputToView, 3 × 4, lifted.
  let m: [[Double]]
  /// Feathering width per axis, view voxels.
  let width: [Float]
  let linear: Bool
  /// Tap tables for a translation, nil for a general affine.
  private(set) var axes: TranslationAxes?

  init(
    region: Box, sourceBox: Box, viewShape: [Int], outputToView: AffineTransform, interpolation: Interpolation,
    blendWidth: [Double]
  ) {
    let rank = viewShape.count
    precondition(rank == 2 || rank == 3, "fusion supports 2-D and 3-D views")
    precondition(region.rank == rank && sourceBox.rank == rank)
    func lift<T>(_ a: [T], _ one: T) -> [T] { rank == 3 ? a : [one] + a }
    outLower = lift(region.lower, 0)
    outShape = lift(region.shape, 1)
    srcLower = lift(sourceBox.lower, 0)
    srcShape = lift(sourceBox.shape, 1)
    n = lift(viewShape, 1)
    var m = [[Double]](repeating: [0, 0, 0, 0], count: 3)
    for r in 0..<3 {
      for c in 0...3 {
        if rank == 3 {
          m[r][c] = outputToView[r, c]
        } else if r == 0 || c == 0 {
          m[r][c] = 0  // the lifted z row: p_z = 0
        } else {
          m[r][c] = outputToView[r - 1, c - 1]
        }
      }
    }
    self.m = m
    width = lift(blendWidth.map { Float($0) }, 0)
    linear = interpolation == .linear
    let translationOnly = (0..<3).allSatisfy { r in
      (0..<3).allSatisfy { c in m[r][c] == ((r == c && !(rank == 2 && r == 0)) ? 1 : 0) }
    }
    axes = nil
    if translationOnly { axes = TranslationAxes(self) }
  }

  /// Number of output rows of the region.
  var rows: Int { outShape[0] * outShape[1] }

  /// Adds this view's samples for output rows `rows` to accumulators `value`, `weight` that hold
  /// those rows only (row `rows.lowerBound` at offset 0). `scratch` holds two rows plus 8 voxels.
  /// `source` holds the source box's voxels in C order, of element type `sourceType`. Returns
  /// whether any sample fell inside the view.
  func accumulate(
    rows: Range<Int>, source: UnsafeRawBufferPointer, sourceType: ElementType, value: UnsafeMutablePointer<Float>,
    weight: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) -> Bool {
    precondition(source.count == srcShape.reduce(sourceType.byteCount, *))
    // Dispatch on the element type once; the voxel loops are specialised for it (and the rule).
    return sourceType.dispatch(
      Accumulate(sampler: self, rows: rows, source: source, value: value, weight: weight, scratch: scratch))
  }

  /// ``accumulate(rows:source:sourceType:value:weight:scratch:)`` for the source's element type
  /// (the loops are the sampler's kernels, which take everything as arguments).
  private struct Accumulate: ElementTypeBody {
    let sampler: ViewSampler
    let rows: Range<Int>
    let source: UnsafeRawBufferPointer
    let value: UnsafeMutablePointer<Float>
    let weight: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>

    func run<S: VoxelElement>(_: S.Type) -> Bool {
      let src = source.baseAddress!.assumingMemoryBound(to: S.self)
      if let axes = sampler.axes { return sampler.translationRows(rows, axes, src, value, weight, scratch) }
      return CosineRamp.table.withUnsafeBufferPointer { sampler.affineRows(rows, src, value, weight, $0) }
    }
  }
}
