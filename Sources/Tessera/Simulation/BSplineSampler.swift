import Foundation

// Cubic B-spline interpolation with the exact prefilter (Unser, Aldroubi & Eden 1991, "Fast
// B-spline transforms for continuous image representation and approximation", IEEE PAMI 13(3);
// the recursive form of Thévenaz, Blu & Unser 2000, "Interpolation revisited", IEEE TMI 19(7)).
//
// The continuous image is f(x) = Σ_k c[k] β³(x − k), with β³ the centred cubic B-spline. Choosing
// the coefficients c so that f(k) = s[k] for every sample k is a convolution of s with the
// inverse of the filter (1/6, 4/6, 1/6): along each axis, a causal and an anti-causal first-order
// recursion with the pole z = √3 − 2 and the gain (1 − z)(1 − 1/z) = 6, with mirror-symmetric
// boundaries (s[−k] = s[k], s[N−1+k] = s[N−1−k]). The causal recursion starts from the exact
// mirrored sum (for short lines) or the sum truncated where zᵏ falls below 10⁻¹⁶ (|z|²⁸ ≈ 10⁻¹⁶);
// the anti-causal one from its closed form. Interpolating then evaluates four weights per axis.
//
// Every operation here is separable and the volumes are sampled on axis-aligned grids, so a
// resampling is a sequence of one-dimensional sparse linear maps (``AxisOperator``), applied one
// axis at a time to the smallest box of coefficients the output needs. Computation is in Double.

/// A linear map along one axis of an N-D array: output sample i = Σ weight · input[index] over
/// `rows[i]`. Indices are into the full input axis (boundaries already folded in).
public struct AxisOperator: Sendable, Hashable {
  /// One (input index, weight) pair.
  public struct Tap: Sendable, Hashable {
    public var index: Int
    public var weight: Double
  }

  /// Length of the input axis.
  public var inputCount: Int
  /// One list of taps per output sample.
  public var rows: [[Tap]]

  public var outputCount: Int { rows.count }

  /// Mirror-symmetric index (whole-sample symmetry, period 2N − 2) into an axis of length n.
  static func mirror(_ k: Int, _ n: Int) -> Int {
    guard n > 1 else { return 0 }
    let period = 2 * n - 2
    var m = k % period
    if m < 0 { m += period }
    return m < n ? m : period - m
  }

  /// Cubic B-spline evaluation at continuous `positions` (sample index units, voxel i's centre
  /// at i) of the coefficients along an axis of `count` samples; outside [0, count − 1] the
  /// image is mirrored.
  public static func cubicBSpline(positions: [Double], count: Int) -> AxisOperator {
    AxisOperator(
      inputCount: count,
      rows: positions.map { x in
        let i = x.rounded(.down)
        let t = x - i
        let t2 = t * t
        let t3 = t2 * t
        let u = 1 - t
        let w = [u * u * u / 6, (4 - 6 * t2 + 3 * t3) / 6, (1 + 3 * t + 3 * t2 - 3 * t3) / 6, t3 / 6]
        var taps: [Tap] = []
        for k in 0..<4 where w[k] != 0 {
          let index = mirror(Int(i) - 1 + k, count)
          if let j = taps.firstIndex(where: { $0.index == index }) {
            taps[j].weight += w[k]
          } else {
            taps.append(Tap(index: index, weight: w[k]))
          }
        }
        return taps
      })
  }

  /// The mean over a footprint `width` samples wide centred on each sample (of the
  /// piecewise-constant image: sample k covers [k − ½, k + ½), partial samples weighted by their
  /// overlap), mirrored at the ends; the identity for `width` ≤ 1.
  public static func boxAverage(width: Double, count: Int) -> AxisOperator {
    let half = max(width, 1) / 2
    let reach = Int((half - 0.5).rounded(.up))
    var kernel: [Double] = []
    for k in -reach...reach {
      let lo = max(Double(k) - 0.5, -half)
      let hi = min(Double(k) + 0.5, half)
      kernel.append(max(0, hi - lo) / (2 * half))
    }
    return AxisOperator(
      inputCount: count,
      rows: (0..<count).map { i in
        var taps: [Tap] = []
        for (o, w) in kernel.enumerated() where w > 0 {
          let index = mirror(i + o - reach, count)
          if let j = taps.firstIndex(where: { $0.index == index }) {
            taps[j].weight += w
          } else {
            taps.append(Tap(index: index, weight: w))
          }
        }
        return taps
      })
  }

  /// The smallest and largest input index any row reads.
  var support: ClosedRange<Int> {
    let indices = rows.flatMap { $0.map(\.index) }
    return (indices.min() ?? 0)...(indices.max() ?? 0)
  }
}

/// A dense N-D array of Doubles (C order), the working type of the simulation's resampling.
public struct DoubleVolume: Sendable, Hashable {
  public var shape: [Int]
  public var values: [Double]

  public init(shape: [Int], values: [Double]) {
    precondition(shape.reduce(1, *) == values.count, "shape and value count differ")
    self.shape = shape
    self.values = values
  }

  /// Elements between neighbours along `axis`.
  func elementStride(_ axis: Int) -> Int { shape[(axis + 1)...].reduce(1, *) }

