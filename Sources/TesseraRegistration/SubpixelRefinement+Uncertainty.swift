import TesseraCore

/// The shift's per-axis standard deviation: the sandwich covariance of the Gauss–Newton fit with
/// each score's sum inflated for spatially correlated residuals (see ``SubpixelRefinement``).
extension SubpixelRefinement {
  /// Per-axis standard deviation of the shift (voxels), see the type's documentation: the
  /// sandwich covariance `(JᵀJ)⁻¹ S (JᵀJ)⁻¹` with `S_pq = Σₓ sₚ s_q · √(fₚ f_q)`, sₚ = Jₚ·r the
  /// score of parameter p at each voxel and fₚ its effective-sample-size factor.
  func uncertainty(
    _ m: Moments, _ s: Sampled, _ bs: [Float], box: Box, alpha: Double, beta: Double, refined: [Bool]
  ) -> [Double] {
    let n = a.rank
    let shape = box.shape
    let count = bs.count
    let c = m.columns
    // Scores per parameter: (α·∂â/∂x_k)·r for the refined axes, â·r, r (Float, as the sums of
    // ``Moments``: Float lanes over short pieces, Double across them).
    let (fa, fb) = (Float(alpha), Float(beta))
    var residual = [Float](repeating: 0, count: count)
    for i in 0..<count { residual[i] = bs[i] - fa * s.value[i] - fb }
    var scores: [[Float]] = []
    for k in m.refinedAxes {
      let g = s.gradient[k]
      var score = [Float](repeating: 0, count: count)
      for i in 0..<count { score[i] = fa * g[i] * residual[i] }
      scores.append(score)
    }
    var valueScore = [Float](repeating: 0, count: count)
    for i in 0..<count { valueScore[i] = s.value[i] * residual[i] }
    scores.append(valueScore)
    scores.append(residual)
    let factors = scores.map { Self.effectiveSampleFactor($0, shape: shape) }
    var sandwich = [Double](repeating: 0, count: c * c)
    for p in 0..<c {
      for q in p..<c {
        sandwich[p * c + q] = Moments.dot(scores[p], scores[q]) * (factors[p] * factors[q]).squareRoot()
        sandwich[q * c + p] = sandwich[p * c + q]
      }
    }
    let normal = m.normal(alpha: alpha)
    var inverse = [Double](repeating: 0, count: c * c)  // columns of (JᵀJ)⁻¹
    for p in 0..<c {
      var e = [Double](repeating: 0, count: c)
      e[p] = 1
      guard let x = Moments.solve(normal, e, c) else { return (0..<n).map { refined[$0] ? .infinity : floor } }
      for q in 0..<c { inverse[q * c + p] = x[q] }
    }
    let dof = Double(count) / Double(max(1, count - c))
    var sigma = [Double](repeating: floor, count: n)
    for (p, k) in m.refinedAxes.enumerated() {
      // (M⁻¹ S M⁻¹)_pp = Σ_qr M⁻¹_pq S_qr M⁻¹_rp.
      var v = 0.0
      for q in 0..<c {
        for r in 0..<c { v += inverse[p * c + q] * sandwich[q * c + r] * inverse[r * c + p] }
      }
      sigma[k] = max(floor, (max(0, v) * dof).squareRoot())
    }
    return sigma
  }

  /// `Π_k (1 + ρ_k) / (1 − ρ_k)`, ρ_k the lag-1 autocorrelation of `field` along axis k (clamped
  /// to 0 … 0.9): the variance inflation of a sum over a separable first-order autoregressive field.
  static func effectiveSampleFactor(_ field: [Float], shape: [Int]) -> Double {
    var factor = 1.0
    field.withUnsafeBufferPointer { p in
      for k in 0..<shape.count where shape[k] > 1 {
        // Pairs (x, x + e_k): per index of the axes before k, the (m − 1)·inner voxels from its
        // first row on, each with the voxel `inner` further (one contiguous run).
        let outer = shape[..<k].reduce(1, *)
        let inner = shape[(k + 1)...].reduce(1, *)
        let m = shape[k]
        var lagged = 0.0
        var total = 0.0
        for o in 0..<outer {
          let run = p.baseAddress! + o * m * inner
          lagged += Moments.dot(run, run + inner, (m - 1) * inner)
          total += Moments.dot(run, run, (m - 1) * inner)
        }
        let rho = total > 0 ? max(0, min(0.9, lagged / total)) : 0
        factor *= (1 + rho) / (1 - rho)
      }
    }
    return factor
  }
}
