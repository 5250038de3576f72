import TesseraCore

/// The Gaussian both regions are smoothed with before the fit.
extension SubpixelRefinement {
  /// `v` convolved with a Gaussian of ``smoothing`` voxels on every axis longer than its
  /// kernel (truncated at 3σ, mirror boundaries). Both regions get the same filter, which commutes
  /// with translation, so the shift is unchanged; but noise no longer has the high frequencies the
  /// spline attenuates more at half-voxel fractions than at integers, which would otherwise pull
  /// noisy estimates towards half-integer shifts.
  static func smoothed(_ v: VolumeBuffer<Float>) -> VolumeBuffer<Float> {
    let radius = Int((3 * smoothing).rounded(.up))
    var kernel = (-radius...radius).map { k in Float(_exponential(-Double(k * k) / (2 * smoothing * smoothing))) }
    let total = kernel.reduce(0, +)
    kernel = kernel.map { $0 / total }
    var out = v
    let shape = v.shape
    for axis in 0..<shape.count where shape[axis] > 2 * radius + 1 {
      let m = shape[axis]
      // Mirror-padded along the axis, then one pass.
      var padded = shape
      padded[axis] = m + 2 * radius
      let outer = shape[..<axis].reduce(1, *)
      let inner = shape[(axis + 1)...].reduce(1, *)
      var input = [Float](repeating: 0, count: outer * (m + 2 * radius) * inner)
      out.storage.withUnsafeBufferPointer { src in
        input.withUnsafeMutableBufferPointer { dst in
          for o in 0..<outer {
            for i in 0..<(m + 2 * radius) {
              var j = i - radius
              if j < 0 { j = -j }
              if j >= m { j = 2 * m - 2 - j }
              let from = src.baseAddress! + (o * m + j) * inner
              let to = dst.baseAddress! + (o * (m + 2 * radius) + i) * inner
              for q in 0..<inner { to[q] = from[q] }
            }
          }
        }
      }
      out.storage = pass(input, shape: padded, axis: axis, length: m, taps: kernel)
    }
    return out
  }
}

/// eˣ for x ≤ 0 of moderate size (libm-free, as ``_cosine(_:)``, so kernels are bit-identical on
/// every platform): e^(x/2ᵏ) by its Taylor series, squared k times.
func _exponential(_ x: Double) -> Double {
  var k = 0
  var y = x
  while abs(y) > 0.5 {
    y /= 2
    k += 1
  }
  var term = 1.0
  var sum = 1.0
  var i = 1.0
  while abs(term) > 1e-17 {
    term *= y / i
    sum += term
    i += 1
  }
  for _ in 0..<k { sum *= sum }
  return sum
}
