import Foundation
import TesseraCore

/// A synthetic tiled acquisition with known ground truth: a textured volume (bright blobs of
/// several sizes on a noisy background, like nuclei in a cleared sample) cut into a grid of
/// overlapping tiles, whose *stated* stage positions are the true ones plus a random error.
///
/// Everything is a pure function of the parameters and the seed, so tests, benchmarks and the
/// demo regenerate the same data bit for bit. Works in any rank (2D and 3D are the useful ones).
public struct SyntheticAcquisition: Sendable, Hashable {
  /// Gaussian blobs per million voxels unless told otherwise.
  public static let defaultBlobDensity = 800.0

  /// Shape of one tile in voxels, slowest axis first.
  public var tileShape: [Int]
  /// Tiles per axis (1 on axes that are not tiled).
  public var grid: [Int]
  /// Overlap between neighbouring tiles, as a fraction of the tile extent.
  public var overlap: Double
  /// Number of channels; each channel has its own blobs.
  public var channels: Int
  /// Voxel size in µm per axis.
  public var voxelSize: [Double]
  /// Largest stage-position error per axis, in voxels (uniform in `[-jitter, jitter]`; 0 on
  /// axes with a single tile).
  public var jitter: Double
  /// Blobs per million voxels.
  public var blobDensity: Double
  /// Seed of every random choice.
  public var seed: UInt64

  public init(
    tileShape: [Int], grid: [Int], overlap: Double = 0.15, channels: Int = 1, voxelSize: [Double]? = nil,
    jitter: Double = 0, blobDensity: Double = SyntheticAcquisition.defaultBlobDensity, seed: UInt64 = 1
  ) {
    precondition(tileShape.count == grid.count, "tile shape and grid of different rank")
    precondition(overlap >= 0 && overlap < 1, "overlap must be in [0, 1)")
    self.tileShape = tileShape
    self.grid = grid
    self.overlap = overlap
    self.channels = channels
    self.voxelSize = voxelSize ?? Array(repeating: 1, count: tileShape.count)
    self.jitter = jitter
    self.blobDensity = blobDensity
    self.seed = seed
  }

  public var rank: Int { tileShape.count }

  /// Distance between neighbouring tile origins, in voxels.
  public var step: [Int] {
    zip(tileShape, grid).map { n, g in g == 1 ? n : max(1, Int((Double(n) * (1 - overlap)).rounded())) }
  }

  /// Shape of the whole (ground-truth) volume.
  public var volumeShape: [Int] { (0..<rank).map { step[$0] * (grid[$0] - 1) + tileShape[$0] } }

  /// Number of tiles.
  public var tileCount: Int { grid.reduce(1, *) }

  /// Grid position of each tile, C order.
  public var tileGridPositions: [[Int]] {
    var out: [[Int]] = []
    Box(shape: grid).forEachIndex { out.append($0) }
    return out
  }

  /// Each tile's true origin in the volume, in voxels.
  public var trueOrigins: [[Int]] { tileGridPositions.map { g in (0..<rank).map { g[$0] * step[$0] } } }

  /// Each tile's box in the volume.
  public var tileBoxes: [Box] { trueOrigins.map { Box(origin: $0, shape: tileShape) } }

  /// Each tile's stated stage position (µm, of voxel index 0): true origin plus the jitter.
  public var statedPositions: [[Double]] {
    var rng = SplitMix64(seed: seed ^ 0x5747_A7ED)
    return trueOrigins.map { origin in
      (0..<rank).map { d in
        let error = grid[d] > 1 && jitter > 0 ? Double.random(in: -jitter...jitter, using: &rng) : 0
        return (Double(origin[d]) + error) * voxelSize[d]
      }
    }
  }

  /// Each tile's true position in µm.
  public var truePositions: [[Double]] {
    trueOrigins.map { o in (0..<rank).map { Double(o[$0]) * voxelSize[$0] } }
  }

  /// Renders the ground-truth volume of one channel (uint16).
  public func renderVolume(channel: Int) -> VolumeBuffer<UInt16> {
    let shape = volumeShape
    let box = Box(shape: shape)
    var field = [Float](repeating: 0, count: box.volume)
    var rng = SplitMix64(seed: seed &+ UInt64(channel + 1) &* 0x9E37_79B9)
    let strides = VolumeBuffer<UInt16>.strides(for: shape)
    let blobCount = max(1, Int(Double(box.volume) * blobDensity / 1e6))
    for _ in 0..<blobCount {
      let centre = shape.map { Double.random(in: 0..<Double($0), using: &rng) }
      let sigma = Double.random(in: 1.0...3.5, using: &rng)
      let amplitude = Float.random(in: 300...3000, using: &rng)
      let radius = Int((3 * sigma).rounded(.up))
      let window = Box(
        lower: centre.map { Int($0) - radius }, upper: centre.map { Int($0) + radius + 1 }
      ).intersection(box)
      if window.isEmpty { continue }
      // The Gaussian is separable: per-axis weights, multiplied along each row.
      let inv2s2 = 1 / (2 * sigma * sigma)
      let weights = (0..<shape.count).map { d in
        (window.lower[d]..<window.upper[d]).map { i -> Float in
          let x = Double(i) - centre[d]
          return Float(exp(-x * x * inv2s2))
        }
      }
      let n = shape.count
      let rowWeights = weights[n - 1]
      field.withUnsafeMutableBufferPointer { f in
        RawCopy.forEachRow(of: window, in: box, and: window) { offset, _, length in
          // The row's outer coordinates from its offset in the volume (box starts at 0).
          var w = amplitude
          var o = offset
          for d in 0..<(n - 1) {
            let i = o / strides[d]
            o -= i * strides[d]
            w *= weights[d][i - window.lower[d]]
          }
          for k in 0..<length { f[offset + k] += w * rowWeights[k] }
        }
      }
    }
    // Smooth background plus deterministic per-voxel noise.
    var noise = SplitMix64(seed: seed &+ 0xBAC6_2000 &+ UInt64(channel))
    var out = VolumeBuffer<UInt16>(box: box)
    for i in 0..<field.count {
      let n = Float(noise.next() >> 40) / Float(1 << 24)  // [0, 1)
      out.storage[i] = UInt16(clamping: 100 + field[i] + 20 * n)
    }
    return out
  }
}
