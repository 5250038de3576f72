/// The cosine feathering ramp `0.5 − 0.5·cos(π·t)` for t in [0, 1], tabulated (1024 steps,
/// linear between entries: error < 2e-6) so the voxel loop needs no transcendental call and is
/// bit-reproducible everywhere.
enum CosineRamp {
  static let table: [Float] = (0...1024).map { i in
    let t = Double(i) / 1024
    return Float(0.5 - 0.5 * _cosPi(t))
  }

  /// Weight of a sample at distance `d` (voxels) from the view's border, for a ramp `width`
  /// voxels wide; 1 beyond the ramp, and never below a tiny positive floor inside the view (so a
  /// voxel covered only by a view's outermost rim still gets that view's value).
  @inline(__always)
  static func weight(_ d: Float, width: Float, table: UnsafeBufferPointer<Float>) -> Float {
    if d >= width { return 1 }
    let t = Swift.max(0, d) / width * 1024
    let i = Int(t)
    let f = t - Float(i)
    let w = table[i] + (table[Swift.min(i + 1, 1024)] - table[i]) * f
    return Swift.max(w, 1e-6)
  }

  /// Distance (voxels) of position `p` from the border of the footprint `[−0.5, n − 0.5)` along
  /// one axis of `n` voxels: `min(p + 0.5, n − 0.5 − p)`.
  @inline(__always)
  static func borderDistance(_ p: Double, _ n: Int) -> Float {
    Float(Swift.min(p + 0.5, Double(n) - 0.5 - p))
  }

  /// cos(π t) for t in [0, 1] via a symmetric Taylor series around 1/2 (no libm, exact to 1e-15).
  static func _cosPi(_ t: Double) -> Double {
    // cos(π t) = −sin(π (t − 1/2)).
    let x = Double.pi * (t - 0.5)
    var term = x
    var sum = x
    var k = 1.0
    while abs(term) > 1e-18 {
      term *= -x * x / ((2 * k) * (2 * k + 1))
      sum += term
      k += 1
    }
    return -sum
  }
}
