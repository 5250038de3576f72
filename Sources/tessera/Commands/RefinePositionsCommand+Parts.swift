import ArgumentParser
import Foundation
import Tessera

/// `refine-positions` split into parts: `--pairs-out DIR` measures this process's share of the
/// pairs, `--solve DIR` solves from all of them.
extension RefinePositionsCommand {
  /// Measures the share of the part given by --part or the launcher (the whole job without
  /// either) and writes its pair file to `directory`.
  func runPart(_ data: Dataset, options: RegistrationOptions, to directory: String, start: Date) throws {
    let resolved = try Part.resolve(
      part: part, count: partCount, environment: ProcessInfo.processInfo.environment)
    let part = resolved?.part ?? .whole
    let source = resolved?.source ?? "one process"
    if dryRun {
      let plan = try TileRegistration.plan(data, options: options)
      let share = plan.share(part)
      print(
        "\(share.count) of \(plan.pairs.count) pairs to register in part \(part) (\(source); \(data.tiles.count) tiles):"
      )
      for p in plan.pairs[share] { print(Self.describe(p)) }
      return
    }
    let progress = ProgressLine(quiet: quiet)
    let result: RefinePositions.PartResult
    do {
      result = try RefinePositions.measurePart(
        data, paths: dataset, options: options, part: part, directory: directory
      ) { done, total in
        progress.show(
          terminal: "part \(part): pairs \(done)/\(total)", log: "part \(part): pairs \(done)/\(total)",
          last: done == total)
      }
    } catch {
      progress.finish()
      throw error
    }
    progress.finish()
    let seconds = Date().timeIntervalSince(start)
    if json {
      print(
        try jsonLine([
          "part": part.index, "parts": part.count, "source": source, "pairs": result.pairs.count,
          "firstPair": result.pairs.lowerBound, "totalPairs": result.pairCount, "pairFile": result.path,
          "seconds": seconds,
        ]))
    } else {
      print(
        String(
          format: "part %@ (%@): %d of %d pairs measured in %.2f s → %@", part.description, source,
          result.pairs.count, result.pairCount, seconds, result.path))
    }
  }

  /// Solves from every part's pair file in `directory` and writes what a single process would:
  /// the dataset and the measurement options default to those the parts recorded.
  func runSolve(from directory: String, start: Date) throws {
    let recorded = try PairFile.first(in: directory)
    let (data, _) = try DatasetLoader.open(dataset.isEmpty ? recorded.dataset : dataset)
    var options = try registrationOptions(for: data, recorded: recorded.options)
    let (output, report) = try checkOutputs(data)
    let clock = stageTimes.map { _ in StageClock() }
    options.stageClock = clock
    clock?.add(.plan, seconds: Date().timeIntervalSince(start))
    let (refined, result) = try RefinePositions.solve(data, options: options, pairsIn: directory)
    try write(refined, result, of: data, options: options, output: output, report: report, start: start)
  }
}
