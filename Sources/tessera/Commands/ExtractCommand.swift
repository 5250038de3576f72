import ArgumentParser
import Foundation
import Tessera

struct ExtractCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "extract",
    abstract: "Write a region of one view to a .npy file (exact voxels, the view's element type).",
    discussion: """
      Selects a view by --view (timepoint/setup, as `tessera info` lists it, e.g. t0/s3) or by --tile and \
      --channel, reads --box (half-open voxel ranges, slowest axis first) of --level, and writes it as NumPy .npy.

      Example: tessera extract project.xml --tile 2 --channel 1 --box 0:16,100:228,0:128 -o region.npy
      """)

  @Argument(help: "A .xml, a .json manifest, or HDF5 tile files.")
  var dataset: [String]

  @Option(help: "View id as tessera info prints it, e.g. t0/s3.")
  var view: String?

  @Option(help: "Tile id (with --channel), instead of --view.")
  var tile: Int?

  @Option(help: "Channel id (with --tile).")
  var channel: Int?

  @Option(help: "Resolution level (0 = full resolution).")
  var level: Int = 0

  @Option(help: "Region as lo:hi per axis, comma-separated (default: the whole view).")
  var box: String?

  @Option(name: .shortAndLong, help: "Output .npy file.")
  var output: String

  func run() throws {
    let (data, _) = try DatasetLoader.open(dataset)
    let selected: View
    if let view {
      guard let v = data.views.first(where: { $0.id.description == view }) else {
        throw UsageError("no view \(view); `tessera info` lists them (t<timepoint>/s<setup>)")
      }
      selected = v
    } else if let tile {
      guard let v = data.views.first(where: { $0.tile == tile && $0.channel == (channel ?? data.channels[0]) }) else {
        throw UsageError("no view of tile \(tile), channel \(channel ?? data.channels[0])")
      }
      selected = v
    } else {
      throw UsageError("select a view with --view or --tile/--channel")
    }
    guard selected.levels.indices.contains(level) else {
      throw UsageError("view \(selected.id) has levels 0..<\(selected.levels.count), not \(level)")
    }
    let shape = selected.levels[level].shape
    var region = Box(shape: shape)
    if let box {
      region = try parseBox(box, name: "--box")
      guard region.rank == shape.count else {
        throw UsageError("--box needs \(shape.count) ranges lo:hi, got \"\(box)\"")
      }
      guard !region.isEmpty, Box(shape: shape).contains(region) else {
        throw UsageError("--box \(region) must be non-empty and inside the level's shape \(shape)")
      }
    }
    let buffer = try selected.reader.read(region, level: level)
    try NumpyFile.write(buffer, to: output)
    print(
      "wrote \(region.shape.map(String.init).joined(separator: "×")) \(buffer.elementType) of \(selected.id) to \(output)"
    )
  }
}
