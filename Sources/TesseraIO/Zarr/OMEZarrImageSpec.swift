import TesseraCore

/// Everything that fixes the layout of an OME-Zarr image.
public struct OMEZarrImageSpec: Sendable, Hashable {
  /// One display channel.
  public struct Channel: Sendable, Hashable {
    public var label: String
    /// Six hex digits, no `#`.
    public var color: String

    public init(label: String, color: String) {
      self.label = label
      self.color = color
    }
  }

  /// Zarr v3 + OME-NGFF 0.5, or Zarr v2 + 0.4.
  public var format: ZarrFormat
  /// Spatial shape at full resolution (z, y, x or y, x).
  public var shape: [Int]
  /// Spatial voxel size in µm at full resolution.
  public var voxelSize: [Double]
  /// World position (µm) of the centre of voxel 0.
  public var origin: [Double]
  public var channels: [Channel]
  /// Number of timepoints; more than one adds a `t` axis.
  public var timepoints: Int
  public var dataType: ElementType
  public var fillValue: Double
  /// Spatial chunk shape (each chunk holds one channel and timepoint).
  public var chunkShape: [Int]
  /// Spatial shard shape (Zarr v3 only), a multiple of `chunkShape`; nil for no sharding.
  public var shardShape: [Int]?
  public var compressor: ZarrCompressor
  /// Number of resolution levels (1 = no pyramid).
  public var levels: Int
  /// Image name (multiscales and omero).
  public var name: String

  public init(
    format: ZarrFormat = .v3, shape: [Int], voxelSize: [Double], origin: [Double]? = nil, channels: [Channel],
    timepoints: Int = 1, dataType: ElementType, fillValue: Double = 0, chunkShape: [Int], shardShape: [Int]? = nil,
    compressor: ZarrCompressor = .blosc(cname: "lz4", level: 5, shuffle: .byte), levels: Int = 1,
    name: String = "image"
  ) {
    self.format = format
    self.shape = shape
    self.voxelSize = voxelSize
    self.origin = origin ?? Array(repeating: 0, count: shape.count)
    self.channels = channels
    self.timepoints = timepoints
    self.dataType = dataType
    self.fillValue = fillValue
    self.chunkShape = chunkShape
    self.shardShape = shardShape
    self.compressor = compressor
    self.levels = levels
    self.name = name
  }

  public var spatialRank: Int { shape.count }
  /// Leading non-spatial axes: (t,) c.
  public var leadingAxes: [String] { timepoints > 1 ? ["t", "c"] : ["c"] }
  public var axisNames: [String] { leadingAxes + Array(["z", "y", "x"].suffix(spatialRank)) }
  /// Cumulative spatial factors per level.
  public var levelFactors: [[Int]] { Pyramid.factors(levels: levels, voxelSize: voxelSize) }
  /// Spatial shape per level.
  public var levelShapes: [[Int]] { Pyramid.shapes(shape, factors: levelFactors) }

  /// The full array shape of a level: (t,) c, spatial.
  public func arrayShape(level: Int) -> [Int] {
    (timepoints > 1 ? [timepoints] : []) + [channels.count] + levelShapes[level]
  }

  func leadingOnes() -> [Int] { Array(repeating: 1, count: leadingAxes.count) }

  /// A textual fingerprint of the layout, stored in the output so `--resume` can refuse an
  /// output made with different settings.
  public var fingerprint: String {
    "format=\(format.rawValue) shape=\(shape) voxel=\(voxelSize) origin=\(origin) channels=\(channels.map(\.label)) "
      + "t=\(timepoints) type=\(dataType) fill=\(fillValue) chunks=\(chunkShape) shards=\(shardShape ?? []) "
      + "codec=\(compressor) levels=\(levels)"
  }

  func validate(_ path: String) throws {
    let n = spatialRank
    guard n == 2 || n == 3 else { throw ZarrError(path: path, "OME-Zarr images have 2 or 3 spatial axes, not \(n)") }
    guard voxelSize.count == n, origin.count == n, chunkShape.count == n else {
      throw ZarrError(path: path, "voxel size, origin and chunk shape need \(n) values")
    }
    guard voxelSize.allSatisfy({ $0 > 0 && $0.isFinite }), origin.allSatisfy(\.isFinite) else {
      throw ZarrError(path: path, "voxel size must be positive and origin finite")
    }
    guard !channels.isEmpty, timepoints >= 1, levels >= 1 else {
      throw ZarrError(path: path, "needs at least one channel, timepoint and level")
    }
    if let shardShape {
      guard format == .v3 else { throw ZarrError(path: path, "sharding needs Zarr v3 (--zarr-format 3)") }
      guard ChunkGrid.holdsWhole(chunkShape, in: shardShape) else {
        throw ZarrError(path: path, "shard shape \(shardShape) must be a multiple of the chunk shape \(chunkShape)")
      }
    }
  }
}
