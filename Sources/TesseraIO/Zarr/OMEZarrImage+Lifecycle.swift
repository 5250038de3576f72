import Foundation
import TesseraCore

// Finalizing and verifying an output that one or many processes filled. Both read the plan and
// every journal from the output itself: they need neither the inputs nor the processes that wrote.

extension OMEZarrImage {
  /// Opens an output to finalize it: like ``open(at:)``, with a journal for the blocks it writes.
  public static func openForFinalizing(at path: String) throws -> OMEZarrImage {
    let image = try open(at: path)
    let log = try ProgressLog(directory: journals(path), plan: image.plan.fingerprint, part: "finalize")
    return OMEZarrImage(path: path, plan: image.plan, levels: image.levels, records: image.records, log: log)
  }

  /// Ends this process's journal: its part (or the whole job's level 0) is done, flushed to disk.
  public func finishJournal() throws { try log?.finishPart() }

  /// True if the OME metadata of this plan is written (the last step of a fusion).
  public var isFinalized: Bool {
    let attributes = (try? ZarrGroup.attributes(at: path))?["tessera"] as? [String: Any]
    return attributes?["status"] as? String == "complete" && attributes?["plan"] as? String == plan.fingerprint
  }

  /// Planned level-0 blocks (linear) that are not complete (``isComplete(level:block:)``).
  public func missingLevel0() -> [Int] {
    plan.plannedBlocks(count: levels[0].grid.chunkCount).filter { !isComplete(level: 0, block: $0) }
  }

  /// What the journals say about the parts, for messages: "parts 1, 3 of 4 have not finished
  /// (part 3 has not started)".
  public func partsReport() -> String? {
    let contents = ProgressLog.read(
      directory: Self.journals(path), plan: plan.fingerprint, blockCounts: spec.blockCounts)
    var counts: Set<Int> = []
    for p in contents.startedParts {
      if let n = p.split(separator: "/").last.flatMap({ Int($0) }), n > 1 { counts.insert(n) }
    }
    let lines: [String] = counts.sorted().compactMap { n in
      let unfinished = (0..<n).filter { !contents.finishedParts.contains("\($0)/\(n)") }
      guard !unfinished.isEmpty else { return nil }
      let unstarted = unfinished.filter { !contents.startedParts.contains("\($0)/\(n)") }
      return "part\(unfinished.count == 1 ? "" : "s") \(unfinished.map(String.init).joined(separator: ", ")) of \(n) "
        + "\(unfinished.count == 1 ? "has" : "have") not finished"
        + (unstarted.isEmpty
          ? "" : " (\(unstarted.map(String.init).joined(separator: ", ")) never started)")
    }
    return lines.isEmpty ? nil : lines.joined(separator: "; ")
  }

  /// Builds the pyramid blocks not yet complete (with `checksums`, not intact) from the level
  /// below, writes the OME metadata (the last step), and removes temporary files that crashed
  /// writers left behind.
  public func finalize(threads: Int, checksums: Bool = false, after part: Part? = nil) throws {
    try buildPyramid(threads: threads, checksums: checksums)
    try finish(provenance: plan.provenance)
    removeLeftovers(all: OutputLock.livePartHolders(of: path, except: part).isEmpty)
  }

  /// Finalizes the output at `path` once every planned level-0 block is complete; returns false
  /// if it was finalized already (nothing to do). With `checksums` (after a resumed run) pyramid
  /// blocks are kept only if their files match their records exactly, so damaged ones are built
  /// again, and the metadata is written again.
  ///
  /// - Throws: ``ZarrError`` (usage) naming the unfinished parts and some missing blocks when
  ///   level 0 is not complete.
  @discardableResult
  public static func finalize(
    at path: String, threads: Int, checksums: Bool = false, after part: Part? = nil
  ) throws -> Bool {
    try requireOutput(at: path)
    let image = try openForFinalizing(at: path)
    let complete = (0..<image.spec.levels).allSatisfy { level in
      level == 0 ? image.missingLevel0().isEmpty : image.levels[level].grid.chunkCount == image.records[level].count
    }
    if complete && image.isFinalized && !checksums { return false }
    let missing = image.missingLevel0()
    guard missing.isEmpty else {
      let grid = image.levels[0].grid
      let keys = missing.prefix(3).map { "0/" + image.levels[0].key(of: grid.chunkIndex(linear: $0)) }
      throw ZarrError(
        path: path,
        "cannot finalize: \(missing.count) of the \(image.plan.plannedBlocks(count: grid.chunkCount).count) level-0 "
          + "blocks are not done (\(keys.joined(separator: ", "))\(missing.count > 3 ? ", …" : ""))"
          + (image.partsReport().map { "; \($0)" } ?? "")
          + "; run the missing parts (tessera fuse … --resume) and finalize again", kind: .usage)
    }
    try image.finalize(threads: threads, checksums: checksums, after: part)
    return true
  }

  /// Throws unless `path` is an existing folder (checked before anything is created beside it).
  public static func requireOutput(at path: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw ZarrError(path: path, "no such output (check the path)", kind: .usage)
    }
  }

  /// Removes `.tmp` files (``AtomicFile``'s) older than ``OutputLock/staleAfter``: a writer
  /// renames its file within seconds, so an old one is a crashed writer's and never completes.
  /// With `all` (the caller holds the output's lock and no other part is running, so no writer
  /// is left), every temporary file goes, whatever its age.
  public func removeLeftovers(all: Bool = false) {
    for file in leftovers(olderThan: all ? nil : OutputLock.staleAfter) { unlink(path + "/" + file) }
  }

  /// Temporary files under the output (paths relative to it), optionally only those not
  /// modified for `age` seconds.
  func leftovers(olderThan age: Double? = nil) -> [String] {
    guard let walker = FileManager.default.enumerator(atPath: path) else { return [] }
    // Ages by the filesystem's own clock (a file just made in the output): the clocks of the
    // machines sharing it may disagree.
    var now = Date().timeIntervalSince1970
    if age != nil {
      let probe = path + "/.tessera/.clock-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
      var status = stat()
      if FileManager.default.createFile(atPath: probe, contents: nil), stat(probe, &status) == 0 {
        now = Double(status.st_mtim.tv_sec)
      }
      unlink(probe)
    }
    var out: [String] = []
    for case let file as String in walker where file.hasSuffix(".tmp") {
      var status = stat()
      guard lstat(path + "/" + file, &status) == 0 else { continue }
      if let age, now - Double(status.st_mtim.tv_sec) < age { continue }
      out.append(file)
    }
    return out.sorted()
  }
}
