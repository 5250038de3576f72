import TesseraCore

/// Subpixel shift by Gauss–Newton (Lucas–Kanade) on a fixed support, with its uncertainty.
///
/// Model: `b(x) ≈ α·a(x + d) + β` for `x` in a fixed box `S` of `b`, after both regions are
/// smoothed by the same Gaussian (σ = 1 voxel; see ``smoothed(_:)``). The estimate minimises
///
///     E(d, α, β) = Σ_{x∈S} (b(x) − α·â(x + d) − β)²
///
/// where `â` is the cubic B-spline interpolant of `a` (exact at the samples; coefficients by the
/// recursive prefilter of Unser, Aldroubi & Eden, "B-spline signal processing", IEEE TSP 41, 1993,
/// with mirror boundaries). The gain α and offset β are solved jointly with `d`. `S` is the part
/// of `b` whose voxels stay at least `margin` (4) voxels inside `a` for every `d` within one voxel
/// of the integer start `d₀` on each axis: the data entering E never changes as `d` moves, so E
/// has no pull towards shifts that shrink the overlap (unlike a correlation over the varying
/// shared region). Each Gauss–Newton step solves the (N+2)² normal equations `JᵀJ Δ = Jᵀr` with
/// `∂â/∂x` the exact derivative of the spline; steps are capped at half a voxel, iterations stop
/// when every |Δd| < 1e-4 voxel (or after 30). When the optimum lies more than half a voxel from
/// `d₀` the start moves to the nearest integer and the fit repeats on that start's support (at most
/// 4 moves), which replaces an integer hill climb.
///
/// Error: with exact data (`b` an exact translate of a band-limited `a`), the only bias is the
/// spline's interpolation error (reduced by the smoothing, which removes the frequencies the
/// spline renders worst), whose effect on `d` oscillates with the fractional shift. On
/// Fourier-shifted real patches the largest error over a grid of fractions is 0.0009 voxel on a
/// 2D confocal slice and 0.004 voxel on a CT crop sampled every third slice in z; the tests
/// bound them by 0.005 and 0.01 voxel (`SubpixelTests.subpixelBiasOnFourierShiftedRealPatch2D`,
/// `…3D`). With noise, the error grows as the reported standard deviation says (tested at a
/// per-voxel noise of a third of the texture's spread: error within 4σ).
///
/// Uncertainty: the Gauss–Newton covariance of the parameters, in its sandwich (heteroscedasticity-
/// robust) form `(JᵀJ)⁻¹ S (JᵀJ)⁻¹` with `S = Σₓ s(x) s(x)ᵀ`, s = Jᵀ·r the per-voxel score
/// (for white residuals this is `σ²·(JᵀJ)⁻¹`, σ² the residual variance). Residuals of smoothed
/// images are spatially correlated, so each score's sum is inflated by the effective-sample-size
/// factor `Π_k (1 + ρ_k) / (1 − ρ_k)` of a separable first-order autoregressive field (ρ_k that
/// score's lag-1 autocorrelation along axis k, clamped to 0 … 0.9); times N / (N − N_params),
/// floored at `floor` voxels.
/// It measures how well the pair's own data pins the shift; it cannot see a wrong local optimum,
/// which the global solve finds by loop consistency.
struct SubpixelRefinement {
  /// Voxels the support keeps inside `a` beyond the shift's ±1-voxel range (the cubic kernel's
  /// reach plus slack for the smoothing's and the prefilter's boundaries); short axes get less,
  /// down to 2.
  static let margin = 4
  /// Standard deviation (voxels) of the Gaussian both regions are smoothed with first.
  static let smoothing = 1.0
  /// Smallest refined support length on an axis; shorter axes keep their integer shift.
  static let minimumSupport = 3

  struct Fit {
    /// Refined shift (voxels).
    var shift: [Double]
    /// Per-axis standard deviation (voxels), floored.
    var sigma: [Double]
    /// Pearson correlation of `b` and `â(x + d)` on the support at the optimum.
    var correlation: Double
    /// Support voxels.
    var count: Int
    /// Whether each axis was refined (false on axes too short for the support).
    var refined: [Bool]
  }

  let a: VolumeBuffer<Float>
  let b: VolumeBuffer<Float>
  /// B-spline coefficients of `a`.
  let coefficients: [Float]
  let floor: Double

  /// Prepares `a` (its spline coefficients) and `b` (shapes may differ: `b(x) ≈ a(x + d)` for x
  /// in `b`), both made zero-mean (β absorbs offsets;
  /// Float sums stay accurate).
  init(_ a: VolumeBuffer<Float>, _ b: VolumeBuffer<Float>, floor: Double = 0.02) {
    func centred(_ v: VolumeBuffer<Float>) -> VolumeBuffer<Float> {
      var out = v.reboxed(Box(shape: v.shape))
      let mean = Float(v.storage.withUnsafeBufferPointer { PhaseCorrelation.sum($0) } / Double(max(1, v.count)))
      for i in out.storage.indices { out.storage[i] -= mean }
      return out
    }
    self.a = Self.smoothed(centred(a))
    self.b = Self.smoothed(centred(b))
    self.floor = floor
    coefficients = Self.prefilter(self.a.storage, shape: a.shape)
  }

