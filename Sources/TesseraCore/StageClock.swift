import Foundation

/// The stages of a job that ``StageClock`` times, in the order they run.
public enum Stage: String, CaseIterable, Sendable, Codable {
  /// Opening the dataset and planning (reading metadata, overlaps, the fusion plan).
  case plan
  /// Reading and decoding input voxels (file reads, inflate, the chunk cache's copies).
  case readDecode = "read+decode"
  /// Resampling views into output regions and blending them.
  case resampleBlend = "resample+blend"
  /// Encoding output chunks and writing them.
  case encodeWrite = "encode+write"
  /// Building and writing the resolution pyramid.
  case pyramid
  /// Writing the final metadata (display windows, OME attributes).
  case metadata
  /// Pairwise registration: phase correlation, peak verification and the subpixel fit.
  case phaseCorrelation = "phase correlation"
  /// The global solve for tile positions.
  case globalSolve = "global solve"
}

/// CPU time spent per ``Stage``, summed over the threads that ran it (each thread's own CPU
/// clock, so time the thread waits or is descheduled does not count), and the work (voxels) each
/// stage processed. Any thread may add at any time; sums are exact whatever the order.
///
/// A parallel stage's CPU seconds divided by its threads approximate its share of the wall time
/// when the threads are busy; its voxels divided by CPU seconds are its throughput per core.
/// (Jobs run nested work such as decoding a block's chunks on the calling thread when their own
/// items fill the threads, ``Parallel/nestedThreads(_:items:)``, so a stage's work is its
/// thread's.)
public final class StageClock: @unchecked Sendable {  // `totals` is only touched under `lock`
  /// One stage's sums.
  public struct Total: Sendable, Codable, Equatable {
    public var seconds = 0.0
    public var voxels = 0
  }

  private let lock = NSLock()
  private var totals: [Stage: Total] = [:]

  public init() {}

  /// Adds `seconds` of one thread's time (and `voxels` of work) to `stage`.
  public func add(_ stage: Stage, seconds: Double, voxels: Int = 0) {
    lock.withLock {
      totals[stage, default: Total()].seconds += seconds
      totals[stage, default: Total()].voxels += voxels
    }
  }

  /// Adds `voxels` of work to `stage` without time (when the work is counted elsewhere).
  public func count(_ stage: Stage, voxels: Int) { add(stage, seconds: 0, voxels: voxels) }

  /// Runs `body`, adding this thread's CPU time during it to `stage`.
  public func time<R>(_ stage: Stage, voxels: Int = 0, _ body: () throws -> R) rethrows -> R {
    let start = Self.threadSeconds()
    defer { add(stage, seconds: Self.threadSeconds() - start, voxels: voxels) }
    return try body()
  }

  /// The sums so far, by stage.
  public var snapshot: [Stage: Total] { lock.withLock { totals } }

  /// The sums as JSON: `{"stage name": {"seconds": s, "voxels": n}, ...}` plus `extra` keys.
  public func json(extra: [String: Any] = [:]) throws -> Data {
    var object = extra
    for (stage, total) in snapshot { object[stage.rawValue] = ["seconds": total.seconds, "voxels": total.voxels] }
    return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])
  }

  /// CPU seconds the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
  public static func threadSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
  }

  /// CPU seconds (user and system) the whole process has used (`getrusage`), for phases that run
  /// on threads other than the caller's.
  public static func processSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return cpuSeconds(usage)
  }

  /// User plus system CPU seconds of a resource usage (this process's, or a child's from `wait4`).
  public static func cpuSeconds(_ usage: rusage) -> Double {
    [usage.ru_utime, usage.ru_stime].reduce(0) { $0 + Double($1.tv_sec) + Double($1.tv_usec) * 1e-6 }
  }

  /// Wall seconds elapsed since `start`.
  public static func seconds(since start: ContinuousClock.Instant) -> Double {
    let e = ContinuousClock.now - start
    return Double(e.components.seconds) + Double(e.components.attoseconds) * 1e-18
  }
}

extension Optional where Wrapped == StageClock {
  /// Runs `body`, timed into `stage` when there is a clock.
  @inlinable
  public func time<R>(_ stage: Stage, voxels: Int = 0, _ body: () throws -> R) rethrows -> R {
    guard let clock = self else { return try body() }
    return try clock.time(stage, voxels: voxels, body)
  }
}
