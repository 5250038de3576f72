import TesseraCore

/// A printable, encodable description of a dataset: what `tessera info` shows.
public struct DatasetSummary: Codable, Sendable {
  public struct ViewSummary: Codable, Sendable {
    public var timepoint: Int
    public var setup: Int
    public var name: String
    public var tile: Int
    public var channel: Int
    public var illumination: Int
    public var angle: Int
    public var elementType: String
    public var shape: [Int]
    public var voxelSizeUm: [Double]
    /// Level-0 voxel → µm, N rows of N+1 numbers (z, y, x).
    public var viewToWorld: [[Double]]
    public var levels: [ResolutionLevel]
    public var worldLowerUm: [Double]
    public var worldUpperUm: [Double]
  }

  public var path: String
  public var format: String
  public var rank: Int
  public var axes: [String]
  public var viewCount: Int
  public var tiles: [Int]
  public var channels: [Int]
  public var timepoints: [Int]
  public var elementTypes: [String]
  public var worldLowerUm: [Double]
  public var worldUpperUm: [Double]
  public var views: [ViewSummary]
  public var overlaps: [TileOverlap]
  public var warnings: [String]

  public init(_ dataset: Dataset, warnings: [String] = []) {
    path = dataset.path
    format = dataset.format
    rank = dataset.rank
    axes = Array(["z", "y", "x"].suffix(dataset.rank))
    viewCount = dataset.views.count
    tiles = dataset.tiles
    channels = dataset.channels
    timepoints = dataset.timepoints
    elementTypes = Array(Set(dataset.views.map(\.elementType.rawValue))).sorted()
    let bounds = dataset.worldBounds
    worldLowerUm = bounds?.lower ?? []
    worldUpperUm = bounds?.upper ?? []
    views = dataset.views.map { v in
      let (lo, hi) = v.worldBounds
      return ViewSummary(
        timepoint: v.id.timepoint, setup: v.id.setup, name: v.name, tile: v.tile, channel: v.channel,
        illumination: v.illumination, angle: v.angle, elementType: v.elementType.rawValue, shape: v.shape,
        voxelSizeUm: v.voxelSize, viewToWorld: Array(v.viewToWorld.homogeneousMatrix.dropLast()), levels: v.levels,
        worldLowerUm: lo, worldUpperUm: hi)
    }
    overlaps = dataset.tileOverlaps()
    self.warnings = warnings
  }
}
