import Foundation
import TesseraCore

/// Plain HDF5 tile files whose datasets carry their placement as attributes, as acquisition
/// scripts often write them: `position_um` (world µm of voxel 0, z,y,x), `voxel_size_um`, and
/// optionally `tile`, `channel`, `timepoint` and `stage_axes` (a string such as "x,y,z" or
/// "z,-y,x", see ``TileManifest``). Every dataset in a file that has a `position_um` attribute is
/// a view; groups are searched recursively.
///
/// Without a `tile` attribute a view's tile is the index of its file among `paths`; without a
/// `channel` attribute its channel is its index among the file's positioned datasets.
public enum HDF5TileFiles {
  /// - Throws: ``DatasetError`` naming the file and dataset for files without positioned
  ///   datasets, missing voxel sizes, NaN/Inf positions, non-positive voxel sizes and rank
  ///   mismatches; ``HDF5Error`` for files that are not HDF5.
  public static func load(_ paths: [String]) throws -> Dataset {
    guard let first = paths.first else { throw DatasetError(path: "", "no HDF5 files given") }
    var views: [View] = []
    for (fileIndex, path) in paths.enumerated() {
      guard FileManager.default.fileExists(atPath: path) else {
        throw DatasetError(path: path, "no such file; check the path")
      }
      let file = try HDF5File(path: path)
      let positioned = datasets(in: file, group: "/").filter {
        file.numericAttribute("position_um", of: $0) != nil
      }
      guard !positioned.isEmpty else {
        throw DatasetError(
          path: path,
          "no dataset carries a position_um attribute; add position_um and voxel_size_um attributes, "
            + "or describe the tiles in a JSON manifest (see README)")
      }
      var opened: [HDF5Dataset] = []
      for (k, name) in positioned.enumerated() {
        let d = try file.dataset(name)
        opened.append(d)
        let element = "dataset \(name)"
        let stageAxes = file.stringAttribute("stage_axes", of: name).map {
          $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let geometry = try TileGeometry(
          rank: d.rank, position: file.numericAttribute("position_um", of: name),
          voxelSize: file.numericAttribute("voxel_size_um", of: name), stageAxes: stageAxes, affine: nil,
          path: path, element: element)
        /// A whole-number attribute (tile, channel, timepoint), or nil when absent.
        func integer(_ key: String) throws -> Int? {
          guard let values = file.numericAttribute(key, of: name) else { return nil }
          guard values.count == 1, let v = values.first, v == v.rounded(), v >= 0, v < Double(Int32.max) else {
            throw DatasetError(
              path: path,
              "\(element): attribute \(key) must be one whole number ≥ 0, got \(values.map { String($0) }.joined(separator: ", "))"
            )
          }
          return Int(v)
        }
        views.append(
          View(
            id: ViewID(timepoint: try integer("timepoint") ?? 0, setup: views.count), name: "\(path):\(name)",
            tile: try integer("tile") ?? fileIndex, channel: try integer("channel") ?? k, elementType: d.elementType,
            shape: d.shape, voxelSize: geometry.voxelSize, viewToWorld: geometry.viewToWorld,
            reader: HDF5ViewReader(levels: [d], elementType: d.elementType)))
      }
      // HDF5 holds half a MiB per open file: given back once the file's views are made, when
      // Tessera reads them itself.
      file.releaseHandles(keeping: opened)
    }
    try checkSameRank(views, first)
    let ids = views.map { ViewKey(tile: $0.tile, channel: $0.channel, timepoint: $0.id.timepoint) }
    if let duplicate = Dictionary(grouping: ids.indices, by: { ids[$0] }).values.first(where: { $0.count > 1 }) {
      throw DatasetError(
        path: first,
        "\(views[duplicate[0]].name) and \(views[duplicate[1]].name) have the same tile, channel and timepoint; "
          + "set distinct tile/channel attributes")
    }
    return Dataset(path: first, format: name, views: views)
  }

  private struct ViewKey: Hashable {
    var tile: Int
    var channel: Int
    var timepoint: Int
  }

  /// Paths of all datasets under `group`, depth first, in name order.
  static func datasets(in file: HDF5File, group: String) -> [String] {
    var out: [String] = []
    for child in file.children(of: group) {
      let path = group == "/" ? child : "\(group)/\(child)"
      if file.isDataset(path) {
        out.append(path)
      } else {
        out += datasets(in: file, group: path)
      }
    }
    return out
  }
}
