import TesseraCore
import TesseraIO

/// How a fusion job divides its memory budget and its threads, decided once before any work and
/// printed by `--dry-run` (``describe()``).
///
/// Memory — every term is an upper bound for what the process holds at once:
///
///     budget ≥ fixed overhead + threads × bytes per region + in-stream pyramid + cache × slack
///
/// - *fixed overhead* (``fixedOverhead``): the runtime, libraries, HDF5's metadata caches and the
///   encoders' scratch.
/// - *regions in flight*: each worker fuses one compute region at a time; a region needs the
///   source regions of the views reaching it, the slab accumulators, its result (one kept for
///   reuse, one being encoded) and the encoded copy (``FusionExecutor/bytesPerComputeRegion``).
/// - *in-stream pyramid*: the coarser levels' open blocks (``OMEZarrImageSpec/pyramidStreamBytes``);
///   when the rest leaves no room for them, the pyramid is read back from disk instead and its
///   share goes to the cache.
/// - *cache*: decoded input blocks (what is left), resident at up to ``cacheSlack`` bytes per
///   cached byte. It must hold at least the blocks one region reads from two views.
///
/// Threads: `threads` workers each fuse one output block at a time; a block's input chunks
/// inflate on its worker's thread, and when there are fewer blocks than workers each block's
/// reads get the idle ones (``decoderThreads``).
public struct ResourcePlan: Sendable {
  /// The budget given (`--memory`).
  public let budget: Int
  /// Fusion workers (`--threads`).
  public let threads: Int
  /// Bytes one compute region holds while fused and encoded.
  public let bytesPerRegion: Int
  /// Bytes the in-stream pyramid may hold; 0 when the pyramid is read back from disk.
  public let pyramidBytes: Int
  /// Bytes the input cache may hold.
  public let cacheBytes: Int
  /// Decoded bytes of the views read through the cache: the most the cache can ever hold.
  public let cachedInputBytes: Int
  /// Threads each block's reads decode on when all planned blocks are fused.
  public let decoderThreads: Int

  /// Memory set aside for the process itself: the runtime and libraries, HDF5's metadata caches,
  /// the encoders' scratch. Measured (`/usr/bin/time -f %M tessera fuse …`, 2 threads): fusing one
  /// 300×280 tile peaks at 41 MiB resident, the bundled sample (`Datasets/sample`, 1.6 Mvoxel out)
  /// at 55 MiB; 96 MiB leaves room for HDF5's chunk caches and the encoders on larger inputs.
  public static let fixedOverhead = 96 << 20

  /// Resident bytes per byte the input cache holds: blocks being read or still in a worker's hands
  /// after eviction, and allocator slack. Measured on the 4×4-tile gzip case (`BIG=1
  /// Benchmarks/fusion/run.sh`, with an earlier 112 MiB fixed overhead and no slack): peak RSS grew
  /// by 1.11 bytes per cached byte (232 MiB at `--memory 256M` with a 100 MiB cache, 517 MiB at 512M
  /// with 356 MiB); 1.18 leaves a margin (now 230 and 467 MiB).
  public static let cacheSlack = 1.18

  /// Divides `budget`.
  ///
  /// - Parameters:
  ///   - largestBlock: bytes of the largest cached input block.
  ///   - streamBytes: what the in-stream pyramid would hold, or nil when it cannot be streamed.
  ///   - blocks: output blocks to fuse.
  /// - Throws: ``OptionError`` (`--memory`) when the budget cannot hold the regions in flight and
  ///   the input blocks one region reads, naming the smallest budget that can.
  public init(
    budget: Int, threads: Int, bytesPerRegion: Int, largestBlock: Int, streamBytes: Int?, cachedInputBytes: Int,
    blocks: Int
  ) throws(OptionError) {
    let threads = max(1, threads)
    self.budget = budget
    self.threads = threads
    self.bytesPerRegion = bytesPerRegion
    self.cachedInputBytes = cachedInputBytes
    decoderThreads = Parallel.nestedThreads(threads, items: blocks)
    let inFlight = threads * bytesPerRegion
    // The cache must hold at least the blocks one region needs from two views.
    let needed = 2 * 8 * largestBlock
    func cache(_ rest: Int) -> Int { Int(Double(rest) / Self.cacheSlack) }
    if let streamBytes, cache(budget - inFlight - Self.fixedOverhead - streamBytes) >= needed {
      pyramidBytes = streamBytes
    } else {
      pyramidBytes = 0
    }
    cacheBytes = cache(budget - inFlight - Self.fixedOverhead - pyramidBytes)
    guard cacheBytes >= needed else {
      let minimum = inFlight + Self.fixedOverhead + Int(Double(needed) * Self.cacheSlack)
      throw OptionError(
        "--memory",
        "a budget of \(FusionJob.format(bytes: budget)) cannot hold \(threads) chunks in flight "
          + "and the input blocks they read; give --memory \(FusionJob.format(bytes: minimum)) or more, "
          + "or fewer --threads / smaller --chunks")
    }
  }

  /// Threads each block's reads decode on when `blocks` blocks remain (fewer on a resumed run).
  public func decoderThreads(blocks: Int) -> Int { Parallel.nestedThreads(threads, items: blocks) }

  /// The cache's budget for a run: with the in-stream pyramid's share too when it is not used (a
  /// resumed output).
  public func cacheBytes(streaming: Bool) -> Int {
    cacheBytes + (streaming ? 0 : Int(Double(pyramidBytes) / Self.cacheSlack))
  }

  /// Predicted peak memory: what the cache can hold (its budget, or all cached input if smaller)
  /// times ``cacheSlack``, plus the regions in flight, the in-stream pyramid's open blocks and
  /// ``fixedOverhead``. Never more than the budget.
  public var predictedPeakBytes: Int {
    Int(Double(min(cacheBytes, cachedInputBytes)) * Self.cacheSlack) + threads * bytesPerRegion + pyramidBytes
      + Self.fixedOverhead
  }

  /// The `--dry-run` lines: memory and threads.
  public func describe() -> [String] {
    let f = FusionJob.format(bytes:)
    return [
      "memory      peak ≈ \(f(predictedPeakBytes)) of a \(f(budget)) budget: cache ≤ \(f(min(cacheBytes, cachedInputBytes))) (×\(Self.cacheSlack) resident) + \(threads) × \(f(bytesPerRegion)) in flight"
        + (pyramidBytes > 0 ? " + pyramid ≤ \(f(pyramidBytes))" : "") + " + \(f(Self.fixedOverhead))",
      "threads     \(threads) worker\(threads == 1 ? "" : "s"), one output block each; a block's input chunks inflate on "
        + (decoderThreads == 1 ? "its worker's thread" : "\(decoderThreads) threads"),
    ]
  }
}