  /// Refines from the integer shift `start`; nil when the support is empty, the data flat, or
  /// the fit leaves `allowed` (a predicate on integer starts, e.g. overlap and maximum shift).
  func refine(from start: [Int], allowed: ([Int]) -> Bool) -> Fit? {
    var origin = start
    var visited = Set<[Int]>()
    for _ in 0..<5 {
      guard visited.insert(origin).inserted, allowed(origin) else { return nil }
      guard let fit = fit(at: origin) else { return nil }
      let next = zip(fit.shift, origin).map { s, o in abs(s - Double(o)) > 0.5 ? Int(s.rounded()) : o }
      if next == origin { return fit }
      origin = next
    }
    return nil
  }

  /// The support in `b` for integer start `d₀`, and which axes are refined.
  func support(_ d0: [Int]) -> (Box, [Bool]) {
    let shape = a.shape
    let shapeB = b.shape
    var lower: [Int] = []
    var upper: [Int] = []
    var refined: [Bool] = []
    for k in 0..<shape.count {
      let lo = max(0, -d0[k])
      let hi = min(shapeB[k], shape[k] - d0[k])
      // The full margin where the axis affords it, else down to 2 (the cubic kernel's reach).
      let margin = min(Self.margin, (hi - lo - Self.minimumSupport) / 2)
      if margin >= 2 {
        lower.append(lo + margin)
        upper.append(hi - margin)
        refined.append(true)
      } else {
        lower.append(lo)
        upper.append(max(lo, hi))
        refined.append(false)
      }
    }
    return (Box(lower: lower, upper: upper), refined)
  }

  /// Gauss–Newton on the support of `d0`, shifts kept within ±1 voxel of it.
  func fit(at d0: [Int]) -> Fit? {
    let n = a.rank
    let (box, refined) = support(d0)
    let count = box.volume
    guard count >= n + 4, refined.contains(true) else { return nil }
    let bs = b.extracting(box).storage
    var d = d0.map(Double.init)
    // Gain and offset by regression of b on â at the start.
    var sampled = sample(box, shift: d, refined: refined)
    var m = Moments(sampled, bs, refined: refined, alpha: 1, beta: 0)
    guard let (alpha0, beta0, _) = Self.regression(m) else { return nil }
    var (alpha, beta) = (alpha0, beta0)
    var converged = false
    for _ in 0..<30 {
      m = Moments(sampled, bs, refined: refined, alpha: alpha, beta: beta)
      guard let step = m.step(alpha: alpha) else { return nil }
      var largest = 0.0
      for k in 0..<n where refined[k] {
        let s = max(-0.5, min(0.5, step[k]))
        // Within a voxel of the start, the upper end just short of it: at d₀ + 1 exactly the cubic
        // taps would reach a voxel past a 2-voxel margin (short axes); an optimum that far away
        // moves the fit to the next integer start anyway.
        let next = max(Double(d0[k]) - 1, min(Double(d0[k]) + 1 - 1e-6, d[k] + s))
        largest = max(largest, abs(next - d[k]))
        d[k] = next
      }
      alpha += step[n]
      beta += step[n + 1]
      sampled = sample(box, shift: d, refined: refined)
      if largest < 1e-4 {
        converged = true
        break
      }
    }
    // A fit still moving after 30 steps is not trusted (the link keeps its integer shift).
    guard converged else { return nil }
    // Gain and offset re-solved at the final shift, then the statistics there.
    m = Moments(sampled, bs, refined: refined, alpha: alpha, beta: beta)
    guard let (a1, b1, correlation) = Self.regression(m) else { return nil }
    m = Moments(sampled, bs, refined: refined, alpha: a1, beta: b1)
    let sigma = uncertainty(m, sampled, bs, box: box, alpha: a1, beta: b1, refined: refined)
    return Fit(shift: d, sigma: sigma, correlation: correlation, count: count, refined: refined)
  }

  /// Least-squares gain and offset of b on â, and their Pearson correlation; nil if either is flat.
  static func regression(_ m: Moments) -> (Double, Double, Double)? {
    let meanV = m.v / m.count
    let meanB = m.b / m.count
    let varV = m.vv / m.count - meanV * meanV
    let varB = m.bb / m.count - meanB * meanB
    guard varV > 1e-12 * max(1, meanV * meanV), varB > 1e-12 * max(1, meanB * meanB) else { return nil }
    let cov = m.vb / m.count - meanV * meanB
    let alpha = cov / varV
    return (alpha, meanB - alpha * meanV, max(-1, min(1, cov / (varV * varB).squareRoot())))
  }
}
