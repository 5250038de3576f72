import ArgumentParser
import CMalloc
import Foundation
import Tessera

struct RefinePositionsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "refine-positions",
    abstract:
      "Correct stage positions: phase correlation on tile overlaps, then a global solve that rejects bad links.",
    discussion: """
      Every pair of tiles that overlap by at least --min-overlap voxels is registered by FFT phase correlation \
      on the overlap (peaks verified by normalised cross-correlation, subpixel refinement with a per-axis \
      uncertainty); a least-squares solve weighted by those uncertainties then finds one translation per tile, \
      dropping links, the worst first, while they disagree with the path through the other links by over 4 \
      standard deviations and 0.5 voxel (never disconnecting a tile). Channels of a tile move together. The result is written in \
      the dataset's own format: a BigStitcher XML gets a "Tessera refine-positions" ViewTransform in front; \
      manifests and HDF5 tiles get a new JSON manifest.

      Examples:
        tessera refine-positions project.xml -o project-refined.xml --report links.json
        tessera refine-positions tiles/*.h5 -o refined.json --max-shift 20 --channel 0
      """)

  @Argument(help: "A .xml, a .json manifest, or HDF5 tile files.")
  var dataset: [String]

  @Option(name: .shortAndLong, help: "Refined dataset: .xml for a BigStitcher project, .json otherwise.")
  var output: String?

  @Option(help: "Write a JSON report of every link and tile here.")
  var report: String?

  @Option(
    help: ArgumentHelp(
      "Channel to register, or 'all' to average every channel of a tile (default: the first channel).",
      discussion: "One channel registers as accurately as the average on the benchmark data and reads half as much."))
  var channel: String?

  @Option(help: "Largest correction, voxels (one value, or one per axis).")
  var maxShift: String = "10"

  @Option(help: "Reject links whose verified correlation is below this.")
  var minCorrelation: Double = 0.6

  @Option(help: "Skip pairs overlapping by fewer voxels on any axis.")
  var minOverlap: Double = 8

  @Option(help: "Block-average overlaps by this factor in y,x before correlating.")
  var downsample: Int = 1

  @Option(help: "Threads.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  @Option(help: "Memory for decoded input chunks, e.g. 2G (default: a quarter of RAM, at most 4 GiB).")
  var memory: String?

  @Flag(help: "Print the pairs that would be registered and exit.")
  var dryRun = false

  @Flag(help: "Replace an existing output file.")
  var overwrite = false

  @Flag(
    help:
      "Print the end-of-run summary as one JSON object (accepted and rejected links, residuals, weak tiles, seconds, output) instead of text."
  )
  var json = false

  @Flag(name: .shortAndLong, help: "No progress output.")
  var quiet = false

  @Option(help: ArgumentHelp("Write the time of each stage here, as JSON (for tessera bench).", visibility: .hidden))
  var stageTimes: String?

  func run() throws {
    // Each pair allocates and frees regions and FFT buffers of a few MiB; glibc maps such blocks
    // afresh and returns freed memory to the system, so every pair pays its page faults again.
    // Keeping them in the heap: 28k instead of 37k page faults on the 3×3 gzip case, peak memory
    // unchanged.
    _ = tessera_keep_heap(256 << 20, 1 << 30)
    Interruption.install()  // SIGINT/SIGTERM: stop between pairs, write nothing
    let start = Date()  // the summary's time covers opening, reading, measuring, solving and writing
    let (data, _) = try DatasetLoader.open(dataset)
    let values = try parseList(maxShift, as: Double.self, name: "--max-shift")
    guard values.count == 1 || values.count == data.rank, values.allSatisfy({ $0 > 0 }) else {
      throw UsageError("--max-shift needs 1 or \(data.rank) positive values")
    }
    guard downsample >= 1 else { throw UsageError("--downsample must be at least 1") }
    // One channel by default: on every benchmark case it registers as accurately as the average
    // of all channels, and reads and decodes a fraction of the data (README, Registration).
    let registered: Int?
    switch channel {
    case nil: registered = data.channels.min()
    case "all"?: registered = nil
    case let text?:
      guard let c = Int(text), data.channels.contains(c) else {
        throw UsageError("--channel: no channel \(text); the dataset has channels \(data.channels) (or give 'all')")
      }
      registered = c
    }
    var options = RegistrationOptions(
      maxShift: values.count == 1 ? Array(repeating: values[0], count: data.rank) : values)
    options.channel = registered
    options.minCorrelation = minCorrelation
    options.minOverlap = minOverlap
    options.downsample = downsample
    options.threads = threads
    if let memory { options.memoryBytes = try parseBytes(memory) }
    let pairs = TileRegistration.pairs(data, options: options)
    if dryRun {
      print("\(pairs.count) pairs to register (\(data.tiles.count) tiles):")
      for p in pairs {
        print(
          "  tile \(p.tiles[0]) – tile \(p.tiles[1]): overlap \(p.extentVoxels.map { String(format: "%.1f", $0) }.joined(separator: " × ")) voxels"
        )
      }
      return
    }
    guard let output else { throw UsageError("give -o OUTPUT for the refined dataset (or --dry-run)") }
    if FileManager.default.fileExists(atPath: output) && !overwrite {
      throw UsageError("\(output) exists; pass --overwrite to replace it")
    }
    if URL(fileURLWithPath: output).standardizedFileURL == URL(fileURLWithPath: data.path).standardizedFileURL {
      throw UsageError("refusing to overwrite the input \(data.path); choose another -o")
    }
    // The results are written at the end: find out now, not after the registration, that they cannot be.
    try ZarrStore.checkWritable(fileAt: output)
    if let report { try ZarrStore.checkWritable(fileAt: report) }
    let quiet = self.quiet
    let clock = stageTimes.map { _ in StageClock() }
    options.stageClock = clock
    clock?.add(.plan, seconds: Date().timeIntervalSince(start))
    let refined: Dataset
    let result: RegistrationReport
    let progress = ProgressLine(quiet: quiet)
    do {
      (refined, result) = try RefinePositions.run(data, options: options) { done, total in
        progress.show(terminal: "pairs \(done)/\(total)", log: "pairs \(done)/\(total)", last: done == total)
      }
    } catch {
      progress.finish()  // the progress line ends first
      throw error
    }
    progress.finish()
    try DatasetLoader.save(refined, to: output, transformName: "Tessera refine-positions")
    if let report {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      try AtomicFile.write(try encoder.encode(result), to: report)
    }
    let seconds = Date().timeIntervalSince(start)
    if json {
      print(
        try jsonLine([
          "output": output, "report": report ?? NSNull(), "pairs": result.links.count, "accepted": result.accepted,
          "rejected": result.rejected, "maxResidualVoxels": result.maxResidualVoxels,
          "rmsResidualVoxels": result.rmsResidualVoxels, "weaklyLinkedTiles": result.weaklyLinkedTiles,
          "tiles": data.tiles.count, "seconds": seconds,
        ]))
    } else {
      print(
        String(
          format: "%d links accepted, %d rejected; residual max %.2f, RMS %.2f voxels; %d pairs in %.2f s → %@",
          result.accepted, result.rejected, result.maxResidualVoxels, result.rmsResidualVoxels, result.links.count,
          seconds, output))
    }
    if let stageTimes, let clock {
      try AtomicFile.write(
        clock.json(extra: [
          "threads": threads, "job_seconds": Date().timeIntervalSince(start), "pairs": result.links.count,
          "tiles": data.tiles.count,
          "input_voxels": data.views.filter { $0.channel == (registered ?? $0.channel) }
            .reduce(0) { $0 + $1.bounds.volume },
        ]), to: stageTimes)
    }
    if !result.weaklyLinkedTiles.isEmpty && !json {
      print(
        "tiles resting on weak links only (uncertainty above \(options.weakUncertainty) voxel): "
          + result.weaklyLinkedTiles.map(String.init).joined(separator: ", "))
    }
  }
}
