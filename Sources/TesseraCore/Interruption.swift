import Dispatch
import Foundation
import Synchronization

/// Graceful stops: after ``install()``, the first SIGINT or SIGTERM (what SLURM sends before it
/// kills a job at its time limit) only sets a flag, which long jobs check between units of work
/// (``check(_:)``) so they stop at a clean boundary with everything finished so far recorded; a
/// second signal ends the process at once (status 130).
public enum Interruption {
  /// The first signal received, 0 for none.
  private static let received = Atomic<Int32>(0)
  nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []
  private static let installed = Mutex(false)

  /// Routes SIGINT and SIGTERM to the flag (idempotent). Only commands that check it install it;
  /// elsewhere the signals keep their default action.
  public static func install() {
    installed.withLock { done in
      guard !done else { return }
      done = true
      for number in [SIGINT, SIGTERM] {
        Glibc.signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler {
          if !received.compareExchange(expected: 0, desired: number, ordering: .relaxed).exchanged {
            _exit(FailureKind.interrupted.rawValue)
          }
        }
        source.resume()
        sources.append(source)
      }
    }
  }

  /// The signal that asked for a stop, if one did.
  public static var signal: Int32? {
    let s = received.load(ordering: .relaxed)
    return s == 0 ? nil : s
  }

  /// Throws ``Interrupted`` if a stop was asked for; `progress` says what is done (for the message).
  public static func check(_ progress: @autoclosure () -> String) throws {
    if let s = signal { throw Interrupted(signal: s, progress: progress()) }
  }
}

/// A run stopped by SIGINT or SIGTERM at a clean boundary.
public struct Interrupted: ClassifiedError, CustomStringConvertible {
  public var signal: Int32
  /// What was finished and how to continue.
  public var progress: String
  public var kind: FailureKind { .interrupted }

  public init(signal: Int32, progress: String) {
    self.signal = signal
    self.progress = progress
  }
  public var description: String { "interrupted by \(signal == SIGTERM ? "SIGTERM" : "SIGINT"); \(progress)" }
}
