/// The normal equations of the fit: the sums over the support, the Gauss–Newton step, and a
/// small dense solver.
extension SubpixelRefinement {
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
