import Foundation
import TesseraCore
import TesseraIO

@testable import TesseraRegistration

/// Real textures for registration tests: the crops in `Datasets/real`, and exact subpixel
/// translates of them by Fourier shift (independent of the estimator's B-spline interpolation).
enum RealTexture {
  /// `Datasets/real/<name>.npy` as Float.
  static func load(_ name: String) throws -> VolumeBuffer<Float> {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return try NumpyFile.read(root.appendingPathComponent("Datasets/real/\(name).npy").path).converted(to: Float.self)
  }

  /// `v(x + d)` for every voxel x: the volume mirrored on every axis (so the periodic extension
  /// has no jumps), multiplied in Fourier space by `e^{iω·d}` and cropped back. Exact for the
  /// band-limited interpolant of the mirrored volume; the Nyquist terms get `cos(π d)`.
  static func shifted(_ v: VolumeBuffer<Float>, by d: [Double]) -> VolumeBuffer<Float> {
    let shape = v.shape
    let n = shape.count
    let big = shape.map { 2 * $0 }
    let plan = RealFFTPlan(shape: big)
    let buffer = plan.makeBuffer()
    let vs = VolumeBuffer<Float>.strides(for: shape)
    let bigStrides = VolumeBuffer<Float>.strides(for: big)
    // Mirrored copy: per axis, the source offset of each index of the doubled axis.
    let sources = (0..<n).map { j in (0..<big[j]).map { i in (i < shape[j] ? i : big[j] - 1 - i) * vs[j] } }
    v.storage.withUnsafeBufferPointer { src in
      forEach(big) { k, x in
        var o = 0
        for j in 0..<n { o += sources[j][x[j]] }
        buffer.real[k] = src[o]
      }
    }
    plan.forward(buffer)
    // Per axis, the phase factor e^{iωd} of each frequency index.
    let spectrum = plan.spectrumShape
    let factors: [[(Double, Double)]] = (0..<n).map { j in
      (0..<spectrum[j]).map { i in
        let m = big[j]
        let f = i <= m / 2 ? i : i - m
        if 2 * f == m || 2 * f == -m { return (Foundation.cos(Double.pi * d[j]), 0) }
        let w = 2 * Double.pi * Double(f) / Double(m) * d[j]
        return (Foundation.cos(w), Foundation.sin(w))
      }
    }
    let s = buffer.spectrum
    forEach(spectrum) { o, q in
      var (re, im) = (1.0, 0.0)
      for j in 0..<n {
        let (c, sn) = factors[j][q[j]]
        (re, im) = (re * c - im * sn, re * sn + im * c)
      }
      let (x, y) = (Double(s[o].re), Double(s[o].im))
      s[o] = (Float(x * re - y * im), Float(x * im + y * re))
    }
    plan.inverse(buffer)
    var out = VolumeBuffer<Float>(shape: shape)
    let scale = Float(1.0 / Double(plan.count))
    out.storage.withUnsafeMutableBufferPointer { dst in
      forEach(shape) { k, x in
        var o = 0
        for j in 0..<n { o += x[j] * bigStrides[j] }
        dst[k] = buffer.real[o] * scale
      }
    }
    return out
  }

  /// Calls `body(k, index)` for every index of `shape` in C order (k the linear index), with one
  /// reused index array.
  static func forEach(_ shape: [Int], _ body: (Int, UnsafeBufferPointer<Int>) -> Void) {
    let n = shape.count
    let total = shape.reduce(1, *)
    guard total > 0 else { return }
    let index = UnsafeMutableBufferPointer<Int>.allocate(capacity: n)
    defer { index.deallocate() }
    index.initialize(repeating: 0)
    for k in 0..<total {
      body(k, UnsafeBufferPointer(index))
      var j = n - 1
      while j >= 0 {
        index[j] += 1
        if index[j] < shape[j] { break }
        index[j] = 0
        j -= 1
      }
    }
  }

