import Foundation

/// Which blocks are complete: one append-only log per process under the output, so processes
/// never coordinate and a resumed run (any process) reads them all.
final class ProgressLog: @unchecked Sendable {
  let directory: String
  private let lock = NSLock()
  private var handle: FileHandle?

  init(directory: String) throws {
    self.directory = directory
    try ZarrStore.makeDirectory(directory)
  }

  private func open() throws -> FileHandle {
    if let handle { return handle }
    let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
    let file = directory + "/\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
    guard FileManager.default.createFile(atPath: file, contents: nil), let h = FileHandle(forWritingAtPath: file) else {
      throw ZarrError(path: file, "cannot create the progress log", kind: .io)
    }
    handle = h
    return h
  }

  /// Records block `block` of `level` as complete (after its data is in place).
  func record(level: Int, block: Int) throws {
    try lock.withLock {
      let h = try open()
      do {
        try h.write(contentsOf: Data("\(level) \(block)\n".utf8))
      } catch {
        throw ZarrError(
          path: directory, "cannot append to the progress log (\(error.localizedDescription))", kind: .io)
      }
    }
  }

  /// Completed blocks per level, from every log (a torn last line is ignored).
  func completed(levels: Int) throws -> [Set<Int>] {
    var out = Array(repeating: Set<Int>(), count: levels)
    let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for f in files where f.hasSuffix(".log") {
      guard let text = try? String(contentsOfFile: directory + "/" + f, encoding: .utf8) else { continue }
      // Only newline-terminated lines count: a torn last line ("0 1" of "0 12") is ignored.
      for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
        let parts = line.split(separator: " ")
        guard parts.count == 2, let l = Int(parts[0]), let b = Int(parts[1]), (0..<levels).contains(l) else { continue }
        out[l].insert(b)
      }
    }
    return out
  }

  deinit { try? handle?.close() }
}
