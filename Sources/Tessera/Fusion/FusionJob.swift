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
      name: ((dataset.path as NSString).lastPathComponent as NSString).deletingPathExtension)
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

  /// The dry-run report.
  public func describe() -> String {
    let blockGrid = plan.blockGrid
    let outBytes = plan.grid.shape.reduce(spec.dataType.byteCount, *) * plan.channels.count * plan.timepoints.count
    let readBytes = inputBytes
    let hist = plan.viewsPerBlockHistogram.sorted { $0.key < $1.key }.map {
      "\($0.key) view\($0.key == 1 ? "" : "s"): \($0.value)"
    }
    let unit = options.shardShape == nil ? "chunks" : "shards"
    let pyramid: String =
      spec.levels == 1
      ? "none"
      : pyramidInStream
        ? "\(spec.levels - 1) level(s) built in the stream from level-0 blocks in memory"
          + (options.mode == .resume
            ? " (from disk if the output has complete blocks; its memory then goes to the cache)" : "")
        : "\(spec.levels - 1) level(s) built from level 0 read back from disk"
          + (spec.canStreamPyramid ? " (the budget cannot hold the in-stream pyramid)" : " (odd chunk extents)")
    var lines: [String] = [
      "output      \(spec.axisNames.joined(separator: ",")) \(spec.arrayShape(level: 0).map(String.init).joined(separator: "×")) \(spec.dataType), voxel \(plan.grid.voxelSize.map { String(format: "%.4g", $0) }.joined(separator: " × ")) µm, origin \(plan.grid.origin.map { String(format: "%.4g", abs($0) < 1e-9 ? 0 : $0) }.joined(separator: ", ")) µm",
      "format      Zarr v\(spec.format.rawValue) (OME-NGFF \(spec.format == .v3 ? "0.5" : "0.4")), \(spec.compressor), chunks \(spec.chunkShape.map(String.init).joined(separator: "×"))"
        + (spec.shardShape.map { ", shards \($0.map(String.init).joined(separator: "×"))" } ?? "")
        + ", \(spec.levels) level(s)",
      "fusion      \(plan.interpolation) interpolation, \(plan.blend) blending"
        + (plan.blend == .linear
          ? " (width \(plan.blendWidth.map { String(format: "%.3g", $0) }.joined(separator: " × ")) µm)" : ""),
      "views       \(plan.views.count) of \(dataset.views.count), channels \(plan.channels), timepoints \(plan.timepoints.count)",
      "\(unit)      \(plan.blocks.count) to fuse of \(plan.totalBlocks) (\(plan.totalBlocks - plan.blocks.count) untouched, left as fill); grid \(blockGrid.gridShape.map(String.init).joined(separator: "×")) per channel",
      "views/block \(hist.joined(separator: ", "))",
      "bytes       read ≈ \(Self.format(bytes: readBytes)) (decoded), write ≤ \(Self.format(bytes: outBytes)) uncompressed at level 0",
    ]
    lines += resources.describe()
    lines.append("pyramid     " + pyramid)
    return lines.joined(separator: "\n")
  }

  /// "1.5 GiB"-style sizes.
  public static func format(bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(bytes)
    var u = 0
    while v >= 1024 && u < units.count - 1 {
      v /= 1024
      u += 1
    }
    return String(format: u == 0 ? "%.0f %@" : "%.1f %@", v, units[u])
  }

  /// Runs the fusion into `output`.
  ///
  /// - Throws: ``ZarrError`` for output problems (exists, disk full), ``HDF5Error`` and others for
  ///   input problems. Everything written before a failure is kept and recorded, so the same
  ///   command with `--resume` continues.
  public func run(output: String, progress: @escaping @Sendable (FusionProgress) -> Void) throws -> FusionSummary {
    let start = ContinuousClock.now
    @Sendable func seconds() -> Double { StageClock.seconds(since: start) }
    // One writer per output, from before the output is created, replaced or resumed.
    let lock = try OutputLock(output: output, command: "fuse")
    defer { lock.release() }
    let image = try OMEZarrImage.create(at: output, spec: spec, mode: options.mode)
    let (written, fusedVoxels, stored, bytesRead, total, stream) = try fuseLevel0(
      into: image, progress: progress, seconds: seconds)
    progress(FusionProgress(phase: "fuse", done: written, total: total, voxels: fusedVoxels, elapsed: seconds()))
    let fuseSeconds = seconds()
    if let stream {
      guard stream.isComplete else {
        throw ZarrError(path: output, "internal error: the in-stream pyramid is incomplete")
      }
    } else {
      try Interruption.check(
        "every block of level 0 is written; run the same command with --resume (instead of --overwrite) to finish")
      // Built on many threads: the process's CPU time (nothing else runs meanwhile).
      let cpu = StageClock.processSeconds()
      try image.buildPyramid(threads: options.threads)
      options.stageClock?.add(.pyramid, seconds: StageClock.processSeconds() - cpu)
    }
    let pyramidSeconds = seconds() - fuseSeconds
    try options.stageClock.time(.metadata) { try image.finish(provenance: provenance()) }
    let totalSeconds = seconds()
    let inputVoxelBytes = plan.views.first.map { dataset.views[$0.index].elementType.byteCount } ?? 1
    options.stageClock?.count(.readDecode, voxels: bytesRead / inputVoxelBytes)
    return FusionSummary(
      voxels: fusedVoxels, seconds: fuseSeconds, pyramidSeconds: pyramidSeconds,
      metadataSeconds: totalSeconds - fuseSeconds - pyramidSeconds, totalSeconds: totalSeconds,
      pyramidInStream: stream != nil, pyramidPeakBytes: stream?.peakBytes ?? 0, blocksWritten: stored,
      blocksSkipped: plan.totalBlocks - total, bytesRead: bytesRead, peakRSSBytes: ResourceUsage.peakRSS)
  }

  /// Fuses every planned level-0 block not already complete. The input cache lives only for this
  /// phase, so the pyramid that follows reuses its memory instead of adding to it.
  private func fuseLevel0(
    into image: OMEZarrImage, progress: @escaping @Sendable (FusionProgress) -> Void,
    seconds: @escaping @Sendable () -> Double
  ) throws -> (done: Int, voxels: Int, stored: Int, bytesRead: Int, total: Int, stream: OMEZarrImage.PyramidStream?) {
    let level0 = image.levels[0]
    let done = image.completedAtOpen[0]
    let remaining = plan.blocks.filter { !done.contains(level0.grid.linearIndex(ofChunk: Self.blockIndex($0, spec))) }
    let indices = remaining.map { Self.blockIndex($0, spec) }
    // The pyramid in the stream (a fresh output whose budget holds it): each level-0 block is
    // reduced into the level above as it is written. The blocks then go in pyramid order, so the
    // children of a pyramid block come one after another (few open blocks; neighbours share input
    // blocks). Otherwise plan order (neighbours together, so input blocks they share are still
    // cached) — or, when the cache holds all the input anyway, the blocks with the most views (the
    // slowest) first, so the threads finish together. The order never changes the output.
    let stream = resources.pyramidBytes > 0 ? image.pyramidStream(for: indices) : nil
    // Without the stream (a resumed output) the memory set aside for it goes to the cache. The
    // cache lives only for this phase, so a pyramid built from disk afterwards reuses its memory.
    let cache = ViewBlockCache(
      sources: cacheSources, budget: resources.cacheBytes(streaming: stream != nil))
    let executor = FusionExecutor(
      plan: plan, cache: cache, outputType: spec.dataType, fillValue: spec.fillValue, clock: options.stageClock)
    let order: [Int]
    if stream != nil {
      order = image.pyramidOrder(of: indices)
    } else if resources.cachedInputBytes <= resources.cacheBytes {
      order = remaining.indices.sorted { (remaining[$0].views.count, $1) > (remaining[$1].views.count, $0) }
    } else {
      order = Array(remaining.indices)
    }
    // Every source region the executor will read (each piece of each block, each of its views),
    // announced to the cache, so each input block is dropped as soon as its last reader has it and
    // its memory is reused.
    let lead = spec.leadingAxes.count
    for k in order {
      for piece in level0.pieces(ofBlock: indices[k]) {
        let spatial = Box(lower: Array(piece.lower.dropFirst(lead)), upper: Array(piece.upper.dropFirst(lead)))
        for v in remaining[k].views {
          if let source = plan.sourceBox(view: v, for: spatial) { cache.expect(view: plan.views[v].index, box: source) }
        }
      }
    }
    let counters = Counters()
    let total = order.count
    let timer = DispatchSource.makeTimerSource()
    timer.schedule(deadline: .now() + 0.5, repeating: 0.5)
    timer.setEventHandler {
      let (d, v) = counters.snapshot
      progress(FusionProgress(phase: "fuse", done: d, total: total, voxels: v, elapsed: seconds()))
    }
    timer.resume()
    defer { timer.cancel() }
    let clock = options.stageClock
    /// Fuses, writes and logs output block `order[i]`.
    @Sendable func fuseBlock(_ i: Int) throws {
      let b = remaining[order[i]]
      let index = indices[order[i]]
      var voxels = 0
      // Stage times: the executor adds read+decode and resample+blend; the rest of writing the
      // block is encode+write.
      // (Thread CPU clocks are system calls: read only when timing.)
      let now = { clock == nil ? 0 : StageClock.threadSeconds() }
      let start = now()
      var inner = 0.0
      let stored = try image.writeBlock(level: 0, index) { box in
        let t0 = now()
        defer { inner += now() - t0 }
        let spatial = Box(lower: Array(box.lower.dropFirst(lead)), upper: Array(box.upper.dropFirst(lead)))
        voxels += spatial.volume
        let piece = try executor.fuse(b, box: spatial, resultBox: box)
        if let piece, let stream {
          let t1 = now()
          stream.add(level: 0, block: index, piece: piece)
          clock?.add(.pyramid, seconds: now() - t1)
        }
        return piece
      }
      clock?.add(.encodeWrite, seconds: now() - start - inner, voxels: voxels)
      try clock.time(.pyramid) { try stream?.finished(level: 0, block: index) }
      counters.add(stored: stored, voxels: voxels)
    }
    // Nested work (a block's chunks decoded at once) on the worker's own thread while the blocks
    // fill the threads. A stop request (SIGINT, SIGTERM) lets the blocks in flight finish and
    // starts no more: every finished block is in the progress log, so --resume continues.
    do {
      try Parallel.forEach(
        total, threads: options.threads, nested: resources.decoderThreads(blocks: total)
      ) { i in
        try Interruption.check("")
        try fuseBlock(i)
      }
    } catch let stop as Interrupted {
      let unit = spec.shardShape == nil ? "chunks" : "shards"
      throw Interrupted(
        signal: stop.signal,
        progress: "\(counters.snapshot.0) of the \(total) \(unit) to do are written; run the same command with "
          + "--resume (instead of --overwrite, if it had it) to finish")
    }
    let (written, fusedVoxels) = counters.snapshot
    return (written, fusedVoxels, counters.storedCount, cache.statistics.bytesRead, total, stream)
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
      "version": Tessera.version, "command": CommandLine.arguments.joined(separator: " "),
      "dataset": dataset.path,
      "parameters": [
        "interpolation": plan.interpolation.rawValue, "blend": plan.blend.rawValue, "blend_width_um": plan.blendWidth,
        "voxel_size_um": plan.grid.voxelSize, "origin_um": plan.grid.origin, "channels": plan.channels,
        "dtype": spec.dataType.rawValue, "chunks": spec.chunkShape, "shards": spec.shardShape ?? [],
        "codec": "\(spec.compressor)", "levels": spec.levels,
      ] as [String: Any],
      "views": views,
    ]
  }
}

final class Counters: @unchecked Sendable {
  private let lock = NSLock()
  private var done = 0
  private var stored = 0
  private var voxels = 0
  func add(stored s: Bool, voxels v: Int) {
    lock.withLock {
      done += 1
      if s { stored += 1 }
      voxels += v
    }
  }
  var snapshot: (Int, Int) { lock.withLock { (done, voxels) } }
  var storedCount: Int { lock.withLock { stored } }
}

/// Process resource usage.
public enum ResourceUsage {
  /// Peak resident set size of this process, bytes (`getrusage`, ru_maxrss in KiB on Linux).
  public static var peakRSS: Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
  }
}
