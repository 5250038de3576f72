import Foundation
import TesseraCore

/// An OME-Zarr image being written: a group with one Zarr array per resolution level.
///
/// The life of an output, in steps that each can run alone, in any process, and again:
/// - *create* (``create(at:spec:mode:plan:part:)``): the group (marked incomplete, with no
///   `multiscales`, so no viewer mistakes it for a finished image), the level arrays and the plan
///   (``OutputPlan``, `.tessera/plan.json`), every file written whole and the same bytes from every
///   process, so many processes may create one output at once (mode ``Mode/join``);
/// - *fill*: callers write level-0 blocks (``writeBlock(level:_:produce:)``), each recorded with
///   its size and checksum in this process's journal (``ProgressLog``);
/// - *finalize* (``finalize(threads:)``): the pyramid levels not yet written, then the OME
///   metadata, last;
/// - *open* (``open(at:)``) to inspect or verify (``verify(threads:)``) a finished or unfinished
///   output without writing to it.
public final class OMEZarrImage: Sendable {
  public enum Mode: Sendable {
    /// The output must not exist.
    case new
    /// Remove an existing output first (only if it is a Zarr group).
    case overwrite
    /// Continue an interrupted output made with the same plan (or create it): blocks recorded
    /// as complete are kept.
    case resume
    /// Create the output, or join one that other processes of the same job created (the same
    /// plan); nothing recorded is trusted, every block is written again.
    case join
  }

  public let path: String
  public let spec: OMEZarrImageSpec
  public let plan: OutputPlan
  /// One array per level.
  public let levels: [ZarrArray]
  /// Blocks per level with a completion record of this plan, from earlier runs and other
  /// processes (resume) — a snapshot at open. Records are checked against the files with
  /// ``isComplete(level:block:)``.
  public let completedAtOpen: [Set<Int>]
  /// The records behind ``completedAtOpen``.
  let records: [[Int: [BlockRecord]]]
  /// This process's journal (nil when opened read-only).
  let log: ProgressLog?

  init(path: String, plan: OutputPlan, levels: [ZarrArray], records: [[Int: [BlockRecord]]], log: ProgressLog?) {
    self.path = path
    self.spec = plan.spec
    self.plan = plan
    self.levels = levels
    self.records = records
    self.completedAtOpen = records.map { Set($0.keys) }
    self.log = log
  }

  /// Where the journals live.
  static func journals(_ path: String) -> String { path + "/.tessera/progress" }

  /// Creates (or reopens, for `.resume` and `.join`) an image at `path` for `plan` (default: a
  /// plan of `spec` writing every block), journalling as `part`.
  ///
  /// - Throws: ``ZarrError`` when the output exists (and neither overwrite, resume nor join was
  ///   asked), the existing output is not a Zarr group or was planned differently, or the
  ///   directory cannot be written.
  public static func create(
    at path: String, spec: OMEZarrImageSpec, mode: Mode, plan: OutputPlan? = nil, part: Part = .whole
  ) throws -> OMEZarrImage {
    try spec.validate(path)
    var plan = try plan ?? OutputPlan(spec: spec, provenance: [:], blocks: nil)
    precondition(plan.spec == spec, "the plan is for another image")
    let fm = FileManager.default
    let exists = fm.fileExists(atPath: path)
    func isZarrGroup() -> Bool {
      fm.fileExists(atPath: path + "/zarr.json") || fm.fileExists(atPath: path + "/.zgroup")
    }
    let isZarr = isZarrGroup()
    var joining = false
    switch mode {
    case .new:
      if exists {
        throw ZarrError(path: path, "exists; pass --overwrite to replace it or --resume to continue it", kind: .usage)
      }
    case .overwrite:
      if exists {
        guard isZarr else {
          throw ZarrError(path: path, "exists and is not a Zarr group; refusing to delete it", kind: .usage)
        }
        do { try fm.removeItem(atPath: path) } catch {
          throw ZarrError(path: path, "cannot remove the old output (\(error.localizedDescription))", kind: .io)
        }
      }
    case .resume, .join:
      // A folder a sibling process is creating this very moment (only what create writes, not yet
      // its group metadata) is created here too, with the same bytes.
      if exists, !isZarr, let entries = try? fm.contentsOfDirectory(atPath: path),
        entries.allSatisfy({ $0 == ".tessera" || Int($0) != nil || ($0.hasPrefix(".") && $0.hasSuffix(".tmp")) })
      {
        break
      }
      if exists {
        guard isZarr || isZarrGroup() else {
          throw ZarrError(
            path: path, "exists and is not a Zarr group; cannot \(mode == .resume ? "resume" : "write") it",
            kind: .usage)
        }
        let attributes = (try ZarrGroup.attributes(at: path))["tessera"] as? [String: Any]
        guard attributes?["layout"] as? String == spec.fingerprint else {
          throw ZarrError(
            path: path, "was written with different settings; resume needs the same command (or use --overwrite)",
            kind: .usage)
        }
        joining = true
      }
    }
    // The plan first: the first process to create the output writes it, every other one checks
    // its own plan against it (so two different plans never mix in one output).
    try ZarrStore.makeDirectory(path)
    // The image keeps the name it was created with: the name is not part of the fingerprint (a
    // renamed or relinked output still resumes), and finalizing writes the stored one.
    plan.spec.name = try plan.writeOrCheck(into: path).spec.name
    if !joining {
      try ZarrGroup.write(
        at: path, format: spec.format,
        attributes: [
          "tessera": ["status": "incomplete", "layout": spec.fingerprint, "plan": plan.fingerprint] as [String: Any]
        ])
    }
    var arrays: [ZarrArray] = []
    for level in 0..<spec.levels {
      let metadata = spec.arrayMetadata(level: level)
      let arrayPath = path + "/\(level)"
      // Joining: an array a sibling process has not written yet is written here (the same bytes).
      let existing =
        joining && (fm.fileExists(atPath: arrayPath + "/zarr.json") || fm.fileExists(atPath: arrayPath + "/.zarray"))
      arrays.append(existing ? try ZarrArray.open(arrayPath) : try ZarrArray.create(at: arrayPath, metadata: metadata))
      if existing, arrays[level].metadata != metadata {
        throw ZarrError(
          path: arrayPath, "level \(level) differs from the requested layout; use --overwrite", kind: .usage)
      }
    }
    let log = try ProgressLog(directory: journals(path), plan: plan.fingerprint, part: part.description)
    try log.start()  // the journal exists from the start: its part shows as started
    let records =
      mode == .resume && joining
      ? ProgressLog.read(directory: journals(path), plan: plan.fingerprint, blockCounts: spec.blockCounts).records
      : Array(repeating: [:], count: spec.levels)
    return OMEZarrImage(path: path, plan: plan, levels: arrays, records: records, log: log)
  }

