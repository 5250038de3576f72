import CDeflate
import Foundation

/// A completion record: block `block` (linear index in its level's block grid) of `level` is
/// stored as one file of `size` bytes whose CRC-32 is `crc`, or, with `size` 0, is all fill and
/// has no file. `size` −1: recorded by a version that kept no checksums.
public struct BlockRecord: Sendable, Hashable {
  public var level: Int
  public var block: Int
  public var size: Int
  public var crc: UInt32

  public init(level: Int, block: Int, size: Int, crc: UInt32) {
    self.level = level
    self.block = block
    self.size = size
    self.crc = crc
  }

  /// The record of `bytes` stored for a block (nil: all fill, nothing stored).
  public static func of(level: Int, block: Int, bytes: [UInt8]?) -> BlockRecord {
    guard let bytes else { return BlockRecord(level: level, block: block, size: 0, crc: 0) }
    return BlockRecord(level: level, block: block, size: bytes.count, crc: crc32(bytes))
  }

  /// True if `bytes` (a block's file, nil when there is none) is what some record of `records`
  /// says was stored: no file for an all-fill record, else the size and CRC-32 (any file for a
  /// record of an older version, which kept no checksum).
  public static func matches(_ bytes: [UInt8]?, _ records: [BlockRecord]) -> Bool {
    guard let bytes else { return records.contains { $0.size == 0 } }
    let crc = crc32(bytes)
    return records.contains { ($0.size == bytes.count && $0.crc == crc) || $0.size < 0 }
  }

  /// CRC-32 (the zlib/gzip polynomial; libdeflate's `libdeflate_crc32`).
  public static func crc32(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { UInt32(libdeflate_crc32(0, $0.baseAddress, $0.count)) }
  }
}

/// Which blocks are complete: one append-only journal per process under the output
/// (`.tessera/progress/HOST-PID-RANDOM.log`), so processes never coordinate and any process reads
/// them all. A journal starts with a header naming the plan and the part it fills, holds one
/// line per stored block (`level block size crc32`, written after the block's file is in place),
/// and ends with a `done` line when its part finished. A torn last line (a killed process) is
/// ignored: its block is done again.
public final class ProgressLog: @unchecked Sendable {  // `handle` is guarded by `lock`
  let directory: String
  /// Header fields: the plan's fingerprint and the part this process fills.
  let plan: String
  let part: String
  private let lock = NSLock()
  private var handle: FileHandle?

  init(directory: String, plan: String, part: String) throws {
    self.directory = directory
    self.plan = plan
    self.part = part
    try ZarrStore.makeDirectory(directory)
  }

  private func open() throws -> FileHandle {
    if let handle { return handle }
    let host = OutputLock.hostName.replacingOccurrences(of: "/", with: "_")
    let file = directory + "/\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
    let header = "# tessera journal 1 plan=\(plan) part=\(part) host=\(host) pid=\(getpid())\n"
    guard FileManager.default.createFile(atPath: file, contents: Data(header.utf8)),
      let h = FileHandle(forWritingAtPath: file)
    else {
      throw ZarrError(path: file, "cannot create the progress log", kind: .io)
    }
    try h.seekToEnd()
    handle = h
    return h
  }

  /// Creates this process's journal (with its header) now rather than at the first record.
  func start() throws { _ = try lock.withLock { try open() } }

  private func append(_ line: String) throws {
    try lock.withLock {
      let h = try open()
      do {
        try h.write(contentsOf: Data(line.utf8))
      } catch {
        throw ZarrError(
          path: directory, "cannot append to the progress log (\(error.localizedDescription))", kind: .io)
      }
    }
  }

  /// Records a block as complete (after its data is in place).
  func record(_ r: BlockRecord) throws {
    try append("\(r.level) \(r.block) \(r.size) \(String(r.crc, radix: 16))\n")
  }

  /// Marks this process's part as finished and flushes the journal to disk (so other machines
  /// see it: network filesystems publish a file's writes at close).
  func finishPart() throws {
    try append("done\n")
    try lock.withLock {
      try handle?.synchronize()
      try handle?.close()
      handle = nil
    }
  }

  /// Flushes and closes the journal (a later record opens a new one).
  func close() {
    lock.withLock {
      try? handle?.synchronize()
      try? handle?.close()
      handle = nil
    }
  }

  deinit { try? handle?.close() }

  /// What the journals under `directory` say.
  public struct Contents: Sendable {
    /// Per level: block → every distinct record of it in journals of this plan.
    public var records: [[Int: [BlockRecord]]]
    /// Journals written for another plan (file names).
    public var stale: [String]
    /// Parts ("i/N") whose journal ends with `done`.
    public var finishedParts: Set<String>
    /// Parts that have a journal of this plan.
    public var startedParts: Set<String>
  }

  /// Reads every journal of `directory` for `plan`, whose levels have `blockCounts` blocks
  /// (journals of version-0 outputs, without a header, count as this plan's).
  static func read(directory: String, plan: String, blockCounts: [Int]) -> Contents {
    let levels = blockCounts.count
    var out = Contents(
      records: Array(repeating: [:], count: levels), stale: [], finishedParts: [], startedParts: [])
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    for f in files where f.hasSuffix(".log") {
      guard let text = try? String(contentsOfFile: directory + "/" + f, encoding: .utf8) else { continue }
      // Only newline-terminated lines count: a torn last line ("0 1" of "0 12 …") is ignored.
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
      var part = "0/1"
      let headed = lines.first?.hasPrefix("# tessera journal") == true
      if headed, let header = lines.first {
        let fields = Dictionary(
          header.split(separator: " ").compactMap { field -> (String, String)? in
            let kv = field.split(separator: "=", maxSplits: 1)
            return kv.count == 2 ? (String(kv[0]), String(kv[1])) : nil
          }, uniquingKeysWith: { a, _ in a })
        if fields["plan"] != plan {
          out.stale.append(f)
          continue
        }
        part = fields["part"] ?? part
      }
      out.startedParts.insert(part)
      for line in lines where !line.hasPrefix("#") {
        if line == "done" {
          out.finishedParts.insert(part)
          continue
        }
        // Records of blocks outside their level's grid (a damaged journal) are ignored; two-field
        // records (no size, no checksum) only count in the headerless journals of older versions.
        let p = line.split(separator: " ")
        guard p.count == (headed ? 4 : 2), let l = Int(p[0]), let b = Int(p[1]), (0..<levels).contains(l),
          (0..<blockCounts[l]).contains(b)
        else { continue }
        var r = BlockRecord(level: l, block: b, size: -1, crc: 0)
        if p.count == 4 {
          guard let size = Int(p[2]), let crc = UInt32(p[3], radix: 16) else { continue }
          (r.size, r.crc) = (size, crc)
        }
        if !(out.records[l][b]?.contains(r) ?? false) { out.records[l][b, default: []].append(r) }
      }
    }
    return out
  }
}
