import ArgumentParser
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
      """,
    version: "\(Tessera.version) (\(LinkedLibraries.summary))",
    subcommands: [
      InfoCommand.self, RefinePositionsCommand.self, FuseCommand.self, ExtractCommand.self, ShiftTilesCommand.self,
      ConvertCommand.self,
      SimulateCommand.self,
      BenchCommand.self,
    ]
  )
}

/// A bad argument, reported as one line (`Error: …`) and a non-zero exit, without the usage text
/// that `ValidationError` would add.
struct UsageError: Error, CustomStringConvertible {
  let description: String
  init(_ message: String) { description = message }
}
