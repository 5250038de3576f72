import TesseraCore

/// The shift between two equally shaped regions, found by phase correlation and verified by
/// normalised cross-correlation.
///
/// Convention: the result `d` is such that `b(x) ≈ a(x + d)` — content at `x + d` in `a` appears
/// at `x` in `b`. When `a` and `b` are the same world region cut from two views at their stated
/// positions, view B's true position is its stated position plus `d` voxels.
///
/// Method (after BigStitcher and scikit-image's `phase_cross_correlation`):
/// 1. both regions are mean-subtracted, multiplied by a Tukey window (cosine tapers over
///    `taper` of each side) and zero-padded to a length 2ᵏ, 3·2ᵏ or 5·2ᵏ (``fftSize(_:)``);
/// 2. the normalised cross-power spectrum `conj(A)·B / |conj(A)·B|` is transformed back; its
///    largest local maxima (`peaks`) are candidate shifts;
/// 3. each candidate and its wrap-around alternatives (on each axis `d` and `d − n`) is scored
///    by the normalised cross-correlation of `a` and `b` on the part they share under that shift
///    (requiring at least `minimumOverlap` of the region), and the best one wins;
/// 4. the integer winner is refined to subpixel by Gauss–Newton on a fixed support
///    (``SubpixelRefinement``: cubic B-spline interpolant, gain and offset fitted jointly, both
///    regions smoothed by a 1-voxel Gaussian), which moves to a neighbouring integer start when
///    the optimum lies there and reports a per-axis standard deviation. On Fourier-shifted real
///    patches its error stays below 0.01 voxel (tests: `SubpixelTests`).
public struct PhaseCorrelation: Sendable {
  public var peaks: Int = 5
  /// Fraction of each side tapered by the Tukey window.
  public var taper: Double = 0.2
  /// Smallest shared fraction of the region for a candidate to count.
  public var minimumOverlap: Double = 0.25
  /// Largest |shift| per axis (voxels) a candidate may have; nil for any.
  public var maxShift: [Double]?
  /// Smallest per-axis standard deviation a fit reports, voxels.
  public var uncertaintyFloor: Double = 0.02
  /// Largest window (voxels) the subpixel fit reads; larger overlaps are cut to a centred window.
  public var refinementVoxels: Int = 1 << 16

  public init(peaks: Int = 5, taper: Double = 0.2, minimumOverlap: Double = 0.25, maxShift: [Double]? = nil) {
    self.peaks = peaks
    self.taper = taper
    self.minimumOverlap = minimumOverlap
    self.maxShift = maxShift
  }

  /// A measured shift.
  public struct Result: Sendable, Hashable {
    /// Subpixel shift, voxels, slowest axis first.
    public var shift: [Double]
    /// The integer shift the subpixel one refines.
    public var integerShift: [Int]
    /// Correlation (−1 … 1) of `b` and the shifted `a`: of the subpixel fit on its support when
    /// it succeeded, else the normalised cross-correlation at the integer shift.
    public var correlation: Double
    /// Number of voxels the two regions share under the shift.
    public var overlapVoxels: Int
    /// Per-axis standard deviation of `shift` (voxels) from the subpixel fit; nil when the fit
    /// failed and `shift` is the integer one.
    public var uncertainty: [Double]? = nil
    /// Normalised cross-correlation at the verified integer shift.
    public var integerCorrelation: Double? = nil
  }

  /// Measures the shift between `a` and `b` (same shape). Returns nil when no candidate keeps
  /// enough overlap or within `maxShift`.
  public func measure(_ a: VolumeBuffer<Float>, _ b: VolumeBuffer<Float>, plans: FFTPlanCache) -> Result? {
    precondition(a.shape == b.shape, "phase correlation needs equally shaped regions")
    let padded = a.shape.map { Self.fftSize(max($0, 2)) }
    let plan = plans.plan(for: padded)
    return plans.withBuffers(2, for: plan) { buffers in
      measure(a, b, plan: plan, fa: buffers[0], fb: buffers[1])
    }
  }

