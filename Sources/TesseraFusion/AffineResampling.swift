import TesseraCore

extension ViewSampler {
  /// General affine: each voxel computes its own position `p = outputToView · q`, taps and
  /// weight, and is added to the accumulators by `Rule`.
  ///
  /// Linear interpolation is the trilinear lerp of the 2×2×2 neighbours `⌊p⌋ … ⌊p⌋ + 1` along x,
  /// then y, then z (bilinear in a plane, or where the z fraction is 0), neighbours clamped to the
  /// view; nearest takes `⌊p + 0.5⌋`, clamped. The feathering weight is the product of the per-axis
  /// ramps at the distance from the footprint border (``CosineRamp``), x first.
  func affineRows<S: VoxelElement>(
    _ rows: Range<Int>, _ src: UnsafePointer<S>, _ value: UnsafeMutablePointer<Float>,
    _ weight: UnsafeMutablePointer<Float>, _ table: UnsafeBufferPointer<Float>
  ) -> Bool {
    let m = self.m
    let (nz, ny, nx) = (n[0], n[1], n[2])
    let (sz, sy, sx) = (srcShape[0], srcShape[1], srcShape[2])
    let (lz, ly, lx) = (srcLower[0], srcLower[1], srcLower[2])
    let (wz, wy, wx) = (width[0], width[1], width[2])
    let (hz, hy, hx) = (Double(nz) - 0.5, Double(ny) - 0.5, Double(nx) - 0.5)
    let flat = nz == 1
    let (outNY, outNX) = (outShape[1], outShape[2])
    let (m00, m01, m02, m03) = (m[0][0], m[0][1], m[0][2], m[0][3])
    let (m10, m11, m12, m13) = (m[1][0], m[1][1], m[1][2], m[1][3])
    let (m20, m21, m22, m23) = (m[2][0], m[2][1], m[2][2], m[2][3])
    let linear = self.linear
    var touched = false
    var o = 0
    for r in rows {
      let qz = Double(outLower[0] + r / outNY)
      let qy = Double(outLower[1] + r % outNY)
      // Each voxel's position from its own index (not accumulated along the row), so it is the
      // same whichever region the voxel is fused in.
      let cz = m00 * qz + m01 * qy + m03
      let cy = m10 * qz + m11 * qy + m13
      let cx = m20 * qz + m21 * qy + m23
      for i in 0..<outNX {
        defer { o += 1 }
        let qx = Double(outLower[2] + i)
        let pz = cz + m02 * qx
        let py = cy + m12 * qx
        let px = cx + m22 * qx
        guard pz >= -0.5, pz < hz, py >= -0.5, py < hy, px >= -0.5, px < hx else { continue }
        touched = true
        if Rule.isSettled(weight[o]) { continue }
        let v: Float
        if linear {
          let fz = pz.rounded(.down)
          let fy = py.rounded(.down)
          let fx = px.rounded(.down)
          let z0 = Int(fz)
          let y0 = Int(fy)
          let x0 = Int(fx)
          let tz = Float(pz - fz)
          let ty = Float(py - fy)
          let tx = Float(px - fx)
          let za = Swift.max(z0, 0) - lz
          let zb = Swift.min(z0 + 1, nz - 1) - lz
          let ya = Swift.max(y0, 0) - ly
          let yb = Swift.min(y0 + 1, ny - 1) - ly
          let xa = Swift.max(x0, 0) - lx
          let xb = Swift.min(x0 + 1, nx - 1) - lx
          assert(za >= 0 && zb < sz && ya >= 0 && yb < sy && xa >= 0 && xb < sx)
          let r00 = (za * sy + ya) * sx
          let r01 = (za * sy + yb) * sx
          let a0 = src[r00 + xa].floatValue + (src[r00 + xb].floatValue - src[r00 + xa].floatValue) * tx
          let b0 = src[r01 + xa].floatValue + (src[r01 + xb].floatValue - src[r01 + xa].floatValue) * tx
          let c0 = a0 + (b0 - a0) * ty
          if flat || tz == 0 {
            v = c0
          } else {
            let r10 = (zb * sy + ya) * sx
            let r11 = (zb * sy + yb) * sx
            let a = src[r10 + xa].floatValue + (src[r10 + xb].floatValue - src[r10 + xa].floatValue) * tx
            let b = src[r11 + xa].floatValue + (src[r11 + xb].floatValue - src[r11 + xa].floatValue) * tx
            let c1 = a + (b - a) * ty
            v = c0 + (c1 - c0) * tz
          }
        } else {
          let z = Swift.min(Swift.max(Int((pz + 0.5).rounded(.down)), 0), nz - 1) - lz
          let y = Swift.min(Swift.max(Int((py + 0.5).rounded(.down)), 0), ny - 1) - ly
          let x = Swift.min(Swift.max(Int((px + 0.5).rounded(.down)), 0), nx - 1) - lx
          v = src[(z * sy + y) * sx + x].floatValue
        }
        var w: Float = 1
        if Rule.feathers {
          w = CosineRamp.weight(CosineRamp.borderDistance(px, nx), width: wx, table: table)
          w *= CosineRamp.weight(CosineRamp.borderDistance(py, ny), width: wy, table: table)
          if !flat { w *= CosineRamp.weight(CosineRamp.borderDistance(pz, nz), width: wz, table: table) }
        }
        Rule.add(v, weight: w, to: &value[o], &weight[o])
      }
    }
    return touched
  }
}
