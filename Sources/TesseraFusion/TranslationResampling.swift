import TesseraCore

/// Per-axis tap tables of a translation p = q + t: for each output index along an axis, the
/// first and second tap, the fraction, the feathering weight, and whether the sample is inside
/// the view. Along x the inside samples form one interval, and in its interior the taps are
/// consecutive (`a = i + offset`, `b = a + 1`), so those samples run on contiguous memory.
struct TranslationAxes {
  struct Axis {
    var a: [Int]
    var b: [Int]
    var t: [Float]
    var w: [Float]
    var inside: [Bool]
  }
  var z: Axis
  var y: Axis
  var x: Axis
  /// Inside interval along x, and its unclamped interior [u0, u1) with taps i + offset, i + offset + 1.
  var x0 = 0
  var x1 = 0
  var u0 = 0
  var u1 = 0
  var offset = 0
  /// The fraction, the same for every x.
  var tx: Float = 0

  init<Rule>(_ s: ViewSampler<Rule>) {
    func axis(_ d: Int) -> Axis {
      let count = s.outShape[d]
      let n = s.n[d]
      // The lifted z axis of 2-D data has a zero row: p = 0 for every output index.
      let moves = s.m[d][d] == 1
      // p = q + shift, with the shift split once into an integer and a fraction in [0, 1), so that
      // every output voxel gets the same taps and fraction whichever region it is fused in (per
      // voxel, q + shift could round to an integer for some q and not for others).
      var whole = Int(s.m[d][3].rounded(.down))
      var fraction = s.m[d][3] - Double(whole)
      var t = Float(fraction)
      if t == 1 {  // a fraction a hair below 1 is the next integer
        whole += 1
        fraction = 0
        t = 0
      }
      var ax = Axis(
        a: .init(repeating: 0, count: count), b: .init(repeating: 0, count: count),
        t: .init(repeating: 0, count: count), w: .init(repeating: 1, count: count),
        inside: .init(repeating: false, count: count))
      CosineRamp.table.withUnsafeBufferPointer { table in
        for i in 0..<count {
          let i0 = (moves ? s.outLower[d] + i : 0) + whole  // p = i0 + fraction
          // Inside the footprint [−0.5, n − 0.5), decided on the integer part.
          let aboveLower = i0 >= 0 || (i0 == -1 && fraction >= 0.5)
          let belowUpper = i0 <= n - 2 || (i0 == n - 1 && fraction < 0.5)
          guard aboveLower, belowUpper else { continue }
          ax.inside[i] = true
          if s.linear {
            ax.a[i] = Swift.max(i0, 0) - s.srcLower[d]
            ax.b[i] = Swift.min(i0 + 1, n - 1) - s.srcLower[d]
            ax.t[i] = t
          } else {
            let r = Swift.min(Swift.max(fraction >= 0.5 ? i0 + 1 : i0, 0), n - 1) - s.srcLower[d]
            ax.a[i] = r
            ax.b[i] = r
          }
          if Rule.feathers && n > 1 {
            let pos = Double(i0) + fraction
            ax.w[i] = CosineRamp.weight(CosineRamp.borderDistance(pos, n), width: s.width[d], table: table)
          }
        }
      }
      return ax
    }
    z = axis(0)
    y = axis(1)
    x = axis(2)
    guard let first = x.inside.firstIndex(of: true), let last = x.inside.lastIndex(of: true) else { return }
    x0 = first
    x1 = last + 1
    tx = x.t[x0]
    let mid = (x0 + x1) / 2
    offset = x.a[mid] - mid
    u0 = x0
    while u0 < x1 && !(x.a[u0] == u0 + offset && x.b[u0] == u0 + offset + 1) { u0 += 1 }
    u1 = u0
    while u1 < x1 && x.a[u1] == u1 + offset && x.b[u1] == u1 + offset + 1 { u1 += 1 }
  }
}