  /// Opens an output read-only (its plan, its arrays, every journal of its plan).
  ///
  /// - Throws: ``ZarrError`` when `path` is not an output of `tessera fuse`.
  public static func open(at path: String) throws -> OMEZarrImage {
    let plan = try OutputPlan.read(from: path)
    let arrays = try (0..<plan.spec.levels).map { try ZarrArray.open(path + "/\($0)") }
    let contents = ProgressLog.read(
      directory: journals(path), plan: plan.fingerprint, blockCounts: plan.spec.blockCounts)
    return OMEZarrImage(path: path, plan: plan, levels: arrays, records: contents.records, log: nil)
  }

  /// True if block `block` (linear) of `level` has a record of this plan that its file agrees
  /// with: no file for an all-fill record, else a file of the recorded size (the checksum is
  /// what ``verify(threads:)`` reads the file for).
  public func isComplete(level: Int, block: Int) -> Bool {
    guard let list = records[level][block] else { return false }
    let array = levels[level]
    let file = array.file(of: array.grid.chunkIndex(linear: block))
    var status = stat()
    let size = stat(file, &status) == 0 ? Int(status.st_size) : 0
    return list.contains { $0.size == size || ($0.size < 0 && size > 0) }
  }

  /// True if block `block` (linear) of `level` has a record of this plan that its file matches
  /// exactly (size and CRC-32; no file for an all-fill record). Reads the file.
  public func isIntact(level: Int, block: Int) -> Bool {
    guard let list = records[level][block] else { return false }
    let array = levels[level]
    let file = array.file(of: array.grid.chunkIndex(linear: block))
    return BlockRecord.matches(FileManager.default.contents(atPath: file).map { [UInt8]($0) }, list)
  }

  /// Writes block `index` of `level` and records it as complete.
  public func writeBlock(level: Int, _ index: [Int], _ data: AnyVolumeBuffer) throws {
    try writeBlock(level: level, index) { _ in data }
  }

  /// Writes block `index` of `level` piece by piece (see ``ZarrArray/writeBlock(_:produce:)``)
  /// and records it as complete. Returns false if it was all fill.
  @discardableResult
  public func writeBlock(level: Int, _ index: [Int], produce: (Box) throws -> AnyVolumeBuffer?) throws -> Bool {
    guard let log else { throw ZarrError(path: path, "internal error: opened read-only", kind: .internal) }
    let array = levels[level]
    let stored = try array.writeBlockBytes(index, produce: produce)
    try log.record(.of(level: level, block: array.grid.linearIndex(ofChunk: index), bytes: stored))
    return stored != nil
  }
}

extension OMEZarrImageSpec {
  /// The Zarr array metadata of level `level`.
  func arrayMetadata(level: Int) -> ZarrArrayMetadata {
    let chunk = leadingOnes() + chunkShape
    var metadata = ZarrArrayMetadata(
      format: format, shape: arrayShape(level: level), chunkShape: shardShape.map { leadingOnes() + $0 } ?? chunk,
      innerChunkShape: shardShape == nil ? nil : chunk, dataType: dataType, fillValue: fillValue,
      compressor: compressor,
      // Zarr v2 has no dimension names (a v2 array reads back without them, so resume compares equal).
      dimensionNames: format == .v3 ? axisNames : nil)
    metadata.separator = "/"
    return metadata
  }
}
