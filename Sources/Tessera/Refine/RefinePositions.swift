import TesseraCore
import TesseraRegistration

/// The `refine-positions` pipeline: register the tiles, move every view of each tile by its
/// correction. A job split into parts measures shares of the pairs
/// (``measurePart(_:paths:options:part:directory:progress:)``) and finishes with
/// ``solve(_:options:pairsIn:)``, which gives what ``run(_:options:progress:)`` gives.
public enum RefinePositions {
  /// Returns the dataset with corrected `viewToWorld` transforms and the registration report.
  public static func run(
    _ dataset: Dataset, options: RegistrationOptions, progress: (@Sendable (Int, Int) -> Void)? = nil
  ) throws -> (Dataset, RegistrationReport) {
    let report = try TileRegistration.register(dataset, options: options, progress: progress)
    return (corrected(dataset, by: report), report)
  }

  /// `dataset` with every view of each tile moved by the tile's correction in `report`.
  static func corrected(_ dataset: Dataset, by report: RegistrationReport) -> Dataset {
    var refined = dataset
    let corrections = Dictionary(uniqueKeysWithValues: report.tiles.map { ($0.tile, $0.correctionUm) })
    for i in refined.views.indices {
      guard let c = corrections[refined.views[i].tile], c.contains(where: { $0 != 0 }) else { continue }
      refined.views[i].viewToWorld = compose(AffineTransform(translation: c), refined.views[i].viewToWorld)
    }
    return refined
  }
}