  private func measure(
    _ a: VolumeBuffer<Float>, _ b: VolumeBuffer<Float>, plan: RealFFTPlan, fa: FFTBuffer, fb: FFTBuffer
  ) -> Result? {
    let shape = a.shape
    let n = shape.count
    let padded = plan.shape
    fill(fa, from: a, padded: padded)
    fill(fb, from: b, padded: padded)
    plan.forward(fa)
    plan.forward(fb)
    // A·conj(B), normalised: with b(x) = a(x + d), B = A·e^{+iωd}, so A·conj(B) = |A|²e^{−iωd}
    // and its inverse transform peaks at +d (tested).
    // Whitening divides by the magnitude; frequencies with (almost) no signal would then be pure
    // noise, so the magnitude is floored at 1e-3 of its maximum (a mild Wiener-like damping).
    let sa = fa.spectrum
    let sb = fb.spectrum
    var largest: Float = 0
    for i in 0..<sa.count {
      let (ar, ai) = sa[i]
      let (br, bi) = sb[i]
      let re = ar * br + ai * bi
      let im = ai * br - ar * bi
      sa[i] = (re, im)
      largest = max(largest, (re * re + im * im).squareRoot())
    }
    let floor = max(largest * 1e-3, 1e-20)
    for i in 0..<sa.count {
      let (re, im) = sa[i]
      let m = max((re * re + im * im).squareRoot(), floor)
      sa[i] = (re / m, im / m)
    }
    plan.inverse(fa)
    // Candidates: the largest local maxima of the correlation surface.
    let surface = fa.samples
    let strides = VolumeBuffer<Float>.strides(for: padded)
    var candidates: [(Float, Int)] = []  // the best local maxima so far, best first
    var threshold = -Float.infinity  // a value must beat this to enter a full list
    var index = [Int](repeating: 0, count: n)
    for o in 0..<surface.count {
      let v = surface[o]
      if v <= threshold { continue }  // most samples stop here, before any index arithmetic
      var rest = o
      for d in 0..<n {
        index[d] = rest / strides[d]
        rest -= index[d] * strides[d]
      }
      var isMax = true
      for d in 0..<n where padded[d] > 2 {
        let up = o + (index[d] + 1 < padded[d] ? strides[d] : -(padded[d] - 1) * strides[d])
        let down = o + (index[d] > 0 ? -strides[d] : (padded[d] - 1) * strides[d])
        if surface[up] > v || surface[down] > v {
          isMax = false
          break
        }
      }
      guard isMax else { continue }
      let at = candidates.firstIndex { $0.0 < v } ?? candidates.count
      candidates.insert((v, o), at: at)
      if candidates.count > peaks { candidates.removeLast() }
      if candidates.count == peaks { threshold = candidates[peaks - 1].0 }
    }
    candidates.sort { $0.0 > $1.0 }
    // Verify each candidate and its wrap-around alternatives by NCC on the real overlap. Scores
    // are remembered: the climb and the subpixel fit revisit shifts.
    let minimumCount = minimumOverlap * Double(a.count)
    var scores: [[Int]: (Double, Int)?] = [:]
    func score(_ shift: [Int]) -> (Double, Int)? {
      if let known = scores[shift] { return known }
      let s = Self.ncc(a, b, shift: shift)
      scores[shift] = s
      return s
    }
    // The voxels two regions share under a shift are known without touching the data.
    func enoughOverlap(_ shift: [Int]) -> Bool {
      Double((0..<n).reduce(1) { $0 * max(0, shape[$1] - abs(shift[$1])) }) >= minimumCount
    }
    var best: Result?
    var tried = Set<[Int]>()
    for (_, o) in candidates.prefix(peaks) {
      var rest = o
      var peak = [Int](repeating: 0, count: n)
      for d in 0..<n {
        peak[d] = rest / strides[d]
        rest -= peak[d] * strides[d]
      }
      for mask in 0..<(1 << n) {
        let shift = (0..<n).map { d in mask & (1 << d) == 0 ? peak[d] : peak[d] - padded[d] }
        guard tried.insert(shift).inserted else { continue }
        if let maxShift, (0..<n).contains(where: { Double(abs(shift[$0])) > maxShift[$0] }) { continue }
        guard enoughOverlap(shift), let (r, count) = score(shift) else { continue }
        if best == nil || r > best!.correlation {
          best = Result(shift: shift.map(Double.init), integerShift: shift, correlation: r, overlapVoxels: count)
        }
      }
    }
    guard let integer = best else { return nil }
    // Subpixel: Gauss–Newton on a fixed support from the verified integer shift (moving to a
    // neighbouring integer start when the optimum lies there).
    // Large overlaps are refined on a centred window of at most `refinementVoxels` (the crops
    // of b and of a under the start, a with room for the fit's ±1-voxel range): the precision
    // left is far beyond what the rest of the pipeline can use, and the cost stays bounded.
    let (cropB, cropA) = Self.refinementWindows(shape, start: integer.integerShift, limit: refinementVoxels)
    let offset = (0..<n).map { cropB.lower[$0] - cropA.lower[$0] }  // d in the crops = d + offset
    let refinement = SubpixelRefinement(
      a.reboxed(Box(shape: shape)).extracting(cropA).reboxed(Box(shape: cropA.shape)),
      b.reboxed(Box(shape: shape)).extracting(cropB).reboxed(Box(shape: cropB.shape)), floor: uncertaintyFloor)
    let allowed: ([Int]) -> Bool = { local in
      let shift = (0..<n).map { local[$0] - offset[$0] }
      if let maxShift, (0..<n).contains(where: { Double(abs(shift[$0])) > maxShift[$0] + 1 }) { return false }
      return enoughOverlap(shift)
    }
    let localStart = (0..<n).map { integer.integerShift[$0] + offset[$0] }
    guard var fit = refinement.refine(from: localStart, allowed: allowed) else { return integer }
    fit.shift = (0..<n).map { fit.shift[$0] - Double(offset[$0]) }
    let start = fit.shift.map { Int($0.rounded()) }
    return Result(
      shift: fit.shift, integerShift: start, correlation: fit.correlation,
      overlapVoxels: (0..<n).reduce(1) { $0 * max(0, shape[$1] - abs(start[$1])) }, uncertainty: fit.sigma,
      integerCorrelation: integer.correlation)
  }

