import Dispatch
import Foundation
import TesseraCore
import TesseraFusion
import TesseraIO

/// A planned fusion of a dataset into an OME-Zarr image: plan once (`init`), print it
/// (``describe()``), run it (``run(output:progress:)``).
public final class FusionJob: Sendable {
  public let dataset: Dataset
  public let options: FusionOptions
  public let plan: FusionPlan
  public let spec: OMEZarrImageSpec
  /// How the memory budget and the threads are divided.
  public let resources: ResourcePlan
  let cacheSources: [Int: ViewBlockCache.Source]

  /// Plans the fusion.
  ///
  /// - Throws: ``DatasetError``/``GeometryError`` for unusable options (unknown channel, empty box,
  ///   singular transforms), and when the memory budget cannot hold the work in flight.
  public init(dataset: Dataset, options: FusionOptions) throws {
    self.dataset = dataset
    self.options = options
    let rank = dataset.rank
    guard rank == 2 || rank == 3 else {
      throw DatasetError(path: dataset.path, "fusion needs 2-D or 3-D views, these are \(rank)-D")
    }
    let channels = options.channels ?? dataset.channels
    for c in channels where !dataset.channels.contains(c) {
      throw OptionError("--channels", "no channel \(c); the dataset \(dataset.path) has channels \(dataset.channels)")
    }
    let timepoints = dataset.timepoints
    let selected = dataset.views.enumerated().filter { channels.contains($0.element.channel) }
    guard !selected.isEmpty else { throw DatasetError(path: dataset.path, "no views to fuse") }
    let voxel = options.voxelSize ?? (0..<rank).map { d in selected.map { $0.element.voxelSize[d] }.min()! }
    guard voxel.count == rank, voxel.allSatisfy({ $0 > 0 && $0.isFinite }) else {
      throw OptionError("--voxel-size", "the output voxel size needs \(rank) positive values")
    }
    var lower = [Double](repeating: .infinity, count: rank)
    var upper = [Double](repeating: -.infinity, count: rank)
    for (_, v) in selected {
      let (lo, hi) = v.worldBounds
      for d in 0..<rank {
        lower[d] = min(lower[d], lo[d])
        upper[d] = max(upper[d], hi[d])
      }
    }
    if let bbox = options.bbox {
      guard bbox.lower.count == rank, bbox.upper.count == rank, zip(bbox.lower, bbox.upper).allSatisfy({ $0 < $1 })
      else {
        throw OptionError("--bbox", "the bounding box needs \(rank) ranges lo:hi with lo < hi (µm)")
      }
      (lower, upper) = bbox
    }
    let grid = OutputGrid(lower: lower, upper: upper, voxelSize: voxel)
    let fusionViews = selected.map { i, v in
      FusionView(
        index: i, tile: v.tile, channel: v.channel, timepoint: v.id.timepoint, shape: v.shape,
        viewToWorld: v.viewToWorld)
    }
    let chunk = zip(options.chunkShape ?? (rank == 3 ? [64, 128, 128] : [1024, 1024]), grid.shape).map { min($0, $1) }
    if let shard = options.shardShape {
      guard ChunkGrid.holdsWhole(chunk, in: shard) else {
        throw OptionError("--shard", "\(shard) must be a multiple of the chunk shape \(chunk) on every axis")
      }
    }
    let width =
      options.blendWidth.map { Array(repeating: $0, count: rank) }
      ?? FusionPlan.defaultBlendWidth(views: fusionViews)
    plan = try FusionPlan(
      views: fusionViews, grid: grid, channels: channels, timepoints: timepoints,
      blockShape: options.shardShape ?? chunk, computeShape: chunk, interpolation: options.interpolation,
      blend: options.blend, blendWidth: width)
    let types = Set(selected.map(\.element.elementType))
    let outputType = options.outputType ?? (types.count == 1 ? types.first! : .float32)
    let levels =
      options.pyramidLevels
      ?? Pyramid.levelsToReach(overview: 512, shape: grid.shape, voxelSize: grid.voxelSize)
    spec = OMEZarrImageSpec(
      format: options.format, shape: grid.shape, voxelSize: grid.voxelSize, origin: grid.origin,
      channels: channels.enumerated().map { i, c in
        .init(label: "channel \(c)", color: ["00FF00", "FF00FF", "00FFFF", "FF0000", "0000FF", "FFFF00"][i % 6])
      }, timepoints: timepoints.count, dataType: outputType, fillValue: 0, chunkShape: chunk,
      shardShape: options.shardShape, compressor: options.compressor, levels: levels,
      name: options.imageName ?? ((dataset.path as NSString).lastPathComponent as NSString).deletingPathExtension)
    var sources: [Int: ViewBlockCache.Source] = [:]
    for (i, v) in selected {
      // Chunked storage: cache whole storage chunks, at least 64 voxels (32 in z) per axis and
      // 1 MiB, at most the view. Contiguous storage (no preferred shape): read each region
      // directly, uncached.
      let block = v.reader.preferredBlockShape(level: 0).map { preferred in
        ViewBlockCache.blockShape(
          chunk: preferred, shape: v.shape, minimum: (0..<rank).map { rank == 3 && $0 == 0 ? 32 : 64 },
          elementSize: v.elementType.byteCount, minimumBytes: 1 << 20)
      }
      sources[i] = .init(reader: v.reader, shape: v.shape, elementType: v.elementType, blockShape: block)
    }
    cacheSources = sources
    let executor = FusionExecutor(
      plan: plan, cache: ViewBlockCache(sources: [:], budget: 0), outputType: outputType)
    let inputElementSize = selected.map(\.element.elementType.byteCount).max() ?? 4
    let outputSpec = spec
    let cached = plan.views.reduce(0) { total, v in
      sources[v.index]?.blockShape == nil
        ? total : total + v.shape.reduce(dataset.views[v.index].elementType.byteCount, *)
    }
    resources = try ResourcePlan(
      budget: options.memoryBytes, threads: options.threads,
      // The region being fused, plus its encoded copy.
      bytesPerRegion: executor.bytesPerComputeRegion(inputElementSize: inputElementSize)
        + chunk.reduce(outputType.byteCount, *),
      largestBlock: sources.values.compactMap { s in s.blockShape?.reduce(s.elementType.byteCount, *) }.max() ?? 0,
      streamBytes: outputSpec.canStreamPyramid
        ? outputSpec.pyramidStreamBytes(
          for: plan.blocks.map { Self.blockIndex($0, outputSpec) }, threads: options.threads) : nil,
      cachedInputBytes: cached, blocks: plan.blocks.count)
  }

