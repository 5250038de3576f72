import Foundation
import TesseraCore

/// Tessera's JSON tile manifest: a list of HDF5 datasets with their stage positions.
///
/// ```json
/// {
///   "tessera_manifest": 1,
///   "voxel_size_um": [2.0, 0.406, 0.406],
///   "stage_axes": ["z", "y", "x"],
///   "tiles": [
///     {"file": "tile_000.h5", "dataset": "ch0", "tile": 0, "channel": 0, "position_um": [0, 0, 0]},
///     {"file": "tile_001.h5", "dataset": "ch0", "tile": 1, "channel": 0, "position_um": [0, 0, 44.6]},
///     {"file": "tile_002.h5", "dataset": "ch0", "tile": 2, "channel": 0,
///      "affine": [[2.0, 0, 0, 0], [0, 0.406, 0, 44.6], [0, 0, 0.406, 0]]}
///   ]
/// }
/// ```
///
/// - `position_um`: world position (µm) of the voxel at index 0, one number per axis.
/// - `voxel_size_um`: per tile, or once at the top level for all tiles.
/// - `affine`: instead of a position and voxel size, the full voxel-index → µm transform, as
///   N rows of N+1 numbers (or N+1 rows with a last row of `0 … 0 1`), all in z,y,x order.
/// - `stage_axes` (top level or per tile, optional): the image axis each `position_um` component
///   moves along, with `-` for a stage axis that runs against the camera's, e.g.
///   `["x", "y", "z"]` for positions given as x,y,z, or `["z", "-y", "x"]` for a flipped y stage.
///   Default: z,y,x (y,x in 2D), positions already in image order.
/// - `tile` and `channel` default to the tile's index in the list and 0; `timepoint` to 0.
/// - Relative `file` paths are relative to the manifest's directory.
/// - A bare JSON list of tile entries (`[{"file": …}, …]`) is accepted as the `tiles` list of a
///   manifest without top-level keys (voxel sizes then per tile).
public enum TileManifest {
  struct Document: Codable {
    var tessera_manifest: Int? = nil
    var voxel_size_um: [Double]? = nil
    var stage_axes: [String]? = nil
    var tiles: [Entry]
  }

  struct Entry: Codable {
    var file: String
    var dataset: String
    var tile: Int?
    var channel: Int?
    var timepoint: Int?
    var position_um: [Double]?
    var voxel_size_um: [Double]?
    var stage_axes: [String]?
    var affine: [[Double]]?
  }