  /// `v(x + d)` on `box` of `v` only (a cheaper Fourier shift of a part, with `pad` voxels of
  /// context on each side inside `v`).
  static func shifted(_ v: VolumeBuffer<Float>, by d: [Double], box: Box, pad: Int = 8) -> VolumeBuffer<Float> {
    let context = box.grown(by: pad).intersection(v.box)
    let part = shifted(v.extracting(context).reboxed(Box(shape: context.shape)), by: d)
    return part.reboxed(context).extracting(box)
  }

  /// Every `step[k]`-th voxel of `v` in `box` (an anisotropic sampling of an isotropic volume).
  static func sampled(_ v: VolumeBuffer<Float>, _ box: Box, step: [Int]) -> VolumeBuffer<Float> {
    let shape = zip(box.shape, step).map { ($0 + $1 - 1) / $1 }
    var out = VolumeBuffer<Float>(shape: shape)
    var k = 0
    Box(shape: shape).forEachIndex { q in
      out.storage[k] = v[(0..<q.count).map { box.lower[$0] + q[$0] * step[$0] }]
      k += 1
    }
    return out
  }
}

/// A view held in memory (Float32).
struct MemoryReader: ViewReader {
  let data: VolumeBuffer<Float>
  func read(_ box: Box, level: Int) throws -> AnyVolumeBuffer { AnyVolumeBuffer(data.extracting(box)) }
}

/// Tiles cut from a real volume at subpixel true positions, as an in-memory dataset.
struct RealTiling {
  var dataset: Dataset
  /// True position of each tile, voxels (the stated ones are the nominal grid).
  var truth: [[Double]]
  var stated: [[Double]]
  var voxelSize: [Double]

  /// Tiles of `tileShape` whose nominal corners are `corners` (voxels) and whose true corners
  /// add `jitter[t]`; each tile shows `v` at its true position (Fourier shift of the fraction,
  /// then an integer crop).
  init(_ v: VolumeBuffer<Float>, tileShape: [Int], corners: [[Int]], jitter: [[Double]], voxelSize: [Double]) {
    self.voxelSize = voxelSize
    var views: [View] = []
    truth = []
    stated = []
    for (t, corner) in corners.enumerated() {
      let p = zip(corner, jitter[t]).map { Double($0) + $1 }
      let whole = p.map { Int($0.rounded(.down)) }
      let box = Box(lower: whole, upper: zip(whole, tileShape).map { $0 + $1 })
      let data = RealTexture.shifted(v, by: zip(p, whole).map { $0 - Double($1) }, box: box)
      truth.append(p)
      stated.append(corner.map(Double.init))
      let toWorld = AffineTransform(
        scale: voxelSize, translation: zip(corner, voxelSize).map { Double($0) * $1 })
      views.append(
        View(
          id: ViewID(timepoint: 0, setup: t), name: "tile\(t)", tile: t, channel: 0, elementType: .float32,
          shape: tileShape, voxelSize: voxelSize, viewToWorld: toWorld,
          reader: MemoryReader(data: data.reboxed(Box(shape: tileShape)))))
    }
    dataset = Dataset(path: "memory", format: "memory", views: views)
  }

  /// Per tile, the solved position's error (voxels), the common offset removed.
  func errors(_ report: RegistrationReport) -> [[Double]] {
    let rank = voxelSize.count
    let raw = report.tiles.map { tile in
      (0..<rank).map { d in stated[tile.tile][d] + tile.correctionUm[d] / voxelSize[d] - truth[tile.tile][d] }
    }
    let mean = (0..<rank).map { d in raw.map { $0[d] }.reduce(0, +) / Double(raw.count) }
    return raw.map { e in (0..<rank).map { e[$0] - mean[$0] } }
  }

  static func rms(_ errors: [[Double]]) -> Double {
    (errors.map { $0.map { $0 * $0 }.reduce(0, +) }.reduce(0, +) / Double(errors.count)).squareRoot()
  }
}