  /// The boxes of `b` and `a` (regions of `shape`) the subpixel fit reads for integer start `d0`:
  /// b's part shared under d0, cut to a centred window of at most `limit` voxels (longest axes
  /// first, none below 2·margin + 11), and that window moved by d0 in a, grown by `SubpixelRefinement.margin` + 2 voxels
  /// (within a).
  static func refinementWindows(_ shape: [Int], start d0: [Int], limit: Int) -> (Box, Box) {
    let n = shape.count
    let lo = (0..<n).map { max(0, -d0[$0]) }
    let hi = (0..<n).map { min(shape[$0], shape[$0] - d0[$0]) }
    var extent = (0..<n).map { max(0, hi[$0] - lo[$0]) }
    let smallest = 2 * SubpixelRefinement.margin + SubpixelRefinement.minimumSupport + 8
    // One voxel off the longest axis at a time, so the window stays as balanced as the overlap.
    while extent.reduce(1, *) > limit {
      var k = 0
      for j in 1..<n where extent[j] > extent[k] { k = j }
      guard extent[k] > smallest else { break }
      extent[k] -= 1
    }
    let grow = SubpixelRefinement.margin + 2
    var lowerB: [Int] = []
    var upperB: [Int] = []
    var lowerA: [Int] = []
    var upperA: [Int] = []
    for k in 0..<n {
      let l = lo[k] + (hi[k] - lo[k] - extent[k]) / 2
      lowerB.append(l)
      upperB.append(l + extent[k])
      lowerA.append(max(0, l + d0[k] - grow))
      upperA.append(min(shape[k], l + extent[k] + d0[k] + grow))
    }
    return (Box(lower: lowerB, upper: upperB), Box(lower: lowerA, upper: upperA))
  }

  /// Mean-subtracted, Tukey-windowed copy of `region` into the FFT input, zero-padded.
  func fill(_ buffer: FFTBuffer, from region: VolumeBuffer<Float>, padded: [Int]) {
    let shape = region.shape
    let n = shape.count
    let windows: [[Float]] = shape.map { len in
      (0..<len).map { i in
        let ramp = taper * Double(len) / 2
        guard ramp >= 1 else { return 1 }
        let x = Double(i) + 0.5
        let edge = min(x, Double(len) - x)
        if edge >= ramp { return 1 }
        return Float(0.5 - 0.5 * _cosine(Double.pi * edge / ramp))
      }
    }
    let out = buffer.real
    let paddedBox = Box(shape: padded)
    // Zeros where the region does not reach (the buffer holds the previous pair's data): per
    // axis k, the slab beyond the region on k, inside it on the axes before k.
    for k in 0..<n where shape[k] < padded[k] {
      let slab = Box(
        lower: (0..<n).map { $0 == k ? shape[k] : 0 }, upper: (0..<n).map { $0 < k ? shape[$0] : padded[$0] })
      RawCopy.forEachRow(of: slab, in: paddedBox, and: paddedBox) { offset, _, length in
        (out + offset).update(repeating: 0, count: length)
      }
    }
    // Row by row: the outer axes' window weights multiply, the last axis' weights per voxel.
    let strides = VolumeBuffer<Float>.strides(for: shape)
    region.storage.withUnsafeBufferPointer { src in
      let mean = Float(Self.sum(src) / Double(max(1, src.count)))
      windows[n - 1].withUnsafeBufferPointer { lastWindow in
        RawCopy.forEachRow(of: Box(shape: shape), in: Box(shape: shape), and: paddedBox) { so, dO, length in
          var w: Float = 1
          var rest = so
          for d in 0..<(n - 1) {
            let i = rest / strides[d]
            rest -= i * strides[d]
            w *= windows[d][i]
          }
          let (s, o, l) = (src.baseAddress! + so, out + dO, lastWindow.baseAddress!)
          for i in 0..<length { o[i] = (s[i] - mean) * w * l[i] }
        }
      }
    }
  }

