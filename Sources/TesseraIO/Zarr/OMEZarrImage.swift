import Foundation
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

/// An OME-Zarr image being written: a group with one Zarr array per resolution level.
///
/// The life of an output: ``create(at:spec:mode:)`` writes the group (marked incomplete, with no
/// `multiscales`, so no viewer mistakes it for a finished image) and the level arrays; callers
/// write level-0 blocks (recording each in a progress log); ``buildPyramid(threads:)`` fills the
/// other levels block by block from the level below; ``finish(provenance:)`` writes the OME
/// metadata last. An interrupted run is resumed with `mode: .resume`, which keeps every block
/// recorded as complete.
public final class OMEZarrImage: Sendable {
  public enum Mode: Sendable {
    /// The output must not exist.
    case new
    /// Remove an existing output first (only if it is a Zarr group).
    case overwrite
    /// Continue an interrupted output made with the same spec.
    case resume
  }

  public let path: String
  public let spec: OMEZarrImageSpec
  /// One array per level.
  public let levels: [ZarrArray]
  /// Completed blocks per level, from earlier runs (resume) — a snapshot at open.
  public let completedAtOpen: [Set<Int>]
  let log: ProgressLog

  private init(path: String, spec: OMEZarrImageSpec, levels: [ZarrArray], completed: [Set<Int>], log: ProgressLog) {
    self.path = path
    self.spec = spec
    self.levels = levels
    self.completedAtOpen = completed
    self.log = log
  }

  /// Creates (or reopens, for `.resume`) an image at `path`.
  ///
  /// - Throws: ``ZarrError`` when the output exists (and neither overwrite nor resume was asked),
  ///   the existing output is not a Zarr group or was made with other settings, or the
  ///   directory cannot be written.
  public static func create(at path: String, spec: OMEZarrImageSpec, mode: Mode) throws -> OMEZarrImage {
    try spec.validate(path)
    let fm = FileManager.default
    let exists = fm.fileExists(atPath: path)
    let isZarr = fm.fileExists(atPath: path + "/zarr.json") || fm.fileExists(atPath: path + "/.zgroup")
    var resuming = false
    switch mode {
    case .new:
      if exists {
        throw ZarrError(path: path, "exists; pass --overwrite to replace it or --resume to continue it", kind: .usage)
      }
    case .overwrite:
      if exists {
        guard isZarr else {
          throw ZarrError(path: path, "exists and is not a Zarr group; refusing to delete it", kind: .usage)
        }
        do { try fm.removeItem(atPath: path) } catch {
          throw ZarrError(path: path, "cannot remove the old output (\(error.localizedDescription))", kind: .io)
        }
      }
    case .resume:
      if exists {
        guard isZarr else {
          throw ZarrError(path: path, "exists and is not a Zarr group; cannot resume it", kind: .usage)
        }
        let attributes = try ZarrGroup.attributes(at: path)
        let stored = (attributes["tessera"] as? [String: Any])?["layout"] as? String
        guard stored == spec.fingerprint else {
          throw ZarrError(
            path: path, "was written with different settings; resume needs the same command (or use --overwrite)",
            kind: .usage)
        }
        resuming = true
        // Temporary files of writes that a crash interrupted: never renamed, never complete.
        if let walker = fm.enumerator(atPath: path) {
          for case let file as String in walker where file.hasSuffix(".tmp") {
            try? fm.removeItem(atPath: path + "/" + file)
          }
        }
      }
    }
    let log = try ProgressLog(directory: path + "/.tessera/progress")
    if !resuming {
      try ZarrGroup.write(
        at: path, format: spec.format,
        attributes: ["tessera": ["status": "incomplete", "layout": spec.fingerprint] as [String: Any]])
    }
    var arrays: [ZarrArray] = []
    for level in 0..<spec.levels {
      let chunk = spec.leadingOnes() + spec.chunkShape
      var metadata = ZarrArrayMetadata(
        format: spec.format, shape: spec.arrayShape(level: level),
        chunkShape: spec.shardShape.map { spec.leadingOnes() + $0 } ?? chunk,
        innerChunkShape: spec.shardShape == nil ? nil : chunk, dataType: spec.dataType, fillValue: spec.fillValue,
        compressor: spec.compressor, dimensionNames: spec.axisNames)
      metadata.separator = "/"
      let arrayPath = path + "/\(level)"
      arrays.append(resuming ? try ZarrArray.open(arrayPath) : try ZarrArray.create(at: arrayPath, metadata: metadata))
      if resuming, arrays[level].metadata != metadata {
        throw ZarrError(
          path: arrayPath, "level \(level) differs from the requested layout; use --overwrite", kind: .usage)
      }
    }
    let completed = resuming ? try log.completed(levels: spec.levels) : Array(repeating: [], count: spec.levels)
    return OMEZarrImage(path: path, spec: spec, levels: arrays, completed: completed, log: log)
  }

