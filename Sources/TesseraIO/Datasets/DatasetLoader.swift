import Foundation
import TesseraCore

/// A format datasets are read from and written back to: a BigStitcher/BDV XML, a tile manifest,
/// HDF5 files with position attributes. Adding one is a type conforming to this protocol and a
/// line in ``DatasetLoader/formats``.
public protocol DatasetFormat {
  /// The name a dataset of this format carries (``Dataset/format``) and `tessera info` shows.
  static var name: String { get }
  /// Whether `paths` (non-empty) name a dataset of this format: by extension, not by reading.
  static func probe(_ paths: [String]) -> Bool
  /// Opens the dataset, checking it whole before returning (files readable, shapes agree with
  /// the metadata, positions finite, transforms invertible, one rank).
  ///
  /// - Returns: the dataset and warnings (e.g. BDV calibration that disagrees with voxel sizes).
  static func open(_ paths: [String]) throws -> (dataset: Dataset, warnings: [String])
  /// Writes `dataset`'s changed transforms to `outputPath`, compared with those it was opened
  /// with, in this format (or the one this format is written back in).
  static func save(_ dataset: Dataset, to outputPath: String, transformName: String) throws
}

/// Opens a dataset from what a user types, and writes changed transforms back in the same format.
public enum DatasetLoader {
  /// The formats, tried in order: the first whose ``DatasetFormat/probe(_:)`` accepts the paths
  /// opens them (HDF5 tile files accept anything else).
  public static let formats: [any DatasetFormat.Type] = [BDVProject.self, TileManifest.self, HDF5TileFiles.self]

  /// Opens `paths`: one `.xml` (BigStitcher/BDV), one `.json` (tile manifest), or one or more
  /// HDF5 files whose datasets carry `position_um` attributes.
  ///
  /// - Returns: the dataset and any warnings (e.g. BDV calibration that disagrees with voxel
  ///   sizes).
  public static func open(_ paths: [String]) throws -> (dataset: Dataset, warnings: [String]) {
    guard !paths.isEmpty else {
      throw DatasetError(path: "", "no dataset given; pass a BDV .xml, a manifest .json, or HDF5 tile files")
    }
    let format = formats.first { $0.probe(paths) } ?? HDF5TileFiles.self
    return try format.open(paths)
  }

  /// Writes `dataset`'s (changed) transforms to `outputPath` in the format it came from: a BDV
  /// XML gains a `ViewTransform` named `transformName` in front of the existing ones; manifests
  /// and attribute-positioned HDF5 tiles get a new manifest (the tile files are never modified).
  public static func save(_ dataset: Dataset, to outputPath: String, transformName: String) throws {
    guard let format = formats.first(where: { $0.name == dataset.format }) else {
      throw DatasetError(path: dataset.path, "datasets of format \"\(dataset.format)\" cannot be written back")
    }
    try format.save(dataset, to: outputPath, transformName: transformName)
  }

  /// The extension of `path`, lower case.
  static func pathExtension(_ path: String) -> String { (path as NSString).pathExtension.lowercased() }
}

extension BDVProject: DatasetFormat {
  public static let name = "bdv"
  public static func probe(_ paths: [String]) -> Bool { DatasetLoader.pathExtension(paths[0]) == "xml" }
  public static func open(_ paths: [String]) throws -> (dataset: Dataset, warnings: [String]) {
    guard paths.count == 1 else { throw DatasetError(path: paths[0], "give one XML at a time") }
    return try load(paths[0])
  }
}

extension TileManifest: DatasetFormat {
  public static let name = "manifest"
  public static func probe(_ paths: [String]) -> Bool { DatasetLoader.pathExtension(paths[0]) == "json" }
  public static func open(_ paths: [String]) throws -> (dataset: Dataset, warnings: [String]) {
    guard paths.count == 1 else { throw DatasetError(path: paths[0], "give one manifest at a time") }
    return (try load(paths[0]), [])
  }
  public static func save(_ dataset: Dataset, to outputPath: String, transformName: String) throws {
    guard DatasetLoader.pathExtension(outputPath) == "json" else {
      throw DatasetError(path: outputPath, "tile positions are written as a JSON manifest; name the output .json")
    }
    try save(dataset, to: outputPath)
  }
}

/// Attribute-positioned HDF5 tiles are written back as a manifest (the tile files are never
/// modified).
extension HDF5TileFiles: DatasetFormat {
  public static let name = "hdf5Attributes"
  public static func probe(_ paths: [String]) -> Bool { true }
  public static func open(_ paths: [String]) throws -> (dataset: Dataset, warnings: [String]) {
    (try load(paths), [])
  }
  public static func save(_ dataset: Dataset, to outputPath: String, transformName: String) throws {
    try TileManifest.save(dataset, to: outputPath, transformName: transformName)
  }
}
