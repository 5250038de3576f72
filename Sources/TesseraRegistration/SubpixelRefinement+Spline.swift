import TesseraCore

/// The cubic B-spline interpolant `â` of `a` and its gradient: the prefilter that makes its
/// coefficients and the separable passes that sample it at a shift.
extension SubpixelRefinement {
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
}
