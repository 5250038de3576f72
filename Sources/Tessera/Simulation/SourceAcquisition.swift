import Foundation
import TesseraCore
import TesseraIO

// A tiled acquisition cut from a real volume at subpixel positions.
//
// World coordinates are µm with the centre of the crop's voxel 0 at the origin. Tile t's true
// position p_t (µm, of its voxel 0) is on a regular grid plus a random subpixel offset, and its
// voxel i (per axis) shows the source at the continuous source index x = (p_t + i·v) / s, with v
// the tiles' voxel size and s the source's. Where v > s along an axis (light-sheet z is 2–4×
// coarser), each tile voxel is the mean of the source over its footprint: the source is first
// box-averaged over r = v/s samples (partial samples weighted by their overlap; see
// ``AxisOperator/boxAverage(width:count:)``), then interpolated. Interpolation is the cubic
// B-spline with its exact prefilter (``CubicBSpline``), so a tile at integer source positions
// reproduces the source exactly and subpixel positions carry no interpolation bias of the kind a
// registration's own (linear or cubic-convolution) interpolator would share.

/// Additive noise on the rendered tiles.
public enum SimulationNoise: Sendable, Hashable {
  case none
  /// Poisson counts with the tile's value (in output units) as the mean.
  case poisson
  /// Gaussian noise of the given standard deviation (output units).
  case gaussian(sigma: Double)

  public var description: String {
    switch self {
    case .none: "none"
    case .poisson: "poisson"
    case .gaussian(let s): "gaussian(sigma=\(s))"
    }
  }
}

/// A real volume (the source) cut into a grid of overlapping tiles with known subpixel positions.
public struct SourceAcquisition: Sendable {
  /// The source crop, in its own units (any element type, converted to Double).
  public let source: DoubleVolume
  /// Source voxel size in µm per axis.
  public let sourceVoxelSize: [Double]
  /// Tile shape in voxels.
  public let tileShape: [Int]
  /// Tiles per axis.
  public let grid: [Int]
  /// Overlap between neighbours as a fraction of the tile.
  public let overlap: Double
  /// Tile voxel size in µm per axis.
  public let voxelSize: [Double]
  /// Largest stated-position error per axis, in tile voxels (axes with one tile get none).
  public let jitter: Double
  /// True positions are the grid plus a uniform offset in [0, subpixel) tile voxels per axis.
  public let subpixel: Double
  public let noise: SimulationNoise
  public let seed: UInt64
  /// The intensity map to uint16: out = (value + offset) · scale, rounded and clamped.
  public let intensityOffset: Double
  public let intensityScale: Double

  /// Errors in the parameters, one line each (the command prints them as they are).
  public struct ParameterError: ClassifiedError, CustomStringConvertible, Sendable {
    public var kind: FailureKind { .usage }
    public var description: String
  }

  public var rank: Int { tileShape.count }
  public var tileCount: Int { grid.reduce(1, *) }

  /// Distance between neighbouring tile origins on the regular grid, in tile voxels.
  public var step: [Int] { Self.step(tileShape: tileShape, grid: grid, overlap: overlap) }

  static func step(tileShape: [Int], grid: [Int], overlap: Double) -> [Int] {
    zip(tileShape, grid).map { n, g in g == 1 ? n : max(1, Int((Double(n) * (1 - overlap)).rounded())) }
  }

  /// Length of the source axis in tile voxels, between the first and last sample centres.
  static func available(_ sourceCount: Int, sourceVoxel: Double, voxel: Double) -> Double {
    Double(sourceCount - 1) * sourceVoxel / voxel
  }

  /// Extent of the grid of tiles between the first and last voxel centres, in tile voxels.
  static func extent(tile n: Int, grid g: Int, step: Int, subpixel: Double) -> Double {
    Double(step * (g - 1) + n - 1) + subpixel
  }

  /// Grid offset from the crop's start (tile voxels, integer so that equal voxel sizes and zero
  /// subpixel offsets give integer source positions): the grid is centred in the crop.
  public var margin: [Int] {
    (0..<rank).map { d in
      let free =
        Self.available(source.shape[d], sourceVoxel: sourceVoxelSize[d], voxel: voxelSize[d])
        - Self.extent(tile: tileShape[d], grid: grid[d], step: step[d], subpixel: subpixel)
      return max(0, Int((free / 2).rounded(.down)))
    }
  }

  /// The random subpixel offset of each tile's true position (tile voxels).
  public var subpixelOffsets: [[Double]] {
    var rng = SplitMix64(seed: seed ^ 0x50B_91CE1)
    return (0..<tileCount).map { _ in
      (0..<rank).map { _ in subpixel > 0 ? Double.random(in: 0..<subpixel, using: &rng) : 0 }
    }
  }

