import ArgumentParser
import Foundation
import Tessera

@main
struct TesseraCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "tessera",
    abstract: "Register and fuse tiled microscopy volumes into OME-Zarr.",
    discussion: """
      Tessera reads tiled 2D/3D acquisitions (BigStitcher/BigDataViewer XML+HDF5, or HDF5 tiles with a JSON \
      manifest), corrects stage positions by phase correlation, and fuses all tiles chunk by chunk, in parallel \
      and with bounded memory, into OME-Zarr.

      Exit status: 0 success, 64 usage error (bad arguments, an existing output without --overwrite or \
      --resume), 65 bad input data (missing, malformed or corrupt files), 74 I/O failure (disk full, \
      permission denied; worth retrying, with --resume for fuse), 75 busy (another process is writing the \
      output; run again when it is done), 70 internal error (a bug: please report it), 130 interrupted (SIGINT or SIGTERM to fuse, which stops at a chunk boundary and can be resumed, \
      refine-positions or bench).
      """,
    version: "\(Tessera.version) (\(LinkedLibraries.summary))",
    subcommands: [
      InfoCommand.self, RefinePositionsCommand.self, FuseCommand.self, FinalizeCommand.self, VerifyCommand.self,
      ExtractCommand.self, ShiftTilesCommand.self,
      ConvertCommand.self, PreviewCommand.self,
      SimulateCommand.self, SlurmCommand.self,
      BenchCommand.self,
    ]
  )
}

/// A bad argument, reported as one line (`Error: …`) and exit status 64, without the usage text
/// that `ValidationError` would add.
struct UsageError: ClassifiedError, CustomStringConvertible {
  let description: String
  var kind: FailureKind { .usage }
  init(_ message: String) { description = message }
}

/// A failure of a stated kind (a child process's, a self-check's), reported as one line.
struct CommandFailure: ClassifiedError, CustomStringConvertible {
  let description: String
  let kind: FailureKind
}

extension TesseraCommand {
  /// Runs the command; a failure prints one line (`Error: …`) and exits with its kind's status
  /// (``FailureKind``). Argument-parsing errors, help and version keep ArgumentParser's handling
  /// (usage text, status 64 or 0).
  static func main() async {
    raiseOpenFileLimit()
    do {
      var command = try parseAsRoot()
      if var async = command as? AsyncParsableCommand {
        try await async.run()
      } else {
        try command.run()
      }
    } catch {
      let parserCode = exitCode(for: error)
      if parserCode == .success || parserCode == .validationFailure, !(error is any ClassifiedError) {
        exit(withError: error)
      }
      let kind = FailureKind.of(error)
      let text = error is any ClassifiedError ? "\(error)" : message(for: error)
      FileHandle.standardError.write(Data("Error: \(text.oneLine)\n".utf8))
      Foundation.exit(kind.rawValue)
    }
  }
}

/// Raises this process's soft limit on open files to its hard limit. Every tile file stays open
/// for reading (one descriptor each) and output chunks are written meanwhile, so an acquisition
/// of a thousand tile files would exceed Linux's usual soft limit of 1024, which exists for old
/// `select` users, not as a policy; the hard limit is the administrator's. Processes Tessera starts
/// (the benchmark's children) inherit the raised limit.
func raiseOpenFileLimit() {
  var limit = rlimit()
  guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
  // Linux keeps the hard limit at or below fs.nr_open, so a soft limit equal to it is accepted.
  limit.rlim_cur = limit.rlim_max
  _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}
