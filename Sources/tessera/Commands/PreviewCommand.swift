import ArgumentParser
import Foundation
import Tessera
import TesseraCore

struct PreviewCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "preview",
    abstract: "Draw PNG pictures of a fused OME-Zarr image: projections per channel, a colour composite, a scale bar.",
    discussion: """
      Writes into DIR, per channel, a maximum-intensity projection along z (the overview) and, for 3-D images, \
      along y and x (side views, stretched to the voxels' aspect), 8-bit grey with contrast limits at the \
      --percentiles of the overview; a false-colour composite of the channels in their display colours; a scale \
      bar in µm; and preview.json (level, region, limits, files). The pictures come from the finest pyramid level \
      whose y and x fit --max-size (never the whole level 0 of a large image); --box draws a region of level 0 at \
      full resolution instead, for checking seams.

      With --layout, draws a dataset instead: tile footprints in y and x at their stated positions (grey, \
      dashed) and, with --report (refine-positions' report for this dataset), at the refined ones (blue); every \
      link between tile centres coloured by correlation (red 0 to green 1), rejected links dashed and labelled with \
      their correlation, tiles placed by weak links ringed in orange; as PNG and SVG (same name, .svg).

      Examples:
        tessera preview fused.ome.zarr -o pictures
        tessera preview fused.ome.zarr -o seam --box 0:64,500:756,480:736 --percentiles 1,99.5
        tessera preview project.xml --layout --report links.json -o layout.png
      """)

  @Argument(help: "A fused OME-Zarr image (Zarr v2 or v3); with --layout, a dataset (.xml, .json or HDF5 tiles).")
  var inputs: [String]

  @Option(name: .shortAndLong, help: "Folder for the pictures (created if needed); with --layout, the .png file.")
  var output: String

  @Flag(help: "Draw the dataset's tiles and links instead of a fused image.")
  var layout = false

  @Option(help: "With --layout: refine-positions' JSON report for this dataset (refined positions, links).")
  var report: String?

  @Option(help: "Contrast limits: low,high percentiles of each channel's overview (default: 0.5,99.8).")
  var percentiles: String = "0.5,99.8"

  @Option(help: "Largest y and x extent of the level drawn (default: 2048).")
  var maxSize: Int = 2048

  @Option(help: "A region of level 0 drawn at full resolution: lo:hi per spatial axis (z,y,x or y,x), comma-separated.")
  var box: String?

  @Flag(help: "Also write 16-bit grey projections holding the voxel values themselves.")
  var sixteenBit = false

  func run() throws {
    if layout { return try drawLayout() }
    guard inputs.count == 1, let image = inputs.first else {
      throw UsageError("give one OME-Zarr image (or --layout with a dataset)")
    }
    var options = PreviewOptions()
    let p = try parseList(percentiles, as: Double.self, name: "--percentiles")
    guard p.count == 2, 0 <= p[0], p[0] < p[1], p[1] <= 100 else {
      throw UsageError("--percentiles needs two values low,high with 0 ≤ low < high ≤ 100, got \"\(percentiles)\"")
    }
    options.percentiles = (p[0], p[1])
    guard maxSize >= 1 else { throw UsageError("--max-size must be at least 1") }
    options.maxSize = maxSize
    options.sixteenBit = sixteenBit
    if let box { options.box = try parseBox(box, name: "--box") }
    let summary = try Preview.write(image: image, to: output, options: options)
    let lines = summary.files.filter { $0.bitDepth == 8 && ($0.channel == nil || summary.files.count < 12) }
    print(
      "level \(summary.level) (\(zip(summary.lower, summary.upper).map { "\($0):\($1)" }.joined(separator: ","))): "
        + "\(summary.files.count) pictures in \(output)")
    for f in lines { print("  \(output)/\(f.path)") }
  }

  func drawLayout() throws {
    guard output.lowercased().hasSuffix(".png") else {
      throw UsageError("with --layout, -o names the PNG to write (the SVG goes beside it), e.g. -o layout.png")
    }
    let (data, _) = try DatasetLoader.open(inputs)
    var registration: RegistrationReport? = nil
    if let report {
      guard let bytes = FileManager.default.contents(atPath: report) else {
        throw UsageError("\(report): cannot read the report; write one with tessera refine-positions ... --report FILE")
      }
      do {
        registration = try JSONDecoder().decode(RegistrationReport.self, from: bytes)
      } catch {
        throw UsageError("\(report): not a refine-positions report (\(error))".oneLine)
      }
    }
    let summary = try Layout.write(dataset: data, report: registration, to: output)
    print(
      "\(summary.tiles) tiles, \(summary.links) links (\(summary.rejected) rejected)"
        + (summary.weak.isEmpty ? "" : ", weakly placed tiles \(summary.weak)") + " → \(summary.png), \(summary.svg)")
  }
}