  /// Grid index of each tile, C order.
  public var tileGridPositions: [[Int]] {
    var out: [[Int]] = []
    Box(shape: grid).forEachIndex { out.append($0) }
    return out
  }

  /// True position of each tile's voxel 0, µm.
  public var truePositions: [[Double]] {
    let offsets = subpixelOffsets
    let m = margin
    let s = step
    return tileGridPositions.enumerated().map { t, g -> [Double] in
      (0..<rank).map { d -> Double in
        let origin = Double(m[d] + g[d] * s[d])
        return (origin + offsets[t][d]) * voxelSize[d]
      }
    }
  }

  /// Stated position of each tile: the true one plus a uniform error in [−jitter, jitter] tile
  /// voxels on the tiled axes.
  public var statedPositions: [[Double]] {
    var rng = SplitMix64(seed: seed ^ 0x5747_A7ED)
    return truePositions.map { p in
      (0..<rank).map { d in
        let error = grid[d] > 1 && jitter > 0 ? Double.random(in: -jitter...jitter, using: &rng) : 0
        return p[d] + error * voxelSize[d]
      }
    }
  }

  /// Checks the parameters against the source and derives the intensity map.
  ///
  /// - Throws: ``ParameterError`` (one line) when shapes, voxel sizes or the grid do not fit;
  ///   the message names the largest grid and the largest tile shape that fit.
  public init(
    source: DoubleVolume, sourceElementType: ElementType, sourceVoxelSize: [Double], tileShape: [Int], grid: [Int],
    overlap: Double, voxelSize: [Double], jitter: Double, subpixel: Double = 1, noise: SimulationNoise = .none,
    seed: UInt64
  ) throws {
    let n = source.shape.count
    guard tileShape.count == n, grid.count == n, sourceVoxelSize.count == n, voxelSize.count == n else {
      throw ParameterError(
        description:
          "the source is \(n)-D (\(source.shape.map(String.init).joined(separator: "×"))): --tile-shape, --grid, "
          + "--voxel-size and --source-voxel-size need \(n) values each")
    }
    guard (0...1).contains(subpixel) else { throw ParameterError(description: "--subpixel must be in [0, 1]") }
    self.source = source
    self.sourceVoxelSize = sourceVoxelSize
    self.tileShape = tileShape
    self.grid = grid
    self.overlap = overlap
    self.voxelSize = voxelSize
    self.jitter = jitter
    self.subpixel = subpixel
    self.noise = noise
    self.seed = seed
    // Fit: the last sample centre of the last tile must lie inside the source.
    let step = Self.step(tileShape: tileShape, grid: grid, overlap: overlap)
    let available = (0..<n).map {
      Self.available(source.shape[$0], sourceVoxel: sourceVoxelSize[$0], voxel: voxelSize[$0])
    }
    let fits = (0..<n).map {
      Self.extent(tile: tileShape[$0], grid: grid[$0], step: step[$0], subpixel: subpixel) <= available[$0] + 1e-9
    }
    if fits.contains(false) {
      let largestGrid = (0..<n).map { d -> Int in
        var g = 0
        while Self.extent(tile: tileShape[d], grid: g + 1, step: step[d], subpixel: subpixel) <= available[d] + 1e-9 {
          g += 1
          if grid[d] == 1 && g == 1 { break }
          if g > 100_000 { break }
        }
        return g
      }
      let largestTile = (0..<n).map { d -> Int in
        var t = 0
        while true {
          let s = Self.step(tileShape: [t + 1], grid: [grid[d]], overlap: overlap)[0]
          guard Self.extent(tile: t + 1, grid: grid[d], step: s, subpixel: subpixel) <= available[d] + 1e-9 else {
            break
          }
          t += 1
        }
        return t
      }
      let axes = ["z", "y", "x"].suffix(n)
      let bad = zip(axes, fits).filter { !$0.1 }.map(\.0).joined(separator: ",")
      throw ParameterError(
        description:
          "the \(grid.map(String.init).joined(separator: "×")) grid of \(tileShape.map(String.init).joined(separator: "×")) "
          + "tiles does not fit in the \(source.shape.map(String.init).joined(separator: "×")) source along \(bad) "
          + "(at these voxel sizes and overlap): the largest grid of these tiles is "
          + "\(largestGrid.map(String.init).joined(separator: "×"))"
          + (largestGrid.contains(0) ? " (0: one tile is already too long on that axis)" : "")
          + ", the largest tile for this grid "
          + "\(largestTile.map(String.init).joined(separator: "×"))")
    }
    // Intensities: unsigned 8/16-bit values are kept; others are shifted (and for floats or wide
    // ranges, scaled) into uint16.
    let lo = source.values.min() ?? 0
    let hi = source.values.max() ?? 0
    switch sourceElementType {
    case .uint8, .uint16:
      intensityOffset = 0
      intensityScale = 1
    default:
      let offset = lo < 0 ? -lo : 0
      intensityOffset = offset
      if !sourceElementType.isFloatingPoint && hi + offset <= 65535 {
        intensityScale = 1
      } else {
        intensityScale = hi + offset > 0 ? 60000 / (hi + offset) : 1
      }
    }
  }

