import TesseraCore

/// Memory that one worker reuses from region to region: the source regions of the views (in their
/// element type), the accumulators of one slab of output rows, and the last result.
final class FusionWorkspace {
  private var sources: [ScratchBuffer] = []
  private let slab = ScratchBuffer()
  /// The last result handed out; reused for the next region once its reader has let go of it.
  var result: AnyVolumeBuffer?

  /// Source region number `slot` with room for `bytes` bytes (uninitialised).
  func source(_ slot: Int, bytes: Int) -> UnsafeMutableRawBufferPointer {
    while sources.count <= slot { sources.append(ScratchBuffer()) }
    return sources[slot].bytes(bytes)
  }

  /// Value and weight accumulators for `count` voxels and scratch for `scratch` (uninitialised).
  func slabBuffers(_ count: Int, scratch: Int) -> (
    value: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) {
    let base = slab.floats(2 * count + scratch)
    return (base, base + count, base + 2 * count)
  }
}

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

/// How one view is resampled into one output region: set up once per (region, view), then run
/// over the region's output rows a slab at a time, so that the accumulators stay in cache.
///
/// Pull resampling: output voxel q samples the view at `p = outputToView · q`. The view covers
/// p if p lies in its footprint `[−0.5, n − 0.5)` on every axis; samples in the half-voxel rim
/// clamp to the edge voxel. Linear interpolation is bi/trilinear; nearest rounds half up.
/// Translation-only transforms take a fast path whose weights per axis are constant (subpixel)
/// or absent (integer shift: a copy). 2-D data runs through the same code as one z-plane.
///
/// Rows are numbered in C order over the region's (lifted 3-D) shape: row r is z = r / ny,
/// y = r % ny, and holds nx voxels.
struct ViewSampler {
  /// Region and source geometry, lifted to 3-D (a leading axis of extent 1 for 2-D data).
  let outLower: [Int]
  let outShape: [Int]
  let srcLower: [Int]
  let srcShape: [Int]
  /// View shape.
  let n: [Int]
  /// outputToView, 3 × 4, lifted.
  let m: [[Double]]
  /// Feathering width per axis, view voxels.
  let width: [Float]
  let feather: Bool
  let linear: Bool
  let blend: BlendMode
  /// Tap tables for a translation, nil for a general affine.
  private(set) var axes: TranslationAxes?

  init(
    region: Box, sourceBox: Box, viewShape: [Int], outputToView: AffineTransform, interpolation: Interpolation,
    blend: BlendMode, blendWidth: [Double]
  ) {
    let rank = viewShape.count
    precondition(rank == 2 || rank == 3, "fusion supports 2-D and 3-D views")
    precondition(region.rank == rank && sourceBox.rank == rank)
    func lift<T>(_ a: [T], _ one: T) -> [T] { rank == 3 ? a : [one] + a }
    outLower = lift(region.lower, 0)
    outShape = lift(region.shape, 1)
    srcLower = lift(sourceBox.lower, 0)
    srcShape = lift(sourceBox.shape, 1)
    n = lift(viewShape, 1)
    var m = [[Double]](repeating: [0, 0, 0, 0], count: 3)
    for r in 0..<3 {
      for c in 0...3 {
        if rank == 3 {
          m[r][c] = outputToView[r, c]
        } else if r == 0 || c == 0 {
          m[r][c] = 0  // the lifted z row: p_z = 0
        } else {
          m[r][c] = outputToView[r - 1, c - 1]
        }
      }
    }
    self.m = m
    width = lift(blendWidth.map { Float($0) }, 0)
    feather = blend == .linear
    linear = interpolation == .linear
    self.blend = blend
    let translationOnly = (0..<3).allSatisfy { r in
      (0..<3).allSatisfy { c in m[r][c] == ((r == c && !(rank == 2 && r == 0)) ? 1 : 0) }
    }
    axes = nil
    if translationOnly { axes = TranslationAxes(self) }
  }

  /// Number of output rows of the region.
  var rows: Int { outShape[0] * outShape[1] }