  /// The sum of `values`: Float in 8 SIMD lanes over pieces of 4096, Double across pieces.
  static func sum(_ values: UnsafeBufferPointer<Float>) -> Double {
    var total = 0.0
    var start = 0
    while start < values.count {
      let end = min(values.count, start + 4096)
      var lanes = SIMD8<Float>()
      var i = start
      while i + 8 <= end {
        lanes += UnsafeRawPointer(values.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
      }
      var rest = Double(lanes.sum())
      while i < end {
        rest += Double(values[i])
        i += 1
      }
      total += rest
      start = end
    }
    return total
  }

  /// Normalised cross-correlation of `a(x + shift)` and `b(x)` over the voxels both have, and
  /// how many there are (nil if fewer than 2, or if either is constant there).
  public static func ncc(_ a: VolumeBuffer<Float>, _ b: VolumeBuffer<Float>, shift: [Int]) -> (Double, Int)? {
    let shape = a.shape
    let n = shape.count
    // x ranges over b's box such that x + shift is inside a.
    let lower = (0..<n).map { max(0, -shift[$0]) }
    let upper = (0..<n).map { min(shape[$0], shape[$0] - shift[$0]) }
    let region = Box(lower: lower, upper: upper)
    let count = region.volume
    guard count >= 2 else { return nil }
    var sa = 0.0
    var sb = 0.0
    var saa = 0.0
    var sbb = 0.0
    var sab = 0.0
    let strides = VolumeBuffer<Float>.strides(for: shape)
    let offset = (0..<n).reduce(0) { $0 + shift[$1] * strides[$1] }
    a.storage.withUnsafeBufferPointer { pa in
      b.storage.withUnsafeBufferPointer { pb in
        RawCopy.forEachRow(of: region, in: Box(shape: shape), and: Box(shape: shape)) { ob, _, length in
          // Float sums within a row in 8 SIMD lanes (strict IEEE order keeps the compiler from
          // vectorising a scalar reduction), Double across rows.
          var va = SIMD8<Float>()
          var vb = SIMD8<Float>()
          var vaa = SIMD8<Float>()
          var vbb = SIMD8<Float>()
          var vab = SIMD8<Float>()
          let xs = pa.baseAddress! + ob + offset
          let ys = pb.baseAddress! + ob
          var i = 0
          while i + 8 <= length {
            let x = UnsafeRawPointer(xs + i).loadUnaligned(as: SIMD8<Float>.self)
            let y = UnsafeRawPointer(ys + i).loadUnaligned(as: SIMD8<Float>.self)
            va += x
            vb += y
            vaa += x * x
            vbb += y * y
            vab += x * y
            i += 8
          }
          var ra = Double(va.sum())
          var rb = Double(vb.sum())
          var raa = Double(vaa.sum())
          var rbb = Double(vbb.sum())
          var rab = Double(vab.sum())
          while i < length {
            let x = Double(xs[i])
            let y = Double(ys[i])
            ra += x
            rb += y
            raa += x * x
            rbb += y * y
            rab += x * y
            i += 1
          }
          sa += ra
          sb += rb
          saa += raa
          sbb += rbb
          sab += rab
        }
      }
    }
    let c = Double(count)
    let cov = sab / c - sa / c * sb / c
    let va = saa / c - sa / c * sa / c
    let vb = sbb / c - sb / c * sb / c
    guard va > 1e-12, vb > 1e-12 else { return nil }
    return (cov / (va * vb).squareRoot(), count)
  }

  /// The FFT length for a region of `n` voxels: the smallest of 2ᵏ, 3·2ᵏ and 5·2ᵏ that is at least
  /// `n`. FFTW is fastest on such lengths, and so coarse a set (steps of at most a third) makes
  /// pairs whose overlaps differ by a few voxels share one plan instead of each planning its own.
  static func fftSize(_ n: Int) -> Int {
    var best = Int.max
    for base in [1, 3, 5] {
      var m = base
      while m < n { m *= 2 }
      best = min(best, m)
    }
    return best
  }
}

/// cos(x) for the window (libm-free so windows are bit-identical on every platform).
func _cosine(_ x: Double) -> Double {
  // Reduce to [-π, π], then a Taylor series.
  var y = x.truncatingRemainder(dividingBy: 2 * .pi)
  if y > .pi { y -= 2 * .pi }
  if y < -.pi { y += 2 * .pi }
  var term = 1.0
  var sum = 1.0
  var k = 1.0
  while abs(term) > 1e-17 {
    term *= -y * y / ((2 * k - 1) * (2 * k))
    sum += term
    k += 1
  }
  return sum
}
