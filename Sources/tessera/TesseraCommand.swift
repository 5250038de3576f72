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
