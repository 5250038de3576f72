import Foundation
import TesseraCore

/// What an OME-Zarr image's metadata says, as a reader needs it: the resolution levels (array,
/// scale and translation per axis), the axes, and the channels' names, colours and display
/// windows. Reads OME-NGFF 0.4 (Zarr v2, top-level `multiscales`) and 0.5 (Zarr v3, under `ome`).
public struct OMEZarrMultiscales: Sendable {
  public struct Level: Sendable {
    public var array: ZarrArray
    /// Physical size of a voxel per axis (µm on spatial axes, 1 elsewhere).
    public var scale: [Double]
    /// Physical position of voxel 0's centre per axis.
    public var translation: [Double]
  }

  public struct Channel: Sendable {
    public var label: String
    /// `RRGGBB`.
    public var color: String
    /// The display window (`start`, `end`), if the metadata gives one.
    public var window: (start: Double, end: Double)?
  }

  public let path: String
  /// Axis names, slowest first (`c, z, y, x`; `t` first when present).
  public let axes: [String]
  /// Level 0 first.
  public let levels: [Level]
  public let channels: [Channel]

  /// Opens the image at `path`.
  ///
  /// - Throws: ``ZarrError`` when `path` is not a finished OME-Zarr image (no `multiscales`, as
  ///   in an interrupted fusion) or its levels cannot be opened.
  public init(path: String) throws {
    self.path = path
    var attributes = try ZarrGroup.attributes(at: path)
    if let ome = attributes["ome"] as? [String: Any] { attributes = ome }
    guard let multiscales = attributes["multiscales"] as? [[String: Any]], let first = multiscales.first,
      let datasets = first["datasets"] as? [[String: Any]], !datasets.isEmpty
    else {
      let status = (attributes["tessera"] as? [String: Any])?["status"] as? String
      throw ZarrError(
        path: path,
        status == "incomplete"
          ? "is an unfinished fusion (no multiscales yet); finish it with tessera fuse ... --resume"
          : "is not an OME-Zarr image (no multiscales in its group attributes)")
    }
    let axes = ((first["axes"] as? [Any]) ?? []).map { a in
      (a as? [String: Any])?["name"] as? String ?? (a as? String) ?? "?"
    }
    let levels = try datasets.map { d -> Level in
      guard let p = d["path"] as? String else { throw ZarrError(path: path, "a multiscales dataset has no path") }
      let array = try ZarrArray.open(path + "/" + p)
      var scale = Array(repeating: 1.0, count: array.rank)
      var translation = Array(repeating: 0.0, count: array.rank)
      for t in (d["coordinateTransformations"] as? [[String: Any]]) ?? [] {
        if t["type"] as? String == "scale", let s = t["scale"] as? [Double], s.count == array.rank { scale = s }
        if t["type"] as? String == "translation", let s = t["translation"] as? [Double], s.count == array.rank {
          translation = s
        }
      }
      guard scale.allSatisfy({ $0.isFinite && $0 > 0 }), translation.allSatisfy(\.isFinite) else {
        throw ZarrError(
          path: path, "level \(p): scale \(scale) and translation \(translation) must be finite, scale > 0")
      }
      return Level(array: array, scale: scale, translation: translation)
    }
    guard axes.count == levels[0].array.rank else {
      throw ZarrError(path: path, "\(axes.count) axes for arrays of rank \(levels[0].array.rank)")
    }
    let omero = (attributes["omero"] as? [String: Any])?["channels"] as? [[String: Any]] ?? []
    let shape0 = levels[0].array.metadata.shape
    let count = axes.firstIndex(of: "c").map { shape0[$0] } ?? 1
    self.axes = axes
    self.levels = levels
    channels = (0..<count).map { c in
      let o = c < omero.count ? omero[c] : [:]
      let w = o["window"] as? [String: Any]
      let window = (w?["start"] as? Double).flatMap { s in (w?["end"] as? Double).map { (s, $0) } }
      return Channel(
        label: (o["label"] as? String) ?? "channel \(c)", color: (o["color"] as? String) ?? "FFFFFF", window: window)
    }
  }
}
