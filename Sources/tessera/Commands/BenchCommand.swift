import ArgumentParser
import Foundation
import Tessera

struct BenchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bench",
    abstract: "Measure Tessera's throughput on this machine (release builds only).",
    discussion: """
      Examples:
        tessera bench                                   (2D versus 3D, gzip chunked HDF5, 1 and 2 threads)
        tessera bench --input-layout bdv-blocks --json  (BigDataViewer's small blocks, machine-readable)
        tessera bench read tiles/*.h5                    (H5Dread against Tessera's chunk reader)
        tessera bench copy tiles/*.h5 --threads 8        (the copy limit fusion is compared with)
      """,
    subcommands: [ThroughputBench.self, ReadBench.self, CopyBench.self], defaultSubcommand: ThroughputBench.self)
}

/// Reading compressed tiles: HDF5's own H5Dread (filters decoded under HDF5's global lock) against
/// Tessera's chunk reader (raw chunks under the lock, inflate in parallel outside it).
struct ReadBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "read",
    abstract: "Read every view of a gzip-compressed acquisition with H5Dread and with Tessera's parallel chunk reader.",
    discussion: """
      Without DATASET, writes a synthetic acquisition (--tile-shape, --grid, 2 channels, gzip level 1) to a \
      temporary directory first. Reports decoded MiB/s for each reader and their ratio, best of --repetitions runs.

      Examples:
        tessera bench read
        tessera bench read project.xml --repetitions 5
      """)

  @Argument(help: "A dataset to read (default: a synthetic one).")
  var dataset: [String] = []

  @Option(help: "Synthetic tile shape.")
  var tileShape: String = "64,256,256"

  @Option(help: "Synthetic grid.")
  var grid: String = "1,2,2"

  @Option(help: "Repetitions; the best is reported.")
  var repetitions: Int = 3

  func run() throws {
    var paths = dataset
    var scratch: URL?
    if paths.isEmpty {
      let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-bench-\(getpid())")
      scratch = dir
      let a = SyntheticAcquisition(
        tileShape: try parseList(tileShape, as: Int.self, name: "--tile-shape"),
        grid: try parseList(grid, as: Int.self, name: "--grid"), channels: 2, jitter: 2, seed: 3)
      paths = try a.writeHDF5Tiles(to: dir.path, deflateLevel: 1).tiles
    }
    defer { scratch.map { try? FileManager.default.removeItem(at: $0) } }
    let (data, _) = try DatasetLoader.open(paths)
    // Each view's level-0 HDF5 dataset, opened again where the dataset says it is stored.
    var files: [String: HDF5File] = [:]
    let readers: [HDF5Dataset] = try data.views.map { view in
      guard let location = view.reader.location else {
        throw UsageError("the read benchmark needs views stored in HDF5 (\(view.name) is not)")
      }
      if files[location.file] == nil { files[location.file] = try HDF5File(path: location.file) }
      return try files[location.file]!.dataset(location.dataset)
    }
    let bytes = data.views.reduce(0) { $0 + $1.bounds.volume * $1.elementType.byteCount }
    let filters = Set(readers.flatMap { $0.filters.map(\.id) }).sorted()
    print(
      "\(data.views.count) views, \(String(format: "%.1f", Double(bytes) / 1_048_576)) MiB decoded, "
        + "HDF5 filters \(filters), \(ProcessInfo.processInfo.activeProcessorCount) cores")

    func time(_ body: () throws -> Void) rethrows -> Double {
      var best = Double.infinity
      for _ in 0..<max(1, repetitions) {
        let start = ContinuousClock.now
        try body()
        best = min(best, StageClock.seconds(since: start))
      }
      return best
    }
    var checksums: [Int: Int] = [:]
    func checksum(_ b: AnyVolumeBuffer) -> Int { b.withUnsafeBytes { $0.reduce(0) { $0 &+ Int($1) } } }
    let h5read = try time {
      for (i, d) in readers.enumerated() {
        checksums[i] = checksum(try d.read(d.bounds))
      }
    }
    let tessera = try time {
      for (i, d) in readers.enumerated() {
        let c = checksum(try d.readBlock(d.bounds))
        guard checksums[i] == c else {
          throw CommandFailure(description: "internal error: the readers disagree on view \(i)", kind: .internal)
        }
      }
    }
    let mib = Double(bytes) / 1_048_576
    print(String(format: "H5Dread (HDF5 decodes under its lock): %8.1f MiB/s  (%.3f s)", mib / h5read, h5read))
    print(String(format: "Tessera chunk reader (parallel inflate): %6.1f MiB/s  (%.3f s)", mib / tessera, tessera))
    print(String(format: "ratio: %.2f×", h5read / tessera))
    print("zlib streams inflated with \(Inflater.choice)")
  }
}

/// The copy limit: read every view and write it as Zarr with the fusion's output codec and chunks,
/// no resampling. Fusion is compared with this.
struct CopyBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "copy",
    abstract: "Read every view and write it to Zarr with the output codec and chunks, without resampling.",
    discussion: """
      The upper bound for fusion throughput on this machine: the same reads, the same encoding and writes, \
      nothing else. Reports written Mvoxel/s.

      Examples:
        tessera bench copy tiles/*.h5
        tessera bench copy project.xml --codec zstd --threads 4
      """)

  @Argument(help: "A .xml, a .json manifest, or HDF5 tile files.")
  var dataset: [String]

  @OptionGroup var zarr: ZarrOutputOptions

  @Option(help: "Threads.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  @Option(help: "Scratch directory for the copies (removed afterwards).")
  var scratch: String = FileManager.default.temporaryDirectory.path

  func run() throws {
    let (data, _) = try DatasetLoader.open(dataset)
    let dir = (scratch as NSString).appendingPathComponent("tessera-copy-\(getpid())")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let rank = data.rank
    let chunks = try zarr.chunkShape(rank: rank, default: rank == 3 ? [64, 128, 128] : [1024, 1024])
    var work: [(ZarrArray, View, [Int])] = []
    for (i, v) in data.views.enumerated() {
      let array = try ZarrArray.create(
        at: dir + "/\(i)",
        metadata: ZarrArrayMetadata(
          format: try zarr.format, shape: v.shape, chunkShape: zip(chunks, v.shape).map { min($0, $1) },
          dataType: v.elementType, compressor: zarr.compressor))
      for block in array.grid.allChunks { work.append((array, v, block)) }
    }
    let start = ContinuousClock.now
    let items = work
    // Decoding as fusion does: a block's chunks on its worker's thread while the blocks fill them.
    let nested = Parallel.nestedThreads(threads, items: items.count)
    try Parallel.forEach(items.count, threads: threads, nested: nested) { i in
      let (array, view, block) = items[i]
      try array.writeBlock(block, try view.read(array.grid.box(ofChunk: block)))
    }
    let seconds = StageClock.seconds(since: start)
    let voxels = data.views.reduce(0) { $0 + $1.bounds.volume }
    print(
      String(
        format: "copied %d voxels (%d views) in %.2f s: %.1f Mvoxel/s (%@, %d threads)", voxels, data.views.count,
        seconds, Double(voxels) / seconds / 1e6, "\(zarr.compressor)", threads))
  }
}