  /// The sub-array `lower ..< lower + extent` (per axis).
  func cropped(lower: [Int], extent: [Int]) -> DoubleVolume {
    if lower.allSatisfy({ $0 == 0 }), extent == shape { return self }
    let n = shape.count
    var out = [Double](repeating: 0, count: extent.reduce(1, *))
    let rowLength = extent[n - 1]
    let outer = extent[0..<(n - 1)].reduce(1, *)
    var index = [Int](repeating: 0, count: n)
    let strides = (0..<n).map(elementStride)
    values.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for row in 0..<outer {
          var r = row
          for d in stride(from: n - 2, through: 0, by: -1) {
            index[d] = r % extent[d]
            r /= extent[d]
          }
          var offset = lower[n - 1]
          for d in 0..<(n - 1) { offset += (lower[d] + index[d]) * strides[d] }
          for k in 0..<rowLength { dst[row * rowLength + k] = src[offset + k] }
        }
      }
    }
    return DoubleVolume(shape: extent, values: out)
  }

  /// Applies `op` along `axis` (`op.inputCount` must be `shape[axis]`).
  public func applying(_ op: AxisOperator, along axis: Int) -> DoubleVolume {
    precondition(op.inputCount == shape[axis], "operator length \(op.inputCount) ≠ axis length \(shape[axis])")
    let inner = elementStride(axis)
    let nIn = shape[axis]
    let nOut = op.outputCount
    let outer = shape[0..<axis].reduce(1, *)
    var outShape = shape
    outShape[axis] = nOut
    var out = [Double](repeating: 0, count: outer * nOut * inner)
    values.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for o in 0..<outer {
          for (i, taps) in op.rows.enumerated() {
            let d = (o * nOut + i) * inner
            for tap in taps {
              let s = (o * nIn + tap.index) * inner
              let w = tap.weight
              for j in 0..<inner { dst[d + j] += w * src[s + j] }
            }
          }
        }
      }
    }
    return DoubleVolume(shape: outShape, values: out)
  }

  /// Applies one operator per axis (nil: keep the axis), reading only the box of inputs the
  /// operators need; the last axis first.
  public func applying(_ ops: [AxisOperator?]) -> DoubleVolume {
    precondition(ops.count == shape.count, "one operator per axis")
    var lower = [Int](repeating: 0, count: shape.count)
    var extent = shape
    var shifted = ops
    for (d, op) in ops.enumerated() {
      guard var op else { continue }
      let s = op.support
      lower[d] = s.lowerBound
      extent[d] = s.count
      op.inputCount = s.count
      op.rows = op.rows.map { $0.map { AxisOperator.Tap(index: $0.index - s.lowerBound, weight: $0.weight) } }
      shifted[d] = op
    }
    var v = cropped(lower: lower, extent: extent)
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
      if let op = shifted[d] { v = v.applying(op, along: d) }
    }
    return v
  }
}

/// Cubic B-spline coefficients of a volume, for exact interpolation at any position.
public struct CubicBSpline: Sendable {
  /// The coefficients c (same shape as the samples).
  public let coefficients: DoubleVolume

  /// Prefilters `samples` along every axis so that the spline passes through every sample.
  public init(samples: DoubleVolume) {
    var c = samples
    let shape = c.shape
    for axis in 0..<shape.count where shape[axis] > 1 {
      let inner = c.elementStride(axis)
      let n = shape[axis]
      let outer = shape[0..<axis].reduce(1, *)
      var line = [Double](repeating: 0, count: n)
      c.values.withUnsafeMutableBufferPointer { v in
        for o in 0..<outer {
          for j in 0..<inner {
            let base = o * n * inner + j
            for k in 0..<n { line[k] = v[base + k * inner] }
            Self.prefilterLine(&line)
            for k in 0..<n { v[base + k * inner] = line[k] }
          }
        }
      }
    }
    coefficients = c
  }

  /// The pole of the cubic B-spline's inverse filter.
  static let pole = 3.0.squareRoot() - 2

  /// In-place exact prefilter of one line (mirror boundaries).
  static func prefilterLine(_ c: inout [Double]) {
    let n = c.count
    guard n > 1 else { return }
    let z = pole
    for k in 0..<n { c[k] *= 6 }  // the gain (1 − z)(1 − 1/z)
    // Causal initialisation: Σ_k z^k c[k] over the mirrored line.
    let horizon = 28
    if n > horizon {
      var zn = z
      var sum = c[0]
      for k in 1..<horizon {
        sum += zn * c[k]
        zn *= z
      }
      c[0] = sum
    } else {
      var zn = z
      let iz = 1 / z
      var z2n = pow(z, Double(n - 1))
      var sum = c[0] + z2n * c[n - 1]
      z2n *= z2n * iz
      for k in 1..<(n - 1) {
        sum += (zn + z2n) * c[k]
        zn *= z
        z2n *= iz
      }
      c[0] = sum / (1 - zn * zn)
    }
    for k in 1..<n { c[k] += z * c[k - 1] }
    // Anti-causal initialisation, closed form for the mirror boundary.
    c[n - 1] = (z / (z * z - 1)) * (c[n - 1] + z * c[n - 2])
    for k in stride(from: n - 2, through: 0, by: -1) { c[k] = z * (c[k + 1] - c[k]) }
  }

  /// Samples the spline on the axis-aligned grid `positions[d]` (continuous sample indices per
  /// axis; the output has shape `positions.map(\.count)`).
  public func sample(at positions: [[Double]]) -> DoubleVolume {
    let shape = coefficients.shape
    precondition(positions.count == shape.count, "one position list per axis")
    return coefficients.applying(
      positions.enumerated().map { d, p in AxisOperator.cubicBSpline(positions: p, count: shape[d]) })
  }
}