  /// Loads a manifest.
  ///
  /// - Throws: ``DatasetError`` naming the manifest and the tile for malformed JSON, missing keys,
  ///   NaN/Inf positions, non-positive voxel sizes, rank mismatches, and missing files or datasets.
  public static func load(_ path: String) throws -> Dataset {
    guard FileManager.default.fileExists(atPath: path) else {
      throw DatasetError(path: path, "no such file; check the path")
    }
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    let doc: Document
    do {
      // A bare list of tile entries (what many acquisition scripts write) is the tiles list of a
      // manifest with no top-level keys.
      let isList = data.first { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) } == UInt8(ascii: "[")
      doc =
        isList
        ? Document(tiles: try JSONDecoder().decode([Entry].self, from: data))
        : try JSONDecoder().decode(Document.self, from: data)
    } catch let error as DecodingError {
      throw DatasetError(path: path, "malformed manifest: \(describe(error)); see README for the format")
    } catch {
      throw DatasetError(path: path, "malformed manifest: \(error.localizedDescription)")
    }
    guard !doc.tiles.isEmpty else { throw DatasetError(path: path, element: "tiles", "the manifest lists no tiles") }
    let directory = (path as NSString).deletingLastPathComponent
    var files = FileCache()
    var views: [View] = []
    let filePaths = doc.tiles.map { entry in
      entry.file.hasPrefix("/")
        ? entry.file : ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(entry.file)
    }
    // Each file's HDF5 handles are given back after its last entry (``FileCache/finish(_:)``).
    var lastEntry: [String: Int] = [:]
    for (i, filePath) in filePaths.enumerated() { lastEntry[filePath] = i }
    for (i, entry) in doc.tiles.enumerated() {
      let element = "tiles[\(i)] (\(entry.file):\(entry.dataset))"
      let filePath = filePaths[i]
      guard FileManager.default.fileExists(atPath: filePath) else {
        throw DatasetError(path: path, element: element, "file \(filePath) does not exist")
      }
      let file = try files.open(filePath)
      guard file.isDataset(entry.dataset) else {
        throw DatasetError(
          path: filePath, element: entry.dataset,
          "no such dataset (named by \(path) \(element)); list them with h5ls -r")
      }
      let d = try files.dataset(entry.dataset, in: filePath)
      let geometry = try TileGeometry(
        rank: d.rank, position: entry.position_um, voxelSize: entry.voxel_size_um ?? doc.voxel_size_um,
        stageAxes: entry.stage_axes ?? doc.stage_axes, affine: entry.affine, path: path, element: element)
      views.append(
        View(
          id: ViewID(timepoint: entry.timepoint ?? 0, setup: i), name: "\(entry.file):\(entry.dataset)",
          tile: entry.tile ?? i, channel: entry.channel ?? 0, elementType: d.elementType, shape: d.shape,
          voxelSize: geometry.voxelSize, viewToWorld: geometry.viewToWorld,
          reader: HDF5ViewReader(levels: [d], elementType: d.elementType)))
      if lastEntry[filePath] == i { files.finish(filePath) }
    }
    try checkSameRank(views, path)
    return Dataset(path: path, format: name, views: views)
  }

  /// Writes a manifest for `dataset` (whose views must be read from HDF5 datasets), with each
  /// view's full `affine`, so any change to the transforms survives exactly. File paths are
  /// written relative to the new manifest when possible.
  public static func save(_ dataset: Dataset, to path: String) throws {
    let directory = URL(fileURLWithPath: (path as NSString).deletingLastPathComponent).standardizedFileURL.path
    var tiles: [Entry] = []
    for view in dataset.views {
      guard let location = view.reader.location else {
        throw DatasetError(path: path, element: view.name, "only views stored in files can be written to a manifest")
      }
      let file = URL(fileURLWithPath: location.file).standardizedFileURL.path
      let relative = file.hasPrefix(directory + "/") ? String(file.dropFirst(directory.count + 1)) : file
      tiles.append(
        Entry(
          file: relative, dataset: location.dataset, tile: view.tile, channel: view.channel,
          timepoint: view.id.timepoint, position_um: nil, voxel_size_um: view.voxelSize, stage_axes: nil,
          affine: Array(view.viewToWorld.homogeneousMatrix.dropLast())))
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(Document(tessera_manifest: 1, voxel_size_um: nil, stage_axes: nil, tiles: tiles))
    try AtomicFile.write(data, to: path)
  }

  /// One line describing a JSON decoding error with its key path.
  static func describe(_ error: DecodingError) -> String {
    // Paths as the user wrote them: tiles[3].position_um (a bare list's entries are tiles[i] too).
    func key(_ path: [any CodingKey]) -> String {
      let text = path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
      return text.hasPrefix("[") ? "tiles" + text : String(text.drop { $0 == "." })
    }
    func place(_ path: [any CodingKey]) -> String { path.isEmpty ? "the top level" : key(path) }
    switch error {
    case .dataCorrupted(let c):
      let underlying = (c.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
      return c.codingPath.isEmpty
        ? "not valid JSON (\(underlying ?? c.debugDescription))" : "\(key(c.codingPath)): \(c.debugDescription)"
    case .keyNotFound(let k, let c):
      if c.codingPath.isEmpty {
        return "the top level has no \"\(k.stringValue)\" (a manifest is {\"tiles\": [...]} or a list of tile entries)"
      }
      return "\(place(c.codingPath)) has no \"\(k.stringValue)\" (each tile needs \"file\" and \"dataset\")"
    case .typeMismatch(let type, let c):
      // "Expected to decode Double but found a string instead." → "a string".
      let found = c.debugDescription.range(of: "but found ").map { range in
        String(c.debugDescription[range.upperBound...]).replacingOccurrences(of: " instead.", with: "")
          .replacingOccurrences(of: "a dictionary", with: "an object ({ ... })")
          .replacingOccurrences(of: "an array", with: "a list ([ ... ])")
      }.map { $0.hasPrefix("a ") || $0.hasPrefix("an ") || $0 == "null" ? $0 : "a " + $0 }
      let expected =
        c.codingPath.isEmpty
        ? "an object with a \"tiles\" list, or a list of tile entries" : words(for: c.codingPath, type: type)
      return "\(place(c.codingPath)) should be \(expected)\(found.map { ", but it is \($0)" } ?? "")"
    case .valueNotFound(let type, let c):
      return "\(place(c.codingPath)) is null; it should be \(words(for: c.codingPath, type: type))"
    @unknown default: return "\(error)"
    }
  }

  /// What the value at `path` should be, in plain words (by its key where the decoder reports
  /// only a container type).
  static func words(for path: [any CodingKey], type: Any.Type) -> String {
    let last = path.last { $0.intValue == nil }?.stringValue
    let inList = path.last?.intValue != nil
    switch (last, inList) {
    case ("tiles", false): return "a list of tile entries"
    case ("tiles", true): return "an object ({ ... }) with \"file\" and \"dataset\""
    case ("position_um", false), ("voxel_size_um", false): return "a list of numbers, like [0, 0, 0]"
    case ("affine", false): return "a list of rows of numbers"
    case ("affine", true):
      return path.count >= 2 && path[path.count - 2].intValue != nil
        ? "a number" : "a row of numbers"
    case ("stage_axes", false): return "a list of axis names, like [\"x\", \"y\", \"z\"]"
    case ("position_um", true), ("voxel_size_um", true): return "a number"
    case ("stage_axes", true): return "an axis name in quotes"
    case ("file", _), ("dataset", _): return "text in quotes"
    case ("tile", _), ("channel", _), ("timepoint", _), ("tessera_manifest", _): return "a whole number"
    default:
      switch type {
      case is Double.Type, is Float.Type: return "a number"
      case is Int.Type: return "a whole number"
      case is String.Type: return "text in quotes"
      default: return "a value of another kind"
      }
    }
  }

}

/// A tile's placement from a stage position and voxel size, or from a full affine.
struct TileGeometry {
  var voxelSize: [Double]
  var viewToWorld: AffineTransform

  init(
    rank: Int, position: [Double]?, voxelSize: [Double]?, stageAxes: [String]?, affine: [[Double]]?, path: String,
    element: String
  ) throws {
    if let affine {
      let t: AffineTransform
      do {
        t = try AffineTransform(matrix: affine)
      } catch {
        throw DatasetError(path: path, element: "\(element).affine", "\(error)")
      }
      guard t.rank == rank else {
        throw DatasetError(
          path: path, element: "\(element).affine", "is \(t.rank)-D but the dataset has \(rank) axes")
      }
      guard abs(t.determinant) > 1e-12 else {
        throw DatasetError(path: path, element: "\(element).affine", "is singular (a zero scale or collapsed axes)")
      }
      self.viewToWorld = t
      // Voxel size: lengths of the columns of the linear part.
      self.voxelSize = (0..<rank).map { c in (0..<rank).map { t[$0, c] * t[$0, c] }.reduce(0, +).squareRoot() }
      if let voxelSize, voxelSize.count == rank { self.voxelSize = voxelSize }
      return
    }
    guard let position else {
      throw DatasetError(
        path: path, element: element, "needs \"position_um\" (or a full \"affine\") to place the tile")
    }
    guard let voxelSize else {
      throw DatasetError(
        path: path, element: element, "needs \"voxel_size_um\", on the tile or at the top level of the manifest")
    }
    guard position.count == rank else {
      throw DatasetError(
        path: path, element: "\(element).position_um", "has \(position.count) values but the dataset has \(rank) axes")
    }
    guard voxelSize.count == rank else {
      throw DatasetError(
        path: path, element: "\(element).voxel_size_um",
        "has \(voxelSize.count) values but the dataset has \(rank) axes")
    }
    guard position.allSatisfy(\.isFinite) else {
      throw DatasetError(path: path, element: "\(element).position_um", "contains NaN or infinity: \(position)")
    }
    guard voxelSize.allSatisfy({ $0 > 0 && $0.isFinite }) else {
      throw DatasetError(
        path: path, element: "\(element).voxel_size_um", "voxel sizes must be positive and finite, got \(voxelSize)")
    }
    let world = try Self.mapStageAxes(position, stageAxes, rank: rank, path: path, element: element)
    self.voxelSize = voxelSize
    self.viewToWorld = AffineTransform(scale: voxelSize, translation: world)
  }

  /// Image-order world position from stage components and their axis mapping.
  static func mapStageAxes(_ p: [Double], _ axes: [String]?, rank: Int, path: String, element: String) throws
    -> [Double]
  {
    guard let axes else { return p }
    let names = rank == 3 ? ["z", "y", "x"] : ["y", "x"]
    guard axes.count == rank else {
      throw DatasetError(path: path, element: "stage_axes", "needs \(rank) entries like \(names)")
    }
    var out = [Double](repeating: 0, count: rank)
    var seen = Set<Int>()
    for (i, a) in axes.enumerated() {
      let negative = a.hasPrefix("-")
      let name = negative ? String(a.dropFirst()) : a
      guard let axis = names.firstIndex(of: name.lowercased()), seen.insert(axis).inserted else {
        throw DatasetError(
          path: path, element: "stage_axes", "\(axes) must name each of \(names) once, optionally with '-'")
      }
      out[axis] = negative ? -p[i] : p[i]
    }
    return out
  }
}

/// Opens each HDF5 file, and each dataset in it, once (many tiles may name the same dataset).
struct FileCache {
  private var files: [String: HDF5File] = [:]
  private var datasets: [String: [String: HDF5Dataset]] = [:]

  mutating func open(_ path: String) throws -> HDF5File {
    if let f = files[path] { return f }
    let f = try HDF5File(path: path)
    files[path] = f
    return f
  }

  /// Dataset `name` of the file at `path` (opened with ``open(_:)``).
  mutating func dataset(_ name: String, in path: String) throws -> HDF5Dataset {
    if let d = datasets[path]?[name] { return d }
    let d = try open(path).dataset(name)
    datasets[path, default: [:]][name] = d
    return d
  }

  /// No more datasets will be opened in the file at `path`: HDF5's handles on it are given back
  /// if Tessera reads its datasets itself (``HDF5File/releaseHandles(keeping:)``), and the cache
  /// forgets it (the views keep what they read from).
  mutating func finish(_ path: String) {
    guard let file = files.removeValue(forKey: path) else { return }
    file.releaseHandles(keeping: Array((datasets.removeValue(forKey: path) ?? [:]).values))
  }
}

func checkSameRank(_ views: [View], _ path: String) throws {
  guard let first = views.first else { return }
  if let other = views.first(where: { $0.rank != first.rank }) {
    throw DatasetError(
      path: path, element: other.name,
      "is \(other.rank)-D but \(first.name) is \(first.rank)-D; all views of a dataset must have the same rank")
  }
}