  /// Adds this view's samples for output rows `rows` to accumulators `value`, `weight` that hold
  /// those rows only (row `rows.lowerBound` at offset 0). `scratch` holds two rows plus 8 voxels.
  /// `source` holds the source box's voxels in C order, of element type `sourceType`. Returns
  /// whether any sample fell inside the view.
  func accumulate(
    rows: Range<Int>, source: UnsafeRawBufferPointer, sourceType: ElementType, value: UnsafeMutablePointer<Float>,
    weight: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) -> Bool {
    precondition(source.count == srcShape.reduce(sourceType.byteCount, *))
    // Dispatch on the element type once; the voxel loops are specialised for it.
    func run<S: VoxelElement>(_: S.Type) -> Bool {
      let src = source.baseAddress!.assumingMemoryBound(to: S.self)
      if let axes { return translationRows(rows, axes, src, value, weight, scratch) }
      return CosineRamp.table.withUnsafeBufferPointer { affineRows(rows, src, value, weight, $0) }
    }
    switch sourceType {
    case .uint8: return run(UInt8.self)
    case .int8: return run(Int8.self)
    case .uint16: return run(UInt16.self)
    case .int16: return run(Int16.self)
    case .uint32: return run(UInt32.self)
    case .int32: return run(Int32.self)
    case .float32: return run(Float.self)
    case .float64: return run(Double.self)
    }
  }

  /// Distance (voxels) from the footprint border along one axis.
  @inline(__always)
  static func borderDistance(_ p: Double, _ n: Int) -> Float {
    Float(Swift.min(p + 0.5, Double(n) - 0.5 - p))
  }

  /// General affine: each voxel computes its own position, taps and weight.
  private func affineRows<S: VoxelElement>(
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
    let (linear, feather, blend) = (self.linear, self.feather, self.blend)
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
        if blend == .first && weight[o] > 0 { continue }
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
        if feather {
          w = CosineRamp.weight(Self.borderDistance(px, nx), width: wx, table: table)
          w *= CosineRamp.weight(Self.borderDistance(py, ny), width: wy, table: table)
          if !flat { w *= CosineRamp.weight(Self.borderDistance(pz, nz), width: wz, table: table) }
        }
        switch blend {
        case .linear, .mean:
          value[o] += w * v
          weight[o] += w
        case .max:
          if v > value[o] { value[o] = v }
          weight[o] = 1
        case .first:
          value[o] = v
          weight[o] = 1
        }
      }
    }
    return touched
  }

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

    init(_ s: ViewSampler) {
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
            if s.feather && n > 1 {
              let pos = Double(i0) + fraction
              ax.w[i] = CosineRamp.weight(borderDistance(pos, n), width: s.width[d], table: table)
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

  /// Translation only: per row, sample into `row` (a copy for integer shifts, else bi/trilinear
  /// with the per-axis tables), then blend the row into the accumulators.
  private func translationRows<S: VoxelElement>(
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
    let blend = self.blend
    T.x.a.withUnsafeBufferPointer { xa in
      T.x.b.withUnsafeBufferPointer { xb in
        T.x.w.withUnsafeBufferPointer { wx in
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
            if tx == 0 && ty == 0 && tz == 0 {
              for i in x0..<x1 { out[i] = p00[xa[i]].floatValue }
            } else {
              // Separable: first combine the source rows along z and y over the x range the taps
              // use (R, indexed by source x), then interpolate along x. Lerps, so that equal
              // neighbours give exactly their value.
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
              if blend == .linear {
                // The feathered blend of the interior samples as they are interpolated (no
                // store and reload of the sampled row); the clamped edges are blended below.
                let (vo, wo, wxp) = (value + o, weight + o, wx.baseAddress!)
                let wzy = T.z.w[k] * T.y.w[j]
                for i in u0..<u1 {
                  let sample = r[i] + (r[i + 1] - r[i]) * tx
                  let w = wzy * wxp[i]
                  vo[i] += w * sample
                  wo[i] += w
                }
                for i in x0..<u0 {
                  let w = wzy * wxp[i]
                  vo[i] += w * out[i]
                  wo[i] += w
                }
                for i in u1..<x1 {
                  let w = wzy * wxp[i]
                  vo[i] += w * out[i]
                  wo[i] += w
                }
                continue
              }
              for i in u0..<u1 { out[i] = r[i] + (r[i + 1] - r[i]) * tx }
            }
            // Blend the row (pointer arithmetic, no index overflow checks, so the loops vectorise).
            let vo = value + o
            let wo = weight + o
            let wxp = wx.baseAddress!
            switch blend {
            case .linear:
              let wzy = T.z.w[k] * T.y.w[j]
              for i in x0..<x1 {
                let w = wzy * wxp[i]
                vo[i] += w * out[i]
                wo[i] += w
              }
            case .mean:
              for i in x0..<x1 {
                vo[i] += out[i]
                wo[i] += 1
              }
            case .max:
              for i in x0..<x1 {
                vo[i] = Swift.max(vo[i], out[i])
                wo[i] = 1
              }
            case .first:
              for i in x0..<x1 where wo[i] == 0 {
                vo[i] = out[i]
                wo[i] = 1
              }
            }
          }
        }
      }
    }
    return touched
  }
}
