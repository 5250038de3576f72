import Foundation

/// One progress line on standard error: redrawn in place on a terminal; elsewhere (a log, a batch
/// job's output) written as whole lines — one every 10 s and the last; nothing when
/// quiet. `finish()` ends a redrawn line before whatever is printed next.
final class ProgressLine: @unchecked Sendable {  // state only touched under `lock`
  let quiet: Bool
  let terminal = isatty(STDERR_FILENO) != 0
  private let lock = NSLock()
  private let start = Date()
  private var lastLine = 0.0
  private var drew = false

  init(quiet: Bool) { self.quiet = quiet }

  /// Shows `terminal` (redrawn) or `log` (a whole line, if 10 s passed or this is the `last`).
  func show(terminal text: String, log: String, last: Bool) {
    guard !quiet else { return }
    lock.withLock {
      if terminal {
        FileHandle.standardError.write(Data("\r\(text)\u{1B}[K".utf8))
        drew = true
      } else {
        let elapsed = Date().timeIntervalSince(start)
        guard elapsed - lastLine >= 10 || last else { return }
        lastLine = elapsed
        FileHandle.standardError.write(Data("\(log)\n".utf8))
      }
    }
  }

  func finish() {
    lock.withLock {
      if drew { FileHandle.standardError.write(Data("\n".utf8)) }
      drew = false
    }
  }
}
