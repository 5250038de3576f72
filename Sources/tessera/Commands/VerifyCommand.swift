import ArgumentParser
import Foundation
import Tessera

struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check a fused output against its plan: every chunk present, recorded and intact.",
    discussion: """
      Reads every chunk (or shard) file of every level and compares its size and CRC-32 with the \
      completion records the writing processes journalled under OUTPUT/.tessera; checks that every chunk \
      the plan writes is there, that nothing the plan leaves empty has a file, and that the output is \
      finalized. Prints what is missing (never written), incomplete (written, not recorded: a process died \
      or is still running), corrupt (changed since it was written) or stale (from another plan), and exits \
      with status 65 when anything is, 0 when all is well. Needs only the output.

      Examples:
        tessera verify fused.ome.zarr
        tessera verify fused.ome.zarr --json
      """)

  @Argument(help: "An OME-Zarr output of tessera fuse.")
  var output: String

  @Option(help: "Threads reading chunk files (default: all cores).")
  var threads: Int = ProcessInfo.processInfo.activeProcessorCount

  @Flag(help: "Print the findings as one JSON object.")
  var json = false

  @Option(help: "List at most this many names per kind of problem.")
  var limit: Int = 10

  func run() throws {
    Parallel.limitThreads(to: threads)
    let start = ContinuousClock.now
    try OMEZarrImage.requireOutput(at: output)
    let image = try OMEZarrImage.open(at: output)
    let r = image.verify(threads: threads)
    let seconds = StageClock.seconds(since: start)
    if json {
      print(
        try jsonLine([
          "output": output, "valid": r.isValid, "finalized": r.finalized, "missing": r.missing,
          "incomplete": r.incomplete, "corrupt": r.corrupt, "stale": r.stale, "leftovers": r.leftovers,
          "parts": r.parts ?? NSNull(), "checkedFiles": r.checkedFiles, "checkedBytes": r.checkedBytes,
          "seconds": seconds,
        ]))
    } else {
      func list(_ what: String, _ names: [String], _ hint: String) {
        guard !names.isEmpty else { return }
        let shown = names.prefix(limit).joined(separator: ", ") + (names.count > limit ? ", …" : "")
        print("\(what) \(names.count): \(shown) (\(hint))")
      }
      list("missing   ", r.missing, "never written")
      list("incomplete", r.incomplete, "written but not recorded: its process died or is still running")
      list("corrupt   ", r.corrupt, "size or checksum differs from what was written")
      list("stale     ", r.stale, "from another plan, or where this plan writes nothing")
      list("leftovers ", r.leftovers, "temporary files of writers that crashed or are running; harmless")
      if let parts = r.parts { print("parts      \(parts)") }
      if !r.finalized { print("not finalized: run tessera finalize \(output) once every part is done") }
      print(
        String(
          format: "%@: %@; %d files, %@ checked in %.2f s", output, r.isValid ? "valid" : "NOT valid", r.checkedFiles,
          FusionJob.format(bytes: r.checkedBytes), seconds))
    }
    guard r.isValid else {
      let resume =
        r.missing.isEmpty && r.incomplete.isEmpty && r.corrupt.isEmpty
        ? "" : "; rerun the fusion (or its unfinished parts) with --resume to rewrite what is missing or damaged"
      throw CommandFailure(description: "\(output) is not a valid finished output" + resume, kind: .data)
    }
  }
}
