import ArgumentParser
import Foundation
import Tessera

struct ConvertCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert",
    abstract: "Convert between NumPy .npy and Zarr (plain arrays or OME-Zarr images).",
    discussion: """
      .npy -> .zarr writes a Zarr array with the chosen format, codec, chunks and shards; with --ome the array \
      (c,z,y,x or c,y,x) becomes an OME-Zarr image with a pyramid. .zarr -> .npy reads any supported Zarr array \
      (v2 or v3, zstd/blosc/gzip/zlib, sharded) exactly; give the array's directory (e.g. image.zarr/0).

      Examples:
        tessera convert volume.npy volume.zarr --codec blosc-lz4 --chunks 64,64,64
        tessera convert stack.npy image.ome.zarr --ome --voxel-size 2,0.4,0.4 --pyramid 3
        tessera convert image.ome.zarr/1 level1.npy
      """)

  @Argument(help: "Input .npy or Zarr array directory.")
  var input: String

  @Argument(help: "Output Zarr directory or .npy file.")
  var output: String

  @OptionGroup var zarr: ZarrOutputOptions

  @Flag(help: "Write an OME-Zarr image (first axis = channels).")
  var ome = false

  @Option(help: "With --ome: voxel size in µm per spatial axis.")
  var voxelSize: String?

  @Option(help: "With --ome: resolution levels.")
  var pyramid: Int = 1

  @Flag(help: "Replace an existing output.")
  var overwrite = false

  @Option(help: "Threads for encoding.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  func run() throws {
    Parallel.limitThreads(to: threads)
    if output.hasSuffix(".npy") {
      let array = try ZarrArray.open(input)
      let data = try array.read(array.grid.bounds)
      if FileManager.default.fileExists(atPath: output) && !overwrite {
        throw UsageError("\(output) exists; pass --overwrite to replace it")
      }
      try NumpyFile.write(data, to: output)
      print("wrote \(data.box.shape) \(data.elementType) to \(output)")
      return
    }
    let data = try NumpyFile.read(input)
    let shape = data.box.shape
    let format = try zarr.format
    if ome {
      guard shape.count == 3 || shape.count == 4 else {
        throw UsageError("--ome needs a c,y,x or c,z,y,x array, got shape \(shape)")
      }
      let spatial = Array(shape.dropFirst())
      let voxel =
        try voxelSize.map { try parseList($0, as: Double.self, name: "--voxel-size") }
        ?? Array(repeating: 1, count: spatial.count)
      let palette = ["00FF00", "FF00FF", "00FFFF", "FF0000", "0000FF", "FFFF00"]
      let spec = OMEZarrImageSpec(
        format: format, shape: spatial, voxelSize: voxel,
        channels: (0..<shape[0]).map { .init(label: "channel \($0)", color: palette[$0 % palette.count]) },
        dataType: data.elementType,
        chunkShape: try zarr.chunkShape(rank: spatial.count, default: spatial.map { min($0, 128) }),
        shardShape: try zarr.shardShape(rank: spatial.count), compressor: zarr.compressor, levels: pyramid,
        name: (input as NSString).lastPathComponent)
      let image = try OMEZarrImage.create(at: output, spec: spec, mode: overwrite ? .overwrite : .new)
      let blocks = image.levels[0].grid.allChunks
      try parallel(blocks.count) { try image.writeBlock(level: 0, blocks[$0], data) }
      try image.buildPyramid(threads: threads)
      try image.finish(provenance: [
        "version": Tessera.version, "command": CommandLine.arguments.joined(separator: " "),
      ])
      print("wrote OME-Zarr \(spec.axisNames.joined()) \(shape) \(data.elementType), \(pyramid) level(s), to \(output)")
      return
    }
    let chunks = try zarr.chunkShape(rank: shape.count, default: shape.map { min($0, 64) })
    let shard = try zarr.shardShape(rank: shape.count)
    if FileManager.default.fileExists(atPath: output) {
      guard overwrite else { throw UsageError("\(output) exists; pass --overwrite to replace it") }
      try FileManager.default.removeItem(atPath: output)
    }
    let array = try ZarrArray.create(
      at: output,
      metadata: ZarrArrayMetadata(
        format: format, shape: shape, chunkShape: shard ?? chunks, innerChunkShape: shard == nil ? nil : chunks,
        dataType: data.elementType, compressor: zarr.compressor))
    let blocks = array.grid.allChunks
    try parallel(blocks.count) { try array.writeBlock(blocks[$0], data) }
    print("wrote Zarr v\(format.rawValue) \(shape) \(data.elementType) (\(zarr.compressor)) to \(output)")
  }

  func parallel(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    try Parallel.forEach(count, threads: threads, body)
  }
}
