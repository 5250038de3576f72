import Foundation
import TesseraCore
import TesseraFusion
import TesseraIO

extension FusionJob {
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

  /// The dry-run line of a split into `count` parts: units, balance, and where the pyramid is built.
  public func describeShares(count: Int, this part: Part?) -> String {
    let split = shares(count: count)
    let unit = options.shardShape == nil ? "chunks" : "shards"
    let sizes = split.parts.map(\.count)
    var line =
      "parts       \(count): \(split.units) unit\(split.units == 1 ? "" : "s") of whole "
      + (split.top == 0 ? "level-0 \(unit)" : "level-\(split.top) pyramid blocks")
      + ", \(sizes.min() ?? 0)–\(sizes.max() ?? 0) \(unit) per part; predicted work of the largest part / the mean = "
      + String(format: "%.3f", split.imbalance)
    if spec.levels > 1 {
      line +=
        split.top == 0
        ? "; the pyramid is built at finalize"
        : "; levels 1–\(split.top) in each part's stream"
          + (split.top < spec.levels - 1 ? ", \(split.top + 1)–\(spec.levels - 1) at finalize" : "")
    }
    if let part { line += "; this process fills part \(part) (\(split.parts[part.index].count) \(unit))" }
    return line
  }
}
