import Foundation

/// One process's share of a job split over `count` processes: part `index` (0-based, like MPI
/// ranks) of `count`. Parts are independent: each process computes its share from the plan alone,
/// with no communication; the shared filesystem is the meeting point.
public struct Part: Sendable, Hashable, CustomStringConvertible {
  public let index: Int
  public let count: Int

  /// Part `index` of `count`; nil unless 0 ≤ index < count.
  public init?(index: Int, count: Int) {
    guard count >= 1, (0..<count).contains(index) else { return nil }
    self.index = index
    self.count = count
  }

  /// "i/N", 0-based.
  public var description: String { "\(index)/\(count)" }

  /// The whole job as one part.
  public static let whole = Part(index: 0, count: 1)!

  /// Parses `--part i/N` (0 ≤ i < N).
  ///
  /// - Throws: ``OptionError`` naming `--part` for anything else.
  public static func parse(_ text: String) throws -> Part {
    let fields = text.split(separator: "/", omittingEmptySubsequences: false)
    guard fields.count == 2, let i = Int(fields[0].trimmingCharacters(in: .whitespaces)),
      let n = Int(fields[1].trimmingCharacters(in: .whitespaces))
    else { throw OptionError("--part", "expected i/N, e.g. 0/4 (parts are numbered from 0), got \"\(text)\"") }
    guard let part = Part(index: i, count: n) else {
      throw OptionError("--part", "\(text): the part must be 0 … N−1 of N ≥ 1 (parts are numbered from 0)")
    }
    return part
  }

  /// Where a part came from: the command line, or the launcher variables that gave it.
  public struct Resolved: Sendable, Equatable {
    public var part: Part
    /// "--part", "OMPI_COMM_WORLD_RANK/OMPI_COMM_WORLD_SIZE", "SLURM_ARRAY_TASK_ID + --part-count", …
    public var source: String
  }

