import ArgumentParser
import CMalloc
import Foundation
import Tessera

struct FuseCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "fuse",
    abstract: "Fuse all tiles into one OME-Zarr image, chunk by chunk, in parallel, with bounded memory.",
    discussion: """
      DATASET is a BigStitcher XML, a tile manifest, or HDF5 tile files (as for `tessera info`). Each output \
      channel fuses the views of one input channel; voxels no view covers are 0. The output is written \
      atomically chunk by chunk; an interrupted run continues with --resume and gives the same bytes. One \
      process writes an output (or one part of it) at a time (a lock file beside it; a second writer exits with status 75), and \
      the free space is checked first (a warning, or a refusal with --strict).

      Examples:
        tessera fuse project.xml -o fused.ome.zarr
        tessera fuse tiles/*.h5 -o fused.ome.zarr --blend max --codec zstd --threads 8 --memory 8G
        tessera fuse project.xml -o fused.ome.zarr --dry-run
        mpirun -np 8 tessera fuse project.xml -o fused.ome.zarr      (8 processes, one output)
        tessera fuse project.xml -o fused.ome.zarr --part 2/8 --resume  (one part by hand)
        tessera fuse project.xml -o fused.ome.zarr --dry-run --part-count 256  (the split)

      With parts (--part, or a launcher's rank and size), each process fills a share of the chunks \
      (shards with --shard), balanced by predicted work, and the last one to finish builds the pyramid \
      and metadata; `tessera verify` checks the result and `tessera finalize` finishes it by hand.
      """)

  @Argument(help: "A .xml, a .json manifest, or HDF5 tile files.")
  var dataset: [String]

  @Option(name: .shortAndLong, help: "Output OME-Zarr directory.")
  var output: String

  @OptionGroup var zarr: ZarrOutputOptions

  @Option(help: "Resolution levels (default: enough to reach an overview of ≤ 512 voxels in y and x).")
  var pyramid: Int?

  @Option(help: "Channels to fuse, e.g. 0,2 (default: all).")
  var channels: String?

  @Option(help: "World box to fuse in µm, lo:hi per axis (z,y,x), e.g. 0:50,0:800,0:800 (default: all views).")
  var bbox: String?

  @Option(help: "Output voxel size in µm per axis (default: the finest input voxel size).")
  var voxelSize: String?

  @Option(help: "Interpolation: linear or nearest.")
  var interpolation: Interpolation = .linear

  @Option(help: "Blending: linear (cosine feathering), mean, max or first (lowest tile wins).")
  var blend: BlendMode = .linear

  @Option(help: "Feathering width in µm (default: the actual overlap on each axis).")
  var blendWidth: Double?

  @Option(help: "Output type: uint8, uint16, float32, … (default: the input type).")
  var dtype: ElementType?

  @Option(help: "Threads (default: all cores).")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  @Option(help: "Memory budget, e.g. 4G or 512M (default: a quarter of RAM, at most 16G).")
  var memory: String?

  @Option(
    help: ArgumentHelp(
      "Fill only part i of N (0-based) of the output, e.g. 2/8; other processes fill the others.",
      discussion: "Without it, the part comes from the launcher (mpirun, srun, a SLURM array, …) when there is one."))
  var part: String?

  @Option(
    help:
      "Number of parts, for launchers that give only an index (SLURM arrays without a count, Kubernetes, AWS Batch); with --dry-run, show the split."
  )
  var partCount: Int?

  @Flag(
    inversion: .prefixedNo,
    help:
      "With parts: the last part to finish builds the pyramid and metadata (--no-finalize leaves it to tessera finalize)."
  )
  var finalize = true

  @Flag(help: "Replace an existing output.")
  var overwrite = false

  @Flag(help: "Continue an interrupted fusion into the same output (same options).")
  var resume = false

  @Flag(help: "Print the plan (chunks, views per chunk, bytes, memory, disk) and exit.")
  var dryRun = false

  @Flag(help: "Refuse to start when a check only warns (less free space than the output takes uncompressed).")
  var strict = false

  @Flag(
    help:
      "Print the end-of-run summary as one JSON object (voxels, seconds of the fusion step and of the whole job, pyramid, chunks, bytes read, peak memory, output) instead of text."
  )
  var json = false

  @Flag(name: .shortAndLong, help: "No progress output.")
  var quiet = false

  @Option(help: ArgumentHelp("Write the time of each stage here, as JSON (for tessera bench).", visibility: .hidden))
  var stageTimes: String?

  func validate() throws {
    if overwrite && resume { throw ValidationError("--overwrite and --resume exclude each other") }
    if threads < 1 { throw ValidationError("--threads must be at least 1") }
    if let pyramid, pyramid < 1 { throw ValidationError("--pyramid must be at least 1") }
    if let partCount, partCount < 1 { throw ValidationError("--part-count must be at least 1") }
  }

  func run() throws {
    let started = ContinuousClock.now
    // glibc maps blocks over its moving threshold afresh and returns freed memory at the heap's
    // top beyond 2× that, so decoded input blocks and output chunks (0.5–2 MiB) keep paying page
    // faults. Kept in the heap up to 4 MiB, trimmed beyond 64 MiB: 20k instead of 31k page faults
    // and 3–5 % less wall time on the 3×3 gzip case, peak memory +6 % (98 → 105 MiB).
    _ = tessera_keep_heap(4 << 20, 64 << 20)
    Interruption.install()  // SIGINT/SIGTERM: stop at a chunk boundary, resumable
    Parallel.limitThreads(to: threads)  // every pool, the HDF5 decoders' included
    // The part: --part, or the launcher's rank and size (a dry run only shows the split).
    let resolved = try Part.resolve(
      part: part, count: dryRun ? nil : partCount, environment: dryRun ? [:] : ProcessInfo.processInfo.environment)
    if resolved != nil && overwrite {
      throw UsageError("--overwrite cannot be used with parts (another part may be writing); remove \(output) first")
    }
    let (data, warnings) = try DatasetLoader.open(dataset)
    for w in warnings where !quiet { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
    var options = FusionOptions()
    options.format = try zarr.format
    options.compressor = zarr.compressor
    let rank = data.rank
    if zarr.chunks != nil { options.chunkShape = try zarr.chunkShape(rank: rank, default: []) }
    options.shardShape = try zarr.shardShape(rank: rank)
    options.pyramidLevels = pyramid
    options.channels = try channels.map { try parseList($0, as: Int.self, name: "--channels") }
    if let bbox {
      let ranges = bbox.split(separator: ",").map { $0.split(separator: ":").compactMap { Double($0) } }
      guard ranges.count == rank, ranges.allSatisfy({ $0.count == 2 }) else {
        throw UsageError("--bbox needs \(rank) ranges lo:hi in µm, got \"\(bbox)\"")
      }
      options.bbox = (ranges.map { $0[0] }, ranges.map { $0[1] })
    }
    options.voxelSize = try voxelSize.map { try parseList($0, as: Double.self, name: "--voxel-size") }
    options.interpolation = interpolation
    options.blend = blend
    options.blendWidth = blendWidth
    options.outputType = dtype
    options.threads = threads
    if let memory { options.memoryBytes = try parseBytes(memory) }
    options.mode = overwrite ? .overwrite : resume ? .resume : .new
    options.imageName = FusionOptions.imageName(output: output)
    let clock = stageTimes.map { _ in StageClock() }
    options.stageClock = clock
    let job = try FusionJob(dataset: data, options: options)
    let disk = DiskCheck(
      needed: job.uncompressedOutputBytes, free: ZarrStore.freeBytes(near: output),
      existing: options.mode == .new ? 0 : DiskCheck.bytes(under: output), output: output)
    let count = resolved?.part.count ?? partCount
    let split = count.map { job.describeShares(count: $0, this: resolved?.part) + "\n" } ?? ""
    if dryRun {
      print(job.describe() + "\n" + split + disk.line)
      return
    }
    if !quiet {
      let from = resolved.map { "part        \($0.part) (from \($0.source))\n" } ?? ""
      FileHandle.standardError.write(Data((job.describe() + "\n" + split + from + disk.line + "\n").utf8))
    }
    if let warning = disk.warning {
      if strict { throw CommandFailure(description: warning + "; free some space or choose another -o", kind: .io) }
      FileHandle.standardError.write(
        Data("warning: \(warning); the codec usually needs less (--strict refuses)\n".utf8))
    }
    let planSeconds = StageClock.seconds(since: started)
    try Interruption.check("nothing was written")
    let reporter = ProgressReporter(quiet: quiet)
    let summary: FusionSummary
    do {
      summary = try job.run(output: output, part: resolved?.part, finalize: finalize) { reporter.report($0) }
    } catch {
      reporter.finish()  // the progress line ends before the error's
      throw error
    }
    reporter.finish()
    let mvox = Double(summary.voxels) / max(summary.seconds, 1e-9) / 1e6
    let pyramid =
      job.spec.levels == 1
      ? "no pyramid"
      : summary.pyramidInStream
        ? "\(job.spec.levels - 1) pyramid level\(job.spec.levels == 2 ? "" : "s") in the stream"
        : "\(job.spec.levels - 1) pyramid level\(job.spec.levels == 2 ? "" : "s") from disk "
          + String(format: "%.2f s", summary.pyramidSeconds)
    if json {
      print(
        try jsonLine([
          "output": output, "voxels": summary.voxels, "fusionSeconds": summary.seconds, "mvoxelPerSecond": mvox,
          "wholeJobSeconds": planSeconds + summary.totalSeconds, "planSeconds": planSeconds,
          "pyramidLevels": job.spec.levels - 1, "pyramidInStream": summary.pyramidInStream,
          "pyramidSeconds": summary.pyramidSeconds, "metadataSeconds": summary.metadataSeconds,
          "chunksWritten": summary.blocksWritten, "chunksUntouched": summary.blocksSkipped,
          "bytesRead": summary.bytesRead, "peakMemoryBytes": summary.peakRSSBytes,
          "part": summary.part.map(\.description) ?? NSNull(), "finalized": summary.finalized,
          "pending": summary.pending ?? NSNull(),
        ]))
    } else {
      print(
        String(
          format:
            "fused %d voxels in %.2f s (%.1f Mvoxel/s), %d chunks written, %d untouched; %@, metadata %.2f s; "
            + "whole job %.2f s (open + plan %.2f s); read %@; peak memory %@ → %@",
          summary.voxels, summary.seconds, mvox, summary.blocksWritten, summary.blocksSkipped, pyramid,
          summary.metadataSeconds, planSeconds + summary.totalSeconds, planSeconds,
          FusionJob.format(bytes: summary.bytesRead), FusionJob.format(bytes: summary.peakRSSBytes), output))
      if let part = summary.part {
        print(
          "part \(part) done; " + (summary.finalized ? "the output is finalized" : summary.pending ?? "not finalized"))
      }
    }
    if let stageTimes, let clock {
      clock.add(.plan, seconds: planSeconds)
      try AtomicFile.write(
        clock.json(extra: [
          "threads": threads, "job_seconds": planSeconds + summary.totalSeconds, "output_voxels": summary.voxels,
          "inflater": Inflater.choice,
        ]), to: stageTimes)
    }
  }
}

