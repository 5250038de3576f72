import Foundation
import TesseraCore

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
        compressor: spec.compressor,
        // Zarr v2 has no dimension names (a v2 array reads back without them, so resume compares equal).
        dimensionNames: spec.format == .v3 ? spec.axisNames : nil)
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
}
