import ArgumentParser
import Foundation
import Tessera

/// 2D against 3D throughput per stage: the same pipeline (simulate, refine-positions, fuse) on a
/// 2D and a 3D tiling with the same number of tiles, voxels per tile and overlap, each job its own
/// process (so whole-process time and peak memory are the job's), stage times from the jobs
/// themselves (`--stage-times`).
struct ThroughputBench: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "throughput",
    abstract: "2D versus 3D throughput per stage, on equal-voxel-count tilings in the layout users have.",
    discussion: """
      Writes a 3D tiling (--tile-shape, --grid in y,x) and a 2D one with the same tile count, voxels per tile \
      and overlap (2D tiles of (y·z/f)×(x·f) for the largest f with f² ≤ z dividing z), as gzip chunked HDF5 \
      (chunks of 262,144 voxels: 16×128×128 and 512×512), BigDataViewer projects with small blocks (4×32×32 \
      and 64×64) or contiguous HDF5 (--input-layout), into a scratch folder it removes afterwards. Then, per \
      rank and thread count, runs `tessera refine-positions` and `tessera fuse` (on the refined positions) as \
      child processes --repeat times, and prints per stage the seconds (min / median), Mvoxel/s, Mvoxel/s per \
      thread and the job's peak RSS, and the 3D/2D ratio of per-voxel throughput (> 1: 3D faster per voxel).

      Stage seconds are CPU time summed over the threads that ran the stage (each thread's own CPU clock: \
      waiting and other processes do not count), divided by the threads for the parallel stages (so they add \
      up to about the wall time of their phase when the threads are busy); Mvoxel/s per thread divides the \
      stage's voxels by its summed CPU time (for whole-process rows: by the process's CPU time). The plan \
      stages are wall time. read+decode counts decoded input voxels; resample+blend, \
      encode+write and pyramid count level-0 output voxels; phase correlation the voxels of both regions of \
      every pair; the global solve has no voxels (its ratio compares seconds: both tilings have the same \
      tiles and links). Whole-process rows are the child process from start to exit. SIGINT or SIGTERM stops \
      it after the running child and removes the scratch folder.

      Examples:
        tessera bench throughput
        tessera bench throughput --tile-shape 64,512,512 --grid 4,4 --threads 1,2 --repeat 5
        tessera bench throughput --input-layout contiguous --json
      """)

  enum InputLayout: String, ExpressibleByArgument, CaseIterable {
    case chunkedGzip = "chunked-gzip"
    case bdvBlocks = "bdv-blocks"
    case contiguous
  }

  @Option(help: "3D tile shape z,y,x; the 2D tiles have as many voxels.")
  var tileShape: String = "64,256,256"

  @Option(help: "Tiles in y,x (both ranks).")
  var grid: String = "3,3"

  @Option(help: "Overlap between neighbouring tiles, as a fraction of the tile.")
  var overlap: Double = 0.15

  @Option(help: "Channels per tile.")
  var channels: Int = 2

  @Option(help: "Input layout: chunked-gzip, bdv-blocks or contiguous.")
  var inputLayout: InputLayout = .chunkedGzip

  @Option(help: "Thread counts to run, e.g. 1,2 (default: all cores).")
  var threads: String = "\(ProcessInfo.processInfo.activeProcessorCount)"

  @Option(help: "Output codec (as fuse --codec).")
  var codec: ZarrOutputOptions.Codec = .bloscLZ4

  @Option(help: "Blending (as fuse --blend).")
  var blend: BlendMode = .linear

  @Flag(help: "Rotate every tile by 2° about z before fusing (the general affine resampling path).")
  var rotated = false

  @Option(name: .customLong("repeat"), help: "Runs per job; seconds are reported as min / median.")
  var repetitions: Int = 1

  @Option(help: "Existing 2D dataset (.xml, .json or HDF5 tiles, comma-separated) instead of a generated one.")
  var dataset2d: String?

  @Option(help: "Existing 3D dataset, as --dataset-2d.")
  var dataset3d: String?

  @Option(help: "Scratch folder (default: the system's temporary folder).")
  var scratch: String = FileManager.default.temporaryDirectory.path

  @Flag(help: "Tiny datasets (3D tiles 16×64×64, 2D 256×256, 3×3 tiles), for tests.")
  var tiny = false

  @Flag(help: "Print the results as JSON instead of tables.")
  var json = false

  /// One rank's dataset and how it was made.
  struct Tiling {
    var rank: Int
    var tileShape: [Int]
    /// Tiles per axis (empty for a given dataset).
    var grid: [Int]
    var tiles: Int
    var channels: Int
    var chunks: [Int]?
    var paths: [String]
    var voxels: Int
  }

  func validate() throws {
    if repetitions < 1 { throw ValidationError("--repeat must be at least 1") }
    if channels < 1 { throw ValidationError("--channels must be at least 1") }
    if !(overlap > 0 && overlap < 0.5) { throw ValidationError("--overlap must be between 0 and 0.5") }
  }

  func run() throws {
    Interruption.install()  // SIGINT/SIGTERM: stop after the running job, remove the scratch folder
    let threadCounts = try parseList(threads, as: Int.self, name: "--threads")
    guard !threadCounts.isEmpty, threadCounts.allSatisfy({ $0 >= 1 }) else {
      throw UsageError("--threads needs thread counts of at least 1, e.g. 1,2")
    }
    let shape3 = tiny ? [16, 64, 64] : try parseList(tileShape, as: Int.self, name: "--tile-shape")
    let grid2 = tiny ? [3, 3] : try parseList(grid, as: Int.self, name: "--grid")
    guard shape3.count == 3, shape3.allSatisfy({ $0 >= 8 }) else {
      throw UsageError("--tile-shape needs 3 sizes z,y,x of at least 8, e.g. 64,256,256")
    }
    guard grid2.count == 2, grid2.allSatisfy({ $0 >= 1 }), grid2.reduce(1, *) >= 2 else {
      throw UsageError("--grid needs 2 tile counts y,x (at least 2 tiles), e.g. 3,3")
    }
    let dir = (scratch as NSString).appendingPathComponent("tessera-bench-\(getpid())")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let exe = Self.executable
    let tilings = try [2, 3].map { rank -> Tiling in
      if let given = rank == 2 ? dataset2d : dataset3d {
        let paths = given.split(separator: ",").map(String.init)
        let (data, _) = try DatasetLoader.open(paths)
        guard data.rank == rank else { throw UsageError("--dataset-\(rank)d is \(data.rank)-D") }
        return Tiling(
          rank: rank, tileShape: data.views[0].shape, grid: [], tiles: data.tiles.count,
          channels: data.channels.count, chunks: nil, paths: paths,
          voxels: data.views.reduce(0) { $0 + $1.bounds.volume })
      }
      return try generate(rank: rank, shape3: shape3, grid: grid2, in: dir + "/\(rank)d", exe: exe)
    }
    var runs: [[String: Any]] = []
    for t in threadCounts {
      for tiling in tilings {
        runs.append(try measure(tiling, threads: t, in: dir + "/\(tiling.rank)d-run", exe: exe))
      }
    }
    var ratios: [[String: Any]] = []
    for t in threadCounts {
      let pair = [2, 3].map { rank in runs.first { ($0["rank"] as! Int) == rank && ($0["threads"] as! Int) == t }! }
      ratios.append(["threads": t, "stages": Self.ratios(pair[0], pair[1])])
    }
    let machine = Self.machine
    let datasets = Dictionary(
      uniqueKeysWithValues: tilings.map { t -> (String, Any) in
        (
          "\(t.rank)d",
          [
            "tile_shape": t.tileShape, "grid": t.grid, "tiles": t.tiles, "channels": t.channels,
            "chunks": t.chunks ?? [], "voxels": t.voxels, "paths_given": t.grid.isEmpty,
          ] as [String: Any]
        )
      })
    let result: [String: Any] = [
      "machine": machine, "build": Self.build, "input_layout": inputLayout.rawValue, "codec": codec.rawValue,
      "blend": blend.rawValue, "rotated": rotated, "repeat": repetitions, "datasets": datasets, "runs": runs,
      "ratios": ratios,
    ]
    if json {
      let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
      print(String(decoding: data, as: UTF8.self))
      return
    }
    print(
      "machine: \(machine["cpu"]!), \(machine["cores"]!) cores, "
        + "\(FusionJob.format(bytes: machine["memory_bytes"] as! Int)) memory; build: \(Self.build)")
    for t in tilings {
      print(
        "\(t.rank)D: \(t.grid.isEmpty ? "given dataset, " : "")\(t.tiles) tiles of "
          + "\(t.tileShape.map(String.init).joined(separator: "×")), \(t.channels) channel(s), "
          + "\(t.grid.isEmpty ? "" : inputLayout.rawValue + ", ")\(t.voxels) voxels")
    }
    for run in runs { print(Self.table(run)) }
    for r in ratios {
      let stages = r["stages"] as! [String: Double]
      print("\n3D/2D per-voxel throughput, \(r["threads"]!) thread(s) (> 1: 3D faster per voxel):")
      for name in Self.stageOrder where stages[name] != nil {
        print("  \(name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(String(format: "%.2f", stages[name]!))")
      }
    }
  }

  /// Writes one rank's tiling with `tessera simulate`.
  func generate(rank: Int, shape3: [Int], grid: [Int], in dir: String, exe: String) throws -> Tiling {
    let z = shape3[0]
    let f = (1...z).filter { z % $0 == 0 && $0 * $0 <= z }.max()!
    let shape = rank == 3 ? shape3 : [shape3[1] * (z / f), shape3[2] * f]
    let tileGrid = rank == 3 ? [1] + grid : grid
    var chunks: [Int]?
    var args = [
      "simulate", dir, "--tile-shape", Self.list(shape), "--grid", Self.list(tileGrid), "--channels", "\(channels)",
      "--overlap", "\(overlap)", "--jitter", "2", "--seed", "1", "--blob-density",
      "\(rank == 3 ? Self.blobDensity3D : Self.blobDensity3D * Self.blobDensityRatio2D)",
    ]
    switch inputLayout {
    case .chunkedGzip:
      chunks = rank == 3 ? zip([16, 128, 128], shape).map { min($0, $1) } : shape.map { min(512, $0) }
      args += ["--chunks", Self.list(chunks!), "--deflate", "1"]
    case .bdvBlocks:
      chunks = rank == 3 ? zip([4, 32, 32], shape).map { min($0, $1) } : shape.map { min(64, $0) }
      args += ["--format", "bdv", "--chunks", Self.list(chunks!), "--deflate", "1"]
    case .contiguous:
      args += ["--deflate", "0"]
    }
    let run = try Self.spawn(exe, args, log: dir + ".log")
    guard run.status == 0 else { throw Self.failure("simulate", run, log: dir + ".log") }
    let paths =
      inputLayout == .bdvBlocks
      ? [dir + "/dataset.xml"]
      : try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("tile_") && $0.hasSuffix(".h5") }
        .sorted().map { dir + "/" + $0 }
    let voxels = shape.reduce(1, *) * tileGrid.reduce(1, *) * channels
    return Tiling(
      rank: rank, tileShape: shape, grid: tileGrid, tiles: tileGrid.reduce(1, *), channels: channels, chunks: chunks,
      paths: paths, voxels: voxels)
  }

  /// Refines and fuses one tiling `repetitions` times on `threads` threads; the stages' figures.
  func measure(_ tiling: Tiling, threads: Int, in dir: String, exe: String) throws -> [String: Any] {
    try? FileManager.default.removeItem(atPath: dir)
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let isBDV = tiling.paths.count == 1 && tiling.paths[0].hasSuffix(".xml")
    let refined = dir + (isBDV ? "/refined.xml" : "/refined.json")
    var samples: [String: [(seconds: Double, threadSeconds: Double, voxels: Int, rss: Int)]] = [:]
    for _ in 0..<repetitions {
      let refineTimes = dir + "/refine-stages.json"
      let r = try Self.spawn(
        exe,
        ["refine-positions"] + tiling.paths + [
          "-o", refined, "--overwrite", "--quiet", "--threads", "\(threads)", "--stage-times", refineTimes,
        ], log: dir + "/refine.log")
      guard r.status == 0 else { throw Self.failure("refine-positions", r, log: dir + "/refine.log") }
      try Interruption.check("the scratch folder is removed")
      var fuseInput = refined
      if rotated { fuseInput = try Self.rotate(refined, into: dir + (isBDV ? "/rotated.xml" : "/rotated.json")) }
      let fuseTimes = dir + "/fuse-stages.json"
      let out = dir + "/fused.ome.zarr"
      try? FileManager.default.removeItem(atPath: out)
      let f = try Self.spawn(
        exe,
        [
          "fuse", fuseInput, "-o", out, "--quiet", "--threads", "\(threads)", "--codec", codec.rawValue, "--blend",
          blend.rawValue, "--pyramid", "3", "--stage-times", fuseTimes,
        ], log: dir + "/fuse.log")
      guard f.status == 0 else { throw Self.failure("fuse", f, log: dir + "/fuse.log") }
      try Interruption.check("the scratch folder is removed")
      for (file, process, job) in [(refineTimes, r, "refine"), (fuseTimes, f, "fuse")] {
        let stages =
          try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as! [String: Any]
        for (stage, value) in stages {
          guard let total = value as? [String: Any], let seconds = total["seconds"] as? Double else { continue }
          let voxels = total["voxels"] as? Int ?? 0
          // Both jobs plan and read: those stages are named by job.
          let name = ["plan", "read+decode"].contains(stage) && job == "refine" ? "refine \(stage)" : stage
          let parallel = Self.parallelStages.contains(name)
          // Output voxels for the pyramid (its work is per level-0 voxel).
          let counted = stage == Stage.pyramid.rawValue ? stages["output_voxels"] as? Int ?? 0 : voxels
          samples[name, default: []].append(
            (parallel ? seconds / Double(threads) : seconds, seconds, counted, process.maxRSS))
        }
        let units = job == "fuse" ? stages["output_voxels"] as? Int ?? 0 : stages["input_voxels"] as? Int ?? 0
        // Whole process: wall time, and its CPU time as the "thread" seconds (per-core throughput).
        samples["\(job) whole process", default: []].append(
          (process.seconds, process.cpuSeconds, units, process.maxRSS))
      }
    }
    var stages: [String: Any] = [:]
    for (name, s) in samples {
      let seconds = s.map(\.seconds)
      let median = Self.median(seconds)
      let voxels = s[0].voxels
      var entry: [String: Any] = [
        "seconds": seconds, "min_seconds": seconds.min()!, "median_seconds": median,
        "thread_seconds": s.map(\.threadSeconds), "voxels": voxels, "peak_rss_bytes": s.map(\.rss).max()!,
      ]
      if voxels > 0 {
        entry["mvoxel_s"] = Double(voxels) / max(median, 1e-9) / 1e6
        entry["mvoxel_s_per_thread"] = Double(voxels) / max(Self.median(s.map(\.threadSeconds)), 1e-9) / 1e6
      }
      stages[name] = entry
    }
    return ["rank": tiling.rank, "threads": threads, "stages": stages]
  }

  /// The simulator's default texture: Gaussian blobs per million voxels, σ uniform in 1…3.5.
  static let blobDensity3D = SyntheticAcquisition.defaultBlobDensity
  /// 2D tiles get more blobs per voxel so that blobs cover the same fraction of voxels as in 3D
  /// (and the tiles compress alike: same codecs, same work per voxel): the mean volume of a
  /// blob's 2σ ball over the mean area of its 2σ disc, (4/3·π·8·E[σ³]) / (π·4·E[σ²]) =
  /// (8/3)·14.91/5.583 = 7.12 for σ ~ U(1, 3.5). Measured on the default tilings: gzip inputs of
  /// 99 and 108 MB, blosc-lz4 outputs of 78 and 79 MB (2D, 3D), where equal densities give 72 and
  /// 63 MB in 2D.
  static let blobDensityRatio2D = 7.12
}