  /// Writes block `index` of `level` and records it as complete.
  public func writeBlock(level: Int, _ index: [Int], _ data: AnyVolumeBuffer) throws {
    try writeBlock(level: level, index) { _ in data }
  }

  /// Writes block `index` of `level` piece by piece (see ``ZarrArray/writeBlock(_:produce:)``)
  /// and records it as complete. Returns false if it was all fill.
  @discardableResult
  public func writeBlock(level: Int, _ index: [Int], produce: (Box) throws -> AnyVolumeBuffer?) throws -> Bool {
    let array = levels[level]
    let stored = try array.writeBlock(index, produce: produce)
    try log.record(level: level, block: array.grid.linearIndex(ofChunk: index))
    return stored
  }

  /// Writes the OME-NGFF metadata (multiscales, omero with display windows from the coarsest
  /// level, and the `tessera` provenance block) — the last step, which makes the output a
  /// finished image.
  public func finish(provenance: [String: Any]) throws {
    let n = spec.spatialRank
    let lead = spec.leadingAxes
    var axes: [[String: Any]] = []
    if spec.timepoints > 1 { axes.append(["name": "t", "type": "time", "unit": "second"]) }
    axes.append(["name": "c", "type": "channel"])
    for name in ["z", "y", "x"].suffix(n) { axes.append(["name": name, "type": "space", "unit": "micrometer"]) }
    let leadOnes = Array(repeating: 1.0, count: lead.count)
    let leadZeros = Array(repeating: 0.0, count: lead.count)
    let datasets: [[String: Any]] = spec.levelFactors.enumerated().map { level, f in
      let scale = zip(spec.voxelSize, f).map { $0 * Double($1) }
      let translation = (0..<n).map { spec.origin[$0] + Double(f[$0] - 1) / 2 * spec.voxelSize[$0] }
      return [
        "path": "\(level)",
        "coordinateTransformations": [
          ["type": "scale", "scale": leadOnes + scale],
          ["type": "translation", "translation": leadZeros + translation],
        ],
      ]
    }
    var multiscale: [String: Any] = [
      "name": spec.name, "axes": axes, "datasets": datasets, "type": "mean",
      "metadata": ["method": "block mean, 2× in y and x per level (z while not coarser)"],
    ]
    let windows = try displayWindows()
    let channels: [[String: Any]] = spec.channels.enumerated().map { c, channel in
      [
        "label": channel.label, "color": channel.color, "active": true, "coefficient": 1.0, "family": "linear",
        "inverted": false, "window": windows[c],
      ]
    }
    var omero: [String: Any] = [
      "name": spec.name, "channels": channels,
      "rdefs": ["defaultT": 0, "defaultZ": n == 3 ? spec.shape[0] / 2 : 0, "model": "color"],
    ]
    var tessera = provenance
    tessera["status"] = "complete"
    tessera["layout"] = spec.fingerprint
    switch spec.format {
    case .v2:
      multiscale["version"] = "0.4"
      omero["version"] = "0.4"
      try ZarrGroup.write(
        at: path, format: .v2, attributes: ["multiscales": [multiscale], "omero": omero, "tessera": tessera])
    case .v3:
      try ZarrGroup.write(
        at: path, format: .v3,
        attributes: ["ome": ["version": "0.5", "multiscales": [multiscale], "omero": omero], "tessera": tessera])
    }
  }

  /// Per channel: min/max of the type (data range for floats), start/end at the 0.1 and 99.9
  /// percentiles of the coarsest level (fill excluded), estimated from an evenly spread subset of
  /// its blocks (about 2 M voxels per channel at most, every 8th voxel of them kept), read one
  /// block at a time, so time and memory stay bounded whatever the level's size.
  func displayWindows() throws -> [[String: Any]] {
    let coarsest = levels.last!
    let lead = spec.leadingAxes.count
    let blocks = coarsest.grid.allChunks
    let blockVoxels = coarsest.metadata.chunkShape.reduce(1, *)
    let perChannel = max(1, blocks.count / spec.channels.count)
    let keepEvery = max(1, perChannel * blockVoxels / 2_000_000)
    let voxelStep = 8
    var samples = [[Double]](repeating: [], count: spec.channels.count)
    var row: [Double] = []
    for (n, block) in blocks.enumerated() where n % keepEvery == 0 {
      guard let data = try coarsest.readBlock(block) else { continue }
      let c = block[lead - 1]
      let clipped = coarsest.grid.box(ofChunk: block)
      // Every `voxelStep`-th voxel of each row inside the array (rows converted through a
      // reused row buffer).
      data.withUnsafeBytes { src in
        clipped.forEachRowStart(in: data.box) { offset, length in
          if row.count < length { row = [Double](repeating: 0, count: length) }
          row.withUnsafeMutableBytes { r in
            ElementConversion.convert(
              length, from: data.elementType, src.baseAddress! + offset * data.elementType.byteCount, to: .float64,
              r.baseAddress!)
          }
          for i in Swift.stride(from: 0, to: length, by: voxelStep) {
            let v = row[i]
            if v != spec.fillValue && !v.isNaN { samples[c].append(v) }
          }
        }
      }
    }
    return samples.map { channel in
      // Percentiles from an evenly thinned subset of at most 200 k samples (sorting millions would
      // cost more than the fusion of a small image).
      let step = max(1, channel.count / 200_000)
      let thinned = Swift.stride(from: 0, to: channel.count, by: step).map { channel[$0] }
      let (lo, hi) = Self.percentiles(thinned, 0.001, 0.999, of: spec.dataType)
      let range =
        spec.dataType.isFloatingPoint
        ? (thinned.min() ?? 0)...(thinned.max() ?? 1) : spec.dataType.range
      return ["min": range.lowerBound, "max": range.upperBound, "start": lo, "end": max(hi, lo + 1e-9)]
    }
  }

