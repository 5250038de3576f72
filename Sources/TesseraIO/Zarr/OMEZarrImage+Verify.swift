import Foundation
import TesseraCore

/// What ``OMEZarrImage/verify(threads:)`` found. Blocks are named by their file, relative to the
/// output ("0/c/1/0/2/3").
public struct VerifyReport: Sendable {
  /// Planned blocks with neither a completion record nor a file, or recorded but gone.
  public var missing: [String] = []
  /// Files without a completion record: written by a process that died before recording them
  /// (or is still running).
  public var incomplete: [String] = []
  /// Files whose size or CRC-32 differs from every record of them.
  public var corrupt: [String] = []
  /// Journals of another plan, and files where this plan writes nothing (fill).
  public var stale: [String] = []
  /// Temporary files (writers that crashed or are still writing).
  public var leftovers: [String] = []
  /// True if the OME metadata of this plan is written.
  public var finalized = false
  /// Unfinished parts, as the journals tell ("parts 1, 2 of 3 have not finished").
  public var parts: String?
  /// Blocks whose files were read and checked, and their bytes.
  public var checkedFiles = 0
  public var checkedBytes = 0

  /// True if every planned block is present and intact, nothing is stale, and the output is
  /// finalized.
  public var isValid: Bool { missing.isEmpty && incomplete.isEmpty && corrupt.isEmpty && stale.isEmpty && finalized }
}

extension OMEZarrImage {
  /// Checks the output against its plan and journals, reading every block file (`threads` at a
  /// time) and comparing its size and CRC-32 with its records: level-0 blocks the plan writes must
  /// be recorded and intact, other level-0 blocks must have no file, and once finalized every
  /// block of every pyramid level must be recorded and intact.
  public func verify(threads: Int) -> VerifyReport {
    var report = VerifyReport()
    let contents = ProgressLog.read(
      directory: Self.journals(path), plan: plan.fingerprint, blockCounts: spec.blockCounts)
    report.stale = contents.stale.map { ".tessera/progress/" + $0 }
    report.finalized = isFinalized
    report.parts = partsReport()
    report.leftovers = leftovers()
    // What to check: (level, linear, relative file, records).
    var checks: [(level: Int, block: Int, file: String, records: [BlockRecord])] = []
    for (level, array) in levels.enumerated() {
      let present = files(of: array)
      let grid = array.grid
      let expected: [Int] =
        level == 0
        ? plan.plannedBlocks(count: grid.chunkCount)
        : report.finalized ? Array(0..<grid.chunkCount) : contents.records[level].keys.sorted()
      let expectedSet = level == 0 ? nil : Set(expected)
      for b in expected {
        let name = "\(level)/" + array.key(of: grid.chunkIndex(linear: b))
        let records = contents.records[level][b] ?? []
        if records.isEmpty {
          if present[b] != nil { report.incomplete.append(name) } else { report.missing.append(name) }
        } else if present[b] == nil {
          if !records.contains(where: { $0.size == 0 }) { report.missing.append(name) }
        } else {
          checks.append((level, b, name, records))
        }
      }
      for (b, _) in present.sorted(by: { $0.key < $1.key }) {
        let planned = level == 0 ? plan.plans(b) : expectedSet!.contains(b) || contents.records[level][b] != nil
        if !planned {
          let name = "\(level)/" + array.key(of: grid.chunkIndex(linear: b))
          if level == 0 { report.stale.append(name) } else { report.incomplete.append(name) }
        }
      }
    }
    let toCheck = checks
    let results = Locked([Bool](repeating: true, count: checks.count))
    let bytes = Locked(0)
    try? Parallel.forEach(checks.count, threads: threads) { i in
      let c = toCheck[i]
      let data = FileManager.default.contents(atPath: self.path + "/" + c.file).map { [UInt8]($0) }
      let ok = data != nil && BlockRecord.matches(data, c.records)
      results.withLock { $0[i] = ok }
      bytes.withLock { $0 += data?.count ?? 0 }
    }
    let ok = results.withLock { $0 }
    for (i, c) in checks.enumerated() where !ok[i] { report.corrupt.append(c.file) }
    report.checkedFiles = checks.count
    report.checkedBytes = bytes.withLock { $0 }
    return report
  }

  /// The block files of `array` by linear index (temporary files and metadata skipped).
  func files(of array: ZarrArray) -> [Int: String] {
    let root = array.path
    guard let walker = FileManager.default.enumerator(atPath: root) else { return [:] }
    let separator = array.metadata.separator
    let prefixed = array.metadata.format == .v3 && !array.metadata.v2KeyEncoding
    var out: [Int: String] = [:]
    for case let file as String in walker {
      let name = (file as NSString).lastPathComponent
      guard !name.hasPrefix("."), name != "zarr.json" else { continue }
      var key = Substring(file)
      if prefixed {
        guard key.hasPrefix("c" + separator) else { continue }
        key = key.dropFirst(1 + separator.count)
      }
      let fields = key.split(separator: Character(separator), omittingEmptySubsequences: false).map { Int($0) }
      guard fields.count == array.grid.rank, fields.allSatisfy({ $0 != nil }) else { continue }
      let index = fields.map { $0! }
      guard zip(index, array.grid.gridShape).allSatisfy({ $0 >= 0 && $0 < $1 }) else { continue }
      var status = stat()
      guard stat(root + "/" + file, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else { continue }
      out[array.grid.linearIndex(ofChunk: index)] = file
    }
    return out
  }
}
