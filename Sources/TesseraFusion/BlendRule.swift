import TesseraCore

/// How overlapping views combine into one output voxel: one type per ``BlendMode``.
///
/// Each output voxel has two accumulators, `value` and `weight`. They start at
/// ``initialValue`` and 0; every view that covers the voxel adds its sample `v` (of weight `w`)
/// in the plan's fixed view order; the output voxel is ``result(value:weight:fill:)``, where a
/// weight of 0 means that no view covered it. A rule is a type, not a value: the fusion code is
/// generic over it and picks it once per region (``FusionExecutor/fuse(_:box:resultBox:)``), so
/// its loops are specialised for the rule and none tests the mode per voxel.
protocol BlendRule {
  /// The value accumulator before any view has added to it (the weight starts at 0).
  static var initialValue: Float { get }
  /// Whether a view's samples carry its feathering weight (``CosineRamp``); else the weight
  /// passed to ``add(_:weight:to:_:)`` is 1 and the rule may ignore it.
  static var feathers: Bool { get }
  /// Whether a voxel that has accumulated `weight` takes no more samples, so a kernel may skip
  /// computing them (false unless the rule says otherwise).
  static func isSettled(_ weight: Float) -> Bool
  /// Adds sample `v` of weight `w` to one voxel's accumulators.
  static func add(_ v: Float, weight w: Float, to value: inout Float, _ weight: inout Float)
  /// Adds `sample(i)` of weight `rowWeight · weights[i]` to `value[i]`, `weight[i]` for each i
  /// in `range`: one row of a translated view (by default ``add(_:weight:to:_:)`` per voxel).
  static func addRow(
    _ range: Range<Int>, value: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, rowWeight: Float,
    weights: UnsafePointer<Float>, sample: (Int) -> Float)
  /// The output voxel from its accumulators, or `fill` where no view covered it (`weight` 0).
  static func result(value: Float, weight: Float, fill: Float) -> Float
}

extension BlendRule {
  @inline(__always)
  static func isSettled(_ weight: Float) -> Bool { false }

  @inline(__always)
  static func addRow(
    _ range: Range<Int>, value: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, rowWeight: Float,
    weights: UnsafePointer<Float>, sample: (Int) -> Float
  ) {
    // On pointers (no bounds checks), so the loop vectorises.
    for i in range { add(sample(i), weight: rowWeight * weights[i], to: &value[i], &weight[i]) }
  }

  /// Writes the output voxels of a slab of `count` accumulated voxels to `destination`: each is
  /// ``result(value:weight:fill:)`` converted to `T` (rounded half away from zero, clamped).
  @inline(__always)
  static func finish<T: VoxelElement>(
    _ count: Int, value: UnsafePointer<Float>, weight: UnsafePointer<Float>, fill: Float,
    into destination: UnsafeMutablePointer<T>
  ) {
    // One loop without branches (each rule's result selects), so it vectorises.
    for i in 0..<count { destination[i] = T(clamping: result(value: value[i], weight: weight[i], fill: fill)) }
  }
}

/// `linear`: the feathered average Σ wᵢ·vᵢ / Σ wᵢ, where wᵢ is view i's cosine feathering weight
/// at the voxel (it falls from 1 to nearly 0 towards the view's border, ``CosineRamp``).
enum LinearBlend: BlendRule {
  static let initialValue: Float = 0
  static let feathers = true

  @inline(__always)
  static func add(_ v: Float, weight w: Float, to value: inout Float, _ weight: inout Float) {
    value += w * v
    weight += w
  }

  @inline(__always)
  static func result(value: Float, weight: Float, fill: Float) -> Float {
    // The quotient is computed everywhere and selected, so the slab loop has no branch.
    let q = value / weight
    return weight > 0 ? q : fill
  }
}

/// `mean`: the plain average Σ vᵢ / n of the n views covering the voxel.
enum MeanBlend: BlendRule {
  static let initialValue: Float = 0
  static let feathers = false

  @inline(__always)
  static func add(_ v: Float, weight w: Float, to value: inout Float, _ weight: inout Float) {
    value += v
    weight += 1
  }

  @inline(__always)
  static func result(value: Float, weight: Float, fill: Float) -> Float {
    let q = value / weight
    return weight > 0 ? q : fill
  }
}

/// `max`: the largest sample of the views covering the voxel (the weight only marks coverage).
///
/// A NaN sample never replaces a value, and a first NaN sample stays. The two accumulation forms
/// differ only in which zero a tie of +0 and −0 keeps: a single sample replaces the value only
/// when greater, a row takes `Swift.max` (the later of equal values); each path keeps the form it
/// has always had, so output bytes stay as they were.
enum MaxBlend: BlendRule {
  static let initialValue = -Float.infinity
  static let feathers = false

  @inline(__always)
  static func add(_ v: Float, weight w: Float, to value: inout Float, _ weight: inout Float) {
    if v > value { value = v }
    weight = 1
  }

  @inline(__always)
  static func addRow(
    _ range: Range<Int>, value: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, rowWeight: Float,
    weights: UnsafePointer<Float>, sample: (Int) -> Float
  ) {
    for i in range {
      value[i] = Swift.max(value[i], sample(i))
      weight[i] = 1
    }
  }

  @inline(__always)
  static func result(value: Float, weight: Float, fill: Float) -> Float { weight > 0 ? value : fill }
}

/// `first`: the sample of the first view in the plan's order that covers the voxel (the lowest
/// tile id); later views leave it alone.
enum FirstBlend: BlendRule {
  static let initialValue: Float = 0
  static let feathers = false

  @inline(__always)
  static func isSettled(_ weight: Float) -> Bool { weight > 0 }

  @inline(__always)
  static func add(_ v: Float, weight w: Float, to value: inout Float, _ weight: inout Float) {
    if weight == 0 {
      value = v
      weight = 1
    }
  }

  @inline(__always)
  static func result(value: Float, weight: Float, fill: Float) -> Float { weight > 0 ? value : fill }
}