  /// The order statistics at ranks ⌊(n − 1)·p⌋ and ⌊(n − 1)·q⌋ of `values` (0 and 1 when empty),
  /// 0 ≤ p ≤ q ≤ 1: for integer types of at most 16 bits by counting the values (linear time),
  /// else by sorting.
  public static func percentiles(_ values: [Double], _ p: Double, _ q: Double, of type: ElementType) -> (Double, Double)
  {
    precondition(0 <= p && p <= q && q <= 1, "percentiles \(p), \(q) out of order")
    guard !values.isEmpty else { return (0, 1) }
    let ranks = [Int(Double(values.count - 1) * p), Int(Double(values.count - 1) * q)]
    guard !type.isFloatingPoint, type.byteCount <= 2 else {
      let sorted = values.sorted()
      return (sorted[ranks[0]], sorted[ranks[1]])
    }
    let lowest = Int(type.range.lowerBound)
    var counts = [Int](repeating: 0, count: Int(type.range.upperBound) - lowest + 1)
    for v in values { counts[Int(v) - lowest] += 1 }
    var found: [Double] = []
    var seen = 0
    var r = 0
    for (i, n) in counts.enumerated() where n > 0 {
      seen += n
      while r < ranks.count, ranks[r] < seen {
        found.append(Double(i + lowest))
        r += 1
      }
      if r == ranks.count { break }
    }
    return (found[0], found[1])
  }
}

extension Box {
  /// Calls `body(offset, length)` for each row of this box inside the C-order array over `outer`.
  func forEachRowStart(in outer: Box, _ body: (Int, Int) -> Void) {
    RawCopy.forEachRow(of: self, in: outer, and: self) { offset, _, length in body(offset, length) }
  }
}

/// Which blocks are complete: one append-only log per process under the output, so processes
/// never coordinate and a resumed run (any process) reads them all.
final class ProgressLog: @unchecked Sendable {
  let directory: String
  private let lock = NSLock()
  private var handle: FileHandle?

  init(directory: String) throws {
    self.directory = directory
    try ZarrStore.makeDirectory(directory)
  }

  private func open() throws -> FileHandle {
    if let handle { return handle }
    let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
    let file = directory + "/\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
    guard FileManager.default.createFile(atPath: file, contents: nil), let h = FileHandle(forWritingAtPath: file) else {
      throw ZarrError(path: file, "cannot create the progress log", kind: .io)
    }
    handle = h
    return h
  }

  /// Records block `block` of `level` as complete (after its data is in place).
  func record(level: Int, block: Int) throws {
    try lock.withLock {
      let h = try open()
      do {
        try h.write(contentsOf: Data("\(level) \(block)\n".utf8))
      } catch {
        throw ZarrError(
          path: directory, "cannot append to the progress log (\(error.localizedDescription))", kind: .io)
      }
    }
  }

  /// Completed blocks per level, from every log (a torn last line is ignored).
  func completed(levels: Int) throws -> [Set<Int>] {
    var out = Array(repeating: Set<Int>(), count: levels)
    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for f in files where f.hasSuffix(".log") {
      guard let text = try? String(contentsOfFile: directory + "/" + f, encoding: .utf8) else { continue }
      // Only newline-terminated lines count: a torn last line ("0 1" of "0 12") is ignored.
      for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
        let parts = line.split(separator: " ")
        guard parts.count == 2, let l = Int(parts[0]), let b = Int(parts[1]), (0..<levels).contains(l) else { continue }
        out[l].insert(b)
      }
    }
    return out
  }

  deinit { try? handle?.close() }
}