extension ViewSampler {
  /// Translation only: per row, sample (a copy for integer shifts, else bi/trilinear with the
  /// per-axis tables) and add the row to the accumulators by `Rule`, with weight
  /// `w_z(k) · w_y(j) · w_x(i)` when the rule feathers.
  ///
  /// The subpixel case is separable: the four source rows s_zy of the z and y taps are first
  /// combined over the x range the taps use, `R = c0 + (c1 − c0)·t_z` with
  /// `c0 = s00 + (s01 − s00)·t_y` and `c1 = s10 + (s11 − s10)·t_y`, then interpolated along x,
  /// `R[a] + (R[b] − R[a])·t_x`. Lerps, so equal neighbours give exactly their value. The interior
  /// samples are added as they are interpolated (no store and reload of the sampled row); the
  /// clamped edge samples go through `out`.
  func translationRows<S: VoxelElement>(
    _ rows: Range<Int>, _ T: TranslationAxes, _ src: UnsafePointer<S>, _ value: UnsafeMutablePointer<Float>,
    _ weight: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>
  ) -> Bool {
    guard T.x0 < T.x1 else { return false }
    var touched = false
    // The scratch holds the sampled row, then one source row combined along z and y.
    precondition(srcShape[2] <= outShape[2] + 8, "a translation's source row is at most the region's row plus 1")
    let R = out + outShape[2]
    let (sy, sx) = (srcShape[1], srcShape[2])
    let (outNY, nxOut) = (outShape[1], outShape[2])
    let (x0, x1, u0, u1, offA, tx) = (T.x0, T.x1, T.u0, T.u1, T.offset, T.tx)
    T.x.a.withUnsafeBufferPointer { xa in
      T.x.b.withUnsafeBufferPointer { xb in
        T.x.w.withUnsafeBufferPointer { wx in
          let wxp = wx.baseAddress!
          var o = -nxOut
          // Row r is (k, j) = (r / outNY, r % outNY), stepped without a division per row.
          var k = rows.lowerBound / outNY
          var j = rows.lowerBound % outNY - 1
          for _ in rows {
            o += nxOut
            j += 1
            if j == outNY {
              j = 0
              k += 1
            }
            guard T.z.inside[k], T.y.inside[j] else { continue }
            touched = true
            let p00 = src + (T.z.a[k] * sy + T.y.a[j]) * sx
            let p01 = src + (T.z.a[k] * sy + T.y.b[j]) * sx
            let p10 = src + (T.z.b[k] * sy + T.y.a[j]) * sx
            let p11 = src + (T.z.b[k] * sy + T.y.b[j]) * sx
            let (tz, ty) = (T.z.t[k], T.y.t[j])
            let (vo, wo) = (value + o, weight + o)
            let wzy: Float = Rule.feathers ? T.z.w[k] * T.y.w[j] : 1
            if tx == 0 && ty == 0 && tz == 0 {
              for i in x0..<x1 { out[i] = p00[xa[i]].floatValue }
              Rule.addRow(x0..<x1, value: vo, weight: wo, rowWeight: wzy, weights: wxp) { out[$0] }
              continue
            }
            let (sLo, sHi) = (xa[x0], xb[x1 - 1])
            if tz == 0 && ty == 0 {
              for x in sLo...sHi { R[x] = p00[x].floatValue }
            } else if tz == 0 {
              for x in sLo...sHi {
                let a = p00[x].floatValue
                R[x] = a + (p01[x].floatValue - a) * ty
              }
            } else {
              for x in sLo...sHi {
                let a0 = p00[x].floatValue
                let a1 = p10[x].floatValue
                let c0 = a0 + (p01[x].floatValue - a0) * ty
                let c1 = a1 + (p11[x].floatValue - a1) * ty
                R[x] = c0 + (c1 - c0) * tz
              }
            }
            for i in x0..<u0 { out[i] = R[xa[i]] + (R[xb[i]] - R[xa[i]]) * tx }
            for i in u1..<x1 { out[i] = R[xa[i]] + (R[xb[i]] - R[xa[i]]) * tx }
            let r = R + offA
            Rule.addRow(u0..<u1, value: vo, weight: wo, rowWeight: wzy, weights: wxp) {
              r[$0] + (r[$0 + 1] - r[$0]) * tx
            }
            Rule.addRow(x0..<u0, value: vo, weight: wo, rowWeight: wzy, weights: wxp) { out[$0] }
            Rule.addRow(u1..<x1, value: vo, weight: wo, rowWeight: wzy, weights: wxp) { out[$0] }
          }
        }
      }
    }
    return touched
  }
}