  /// The source after the low-pass for the tiles' voxel size, as B-spline coefficients.
  public func spline() -> CubicBSpline {
    var v = source
    for d in 0..<rank {
      let r = voxelSize[d] / sourceVoxelSize[d]
      if r > 1 + 1e-12 { v = v.applying(AxisOperator.boxAverage(width: r, count: v.shape[d]), along: d) }
    }
    return CubicBSpline(samples: v)
  }

  /// Renders tile `t` from `spline` (see ``spline()``): intensity map, noise, uint16.
  public func renderTile(_ t: Int, spline: CubicBSpline) -> VolumeBuffer<UInt16> {
    let p = truePositions[t]
    let positions = (0..<rank).map { d in
      (0..<tileShape[d]).map { i in (p[d] + Double(i) * voxelSize[d]) / sourceVoxelSize[d] }
    }
    let samples = spline.sample(at: positions)
    var out = VolumeBuffer<UInt16>(box: Box(shape: tileShape))
    var rng = SplitMix64(seed: seed &+ 0xA015_E000 &+ UInt64(t) &* 0x9E37_79B9)
    for i in 0..<samples.values.count {
      var value = (samples.values[i] + intensityOffset) * intensityScale
      switch noise {
      case .none: break
      case .poisson: value = Self.poisson(mean: max(0, value), using: &rng)
      case .gaussian(let sigma): value += sigma * Self.gaussian(using: &rng)
      }
      out.storage[i] = UInt16(clamping: value)
    }
    return out
  }

  /// A standard normal deviate (Box–Muller, one of the pair).
  static func gaussian(using rng: inout SplitMix64) -> Double {
    let u = (Double(rng.next() >> 11) + 0.5) / Double(1 << 53)
    let v = Double(rng.next() >> 11) / Double(1 << 53)
    return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * v)
  }

  /// A Poisson deviate: Knuth's product of uniforms below a mean of 30, the normal approximation
  /// (mean and variance λ, continuity-corrected by the rounding) above it.
  static func poisson(mean: Double, using rng: inout SplitMix64) -> Double {
    if mean < 30 {
      let limit = exp(-mean)
      var k = 0.0
      var p = 1.0
      while true {
        p *= (Double(rng.next() >> 11) + 0.5) / Double(1 << 53)
        if p <= limit { return k }
        k += 1
      }
    }
    return max(0, (mean + mean.squareRoot() * gaussian(using: &rng)).rounded())
  }
}

extension SourceAcquisition {
  /// Reads a simulation source: `.npy`, `.tif`/`.tiff` (``TIFFFile``) or `file.h5:dataset`.
  ///
  /// - Throws: ``DatasetError`` (or ``HDF5Error``) naming the file.
  public static func readSource(_ spec: String) throws -> AnyVolumeBuffer {
    let lower = spec.lowercased()
    if lower.hasSuffix(".npy") { return try NumpyFile.read(spec) }
    if lower.hasSuffix(".tif") || lower.hasSuffix(".tiff") { return try TIFFFile.read(spec) }
    for ext in [".h5:", ".hdf5:", ".he5:"] {
      if let r = lower.range(of: ext, options: .backwards) {
        let split = spec.index(spec.startIndex, offsetBy: lower.distance(from: lower.startIndex, to: r.upperBound))
        let path = String(spec[..<spec.index(before: split)])
        let name = String(spec[split...])
        guard FileManager.default.fileExists(atPath: path) else {
          throw DatasetError(path: path, "no such file or not readable")
        }
        let file = try HDF5File(path: path)
        guard file.exists(name) else { throw DatasetError(path: path, element: name, "no such dataset") }
        let d = try file.dataset(name)
        return try d.read(d.bounds)
      }
    }
    throw DatasetError(
      path: spec, "unknown source type: give a .npy, a .tif/.tiff or FILE.h5:DATASET")
  }
}
