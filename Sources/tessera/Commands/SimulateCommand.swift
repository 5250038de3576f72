import ArgumentParser
import Foundation
import Tessera

struct SimulateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "simulate",
    abstract: "Write a synthetic tiled acquisition with known ground truth.",
    discussion: """
      Renders a textured volume (blobs on a noisy background), cuts it into a grid of overlapping \
      tiles and writes one HDF5 file per tile with its stated stage position (true position plus \
      --jitter) as dataset attributes, as an acquisition script would, plus ground_truth.h5. \
      The same parameters and seed always give the same bytes.

      Example: tessera simulate tiles/ --tile-shape 32,128,128 --grid 1,2,2 --channels 2 --jitter 3
      """)

  @Argument(help: "Output directory (created if missing).")
  var output: String

  @Option(help: "Tile shape in voxels, slowest axis first (z,y,x or y,x).")
  var tileShape: String = "32,128,128"

  @Option(help: "Tiles per axis, same order as --tile-shape.")
  var grid: String = "1,2,2"

  @Option(help: "Overlap between neighbouring tiles, as a fraction of the tile.")
  var overlap: Double = 0.15

  @Option(help: "Number of channels.")
  var channels: Int = 2

  @Option(help: "Voxel size in µm per axis (default 1 on every axis).")
  var voxelSize: String?

  @Option(help: "Largest stage-position error, in voxels.")
  var jitter: Double = 0

  @Option(help: "Seed of the random texture and jitter.")
  var seed: UInt64 = 1

  @Option(help: "gzip level of the tile datasets; 0 writes them contiguous and uncompressed.")
  var deflate: Int = 1

  @Option(
    help: ArgumentHelp(
      "HDF5 chunk shape of the tiles, same axes as --tile-shape (default 64 per axis, clipped to the tile).",
      discussion: "For --format bdv this is BigDataViewer's block size (its subdivisions), e.g. 4,32,32."))
  var chunks: String?

  @Option(help: "Output layout: hdf5 (one file per tile, positions as attributes) or bdv (BigStitcher XML + HDF5).")
  var format: Layout = .hdf5

  @Option(help: "Resolution levels for --format bdv (each halves y,x, and z while z is not coarser).")
  var levels: Int = 1

  enum Layout: String, ExpressibleByArgument {
    case hdf5, bdv
  }

  func run() throws {
    let shape = try parseList(tileShape, as: Int.self, name: "--tile-shape")
    let gridValues = try parseList(grid, as: Int.self, name: "--grid")
    let voxel = try voxelSize.map { try parseList($0, as: Double.self, name: "--voxel-size") }
    guard shape.count == gridValues.count, voxel == nil || voxel!.count == shape.count else {
      throw UsageError("--tile-shape, --grid and --voxel-size must have the same number of axes")
    }
    guard shape.allSatisfy({ $0 > 0 }), gridValues.allSatisfy({ $0 > 0 }), channels > 0 else {
      throw UsageError("tile shape, grid and channel count must be positive")
    }
    guard (0..<1).contains(overlap) else { throw UsageError("--overlap must be in [0, 1)") }
    guard voxel?.allSatisfy({ $0 > 0 && $0.isFinite }) ?? true else {
      throw UsageError("--voxel-size must be positive")
    }
    let acquisition = SyntheticAcquisition(
      tileShape: shape, grid: gridValues, overlap: overlap, channels: channels, voxelSize: voxel,
      jitter: jitter, seed: seed)
    guard levels >= 1 else { throw UsageError("--levels must be at least 1") }
    let deflateLevel = deflate > 0 ? deflate : nil
    let chunkShape = try chunks.map { try parseList($0, as: Int.self, name: "--chunks") }
    if let chunkShape, chunkShape.count != shape.count || chunkShape.contains(where: { $0 <= 0 }) {
      throw UsageError("--chunks must have one positive size per axis of --tile-shape")
    }
    let target: String
    switch format {
    case .hdf5:
      target = output
      _ = try acquisition.writeHDF5Tiles(to: output, deflateLevel: deflateLevel, chunkShape: chunkShape)
    case .bdv:
      target = (output as NSString).appendingPathComponent("dataset.xml")
      try acquisition.writeBDV(
        xmlPath: target,
        subsampling: Pyramid.factors(levels: levels, voxelSize: acquisition.voxelSize).map {
          $0.count == 2 ? [1] + $0 : $0
        },
        deflateLevel: deflateLevel, blockShape: chunkShape)
    }
    print(
      "wrote \(acquisition.tileCount) tiles × \(channels) channels of \(shape.map(String.init).joined(separator: "×")) "
        + "uint16 to \(target) (volume \(acquisition.volumeShape.map(String.init).joined(separator: "×")); "
        + "ground truth in \((output as NSString).appendingPathComponent("ground_truth.h5")))")
  }
}

/// Parses "1,2,3" into numbers; errors name the option.
func parseList<T: LosslessStringConvertible>(_ text: String, as: T.Type, name: String) throws -> [T] {
  let parts = text.split(separator: ",", omittingEmptySubsequences: false).map {
    $0.trimmingCharacters(in: .whitespaces)
  }
  let values = parts.compactMap { T($0) }
  guard values.count == parts.count, !values.isEmpty else {
    throw UsageError("\(name): expected comma-separated numbers, got \"\(text)\"")
  }
  return values
}