  /// The output block (leading axes first) a planned block writes at level 0.
  static func blockIndex(_ b: FusionPlan.PlannedBlock, _ spec: OMEZarrImageSpec) -> [Int] {
    (spec.leadingAxes.count == 2 ? [b.t, b.c] : [b.c]) + b.block
  }

  /// True if the pyramid will be built in the stream (a fresh output with more than one level).
  public var pyramidInStream: Bool { spec.levels > 1 && resources.pyramidBytes > 0 }

  /// Decoded bytes of all views to fuse.
  public var inputBytes: Int {
    plan.views.reduce(0) { $0 + $1.shape.reduce(dataset.views[$1.index].elementType.byteCount, *) }
  }

  /// Bytes of every level of the output, uncompressed (all channels and timepoints): an upper
  /// bound for the output on disk, less the codec's savings, plus metadata.
  public var uncompressedOutputBytes: Int {
    (0..<spec.levels).reduce(0) { $0 + spec.arrayShape(level: $1).reduce(spec.dataType.byteCount, *) }
  }

  /// The `tessera` block of the output's attributes.
  func provenance() -> [String: Any] {
    let views: [[String: Any]] = plan.views.map { v in
      let view = dataset.views[v.index]
      return [
        "name": view.name, "tile": v.tile, "channel": v.channel, "timepoint": v.timepoint, "setup": view.id.setup,
        "viewToWorld": Array(v.viewToWorld.homogeneousMatrix.dropLast()),
      ]
    }
    return [
      "version": Tessera.version, "command": Self.recordedCommand(CommandLine.arguments),
      "dataset": URL(fileURLWithPath: dataset.path).standardizedFileURL.path,
      "parameters": [
        "interpolation": plan.interpolation.rawValue, "blend": plan.blend.rawValue, "blend_width_um": plan.blendWidth,
        "voxel_size_um": plan.grid.voxelSize, "origin_um": plan.grid.origin, "channels": plan.channels,
        "dtype": spec.dataType.rawValue, "chunks": spec.chunkShape, "shards": spec.shardShape ?? [],
        "codec": "\(spec.compressor)", "levels": spec.levels,
      ] as [String: Any],
      "views": views,
    ]
  }

