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

      On a cluster, the pairs can be split over processes: each run with --pairs-out DIR measures a share of \
      them, balanced by overlap size, and writes it to DIR/pairs-00002-of-00008.json (for part 2 of 8). The \
      part is --part i/N (0-based), or the rank and size an MPI launcher, a SLURM array or step, a Kubernetes \
      Indexed Job or an AWS Batch array gives (with --part-count N where the launcher gives only the index). \
      Then --solve DIR checks that every part is there and runs the global solve, writing exactly what one \
      process would; the dataset defaults to the one the parts measured, and so do --channel, --max-shift, \
      --min-overlap and --downsample. Without --pairs-out, a launcher's environment is ignored and one process \
      does the whole job.

      Examples:
        tessera refine-positions project.xml -o project-refined.xml --report links.json
        tessera refine-positions tiles/*.h5 -o refined.json --max-shift 20 --channel 0
        mpirun -np 8 tessera refine-positions p.xml --pairs-out pairs
        sbatch --array=0-7 --wrap 'tessera refine-positions p.xml --pairs-out pairs'
        tessera refine-positions p.xml --part 2/8 --pairs-out pairs
        tessera refine-positions --solve pairs -o p-refined.xml --report links.json
      """)

  @Argument(help: "A .xml, a .json manifest, or HDF5 tile files (with --solve: default the parts' dataset).")
  var dataset: [String] = []

  @Option(name: .shortAndLong, help: "Refined dataset: .xml for a BigStitcher project, .json otherwise.")
  var output: String?

  @Option(help: "Write a JSON report of every link and tile here.")
  var report: String?

  @Option(
    help: ArgumentHelp(
      "Channel to register, or 'all' to average every channel of a tile (default: the first channel).",
      discussion: "One channel registers as accurately as the average on the benchmark data and reads half as much."))
  var channel: String?

  @Option(help: "Largest correction, voxels (one value, or one per axis; default: 10).")
  var maxShift: String?

  @Option(help: "Reject links whose verified correlation is below this.")
  var minCorrelation: Double = 0.6

  @Option(help: "Skip pairs overlapping by fewer voxels on any axis (default: 8).")
  var minOverlap: Double?

  @Option(help: "Block-average overlaps by this factor in y,x before correlating (default: 1).")
  var downsample: Int?

  @Option(help: "Threads.")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  @Option(help: "Memory for decoded input chunks, e.g. 2G (default: a quarter of RAM, at most 4 GiB).")
  var memory: String?

  @Option(
    help: ArgumentHelp(
      "Measure part i of N of the pairs (0-based, e.g. 2/8) and write them to --pairs-out (default: the launcher's rank and size).",
      valueName: "i/N"))
  var part: String?

  @Option(
    help: ArgumentHelp(
      "Number of parts, where the launcher gives only this process's index (SLURM arrays, Kubernetes, AWS Batch).",
      valueName: "N"))
  var partCount: Int?

  @Option(
    help: ArgumentHelp(
      "Write this process's share of the pairwise measurements to a pair file in this folder, for --solve; no -o.",
      valueName: "dir"))
  var pairsOut: String?

  @Option(
    help: ArgumentHelp(
      "Solve from every part's pair file in this folder and write -o (and --report) as a single process would.",
      valueName: "dir"))
  var solve: String?

  @Flag(help: "Print the pairs that would be registered (with --pairs-out: this part's) and exit.")
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
    Parallel.limitThreads(to: threads)  // every pool, the HDF5 decoders' included
    let start = Date()  // the summary's time covers opening, reading, measuring, solving and writing
    try checkModes()
    if let solve { return try runSolve(from: solve, start: start) }
    guard !dataset.isEmpty else {
      throw UsageError("give the dataset: a .xml, a .json manifest or HDF5 tile files (or --solve DIR)")
    }
    let (data, _) = try DatasetLoader.open(dataset)
    var options = try registrationOptions(for: data, recorded: nil)
    if let pairsOut { return try runPart(data, options: options, to: pairsOut, start: start) }
    if dryRun {
      let pairs = TileRegistration.pairs(data, options: options)
      print("\(pairs.count) pairs to register (\(data.tiles.count) tiles):")
      for p in pairs { print(Self.describe(p)) }
      return
    }
    let (output, report) = try checkOutputs(data)
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
    try write(refined, result, of: data, options: options, output: output, report: report, start: start)
  }

  /// Refuses combinations of the modes (one process, a part, the solve) that would do less than
  /// asked or something else.
  func checkModes() throws {
    if solve != nil {
      if part != nil || partCount != nil || pairsOut != nil {
        throw UsageError(
          "--solve combines the parts' pair files; --part, --part-count and --pairs-out belong to the parts")
      }
      if dryRun { throw UsageError("--dry-run lists the pairs of a dataset; drop --solve") }
    } else if pairsOut == nil {
      // A launcher's environment alone is ignored (one process does the whole job), but an
      // explicit part without somewhere to put it would silently refine from a share of the pairs.
      if part != nil || partCount != nil {
        throw UsageError(
          "\(part != nil ? "--part" : "--part-count") needs --pairs-out DIR: a part measures a share of the pairs, "
            + "which --solve DIR then turns into refined positions")
      }
    } else if output != nil || report != nil {
      throw UsageError("-o and --report are written by --solve DIR; a part writes only its pair file to --pairs-out")
    }
  }

  /// The registration options from the command line; with `recorded` (the parts' options, for
  /// --solve), those of the measurement options not given take the recorded values.
  func registrationOptions(for data: Dataset, recorded: PairFile.MeasurementOptions?) throws -> RegistrationOptions {
    var options = RegistrationOptions(maxShift: Array(repeating: 10, count: data.rank))
    if let recorded { options = recorded.applied(to: options) }
    if let maxShift {
      let values = try parseList(maxShift, as: Double.self, name: "--max-shift")
      guard values.count == 1 || values.count == data.rank, values.allSatisfy({ $0 > 0 }) else {
        throw UsageError("--max-shift needs 1 or \(data.rank) positive values")
      }
      options.maxShift = values.count == 1 ? Array(repeating: values[0], count: data.rank) : values
    }
    if let downsample {
      guard downsample >= 1 else { throw UsageError("--downsample must be at least 1") }
      options.downsample = downsample
    }
    if let minOverlap { options.minOverlap = minOverlap }
    // One channel by default: on every benchmark case it registers as accurately as the average
    // of all channels, and reads and decodes a fraction of the data (README, Registration).
    switch channel {
    case nil: if recorded == nil { options.channel = data.channels.min() }
    case "all"?: options.channel = nil
    case let text?:
      guard let c = Int(text), data.channels.contains(c) else {
        throw UsageError("--channel: no channel \(text); the dataset has channels \(data.channels) (or give 'all')")
      }
      options.channel = c
    }
    options.minCorrelation = minCorrelation
    options.threads = threads
    if let memory { options.memoryBytes = try parseBytes(memory) }
    return options
  }

  /// The refined dataset's path and the report's, checked before any work: the results are
  /// written at the end, so find out now, not after the registration, that they cannot be.
  func checkOutputs(_ data: Dataset) throws -> (output: String, report: String?) {
    guard let output else { throw UsageError("give -o OUTPUT for the refined dataset (or --dry-run)") }
    if FileManager.default.fileExists(atPath: output) && !overwrite {
      throw UsageError("\(output) exists; pass --overwrite to replace it")
    }
    if URL(fileURLWithPath: output).standardizedFileURL == URL(fileURLWithPath: data.path).standardizedFileURL {
      throw UsageError("refusing to overwrite the input \(data.path); choose another -o")
    }
    try ZarrStore.checkWritable(fileAt: output)
    if let report { try ZarrStore.checkWritable(fileAt: report) }
    return (output, report)
  }

  /// Writes the refined dataset and the report, and prints the summary (one process and --solve
  /// alike).
  func write(
    _ refined: Dataset, _ result: RegistrationReport, of data: Dataset, options: RegistrationOptions, output: String,
    report: String?, start: Date
  ) throws {
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
    if let stageTimes, let clock = options.stageClock {
      try AtomicFile.write(
        clock.json(extra: [
          "threads": threads, "job_seconds": Date().timeIntervalSince(start), "pairs": result.links.count,
          "tiles": data.tiles.count,
          "input_voxels": data.views.filter { $0.channel == (options.channel ?? $0.channel) }
            .reduce(0) { $0 + $1.bounds.volume },
        ]), to: stageTimes)
    }
    if !result.weaklyLinkedTiles.isEmpty && !json {
      print(
        "tiles resting on weak links only (uncertainty above \(options.weakUncertainty) voxel): "
          + result.weaklyLinkedTiles.map(String.init).joined(separator: ", "))
    }
  }

  /// One line of --dry-run's list.
  static func describe(_ p: TileOverlap) -> String {
    "  tile \(p.tiles[0]) – tile \(p.tiles[1]): overlap \(p.extentVoxels.map { String(format: "%.1f", $0) }.joined(separator: " × ")) voxels"
  }
}