  /// The part this process fills: `--part` if given, else the launcher's environment, else nil
  /// (one process does the whole job). Launchers, first match wins:
  /// - Open MPI (`mpirun`, `srun` with Open MPI): `OMPI_COMM_WORLD_RANK` of `OMPI_COMM_WORLD_SIZE`;
  /// - PMI (MPICH, Intel MPI, Hydra): `PMI_RANK` of `PMI_SIZE`;
  /// - a SLURM job array: `(SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP` of
  ///   `SLURM_ARRAY_TASK_COUNT` (or `--part-count`), times the tasks of the step when `srun` runs
  ///   several per array task;
  /// - SLURM tasks of a job step (`srun`, which sets `SLURM_STEP_ID`): `SLURM_PROCID` of
  ///   `SLURM_STEP_NUM_TASKS` (or `SLURM_NTASKS`). A batch script's own shell has no step, so a
  ///   plain `tessera fuse` in it does the whole job even when the allocation has many tasks;
  /// - Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX` of `--part-count`;
  /// - AWS Batch array jobs: `AWS_BATCH_JOB_ARRAY_INDEX` of `--part-count`.
  ///
  /// A launcher that reports one process (`mpirun -np 1`) means the whole job.
  ///
  /// - Throws: ``OptionError`` when the parts given disagree (`--part-count` against the
  ///   launcher's size), are out of range, or an index comes without a count.
  public static func resolve(part: String?, count: Int?, environment env: [String: String]) throws -> Resolved? {
    if let count, count < 1 { throw OptionError("--part-count", "must be at least 1, got \(count)") }
    if let part {
      let p = try parse(part)
      if let count, count != p.count {
        throw OptionError("--part-count", "\(count) disagrees with --part \(part); give one of them")
      }
      return Resolved(part: p, source: "--part")
    }
    func int(_ name: String) throws -> Int? {
      guard let text = env[name] else { return nil }
      guard let v = Int(text.trimmingCharacters(in: .whitespaces)), v >= 0 else {
        throw OptionError("--part", "the environment variable \(name)=\"\(text)\" is not a number ≥ 0")
      }
      return v
    }
    /// `index` of `size` from the launcher, checked against --part-count.
    func made(_ index: Int, _ size: Int?, _ source: String, sizeName: String) throws -> Resolved? {
      guard let n = size ?? count else {
        throw OptionError("--part-count", "\(source) is set but not the number of parts; pass --part-count N")
      }
      if let count, let size, count != size {
        throw OptionError(
          "--part-count", "\(count) disagrees with \(sizeName)=\(size); give the same number or drop it")
      }
      guard let p = Part(index: index, count: n) else {
        throw OptionError("--part", "\(source)=\(index) is not below the number of parts, \(n)")
      }
      return n == 1
        ? nil : Resolved(part: p, source: size == nil ? "\(source) of --part-count" : "\(source) of \(sizeName)")
    }
    if let rank = try int("OMPI_COMM_WORLD_RANK") {
      return try made(rank, try int("OMPI_COMM_WORLD_SIZE"), "OMPI_COMM_WORLD_RANK", sizeName: "OMPI_COMM_WORLD_SIZE")
    }
    if let rank = try int("PMI_RANK") {
      return try made(rank, try int("PMI_SIZE"), "PMI_RANK", sizeName: "PMI_SIZE")
    }
    let stepTasks = env["SLURM_STEP_ID"] == nil ? nil : try int("SLURM_STEP_NUM_TASKS") ?? int("SLURM_NTASKS")
    let stepRank = env["SLURM_STEP_ID"] == nil ? nil : try int("SLURM_PROCID")
    if let task = try int("SLURM_ARRAY_TASK_ID") {
      let first = try int("SLURM_ARRAY_TASK_MIN") ?? 0
      guard task >= first else {
        throw OptionError("--part", "SLURM_ARRAY_TASK_ID=\(task) is below SLURM_ARRAY_TASK_MIN=\(first)")
      }
      // A stepped array (--array=0-30:2) numbers its tasks first, first + step, …
      let step = max(1, try int("SLURM_ARRAY_TASK_STEP") ?? 1)
      guard (task - first) % step == 0 else {
        throw OptionError(
          "--part",
          "SLURM_ARRAY_TASK_ID=\(task) is not SLURM_ARRAY_TASK_MIN=\(first) plus a multiple of SLURM_ARRAY_TASK_STEP=\(step)"
        )
      }
      let tasks = try int("SLURM_ARRAY_TASK_COUNT")
      guard let tasks = tasks ?? count.map({ $0 / max(1, stepTasks ?? 1) }) else {
        throw OptionError(
          "--part-count", "SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT; pass --part-count N")
      }
      let perTask = max(1, stepTasks ?? 1)
      let index = (task - first) / step * perTask + (stepRank ?? 0)
      return try made(index, tasks * perTask, "SLURM_ARRAY_TASK_ID", sizeName: "the array's tasks")
    }
    if let rank = stepRank, let tasks = stepTasks {
      return try made(rank, tasks, "SLURM_PROCID", sizeName: "SLURM_STEP_NUM_TASKS")
    }
    if let index = try int("JOB_COMPLETION_INDEX") {
      return try made(index, nil, "JOB_COMPLETION_INDEX", sizeName: "")
    }
    if let index = try int("AWS_BATCH_JOB_ARRAY_INDEX") {
      return try made(index, nil, "AWS_BATCH_JOB_ARRAY_INDEX", sizeName: "")
    }
    if let count, count > 1 {
      throw OptionError(
        "--part-count",
        "no launcher variable gives this process's part (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_ARRAY_TASK_ID, "
          + "SLURM_PROCID, JOB_COMPLETION_INDEX, AWS_BATCH_JOB_ARRAY_INDEX); pass --part i/\(count)")
    }
    return nil
  }

  /// Splits items of predicted `work` (in their order, which keeps neighbours together) into
  /// `count` contiguous ranges of nearly equal total work: item k goes to the part whose share of
  /// the total holds the midpoint of k's work, so every part's total is within one item's work
  /// of the mean. Deterministic: the same work and count give the same ranges in every process.
  public static func contiguousShares(work: [Double], count: Int) -> [Range<Int>] {
    precondition(count >= 1 && work.allSatisfy { $0 >= 0 && $0.isFinite })
    let total = work.reduce(0, +)
    var bounds = [0]
    var before = 0.0
    var part = 0
    for (k, w) in work.enumerated() {
      let middle = total > 0 ? (before + w / 2) / total * Double(count) : Double(k) / Double(work.count) * Double(count)
      let owner = min(count - 1, Int(middle))
      while part < owner {
        bounds.append(k)
        part += 1
      }
      before += w
    }
    while bounds.count <= count { bounds.append(work.count) }
    return (0..<count).map { bounds[$0]..<bounds[$0 + 1] }
  }
}
