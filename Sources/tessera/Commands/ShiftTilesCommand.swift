import ArgumentParser
import Foundation
import Tessera

struct ShiftTilesCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "shift-tiles",
    abstract: "Move tiles by given world offsets and write the dataset back in its own format.",
    discussion: """
      Applies manual corrections: each --shift TILE:dz,dy,dx (µm, world axes; dy,dx in 2D) moves every view of \
      that tile. A BigStitcher XML gains a ViewTransform named --name in front of the existing ones (the \
      original is left alone); manifests and attribute-positioned tiles get a new JSON manifest.

      Example: tessera shift-tiles project.xml --shift 3:0,1.5,-2 -o project-fixed.xml
      """)

  @Argument(help: "A .xml, a .json manifest, or HDF5 tile files.")
  var dataset: [String]

  @Option(name: .customLong("shift"), help: "TILE:offset per axis in µm (repeatable).")
  var shifts: [String] = []

  @Option(help: "Name of the transform added to a BigStitcher XML.")
  var name: String = "Manual Shift (tessera)"

  @Option(name: .shortAndLong, help: "Output .xml (for a BigStitcher project) or .json (otherwise).")
  var output: String

  @Flag(help: "Replace an existing output file.")
  var overwrite = false

  func run() throws {
    var (data, _) = try DatasetLoader.open(dataset)
    guard !shifts.isEmpty else { throw UsageError("give at least one --shift TILE:offsets") }
    if FileManager.default.fileExists(atPath: output) && !overwrite {
      throw UsageError("\(output) exists; pass --overwrite to replace it")
    }
    if URL(fileURLWithPath: output).standardizedFileURL == URL(fileURLWithPath: data.path).standardizedFileURL {
      throw UsageError("refusing to overwrite the input \(data.path); choose another -o")
    }
    for spec in shifts {
      let parts = spec.split(separator: ":", maxSplits: 1)
      guard parts.count == 2, let tile = Int(parts[0]) else {
        throw UsageError("--shift \(spec): expected TILE:offsets, e.g. 3:0,1.5,-2")
      }
      let offset = try parseList(String(parts[1]), as: Double.self, name: "--shift \(spec)")
      guard offset.count == data.rank, offset.allSatisfy(\.isFinite) else {
        throw UsageError("--shift \(spec): needs \(data.rank) finite offsets")
      }
      guard data.tiles.contains(tile) else { throw UsageError("--shift \(spec): no tile \(tile)") }
      for i in data.views.indices where data.views[i].tile == tile {
        data.views[i].viewToWorld = compose(AffineTransform(translation: offset), data.views[i].viewToWorld)
      }
    }
    try DatasetLoader.save(data, to: output, transformName: name)
    print("wrote \(output)")
  }
}
