import TesseraCore

/// Accumulators for one output chunk: per voxel, a value sum and a weight sum (or a running max,
/// or the first value), in Float.
public struct ChunkAccumulator: Sendable {
  /// The output box (spatial, output voxels).
  public let box: Box
  public let blend: BlendMode
  /// Σ w·v (linear, mean), max v (max), or the first v (first).
  public var value: [Float]
  /// Σ w (linear, mean), or 1 where some view covered the voxel (max, first).
  public var weight: [Float]

  public init(box: Box, blend: BlendMode) {
    self.box = box
    self.blend = blend
    value = [Float](repeating: blend == .max ? -.infinity : 0, count: box.volume)
    weight = [Float](repeating: 0, count: box.volume)
  }

  /// True if no view covered any voxel.
  public var isEmpty: Bool { !weight.contains { $0 > 0 } }

  /// The fused voxels converted to `type` (round, clamp), `fill` where no view covered.
  public func result(as type: ElementType, fill: Double) -> AnyVolumeBuffer {
    let fillValue = Float(fill)
    let normalise = blend == .linear || blend == .mean
    var out = AnyVolumeBuffer(elementType: type, box: box)
    // In pieces of 4096 voxels through a small Float buffer: one pass, no chunk-sized temporary.
    let piece = 4096
    var f = [Float](repeating: 0, count: piece)
    value.withUnsafeBufferPointer { value in
      weight.withUnsafeBufferPointer { weight in
        f.withUnsafeMutableBufferPointer { f in
          out.withUnsafeMutableBytes { dst in
            var start = 0
            while start < value.count {
              let n = Swift.min(piece, value.count - start)
              // Two loops without a per-voxel mode test, so each vectorises.
              if normalise {
                for i in 0..<n {
                  let w = weight[start + i]
                  f[i] = w > 0 ? value[start + i] / w : fillValue
                }
              } else {
                for i in 0..<n { f[i] = weight[start + i] > 0 ? value[start + i] : fillValue }
              }
              ElementConversion.convert(
                n, from: .float32, UnsafeRawPointer(f.baseAddress!), to: type,
                dst.baseAddress! + start * type.byteCount)
              start += n
            }
          }
        }
      }
    }
    return out
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

/// Resamples one view into a chunk accumulator.
///
/// Pull resampling: output voxel q samples the view at `p = outputToView · q`. The view covers
/// p if p lies in its footprint `[−0.5, n − 0.5)` on every axis; samples in the half-voxel rim
/// clamp to the edge voxel. Linear interpolation is bi/trilinear; nearest rounds half up.
/// Translation-only transforms take a fast path whose weights per axis are constant (subpixel)
/// or absent (integer shift: a copy). 2-D data runs through the same code as one z-plane.
public enum Resampler {
  /// Adds view data `source` (a box of view voxels holding every voxel the chunk samples, as
  /// Float) to `acc`.
  public static func accumulate(
    into acc: inout ChunkAccumulator, source: VolumeBuffer<Float>, viewShape: [Int], outputToView: AffineTransform,
    interpolation: Interpolation, blendWidth: [Double]
  ) {
    let rank = viewShape.count
    precondition(rank == 2 || rank == 3, "fusion supports 2-D and 3-D views")
    precondition(acc.box.rank == rank && source.rank == rank)
    // Lift to 3-D: a leading axis of extent 1 with an identity row.
    func lift<T>(_ a: [T], _ one: T) -> [T] { rank == 3 ? a : [one] + a }
    let outLower = lift(acc.box.lower, 0)
    let outShape = lift(acc.box.shape, 1)
    let srcLower = lift(source.box.lower, 0)
    let srcShape = lift(source.box.shape, 1)
    let n = lift(viewShape, 1)
    var m = [[Double]](repeating: [0, 0, 0, 0], count: 3)
    for r in 0..<3 {
      for c in 0...3 {
        if rank == 3 {
          m[r][c] = outputToView[r, c]
        } else if r == 0 {
          m[r][c] = 0  // z row: p_z = 0
        } else if c == 0 {
          m[r][c] = 0
        } else {
          m[r][c] = outputToView[r - 1, c - 1]
        }
      }
    }
    let width = lift(blendWidth.map { Float($0) }, 0)
    let feather = acc.blend == .linear
    let translationOnly = (0..<3).allSatisfy { r in
      (0..<3).allSatisfy { c in m[r][c] == ((r == c && !(rank == 2 && r == 0)) ? 1 : 0) }
    }
    let params = Params(
      outLower: outLower, outShape: outShape, srcLower: srcLower, srcShape: srcShape, n: n, m: m,
      width: width, feather: feather, linear: interpolation == .linear, blend: acc.blend)
    let blend = acc.blend
    source.storage.withUnsafeBufferPointer { src in
      acc.value.withUnsafeMutableBufferPointer { value in
        acc.weight.withUnsafeMutableBufferPointer { weight in
          CosineRamp.table.withUnsafeBufferPointer { table in
            if translationOnly {
              translationKernel(params, src, value, weight, table, blend)
            } else {
              affineKernel(params, src, value, weight, table, blend)
            }
          }
        }
      }
    }
  }

  struct Params {
    var outLower: [Int]
    var outShape: [Int]
    var srcLower: [Int]
    var srcShape: [Int]
    var n: [Int]
    var m: [[Double]]
    var width: [Float]
    var feather: Bool
    var linear: Bool
    var blend: BlendMode
  }

  /// Stores one sample into the accumulators according to the blend mode.
  @inline(__always)
  static func store(
    _ o: Int, _ v: Float, _ w: Float, _ value: UnsafeMutableBufferPointer<Float>,
    _ weight: UnsafeMutableBufferPointer<Float>, _ blend: BlendMode
  ) {
    switch blend {
    case .linear, .mean:
      value[o] += w * v
      weight[o] += w
    case .max:
      if v > value[o] { value[o] = v }
      weight[o] = 1
    case .first:
      if weight[o] == 0 {
        value[o] = v
        weight[o] = 1
      }
    }
  }

  /// Distance (voxels) from the footprint border along one axis.
  @inline(__always)
  static func borderDistance(_ p: Double, _ n: Int) -> Float {
    Float(Swift.min(p + 0.5, Double(n) - 0.5 - p))
  }

  /// General affine: each voxel computes its own position, taps and weight.
  static func affineKernel(
    _ P: Params, _ src: UnsafeBufferPointer<Float>, _ value: UnsafeMutableBufferPointer<Float>,
    _ weight: UnsafeMutableBufferPointer<Float>, _ table: UnsafeBufferPointer<Float>, _ blend: BlendMode
  ) {
    let m = P.m
    let (nz, ny, nx) = (P.n[0], P.n[1], P.n[2])
    let (sz, sy, sx) = (P.srcShape[0], P.srcShape[1], P.srcShape[2])
    let (lz, ly, lx) = (P.srcLower[0], P.srcLower[1], P.srcLower[2])
    let (wz, wy, wx) = (P.width[0], P.width[1], P.width[2])
    let (hz, hy, hx) = (Double(nz) - 0.5, Double(ny) - 0.5, Double(nx) - 0.5)
    let flat = nz == 1
    var o = 0
    for k in 0..<P.outShape[0] {
      let qz = Double(P.outLower[0] + k)
      for j in 0..<P.outShape[1] {
        let qy = Double(P.outLower[1] + j)
        let qx0 = Double(P.outLower[2])
        var pz = m[0][0] * qz + m[0][1] * qy + m[0][2] * qx0 + m[0][3]
        var py = m[1][0] * qz + m[1][1] * qy + m[1][2] * qx0 + m[1][3]
        var px = m[2][0] * qz + m[2][1] * qy + m[2][2] * qx0 + m[2][3]
        for _ in 0..<P.outShape[2] {
          defer {
            o += 1
            pz += m[0][2]
            py += m[1][2]
            px += m[2][2]
          }
          guard pz >= -0.5, pz < hz, py >= -0.5, py < hy, px >= -0.5, px < hx else { continue }
          if blend == .first && weight[o] > 0 { continue }
          let v: Float
          if P.linear {
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
            let a0 = src[r00 + xa] + (src[r00 + xb] - src[r00 + xa]) * tx
            let b0 = src[r01 + xa] + (src[r01 + xb] - src[r01 + xa]) * tx
            let c0 = a0 + (b0 - a0) * ty
            if flat || tz == 0 {
              v = c0
            } else {
              let r10 = (zb * sy + ya) * sx
              let r11 = (zb * sy + yb) * sx
              let a = src[r10 + xa] + (src[r10 + xb] - src[r10 + xa]) * tx
              let b = src[r11 + xa] + (src[r11 + xb] - src[r11 + xa]) * tx
              let c1 = a + (b - a) * ty
              v = c0 + (c1 - c0) * tz
            }
          } else {
            let z = Swift.min(Swift.max(Int((pz + 0.5).rounded(.down)), 0), nz - 1) - lz
            let y = Swift.min(Swift.max(Int((py + 0.5).rounded(.down)), 0), ny - 1) - ly
            let x = Swift.min(Swift.max(Int((px + 0.5).rounded(.down)), 0), nx - 1) - lx
            v = src[(z * sy + y) * sx + x]
          }
          var w: Float = 1
          if P.feather {
            w = CosineRamp.weight(borderDistance(px, nx), width: wx, table: table)
            w *= CosineRamp.weight(borderDistance(py, ny), width: wy, table: table)
            if !flat { w *= CosineRamp.weight(borderDistance(pz, nz), width: wz, table: table) }
          }
          store(o, v, w, value, weight, blend)
        }
      }
    }
  }

  /// Translation only: p = q + t. Per axis, the taps move with q and the fractional weights and
  /// feathering weights depend on one coordinate only, so they are tabulated per axis; an integer
  /// shift with nearest or linear interpolation is a copy.
  static func translationKernel(
    _ P: Params, _ src: UnsafeBufferPointer<Float>, _ value: UnsafeMutableBufferPointer<Float>,
    _ weight: UnsafeMutableBufferPointer<Float>, _ table: UnsafeBufferPointer<Float>, _ blend: BlendMode
  ) {
    // Per axis: for each output index along it, (first tap, second tap, fraction, feather weight),
    // or nil when the sample is outside the view.
    struct Axis {
      var a: [Int]
      var b: [Int]
      var t: [Float]
      var w: [Float]
      var inside: [Bool]
    }
    func axis(_ d: Int) -> Axis {
      let count = P.outShape[d]
      let shift = P.m[d][3]
      let n = P.n[d]
      var ax = Axis(
        a: .init(repeating: 0, count: count), b: .init(repeating: 0, count: count),
        t: .init(repeating: 0, count: count), w: .init(repeating: 1, count: count),
        inside: .init(repeating: false, count: count))
      for i in 0..<count {
        // The lifted z axis of 2-D data has a zero row: p = 0.
        let pos = P.m[d][d] == 1 ? Double(P.outLower[d] + i) + shift : shift
        guard pos >= -0.5, pos < Double(n) - 0.5 else { continue }
        ax.inside[i] = true
        if P.linear {
          let f = pos.rounded(.down)
          let i0 = Int(f)
          ax.a[i] = Swift.max(i0, 0) - P.srcLower[d]
          ax.b[i] = Swift.min(i0 + 1, n - 1) - P.srcLower[d]
          ax.t[i] = Float(pos - f)
        } else {
          let r = Swift.min(Swift.max(Int((pos + 0.5).rounded(.down)), 0), n - 1) - P.srcLower[d]
          ax.a[i] = r
          ax.b[i] = r
        }
        if P.feather && n > 1 { ax.w[i] = CosineRamp.weight(borderDistance(pos, n), width: P.width[d], table: table) }
      }
      return ax
    }
    let az = axis(0)
    let ay = axis(1)
    let ax = axis(2)
    let (sy, sx) = (P.srcShape[1], P.srcShape[2])
    let nxOut = P.outShape[2]
    // Samples inside the view along x form one interval.
    guard let x0 = ax.inside.firstIndex(of: true), let x1 = ax.inside.lastIndex(of: true).map({ $0 + 1 }) else {
      return
    }
    let tx = ax.t[x0]  // the fractional part is the same for every x (a translation)
    // The interior run where the taps are i + offA and i + offA + 1 (no clamping).
    let mid = (x0 + x1) / 2
    let offA = ax.a[mid] - mid
    var u0 = x0
    while u0 < x1 && !(ax.a[u0] == u0 + offA && ax.b[u0] == u0 + offA + 1) { u0 += 1 }
    var u1 = u0
    while u1 < x1 && ax.a[u1] == u1 + offA && ax.b[u1] == u1 + offA + 1 { u1 += 1 }
    var row = [Float](repeating: 0, count: nxOut)
    ax.a.withUnsafeBufferPointer { xa in
      ax.b.withUnsafeBufferPointer { xb in
        ax.w.withUnsafeBufferPointer { wx in
          row.withUnsafeMutableBufferPointer { row in
            var o = 0
            for k in 0..<P.outShape[0] {
              guard az.inside[k] else {
                o += P.outShape[1] * nxOut
                continue
              }
              for j in 0..<P.outShape[1] {
                defer { o += nxOut }
                guard ay.inside[j] else { continue }
                let r00 = (az.a[k] * sy + ay.a[j]) * sx
                let r01 = (az.a[k] * sy + ay.b[j]) * sx
                let r10 = (az.b[k] * sy + ay.a[j]) * sx
                let r11 = (az.b[k] * sy + ay.b[j]) * sx
                let (tz, ty) = (az.t[k], ay.t[j])
                // Sample the row: a copy for integer shifts (and nearest), else bi/trilinear. In the
                // interior the taps are consecutive (xa = i + off, xb = xa + 1), so the loops run on
                // contiguous memory and vectorise; clamped edge samples use the tap tables.
                let p00 = src.baseAddress! + r00
                let p01 = src.baseAddress! + r01
                let p10 = src.baseAddress! + r10
                let p11 = src.baseAddress! + r11
                let out = row.baseAddress!
                if tx == 0 && ty == 0 && tz == 0 {
                  for i in x0..<x1 { out[i] = p00[xa[i]] }
                } else {
                  for i in Array(x0..<u0) + Array(u1..<x1) {
                    let c00 = p00[xa[i]] + (p00[xb[i]] - p00[xa[i]]) * tx
                    let c01 = p01[xa[i]] + (p01[xb[i]] - p01[xa[i]]) * tx
                    let c0 = c00 + (c01 - c00) * ty
                    if tz == 0 {
                      out[i] = c0
                    } else {
                      let c10 = p10[xa[i]] + (p10[xb[i]] - p10[xa[i]]) * tx
                      let c11 = p11[xa[i]] + (p11[xb[i]] - p11[xa[i]]) * tx
                      let c1 = c10 + (c11 - c10) * ty
                      out[i] = c0 + (c1 - c0) * tz
                    }
                  }
                  if u0 < u1 {
                    let a00 = p00 + offA
                    let a01 = p01 + offA
                    let a10 = p10 + offA
                    let a11 = p11 + offA
                    if tz == 0 {
                      for i in u0..<u1 {
                        let c00 = a00[i] + (a00[i + 1] - a00[i]) * tx
                        let c01 = a01[i] + (a01[i + 1] - a01[i]) * tx
                        out[i] = c00 + (c01 - c00) * ty
                      }
                    } else {
                      for i in u0..<u1 {
                        let c00 = a00[i] + (a00[i + 1] - a00[i]) * tx
                        let c01 = a01[i] + (a01[i + 1] - a01[i]) * tx
                        let c10 = a10[i] + (a10[i + 1] - a10[i]) * tx
                        let c11 = a11[i] + (a11[i + 1] - a11[i]) * tx
                        let c0 = c00 + (c01 - c00) * ty
                        let c1 = c10 + (c11 - c10) * ty
                        out[i] = c0 + (c1 - c0) * tz
                      }
                    }
                  }
                }
                // Blend the row.
                let wzy = az.w[k] * ay.w[j]
                switch blend {
                case .linear:
                  for i in x0..<x1 {
                    let w = wzy * wx[i]
                    value[o + i] += w * row[i]
                    weight[o + i] += w
                  }
                case .mean:
                  for i in x0..<x1 {
                    value[o + i] += row[i]
                    weight[o + i] += 1
                  }
                case .max:
                  for i in x0..<x1 {
                    value[o + i] = Swift.max(value[o + i], row[i])
                    weight[o + i] = 1
                  }
                case .first:
                  for i in x0..<x1 where weight[o + i] == 0 {
                    value[o + i] = row[i]
                    weight[o + i] = 1
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}
