import Foundation

/// A `refine-positions` job split into parts: each part measures its share of the pairs and
/// writes a pair file (``PairFile``); the solve reads them all, checks that they belong to one
/// job and cover every pair once, and solves as one process would.
extension RefinePositions {
  /// What one part measured and where it wrote it.
  public struct PartResult: Sendable {
    /// The pair file written.
    public var path: String
    public var part: Part
    /// The part's share of the pairs.
    public var pairs: Range<Int>
    /// Pairs of the whole job.
    public var pairCount: Int
  }

  /// Measures part `part`'s share of the pairs (``PairPlan/share(_:)``: every process computes
  /// the same split from the plan) and writes them to `directory` as the part's pair file
  /// (``PairFile/name(of:)``), atomically, replacing an earlier run of the same part.
  ///
  /// - Parameter paths: the dataset's paths, recorded (made absolute) for `--solve`.
  /// - Throws: ``GeometryError`` and reader errors as
  ///   ``TileRegistration/measure(_:_:options:progress:)``; I/O errors for a folder that cannot
  ///   be written, found before any pair is measured.
  public static func measurePart(
    _ dataset: Dataset, paths: [String], options: RegistrationOptions, part: Part, directory: String,
    progress: (@Sendable (Int, Int) -> Void)? = nil
  ) throws -> PartResult {
    let plan = try TileRegistration.plan(dataset, options: options)
    let share = plan.share(part)
    let path = (directory as NSString).appendingPathComponent(PairFile.name(of: part))
    try ZarrStore.checkWritable(fileAt: path)
    let measured = try TileRegistration.measure(plan, share, options: options, progress: progress)
    let file = PairFile(
      fingerprint: PairFile.fingerprint(dataset, options: options, pairs: plan.pairs),
      dataset: paths.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, options: .init(options),
      part: part.index, parts: part.count, pairCount: plan.pairs.count,
      pairs: zip(share, measured).map { .init(index: $0, tiles: plan.pairs[$0].tiles, measurement: $1) })
    try file.write(to: path)
    return PartResult(path: path, part: part, pairs: share, pairCount: plan.pairs.count)
  }

  /// The refined dataset and report from the pair files in `directory`: exactly what
  /// ``run(_:options:progress:)`` returns for the same dataset and options (the same links,
  /// minimum-correlation filter and global solve, on the same measurements).
  ///
  /// - Throws: ``DatasetError`` when the files do not make one whole job for this dataset and
  ///   these options (``PairFile/measurements(in:plan:fingerprint:options:)``: a missing part
  ///   is named with the command that makes it); ``GeometryError`` as the plan.
  public static func solve(_ dataset: Dataset, options: RegistrationOptions, pairsIn directory: String) throws -> (
    Dataset, RegistrationReport
  ) {
    let plan = try TileRegistration.plan(dataset, options: options)
    let measured = try PairFile.measurements(
      in: directory, plan: plan, fingerprint: PairFile.fingerprint(dataset, options: options, pairs: plan.pairs),
      options: .init(options))
    let report = TileRegistration.solve(plan, measurements: measured, options: options)
    return (corrected(dataset, by: report), report)
  }
}
