import ArgumentParser
import Foundation
import Tessera

struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Describe a tiled dataset: views, channels, tiles, shapes, voxel sizes, bounds and overlaps.",
    discussion: """
      DATASET is a BigStitcher/BigDataViewer XML (bdv.hdf5), a JSON tile manifest, or one or more HDF5 files \
      whose datasets carry position_um and voxel_size_um attributes.

      Examples:
        tessera info project.xml
        tessera info tiles/*.h5 --json
      """)

  @Argument(help: "A .xml, a .json manifest, or HDF5 tile files.")
  var dataset: [String]

  @Flag(help: "Print JSON for machines instead of a table.")
  var json = false

  func run() throws {
    let (data, warnings) = try DatasetLoader.open(dataset)
    let summary = DatasetSummary(data, warnings: warnings)
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      print(String(decoding: try encoder.encode(summary), as: UTF8.self))
    } else {
      print(Self.table(summary))
    }
  }

  static func table(_ s: DatasetSummary) -> String {
    func join<T>(_ v: [T], _ sep: String = "×") -> String { v.map { "\($0)" }.joined(separator: sep) }
    func num(_ x: Double) -> String { String(format: "%.4g", x) }
    func plural(_ n: Int, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }
    let axes = s.axes.joined(separator: ",")
    var lines: [String] = []
    lines.append("dataset   \(s.path) (\(s.format))")
    lines.append(
      "views     \(s.viewCount): \(plural(s.tiles.count, "tile")) × \(plural(s.channels.count, "channel"))"
        + " × \(plural(s.timepoints.count, "timepoint")), \(s.rank)D (\(axes)), \(s.elementTypes.joined(separator: ", "))"
    )
    let size = (0..<s.rank).map { num(s.worldUpperUm[$0] - s.worldLowerUm[$0]) }
    lines.append(
      "world     [\((0..<s.rank).map { "\(num(s.worldLowerUm[$0])), \(num(s.worldUpperUm[$0]))" }.joined(separator: "] × ["))] µm"
        + " (size \(size.joined(separator: " × ")) µm)")
    lines.append("")
    lines.append(
      "view        tile  ch  type     shape (\(axes))      voxel µm (\(axes))       levels  origin µm (\(axes))")
    for v in s.views {
      let origin = (0..<s.rank).map { num(v.viewToWorld[$0][s.rank]) }
      lines.append(
        "t\(v.timepoint)/s\(v.setup)".padding(toLength: 12, withPad: " ", startingAt: 0)
          + "\(v.tile)".padding(toLength: 6, withPad: " ", startingAt: 0)
          + "\(v.channel)".padding(toLength: 4, withPad: " ", startingAt: 0)
          + v.elementType.padding(toLength: 9, withPad: " ", startingAt: 0)
          + join(v.shape).padding(toLength: 20, withPad: " ", startingAt: 0)
          + v.voxelSizeUm.map(num).joined(separator: " × ").padding(toLength: 25, withPad: " ", startingAt: 0)
          + "\(v.levels.count)".padding(toLength: 8, withPad: " ", startingAt: 0)
          + origin.joined(separator: ", "))
    }
    lines.append("")
    if s.overlaps.isEmpty {
      lines.append("overlaps  none (the tiles do not touch)")
    } else {
      lines.append("overlaps  (tile pairs; extent in voxels, \(axes))")
      for o in s.overlaps {
        lines.append(
          "  tile \(o.tiles[0]) – tile \(o.tiles[1]): \(o.extentVoxels.map { num($0) }.joined(separator: " × "))")
      }
    }
    for w in s.warnings { lines.append("warning: \(w)") }
    return lines.joined(separator: "\n")
  }
}
