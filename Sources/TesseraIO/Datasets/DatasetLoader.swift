import Foundation
import TesseraCore

/// Opens a dataset from what a user types, and writes changed transforms back in the same format.
public enum DatasetLoader {
  /// Opens `paths`: one `.xml` (BigStitcher/BDV), one `.json` (tile manifest), or one or more
  /// HDF5 files whose datasets carry `position_um` attributes.
  ///
  /// - Returns: the dataset and any warnings (e.g. BDV calibration that disagrees with voxel
  ///   sizes).
  public static func open(_ paths: [String]) throws -> (dataset: Dataset, warnings: [String]) {
    guard let first = paths.first else {
      throw DatasetError(path: "", "no dataset given; pass a BDV .xml, a manifest .json, or HDF5 tile files")
    }
    let ext = (first as NSString).pathExtension.lowercased()
    switch ext {
    case "xml":
      guard paths.count == 1 else { throw DatasetError(path: first, "give one XML at a time") }
      return try BDVProject.load(first)
    case "json":
      guard paths.count == 1 else { throw DatasetError(path: first, "give one manifest at a time") }
      return (try TileManifest.load(first), [])
    default:
      return (try HDF5TileFiles.load(paths), [])
    }
  }

  /// Writes `dataset`'s (changed) transforms to `outputPath` in the format it came from: a BDV
  /// XML gains a `ViewTransform` named `transformName` in front of the existing ones; manifests
  /// and attribute-positioned HDF5 tiles get a new manifest (the tile files are never modified).
  public static func save(_ dataset: Dataset, to outputPath: String, transformName: String) throws {
    switch dataset.format {
    case .bdv:
      guard (outputPath as NSString).pathExtension.lowercased() == "xml" else {
        throw DatasetError(path: outputPath, "a BigStitcher project is written back as XML; name the output .xml")
      }
      try BDVProject.save(dataset, to: outputPath, transformName: transformName)
    case .manifest, .hdf5Attributes:
      guard (outputPath as NSString).pathExtension.lowercased() == "json" else {
        throw DatasetError(path: outputPath, "tile positions are written as a JSON manifest; name the output .json")
      }
      try TileManifest.save(dataset, to: outputPath)
    }
  }
}