/// Free space against the output's size, checked before any work. A resumed or replaced
/// output's own files count as room (they are kept, or deleted first).
struct DiskCheck {
  let needed: Int
  let free: (bytes: Int, at: String)?
  let existing: Int
  let output: String

  /// Bytes of the files under `path` (0 if there are none).
  static func bytes(under path: String) -> Int {
    guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
    var total = 0
    for case let file as String in walker {
      var status = stat()
      if lstat(path + "/" + file, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG { total += Int(status.st_size) }
    }
    return total
  }

  /// The dry-run and plan line.
  var line: String {
    let room =
      free.map {
        "\(FusionJob.format(bytes: $0.bytes)) free at \($0.at)"
          + (existing > 0 ? " and \(FusionJob.format(bytes: existing)) in the existing output" : "")
      } ?? "free space unknown"
    return "disk        output ≤ \(FusionJob.format(bytes: needed)) uncompressed (all levels); \(room)"
  }

  /// Set when the filesystem has less room than the uncompressed output.
  var warning: String? {
    guard let free, free.bytes < needed - existing else { return nil }
    return "\(output): the output takes up to \(FusionJob.format(bytes: needed)) uncompressed and \(free.at) has "
      + "\(FusionJob.format(bytes: free.bytes)) free"
      + (existing > 0 ? " (and \(FusionJob.format(bytes: existing)) in the existing output)" : "")
  }
}

extension Interpolation: ExpressibleByArgument {}
extension BlendMode: ExpressibleByArgument {}
extension ElementType: ExpressibleByArgument {}

/// "4G", "512M", "1.5GiB", "1000000" → bytes.
func parseBytes(_ text: String) throws -> Int {
  let t = text.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: "IB", with: "")
    .replacingOccurrences(of: "B", with: "")
  let units: [Character: Double] = ["K": 1024, "M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
  var number = t
  var factor = 1.0
  if let last = t.last, let u = units[last] {
    factor = u
    number = String(t.dropLast())
  }
  guard let v = Double(number), v > 0 else {
    throw UsageError("--memory: expected a size like 4G or 512M, got \"\(text)\"")
  }
  return Int(v * factor)
}

/// Fusion progress: a bar on a terminal, a line every 10 s otherwise, nothing with --quiet.
final class ProgressReporter: Sendable {
  let line: ProgressLine

  init(quiet: Bool) { line = ProgressLine(quiet: quiet) }

  func report(_ p: FusionProgress) {
    let fraction = p.total > 0 ? Double(p.done) / Double(p.total) : 1
    let rate = Double(p.voxels) / max(p.elapsed, 1e-9) / 1e6
    let eta = p.done > 0 ? p.elapsed * Double(p.total - p.done) / Double(p.done) : 0
    let text = String(
      format: "%d/%d chunks  %.1f Mvoxel/s  %.0f s elapsed  ETA %.0f s", p.done, p.total, rate, p.elapsed, eta)
    let width = 30
    let filled = Int(fraction * Double(width))
    let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
    line.show(
      terminal: "\(p.phase) [\(bar)] \(String(format: "%3.0f", fraction * 100))%  \(text)", log: "\(p.phase): \(text)",
      last: p.done == p.total)
  }

  func finish() { line.finish() }
}

/// One JSON object on one line, keys sorted (a command's `--json` summary).
func jsonLine(_ object: [String: Any]) throws -> String {
  String(
    decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]),
    as: UTF8.self)
}