  /// The command line as the output records it: without the options that only say how this
  /// process runs (its part, threads, memory, resume, progress), so every process of a job, and
  /// a single-process run of the same fusion, record the same command.
  static func recordedCommand(_ arguments: [String]) -> String {
    let valued: Set<String> = ["--part", "--part-count", "--threads", "--memory", "--stage-times"]
    let flags: Set<String> = [
      "--resume", "--overwrite", "--quiet", "-q", "--json", "--finalize", "--no-finalize", "--strict",
    ]
    var out: [String] = []
    var skipNext = false
    for (i, a) in arguments.enumerated() {
      if skipNext {
        skipNext = false
        continue
      }
      let name = String(a.split(separator: "=", maxSplits: 1).first ?? "")
      if flags.contains(a) { continue }
      if valued.contains(name) {
        skipNext = !a.contains("=")
        continue
      }
      out.append(i == 0 ? "tessera" : a)
    }
    return out.joined(separator: " ")
  }

  /// The level-0 block grid of the output (leading axes first).
  var level0Grid: ChunkGrid {
    try! ChunkGrid(
      shape: spec.arrayShape(level: 0),
      chunkShape: Array(repeating: 1, count: spec.leadingAxes.count) + (spec.shardShape ?? spec.chunkShape))
  }

  /// What the output records of this plan (``OutputPlan``): layout, fingerprint, provenance, the
  /// planned level-0 blocks.
  public func outputPlan() throws -> OutputPlan {
    let grid = level0Grid
    let provenance = provenance()
    // What decides the output's bytes, however this process spells its paths: each view's
    // file (absolute, symbolic links resolved) and dataset, shape, type and transform, and
    // every parameter and the version.
    let views: [[String: Any]] = plan.views.map { v in
      let view = dataset.views[v.index]
      let source =
        view.reader.location.map {
          URL(fileURLWithPath: $0.file).resolvingSymlinksInPath().standardizedFileURL.path + ":" + $0.dataset
        } ?? view.name
      return [
        "source": source, "tile": v.tile, "channel": v.channel, "timepoint": v.timepoint, "setup": view.id.setup,
        "shape": v.shape, "dtype": view.elementType.rawValue,
        "viewToWorld": Array(v.viewToWorld.homogeneousMatrix.dropLast()),
      ]
    }
    return try OutputPlan(
      spec: spec, provenance: provenance,
      identity: ["version": Tessera.version, "parameters": provenance["parameters"] ?? [:], "views": views],
      blocks: plan.blocks.map { grid.linearIndex(ofChunk: Self.blockIndex($0, spec)) })
  }

  /// Predicted work of each planned block: its output voxels times one more than its views
  /// (resampling and blending each view's share, plus encoding and writing the block), which is
  /// also proportional to the input bytes it reads.
  public var predictedWork: [Double] {
    let grid = plan.blockGrid
    return plan.blocks.map { Double(grid.box(ofChunk: $0.block).volume * (1 + $0.views.count)) }
  }

  /// The split of the planned blocks among `count` parts (see ``OMEZarrImageSpec/shares(of:work:count:maxImbalance:)``).
  public func shares(count: Int) -> OMEZarrImageSpec.Shares {
    spec.shares(of: plan.blocks.map { Self.blockIndex($0, spec) }, work: predictedWork, count: count)
  }
}
