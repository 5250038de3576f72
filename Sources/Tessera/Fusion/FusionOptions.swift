import Foundation
import TesseraCore
import TesseraFusion
import TesseraIO

/// What the user asks of a fusion.
public struct FusionOptions: Sendable {
  public var format: ZarrFormat = .v3
  public var compressor: ZarrCompressor = .blosc(cname: "lz4", level: 5, shuffle: .byte)
  /// Spatial chunk shape; default 64×128×128 (3D) or 1024×1024 (2D), clipped to the output.
  public var chunkShape: [Int]?
  /// Spatial shard shape (Zarr v3), or nil.
  public var shardShape: [Int]?
  /// Resolution levels; nil = enough to reach an overview of at most 512 voxels in y and x.
  public var pyramidLevels: Int?
  /// Channel ids to fuse (default all).
  public var channels: [Int]?
  /// World box to fuse, µm (default: the union of the views).
  public var bbox: (lower: [Double], upper: [Double])?
  /// Output voxel size, µm (default: the finest input voxel size per axis).
  public var voxelSize: [Double]?
  public var interpolation: Interpolation = .linear
  public var blend: BlendMode = .linear
  /// Feathering width in µm on every axis (default: the actual overlap per axis).
  public var blendWidth: Double?
  public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
  /// Memory budget in bytes (default: a quarter of physical memory, at most 16 GiB).
  public var memoryBytes: Int = FusionOptions.defaultMemory
  /// Output element type (default: the input type).
  public var outputType: ElementType?
  public var mode: OMEZarrImage.Mode = .new
  /// The image's name in the OME metadata (`multiscales` and `omero`; napari shows it), or nil for
  /// the dataset's name. `tessera fuse` names it after the output (``imageName(output:)``).
  public var imageName: String?
  /// Where the run adds the time of each stage (read+decode, resample+blend, encode+write,
  /// pyramid, metadata), or nil (`tessera bench` asks for it).
  public var stageClock: StageClock?

  public init() {}

  /// The name of the image written to `output`: its last path component without `.zarr` and then
  /// `.ome` (`/data/fused.ome.zarr/` → `fused`; `.` and `..` resolved first), or nil if nothing is left.
  public static func imageName(output: String) -> String? {
    // Absolute and without `.` or `..`, so that `-o .` or `-o out/..` name the folder meant.
    var name = URL(fileURLWithPath: output).standardized.lastPathComponent
    for suffix in [".zarr", ".ome"] where name.lowercased().hasSuffix(suffix) { name.removeLast(suffix.count) }
    return name.isEmpty || name == "." || name == "/" ? nil : name
  }

  public static var defaultMemory: Int {
    Int(min(ProcessInfo.processInfo.physicalMemory / 4, 16 << 30))
  }
}

/// Progress of a running fusion.
public struct FusionProgress: Sendable {
  public var phase: String
  public var done: Int
  public var total: Int
  /// Output voxels finished in this phase.
  public var voxels: Int
  public var elapsed: Double
}

/// What a finished fusion did.
public struct FusionSummary: Sendable {
  public var voxels: Int
  /// Seconds fusing level 0 (with the in-stream pyramid, when there is one).
  public var seconds: Double
  /// Seconds building pyramid levels from disk afterwards (0 when they were built in the stream).
  public var pyramidSeconds: Double
  /// Seconds writing the OME metadata (display windows included).
  public var metadataSeconds: Double
  /// Seconds of the whole run: creating the output, fusion, pyramid and metadata.
  public var totalSeconds: Double
  /// True if the pyramid was built from level-0 blocks in memory.
  public var pyramidInStream: Bool
  /// Most bytes the in-stream pyramid held at once.
  public var pyramidPeakBytes: Int
  public var blocksWritten: Int
  public var blocksSkipped: Int
  public var bytesRead: Int
  public var peakRSSBytes: Int
  /// The part this process filled (nil: the whole job).
  public var part: Part?
  /// True if the output is finalized (pyramid and OME metadata written).
  public var finalized: Bool
  /// When not finalized: what the output waits for.
  public var pending: String?
}
