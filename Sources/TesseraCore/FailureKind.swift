import Foundation

/// What kind of failure ended a run, and the process exit status it gives (sysexits.h values, so
/// scripts and schedulers can tell a job worth retrying — I/O — from one that needs new input or
/// new arguments).
public enum FailureKind: Int32, Sendable, CaseIterable {
  /// Bad arguments or options (EX_USAGE).
  case usage = 64
  /// Bad input data: missing, malformed, corrupt or inconsistent files (EX_DATAERR).
  case data = 65
  /// A bug: an error Tessera did not expect (EX_SOFTWARE).
  case `internal` = 70
  /// Reading or writing failed: disk full, permission denied, a path that cannot be created
  /// (EX_IOERR).
  case io = 74
  /// Another process holds the output (EX_TEMPFAIL): run again once it is done.
  case busy = 75
  /// Stopped by a signal: the shell's 128 + SIGINT.
  case interrupted = 130

  /// The kind of `error`: its own for errors that know it, I/O for the system's file errors,
  /// internal for anything else.
  public static func of(_ error: any Error) -> FailureKind {
    if let known = error as? any ClassifiedError { return known.kind }
    if error is DecodingError { return .data }
    if let cocoa = error as? CocoaError {
      // Files that are not there or cannot be parsed are the input's fault; the rest is I/O.
      let input: [CocoaError.Code] = [
        .fileNoSuchFile, .fileReadNoSuchFile, .fileReadCorruptFile, .fileReadUnknownStringEncoding,
        .fileReadInapplicableStringEncoding, .propertyListReadCorrupt, .coderReadCorrupt,
      ]
      return input.contains(cocoa.code) ? .data : .io
    }
    let ns = error as NSError  // POSIXError and other bridged system errors
    if ns.domain == NSPOSIXErrorDomain || ns.domain == NSCocoaErrorDomain { return .io }
    return .internal
  }
}

/// An error that knows its ``FailureKind``.
public protocol ClassifiedError: Error {
  var kind: FailureKind { get }
}

extension GeometryError: ClassifiedError {
  public var kind: FailureKind { .data }
}

/// An option the input cannot satisfy (a channel it lacks, a shard shape that does not hold whole
/// chunks, a budget too small for the work): names the option, not the input file; a usage error.
public struct OptionError: ClassifiedError, CustomStringConvertible, Sendable, Equatable {
  /// The option at fault, as the command line spells it ("--shard").
  public var option: String
  public var message: String
  public var kind: FailureKind { .usage }

  public init(_ option: String, _ message: String) {
    self.option = option
    self.message = message
  }

  public var description: String { "\(option): \(message)".oneLine }
}

extension String {
  /// The text on one line: line breaks, tabs and other control characters (quoted from a damaged
  /// file, say) escaped as `\n`, `\r`, `\t`, `\u{…}`. Every error Tessera prints is one line.
  public var oneLine: String {
    guard unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return self }
    return unicodeScalars.map { c in
      switch c {
      case "\n": "\\n"
      case "\r": "\\r"
      case "\t": "\\t"
      default: c.properties.generalCategory == .control ? "\\u{\(String(c.value, radix: 16))}" : String(c)
      }
    }.joined()
  }
}
