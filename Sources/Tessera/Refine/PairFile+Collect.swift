import Foundation

/// Gathering the pair files of a job for the solve: every file in the folder must belong to the
/// job the solve is given (its dataset and measurement options), and together they must hold
/// every part's share of the pairs.
extension PairFile {
  /// The pair files in `directory` (names as ``name(of:)`` gives them), sorted.
  ///
  /// - Throws: ``DatasetError`` (data) when the folder does not exist or holds no pair file.
  static func paths(in directory: String) throws -> [String] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw DatasetError(
        path: directory, "no such folder of pair files; run the parts with --part i/N --pairs-out \(directory) first")
    }
    let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter(isPairFileName).sorted()
    guard !names.isEmpty else {
      throw DatasetError(
        path: directory,
        "no pair files (pairs-*-of-*.json); run the parts with --part i/N --pairs-out \(directory) first")
    }
    return names.map { (directory as NSString).appendingPathComponent($0) }
  }

  /// The first pair file in `directory`, by name: the dataset and options its job was measured
  /// with.
  ///
  /// - Throws: ``DatasetError`` as ``paths(in:)`` and ``read(_:)``.
  public static func first(in directory: String) throws -> PairFile { try read(try paths(in: directory)[0]) }

  /// Every pair's measurement, in the order of `plan.pairs`, from the pair files in `directory`.
  ///
  /// Each file must carry `fingerprint` (that of the dataset, `options` and pairs the solve
  /// was given: ``fingerprint(_:options:pairs:)``), the same number of parts as the others, and
  /// exactly its part's share of the pairs (``PairPlan/share(_:)``). Two files of one part are
  /// accepted when their measurements are equal.
  ///
  /// - Throws: ``DatasetError`` naming the file at fault, or the folder and the parts without a
  ///   file (and the command that makes them): usage for a file measured with other options
  ///   than `options`, data otherwise.
  static func measurements(
    in directory: String, plan: PairPlan, fingerprint: String, options: MeasurementOptions
  ) throws -> [PairMeasurement?] {
    let files = try paths(in: directory).map { ($0, try read($0)) }
    for (path, f) in files where f.fingerprint != fingerprint {
      let differences = f.options.differences(from: options)
      if !differences.isEmpty {
        throw DatasetError(
          path: path,
          "measured with " + differences.joined(separator: ", ")
            + "; give --solve the options the parts ran with (or leave them out to use the recorded ones)",
          kind: .usage)
      }
      throw DatasetError(
        path: path,
        "measured on other views or pairs than this dataset's (fingerprint \(f.fingerprint), this run's "
          + "\(fingerprint)); a stale file, or the dataset changed: remove it, or give the dataset the parts ran on")
    }
    let (firstPath, count) = (files[0].0, files[0].1.parts)
    let shares = Part.contiguousShares(work: plan.work, count: max(1, count))
    var byPart: [Int: (path: String, pairs: [Entry])] = [:]
    for (path, f) in files {
      guard f.parts == count else {
        throw DatasetError(
          path: path,
          "part \(f.part) of \(f.parts), but \((firstPath as NSString).lastPathComponent) is of \(count) parts; "
            + "remove the files of the split you do not want")
      }
      guard (0..<count).contains(f.part), f.pairCount == plan.pairs.count,
        f.pairs.map(\.index) == Array(shares[f.part]),
        f.pairs.allSatisfy({ plan.pairs[$0.index].tiles == $0.tiles })
      else {
        throw DatasetError(
          path: path,
          "does not hold the pairs of part \(f.part)/\(count); it is damaged: remove it and run "
            + "--part \(f.part)/\(count) --pairs-out \(directory) again")
      }
      if let other = byPart[f.part] {
        guard other.pairs == f.pairs else {
          throw DatasetError(
            path: path,
            "holds part \(f.part)/\(count) like \((other.path as NSString).lastPathComponent), with other "
              + "measurements; remove one of them")
        }
        continue
      }
      byPart[f.part] = (path, f.pairs)
    }
    let missing = (0..<count).filter { byPart[$0] == nil }
    if let m = missing.first {
      let listed = missing.prefix(10).map(String.init).joined(separator: ", ") + (missing.count > 10 ? ", …" : "")
      throw DatasetError(
        path: directory,
        missing.count == 1
          ? "part \(m) of \(count) has no pair file; run it with --part \(m)/\(count) --pairs-out \(directory)"
          : "parts \(listed) of \(count) (\(missing.count) parts) have no pair file; run each with "
            + "--part i/\(count) --pairs-out \(directory), e.g. --part \(m)/\(count)")
    }
    var measured = [PairMeasurement?](repeating: nil, count: plan.pairs.count)
    for (_, file) in byPart {
      for e in file.pairs { measured[e.index] = e.measurement }
    }
    return measured
  }
}
