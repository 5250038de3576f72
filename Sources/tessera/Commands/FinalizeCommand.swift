import ArgumentParser
import Foundation
import Tessera

struct FinalizeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "finalize",
    abstract: "Finish an output that several processes fused: the pyramid levels and the OME metadata.",
    discussion: """
      Once every part of a multi-process `tessera fuse` is done (their journals under OUTPUT/.tessera say \
      so), builds the pyramid levels the parts did not build in their streams, from level 0 on disk, then \
      writes the OME-NGFF metadata, which makes the output a finished image. Needs only the output: its \
      plan is stored in it. Refuses, naming the parts that have not finished, while level 0 is incomplete; \
      does nothing for an output already finalized. A part run with --finalize (the default) finalizes \
      by itself when it is the last to finish.

      Examples:
        tessera finalize fused.ome.zarr
        tessera finalize fused.ome.zarr --threads 16 && tessera verify fused.ome.zarr
      """)

  @Argument(help: "An OME-Zarr output of tessera fuse.")
  var output: String

  @Option(help: "Threads (default: all cores).")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  func validate() throws {
    if threads < 1 { throw ValidationError("--threads must be at least 1") }
  }

  func run() throws {
    Interruption.install()
    Parallel.limitThreads(to: threads)
    let start = ContinuousClock.now
    try OMEZarrImage.requireOutput(at: output)  // before the lock file is made beside it
    let lock = try OutputLock(output: output, command: "finalize")
    defer { lock.release() }
    let did = try OMEZarrImage.finalize(at: output, threads: threads)
    print(
      did
        ? String(format: "finalized %@ in %.2f s (pyramid and metadata)", output, StageClock.seconds(since: start))
        : "\(output) is already finalized")
  }
}
