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

  /// Interpolated values and gradients over a box of `b`.
  struct Sampled {
    var value: [Float]
    /// Per axis: the gradient of â along it (empty for axes not refined).
    var gradient: [[Float]]
  }

  /// â(x + d) and ∇â(x + d) for x in `box` (b's coordinates), by separable passes over the
  /// coefficients: along each axis the four cubic B-spline taps of the fixed fraction of `d`
  /// (a single unit tap on axes not refined, whose shift is an integer).
  func sample(_ box: Box, shift d: [Double], refined: [Bool]) -> Sampled {
    let n = a.rank
    let shape = a.shape
    // The block of coefficients the taps reach, and per axis the taps.
    var lower: [Int] = []
    var upper: [Int] = []
    var valueTaps: [[Float]] = []
    var derivativeTaps: [[Float]] = []
    for k in 0..<n {
      if refined[k] {
        let f = d[k].rounded(.down)
        let t = d[k] - f
        lower.append(box.lower[k] + Int(f) - 1)
        upper.append(box.upper[k] + Int(f) + 2)
        let u = 1 - t
        valueTaps.append(
          [
            u * u * u / 6, (4 - 6 * t * t + 3 * t * t * t) / 6, (1 + 3 * t + 3 * t * t - 3 * t * t * t) / 6,
            t * t * t / 6,
          ].map { Float($0) })
        derivativeTaps.append([-u * u / 2, -2 * t + 1.5 * t * t, 0.5 + t - 1.5 * t * t, t * t / 2].map { Float($0) })
      } else {
        let f = Int(d[k].rounded())
        lower.append(box.lower[k] + f)
        upper.append(box.upper[k] + f)
        valueTaps.append([1])
        derivativeTaps.append([])
      }
    }
    let block = Box(lower: lower, upper: upper)
    precondition(Box(shape: shape).contains(block), "support \(box) at shift \(d) leaves the region \(shape)")
    // (volume, its shape, the axis differentiated or -1).
    var volumes: [([Float], Int)] = [(extract(coefficients, shape: shape, block), -1)]
    var current = block.shape
    for k in 0..<n {
      let length = box.shape[k]
      var next: [([Float], Int)] = []
      for (v, axis) in volumes {
        next.append((Self.pass(v, shape: current, axis: k, length: length, taps: valueTaps[k]), axis))
        if axis < 0, refined[k] {
          next.append((Self.pass(v, shape: current, axis: k, length: length, taps: derivativeTaps[k]), k))
        }
      }
      volumes = next
      current[k] = length
    }
    var gradient = [[Float]](repeating: [], count: n)
    var value: [Float] = []
    for (v, axis) in volumes {
      if axis < 0 { value = v } else { gradient[axis] = v }
    }
    return Sampled(value: value, gradient: gradient)
  }

  /// The part `block` of a C-order array of `shape`.
  func extract(_ values: [Float], shape: [Int], _ block: Box) -> [Float] {
    var out = [Float](repeating: 0, count: block.volume)
    values.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        RawCopy.forEachRow(of: block, in: Box(shape: shape), and: block) { so, dO, length in
          for i in 0..<length { dst[dO + i] = src[so + i] }
        }
      }
    }
    return out
  }

  /// One separable pass: along `axis`, `out[…, i, …] = Σ_j taps[j]·in[…, i + j, …]` for
  /// i in 0..<length (the input has length + taps.count − 1 there).
  static func pass(_ input: [Float], shape: [Int], axis: Int, length: Int, taps: [Float]) -> [Float] {
    let outer = shape[..<axis].reduce(1, *)
    let inner = shape[(axis + 1)...].reduce(1, *)
    let m = shape[axis]
    precondition(m == length + taps.count - 1)
    var out = [Float](repeating: 0, count: outer * length * inner)
    input.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        taps.withUnsafeBufferPointer { w in
          if inner == 1 {
            // Along contiguous rows: tap by tap over the whole row (vectorises).
            for o in 0..<outer {
              let target = dst.baseAddress! + o * length
              for j in 0..<w.count {
                let weight = w[j]
                let source = src.baseAddress! + o * m + j
                for i in 0..<length { target[i] += weight * source[i] }
              }
            }
            return
          }
          for o in 0..<outer {
            for i in 0..<length {
              let target = dst.baseAddress! + (o * length + i) * inner
              for j in 0..<w.count {
                let weight = w[j]
                let source = src.baseAddress! + (o * m + i + j) * inner
                for q in 0..<inner { target[q] += weight * source[q] }
              }
            }
          }
        }
      }
    }
    return out
  }

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

  /// Cubic B-spline coefficients of a C-order array (separable recursive filter, mirror
  /// boundaries, pole √3 − 2; exact interpolation at the samples).
  static func prefilter(_ values: [Float], shape: [Int]) -> [Float] {
    // In Float: the recursion is stable (|z| < 0.27), so rounding stays at a few ulps of the data.
    var c = values
    let z = Float(3.0.squareRoot() - 2)
    let n = shape.count
    var column: [SIMD8<Float>] = []
    c.withUnsafeMutableBufferPointer { p in
      for k in 0..<n {
        let m = shape[k]
        guard m > 1 else { continue }
        let inner = shape[(k + 1)...].reduce(1, *)
        let lines = shape[..<k].reduce(1, *) * inner
        if column.count < m { column = [SIMD8<Float>](repeating: .zero, count: m) }
        // The recursion runs along each line (an index of the other axes) sequentially; eight
        // lines at once as SIMD lanes (neighbours along the inner axes, or rows on the last
        // axis), gathered into `column` and scattered back.
        column.withUnsafeMutableBufferPointer { col in
          var starts = [Int](repeating: 0, count: 8)
          for first in stride(from: 0, to: lines, by: 8) {
            let lanes = min(8, lines - first)
            for l in 0..<lanes {
              let line = first + l
              starts[l] = line / inner * m * inner + line % inner
            }
            for i in 0..<m {
              var v = SIMD8<Float>()
              for l in 0..<lanes { v[l] = p[starts[l] + i * inner] }
              col[i] = v
            }
            Self.prefilterLines(col.baseAddress!, m, z)
            for i in 0..<m {
              let v = col[i]
              for l in 0..<lanes { p[starts[l] + i * inner] = v[l] }
            }
          }
        }
      }
    }
    return c
  }

  /// The cubic B-spline recursion along `m` samples `s`, eight independent lines in the lanes
  /// (Unser et al. 1993, mirror boundaries, pole z = √3 − 2): causal
  /// `c⁺₀ = Σ_{j<18} zʲ·6sⱼ`, `c⁺ᵢ = 6sᵢ + z·c⁺ᵢ₋₁`; then `c_{m−1} = z/(z² − 1)·(c⁺_{m−1} + z·c⁺_{m−2})`
  /// and anti-causal `cᵢ = z·(cᵢ₊₁ − c⁺ᵢ)`.
  static func prefilterLines(_ col: UnsafeMutablePointer<SIMD8<Float>>, _ m: Int, _ z: Float) {
    for i in 0..<m { col[i] *= 6 }
    // Causal initialisation over the first terms while z^j matters (|z|^j < 1e-10).
    let horizon = min(m, 18)
    var first = col[0]
    var zj = z
    for j in 1..<horizon {
      first += zj * col[j]
      zj *= z
    }
    col[0] = first
    for i in 1..<m { col[i] += z * col[i - 1] }
    col[m - 1] = (z / (z * z - 1)) * (col[m - 1] + z * col[m - 2])
    for i in stride(from: m - 2, through: 0, by: -1) { col[i] = z * (col[i + 1] - col[i]) }
  }

  /// The sums one Gauss–Newton step needs, over the support, at the current (α, β).
  struct Moments {
    let rank: Int
    /// The refined axes; the Jacobian's columns are their gradients, then â, then 1.
    let refinedAxes: [Int]
    let columns: Int
    /// Σ colₚ·col_q (symmetric, row-major), Σ colₚ·r, Σ r², with r = b − α·â − β.
    var products: [Double]
    var residualProducts: [Double]
    var ssr = 0.0
    /// Σ â, Σ â², Σ b, Σ b², Σ â·b and the voxel count.
    var v = 0.0
    var vv = 0.0
    var b = 0.0
    var bb = 0.0
    var vb = 0.0
    var count: Double

    init(_ s: Sampled, _ bs: [Float], refined: [Bool], alpha: Double, beta: Double) {
      rank = refined.count
      refinedAxes = refined.indices.filter { refined[$0] }
      columns = refinedAxes.count + 2
      let c = columns
      count = Double(bs.count)
      let g = refinedAxes.count
      let total = bs.count
      // The residual, then every sum as a SIMD dot product (Float lanes over pieces of 4096,
      // Double across pieces).
      var residual = [Float](repeating: 0, count: total)
      let (fa, fb) = (Float(alpha), Float(beta))
      for i in 0..<total { residual[i] = bs[i] - fa * s.value[i] - fb }
      var fields: [[Float]] = refinedAxes.map { s.gradient[$0] }
      fields.append(s.value)
      var products = [Double](repeating: 0, count: c * c)
      var residualProducts = [Double](repeating: 0, count: c)
      for p in 0...g {
        for q in p...g { products[p * c + q] = Self.dot(fields[p], fields[q]) }
        products[p * c + g + 1] = Self.sum(fields[p])
        residualProducts[p] = Self.dot(fields[p], residual)
      }
      residualProducts[g + 1] = Self.sum(residual)
      let ssr = Self.dot(residual, residual)
      let v = products[g * c + g + 1]
      let vv = products[g * c + g]
      let b = Self.sum(bs)
      let bb = Self.dot(bs, bs)
      let vb = Self.dot(s.value, bs)
      products[g * c + g] = vv
      products[g * c + g + 1] = v
      products[(g + 1) * c + g + 1] = count
      for p in 0..<c {
        for q in 0..<p { products[p * c + q] = products[q * c + p] }
      }
      self.products = products
      self.residualProducts = residualProducts
      (self.ssr, self.v, self.vv, self.b, self.bb, self.vb) = (ssr, v, vv, b, bb, vb)
    }

    /// Σ uᵢvᵢ: Float in 8 SIMD lanes over pieces of 4096, Double across pieces.
    static func dot(_ u: [Float], _ v: [Float]) -> Double {
      precondition(u.count == v.count)
      return u.withUnsafeBufferPointer { u in
        v.withUnsafeBufferPointer { v in dot(u.baseAddress!, v.baseAddress!, u.count) }
      }
    }

    /// Σ uᵢvᵢ for i < count, summed as the two-array form.
    static func dot(_ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, _ count: Int) -> Double {
      var total = 0.0
      var start = 0
      while start < count {
        let end = min(count, start + 4096)
        var lanes = SIMD8<Float>()
        var i = start
        while i + 8 <= end {
          let x = UnsafeRawPointer(u + i).loadUnaligned(as: SIMD8<Float>.self)
          let y = UnsafeRawPointer(v + i).loadUnaligned(as: SIMD8<Float>.self)
          lanes += x * y
          i += 8
        }
        var rest = Double(lanes.sum())
        while i < end {
          rest += Double(u[i]) * Double(v[i])
          i += 1
        }
        total += rest
        start = end
      }
      return total
    }

    static func sum(_ u: [Float]) -> Double { u.withUnsafeBufferPointer { PhaseCorrelation.sum($0) } }

    /// JᵀJ for the parameters (refined shifts, α, β): the shift columns are α·∇â.
    func normal(alpha: Double) -> [Double] {
      let c = columns
      var m = products
      for p in 0..<c {
        for q in 0..<c { m[p * c + q] *= (p < c - 2 ? alpha : 1) * (q < c - 2 ? alpha : 1) }
      }
      return m
    }

    /// The Gauss–Newton step: `rank` shift entries (zero on axes not refined), then Δα, Δβ; nil
    /// if the normal equations are singular. The model's derivative along d_k is α·∂â/∂x_k.
    func step(alpha: Double) -> [Double]? {
      let c = columns
      let rhs = (0..<c).map { p in (p < c - 2 ? alpha : 1) * residualProducts[p] }
      guard let x = Self.solve(normal(alpha: alpha), rhs, c) else { return nil }
      var out = [Double](repeating: 0, count: rank + 2)
      for (i, k) in refinedAxes.enumerated() { out[k] = x[i] }
      out[rank] = x[c - 2]
      out[rank + 1] = x[c - 1]
      return out
    }

    /// Gaussian elimination with partial pivoting on a small dense system.
    static func solve(_ matrix: [Double], _ rhs: [Double], _ n: Int) -> [Double]? {
      var m = matrix
      var b = rhs
      for col in 0..<n {
        var pivot = col
        for r in (col + 1)..<max(col + 1, n) where abs(m[r * n + col]) > abs(m[pivot * n + col]) { pivot = r }
        guard abs(m[pivot * n + col]) > 1e-300 else { return nil }
        if pivot != col {
          for q in 0..<n { m.swapAt(col * n + q, pivot * n + q) }
          b.swapAt(col, pivot)
        }
        for r in (col + 1)..<max(col + 1, n) {
          let f = m[r * n + col] / m[col * n + col]
          if f == 0 { continue }
          for q in col..<n { m[r * n + q] -= f * m[col * n + q] }
          b[r] -= f * b[col]
        }
      }
      var x = [Double](repeating: 0, count: n)
      for r in stride(from: n - 1, through: 0, by: -1) {
        var s = b[r]
        for q in (r + 1)..<max(r + 1, n) { s -= m[r * n + q] * x[q] }
        x[r] = s / m[r * n + r]
      }
      return x
    }
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
