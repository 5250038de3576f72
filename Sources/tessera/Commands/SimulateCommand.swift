import ArgumentParser
import Foundation
import Tessera

struct SimulateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "simulate",
    abstract: "Write a synthetic tiled acquisition, or tile a real volume, with known ground truth.",
    discussion: """
      Renders a textured volume (blobs on a noisy background), cuts it into a grid of overlapping \
      tiles and writes one HDF5 file per tile with its stated stage position (true position plus \
      --jitter) as dataset attributes, as an acquisition script would, plus ground_truth.h5 and \
      truth.json. The same parameters and seed always give the same bytes.

      With --source VOLUME (.npy, multi-page .tif, or FILE.h5:DATASET; 2-D or 3-D) the tiles are \
      cut from that real volume instead, at subpixel true positions (the grid plus a random \
      offset in [0, --subpixel) voxels), sampled by cubic B-spline interpolation with the exact \
      prefilter; along axes where --voxel-size is coarser than --source-voxel-size each tile \
      voxel is the box average of the source over its footprint. The grid is centred in the \
      source (or --crop). truth.json holds the true and stated positions.

      Example: tessera simulate tiles/ --tile-shape 32,128,128 --grid 1,2,2 --channels 2 --jitter 3
      Example: tessera simulate nuclei/ --source nuclei.tif --source-voxel-size 0.5,0.25,0.25 \
      --voxel-size 1.5,0.25,0.25 --tile-shape 16,128,128 --grid 1,2,2 --jitter 4 --noise poisson
      """)

  @Argument(help: "Output directory (created if missing).")
  var output: String

  @Option(
    help: "Tile shape in voxels, slowest axis first (z,y,x or y,x; default 32,128,128, or 128,128 for a 2-D source).")
  var tileShape: String?

  @Option(help: "Tiles per axis, same order as --tile-shape (default 1,2,2, or 2,2 for a 2-D source).")
  var grid: String?

  @Option(help: "Overlap between neighbouring tiles, as a fraction of the tile.")
  var overlap: Double = 0.15

  @Option(help: "Number of channels (default 2; 1 with --source).")
  var channels: Int?

  @Option(help: "Real volume to tile: a .npy, a multi-page .tif, or FILE.h5:DATASET.")
  var source: String?

  @Option(help: "--source: its voxel size in µm per axis (default 1 on every axis).")
  var sourceVoxelSize: String?

  @Option(help: "--source: the part to use, in source voxels (z0:z1,y0:y1,x0:x1; default all).")
  var crop: String?

  @Option(help: "--source: true positions are the grid plus a uniform offset in [0, S) voxels per axis.")
  var subpixel: Double = 1

  @Option(help: "--source: noise on the tiles: none, poisson (value as mean count) or gaussian.")
  var noise: NoiseKind = .none

  @Option(help: "--noise gaussian: standard deviation in output units.")
  var noiseSigma: Double = 10

  @Option(
    help: "HDF5 chunk (BDV block) shape of the tile datasets, e.g. 16,128,128 or 4,32,32 (default 64 per axis).")
  var chunks: String?

  @Option(help: "Voxel size in µm per axis (default 1 on every axis).")
  var voxelSize: String?

  @Option(help: "Largest stage-position error, in voxels.")
  var jitter: Double = 0

  @Option(help: "Seed of the random texture and jitter.")
  var seed: UInt64 = 1

  @Option(help: "Synthetic texture: Gaussian blobs per million voxels.")
  var blobDensity: Double = SyntheticAcquisition.defaultBlobDensity

  @Option(help: "gzip level of the tile datasets; 0 writes them contiguous and uncompressed.")
  var deflate: Int = 1

  @Option(help: "Output layout: hdf5 (one file per tile, positions as attributes) or bdv (BigStitcher XML + HDF5).")
  var format: Layout = .hdf5

  @Option(help: "Resolution levels for --format bdv (each halves y,x, and z while z is not coarser).")
  var levels: Int = 1

  enum Layout: String, ExpressibleByArgument {
    case hdf5, bdv
  }

  enum NoiseKind: String, ExpressibleByArgument {
    case none, poisson, gaussian
  }

  func validate() throws {
    guard jitter >= 0, jitter.isFinite else { throw ValidationError("--jitter must be a non-negative number") }
    guard (0..<1).contains(overlap) else { throw ValidationError("--overlap must be in [0, 1)") }
    guard (0...9).contains(deflate) else { throw ValidationError("--deflate must be 0 (none) to 9") }
    if source == nil {
      for (flag, given) in [
        ("--source-voxel-size", sourceVoxelSize != nil), ("--crop", crop != nil), ("--noise", noise != .none),
      ] where given {
        throw ValidationError("\(flag) needs --source")
      }
    } else {
      guard channels == nil || channels == 1 else {
        throw ValidationError("--source gives one channel; drop --channels")
      }
      guard (0...1).contains(subpixel) else { throw ValidationError("--subpixel must be in [0, 1]") }
      guard noiseSigma > 0, noiseSigma.isFinite else { throw ValidationError("--noise-sigma must be positive") }
    }
  }

  func run() throws {
    if let source {
      try runSource(source)
      return
    }
    let channels = self.channels ?? 2
    let shape = try parseList(tileShape ?? "32,128,128", as: Int.self, name: "--tile-shape")
    let gridValues = try parseList(grid ?? "1,2,2", as: Int.self, name: "--grid")
    let voxel = try voxelSize.map { try parseList($0, as: Double.self, name: "--voxel-size") }
    guard shape.count == gridValues.count, voxel == nil || voxel!.count == shape.count else {
      throw UsageError("--tile-shape, --grid and --voxel-size must have the same number of axes")
    }
    guard shape.allSatisfy({ $0 > 0 }), gridValues.allSatisfy({ $0 > 0 }), channels > 0 else {
      throw UsageError("tile shape, grid and channel count must be positive")
    }
    guard (0..<1).contains(overlap) else { throw UsageError("--overlap must be in [0, 1)") }
    guard blobDensity > 0, blobDensity.isFinite else { throw UsageError("--blob-density must be positive") }
    guard voxel?.allSatisfy({ $0 > 0 && $0.isFinite }) ?? true else {
      throw UsageError("--voxel-size must be positive")
    }
    let acquisition = SyntheticAcquisition(
      tileShape: shape, grid: gridValues, overlap: overlap, channels: channels, voxelSize: voxel,
      jitter: jitter, blobDensity: blobDensity, seed: seed)
    guard levels >= 1 else { throw UsageError("--levels must be at least 1") }
    let deflateLevel = deflate > 0 ? deflate : nil
    let chunkShape = try chunks.map { try parseList($0, as: Int.self, name: "--chunks") }
    guard chunkShape == nil || (chunkShape!.count == shape.count && chunkShape!.allSatisfy { $0 > 0 }) else {
      throw UsageError("--chunks needs \(shape.count) positive values, like --tile-shape")
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

extension SimulateCommand {
  func runSource(_ spec: String) throws {
    let whole = try SourceAcquisition.readSource(spec)
    let n = whole.box.rank
    guard n == 2 || n == 3 else {
      throw UsageError("\(spec): the source is \(n)-D (\(whole.box.shape)); --source needs a 2-D or 3-D volume")
    }
    func list<T: LosslessStringConvertible>(_ text: String?, _ name: String, default value: [T]) throws -> [T] {
      guard let text else { return value }
      let v = try parseList(text, as: T.self, name: name)
      guard v.count == n else {
        throw UsageError(
          "\(name) has \(v.count) values; the source is \(n)-D (\(whole.box.shape.map(String.init).joined(separator: "×")))"
        )
      }
      return v
    }
    let defaultTile = n == 3 ? [32, 128, 128] : [128, 128]
    let shape: [Int] = try list(tileShape, "--tile-shape", default: defaultTile)
    let gridValues: [Int] = try list(grid, "--grid", default: n == 3 ? [1, 2, 2] : [2, 2])
    let sourceVoxel: [Double] = try list(sourceVoxelSize, "--source-voxel-size", default: Array(repeating: 1, count: n))
    let voxel: [Double] = try list(voxelSize, "--voxel-size", default: sourceVoxel)
    let chunkShape: [Int]? = try chunks.map { try list($0, "--chunks", default: []) }
    guard shape.allSatisfy({ $0 > 0 }), gridValues.allSatisfy({ $0 > 0 }), chunkShape?.allSatisfy({ $0 > 0 }) ?? true
    else { throw UsageError("--tile-shape, --grid and --chunks must be positive") }
    guard (sourceVoxel + voxel).allSatisfy({ $0 > 0 && $0.isFinite }) else {
      throw UsageError("--voxel-size and --source-voxel-size must be positive")
    }
    var cropBox = whole.box
    if let crop {
      let parts = crop.split(separator: ",", omittingEmptySubsequences: false)
      let ranges = parts.map { $0.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) } }
      guard parts.count == n, ranges.allSatisfy({ $0.count == 2 && $0[0] != nil && $0[1] != nil }) else {
        throw UsageError("--crop: expected \(n) ranges lo:hi separated by commas, got \"\(crop)\"")
      }
      cropBox = Box(lower: ranges.map { $0[0]! }, upper: ranges.map { $0[1]! })
      guard !cropBox.isEmpty, cropBox.intersection(whole.box) == cropBox else {
        throw UsageError("--crop \(crop) is not a non-empty box inside the source (\(whole.box.shape))")
      }
    }
    let values = whole.converted(to: Double.self).extracting(cropBox)
    let acquisition: SourceAcquisition
    do {
      acquisition = try SourceAcquisition(
        source: DoubleVolume(shape: cropBox.shape, values: values.storage), sourceElementType: whole.elementType,
        sourceVoxelSize: sourceVoxel, tileShape: shape, grid: gridValues, overlap: overlap, voxelSize: voxel,
        jitter: jitter, subpixel: subpixel,
        noise: noise == .poisson ? .poisson : noise == .gaussian ? .gaussian(sigma: noiseSigma) : .none, seed: seed)
    } catch let error as SourceAcquisition.ParameterError {
      throw UsageError("\(spec): \(error.description)")
    }
    guard levels >= 1 else { throw UsageError("--levels must be at least 1") }
    let xml = format == .bdv ? (output as NSString).appendingPathComponent("dataset.xml") : nil
    try acquisition.write(
      to: output, bdvXML: xml,
      subsampling: Pyramid.factors(levels: levels, voxelSize: voxel).map { $0.count == 2 ? [1] + $0 : $0 },
      deflateLevel: deflate > 0 ? deflate : nil, chunkShape: chunkShape,
      provenance: SimulationProvenance(
        source: spec, sourceShape: whole.box.shape, crop: cropBox, sourceElementType: whole.elementType))
    print(
      "wrote \(acquisition.tileCount) tiles of \(shape.map(String.init).joined(separator: "×")) uint16 cut from "
        + "\(spec) (\(whole.elementType), crop \(cropBox.shape.map(String.init).joined(separator: "×"))) to "
        + "\(xml ?? output); truth in \((output as NSString).appendingPathComponent("truth.json"))")
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

/// A box typed as `lo:hi` per axis, comma-separated (`0:16,100:228,0:128`), slowest axis first.
func parseBox(_ text: String, name: String) throws -> Box {
  let ranges = text.split(separator: ",").map {
    $0.split(separator: ":").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
  }
  guard !ranges.isEmpty, ranges.allSatisfy({ $0.count == 2 }) else {
    throw UsageError("\(name) needs ranges lo:hi per axis, comma-separated, got \"\(text)\"")
  }
  return Box(lower: ranges.map { $0[0] }, upper: ranges.map { $0[1] })
}
