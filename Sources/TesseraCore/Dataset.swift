/// Reads sub-boxes of one view at one resolution level. Implemented by the file formats
/// (BDV HDF5, plain HDF5 datasets) and by in-memory volumes in tests; registration and fusion only
/// ever see this protocol.
public protocol ViewReader: Sendable {
  /// Reads `box` (which must lie inside the level's shape) of resolution `level`, in the view's
  /// element type.
  func read(_ box: Box, level: Int) throws -> AnyVolumeBuffer

  /// Reads `box` of resolution `level` into `output` (C order over `box`, the view's element
  /// type), without allocating a buffer of its own where the format allows.
  func read(_ box: Box, level: Int, into output: UnsafeMutableRawBufferPointer) throws

  /// The block shape reads are most efficient in (the storage chunk shape), if any.
  func preferredBlockShape(level: Int) -> [Int]?

  /// Where level 0 is stored (a file and a dataset in it), when it is stored in a file.
  var location: ViewLocation? { get }
}

/// Where a view's voxels are stored: a file and the dataset inside it (an HDF5 path such as
/// `/t00000/s00/0/cells`).
public struct ViewLocation: Hashable, Sendable {
  public var file: String
  public var dataset: String

  public init(file: String, dataset: String) {
    self.file = file
    self.dataset = dataset
  }
}

extension ViewReader {
  public func preferredBlockShape(level: Int) -> [Int]? { nil }
  public var location: ViewLocation? { nil }

  public func read(_ box: Box, level: Int, into output: UnsafeMutableRawBufferPointer) throws {
    let buffer = try read(box, level: level)
    buffer.withUnsafeBytes { output.copyMemory(from: $0) }
  }
}

/// One resolution level of a view (level 0 is full resolution).
public struct ResolutionLevel: Hashable, Sendable, Codable {
  /// Downsampling factor per axis relative to level 0 (z, y, x), e.g. `[1, 2, 2]`.
  public var factors: [Double]
  /// Shape of the level in voxels (read from the file: BDV floors, npy2bdv ceils).
  public var shape: [Int]

  public init(factors: [Double], shape: [Int]) {
    self.factors = factors
    self.shape = shape
  }

  /// Level voxel → level-0 voxel: `p0 = f · p + (f − 1) / 2` (voxel centres of a block mean; the
  /// BigDataViewer mipmap convention).
  public var levelToLevel0: AffineTransform {
    AffineTransform(scale: factors, translation: factors.map { ($0 - 1) / 2 })
  }
}

/// Identity of a view within a dataset: BigDataViewer's (timepoint, setup) pair.
public struct ViewID: Hashable, Sendable, Comparable, Codable, CustomStringConvertible {
  public var timepoint: Int
  public var setup: Int

  public init(timepoint: Int, setup: Int) {
    self.timepoint = timepoint
    self.setup = setup
  }

  public static func < (a: ViewID, b: ViewID) -> Bool { (a.timepoint, a.setup) < (b.timepoint, b.setup) }

  public var description: String { "t\(timepoint)/s\(setup)" }
}

/// One view: a tile of one channel (at one timepoint, illumination and angle), its geometry and
/// how to read it.
public struct View: Sendable {
  public var id: ViewID
  /// Human-readable name (BDV ViewSetup name, or file:dataset).
  public var name: String
  public var tile: Int
  public var channel: Int
  public var illumination: Int
  public var angle: Int
  /// Voxel element type, as Tessera reads it (BDV's int16-holding-uint16 is reported as uint16).
  public var elementType: ElementType
  /// Level-0 shape, slowest axis first (z, y, x or y, x).
  public var shape: [Int]
  /// Voxel size in µm per axis, same order.
  public var voxelSize: [Double]
  /// Level-0 voxel index → world µm (z, y, x), per ARCHITECTURE.md.
  public var viewToWorld: AffineTransform
  /// Resolution levels, level 0 first.
  public var levels: [ResolutionLevel]
  /// Reads voxels.
  public var reader: any ViewReader

  public init(
    id: ViewID, name: String, tile: Int, channel: Int, illumination: Int = 0, angle: Int = 0,
    elementType: ElementType, shape: [Int], voxelSize: [Double], viewToWorld: AffineTransform,
    levels: [ResolutionLevel]? = nil, reader: any ViewReader
  ) {
    self.id = id
    self.name = name
    self.tile = tile
    self.channel = channel
    self.illumination = illumination
    self.angle = angle
    self.elementType = elementType
    self.shape = shape
    self.voxelSize = voxelSize
    self.viewToWorld = viewToWorld
    self.levels = levels ?? [ResolutionLevel(factors: Array(repeating: 1, count: shape.count), shape: shape)]
    self.reader = reader
  }

  public var rank: Int { shape.count }

  /// The level-0 voxels as a box.
  public var bounds: Box { Box(shape: shape) }

  /// Reads a box of level 0.
  public func read(_ box: Box) throws -> AnyVolumeBuffer { try reader.read(box, level: 0) }

  /// The continuous world bounding box (µm) of the view's voxel footprints.
  public var worldBounds: (lower: [Double], upper: [Double]) {
    let lo = bounds.lower.map { Double($0) - 0.5 }
    let hi = bounds.upper.map { Double($0) - 0.5 }
    return viewToWorld.continuousBounds(ofCorners: lo, hi)
  }
}

/// A tiled acquisition: its views and where it came from.
public struct Dataset: Sendable {
  /// The file the dataset was opened from (XML, manifest, or the first HDF5 file).
  public var path: String
  /// The name of the format it came from (`bdv`, `manifest`, `hdf5Attributes`: TesseraIO's
  /// `DatasetFormat`s), which is the format it is written back in.
  public var format: String
  /// The views, ordered by id.
  public var views: [View]
  /// Each view's `viewToWorld` as the dataset was opened: what writing it back compares with.
  public let openedTransforms: [ViewID: AffineTransform]

  public init(path: String, format: String, views: [View]) {
    self.path = path
    self.format = format
    self.views = views.sorted { $0.id < $1.id }
    self.openedTransforms = Dictionary(views.map { ($0.id, $0.viewToWorld) }, uniquingKeysWith: { a, _ in a })
  }

  /// Number of spatial axes (all views share it; loaders check).
  public var rank: Int { views.first?.rank ?? 0 }

  /// Sorted distinct channel ids.
  public var channels: [Int] { Array(Set(views.map(\.channel))).sorted() }
  /// Sorted distinct tile ids.
  public var tiles: [Int] { Array(Set(views.map(\.tile))).sorted() }
  /// Sorted distinct timepoints.
  public var timepoints: [Int] { Array(Set(views.map(\.id.timepoint))).sorted() }

  /// Union of all views' world bounds, in µm (nil for an empty dataset).
  public var worldBounds: (lower: [Double], upper: [Double])? {
    guard let first = views.first else { return nil }
    var (lo, hi) = first.worldBounds
    for v in views.dropFirst() {
      let (l, h) = v.worldBounds
      for d in 0..<rank {
        lo[d] = Swift.min(lo[d], l[d])
        hi[d] = Swift.max(hi[d], h[d])
      }
    }
    return (lo, hi)
  }
}
