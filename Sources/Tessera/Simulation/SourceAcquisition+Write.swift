import Foundation
import TesseraCore
import TesseraIO

/// Where a simulation's tiles came from, for `truth.json`.
public struct SimulationProvenance: Sendable {
  /// The source as given (`.npy`, `.tif`, `file.h5:dataset`), or "synthetic".
  public var source: String
  /// Shape of the whole source volume.
  public var sourceShape: [Int]
  /// The crop used, `[lower, upper)` per axis in source voxels.
  public var crop: Box
  /// The source's element type.
  public var sourceElementType: ElementType

  public init(source: String, sourceShape: [Int], crop: Box, sourceElementType: ElementType) {
    self.source = source
    self.sourceShape = sourceShape
    self.crop = crop
    self.sourceElementType = sourceElementType
  }
}

/// `truth.json`: the ground truth of a simulated acquisition, in one small file a benchmark can
/// read without HDF5.
public enum SimulationTruth {
  /// Keys: `tessera_truth` (1), `voxel_size_um`, `tile_shape`, `grid`, `overlap`, `seed`,
  /// `true_positions_um` and `stated_positions_um` (tiles × rank, z,y,x), `files` (per tile)
  /// and `extra` (free-form: source, crop, source voxel size, intensity map, noise, …). Keys are
  /// sorted, so equal inputs give equal bytes.
  public static func write(
    to path: String, voxelSize: [Double], tileShape: [Int], grid: [Int], overlap: Double, seed: UInt64,
    truePositions: [[Double]], statedPositions: [[Double]], files: [String], extra: [String: Any]
  ) throws {
    var object: [String: Any] = [
      "tessera_truth": 1, "voxel_size_um": voxelSize, "tile_shape": tileShape, "grid": grid, "overlap": overlap,
      "seed": seed, "true_positions_um": truePositions, "stated_positions_um": statedPositions, "files": files,
    ]
    for (k, v) in extra { object[k] = v }
    try AtomicFile.write(Data((json(object, indent: "") + "\n").utf8), to: path)
  }

  /// Pretty JSON with sorted keys and numbers that round-trip exactly (Swift's shortest
  /// representation; Foundation's serializer drops the last digit of some Doubles on Linux).
  static func json(_ value: Any, indent: String) -> String {
    let inner = indent + "  "
    switch value {
    case let d as [String: Any]:
      if d.isEmpty { return "{}" }
      let items = d.keys.sorted().map { "\(inner)\(json($0, indent: inner)): \(json(d[$0]!, indent: inner))" }
      return "{\n" + items.joined(separator: ",\n") + "\n\(indent)}"
    case let a as [Any]:
      if a.isEmpty { return "[]" }
      if a.allSatisfy({ $0 is Double || $0 is Int }) {
        return "[" + a.map { json($0, indent: inner) }.joined(separator: ", ") + "]"
      }
      return "[\n" + a.map { inner + json($0, indent: inner) }.joined(separator: ",\n") + "\n\(indent)]"
    case let s as String:
      var out = "\""
      for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
        default: out.unicodeScalars.append(u)
        }
      }
      return out + "\""
    case let i as Int: return String(i)
    case let u as UInt64: return String(u)
    case let d as Double:
      guard d.isFinite else { return "null" }
      return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : "\(d)"
    case let b as Bool: return b ? "true" : "false"
    default: return "null"
    }
  }
}

extension SourceAcquisition {
  /// Writes the tiles like ``SyntheticAcquisition/writeHDF5Tiles(to:deflateLevel:chunkShape:)``
  /// (`tile_000.h5`, … with dataset `ch0` carrying `position_um`, `voxel_size_um`, `tile`,
  /// `channel`) or, with `bdvXML`, as a BigStitcher project; then `truth.json` in `directory`.
  ///
  /// - Parameters:
  ///   - chunkShape: HDF5 chunk shape (clipped to the tile), or nil for the default (64 per
  ///     axis); ignored when `deflateLevel` is nil and the layout is HDF5 tiles (contiguous).
  /// - Throws: ``HDF5Error`` or file errors.
  @discardableResult
  public func write(
    to directory: String, bdvXML: String? = nil, subsampling: [[Int]] = [[1, 1, 1]], deflateLevel: Int? = 1,
    chunkShape: [Int]? = nil, provenance: SimulationProvenance
  ) throws -> [String] {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let chunks = zip(chunkShape ?? tileShape.map { _ in 64 }, tileShape).map { min($0, $1) }
    let spline = spline()
    let stated = statedPositions
    var files: [String] = []
    if let bdvXML {
      let setups = (0..<tileCount).map {
        BDVWriter.Setup(id: $0, name: "tile\($0)-ch0", tile: $0, channel: 0, voxelSize: voxelSize, shape: tileShape)
      }
      let writer = try BDVWriter(
        xmlPath: bdvXML, setups: setups, subsampling: subsampling,
        blockSize: chunks.count == 3 ? chunks : [1] + chunks, deflateLevel: deflateLevel)
      for t in 0..<tileCount {
        try writer.addView(setup: t, volume: renderTile(t, spline: spline), positionUm: stated[t])
      }
      try writer.finish()
      files = [(bdvXML as NSString).lastPathComponent]
    } else {
      for t in 0..<tileCount {
        let name = String(format: "tile_%03d.h5", t)
        let file = try HDF5File(path: (directory as NSString).appendingPathComponent(name), mode: .truncate)
        let d = try file.createDataset(
          "ch0", elementType: .uint16, shape: tileShape, chunkShape: deflateLevel == nil ? nil : chunks,
          deflateLevel: deflateLevel)
        try d.write(renderTile(t, spline: spline))
        try file.setAttribute("position_um", of: "ch0", values: stated[t])
        try file.setAttribute("voxel_size_um", of: "ch0", values: voxelSize)
        try file.setAttribute("tile", of: "ch0", values: [Double(t)])
        try file.setAttribute("channel", of: "ch0", values: [0])
        try file.flush()
        files.append(name)
      }
    }
    try SimulationTruth.write(
      to: (directory as NSString).appendingPathComponent("truth.json"), voxelSize: voxelSize, tileShape: tileShape,
      grid: grid, overlap: overlap, seed: seed, truePositions: truePositions, statedPositions: stated, files: files,
      extra: [
        "source": provenance.source, "source_shape": provenance.sourceShape,
        "source_crop": [provenance.crop.lower, provenance.crop.upper],
        "source_dtype": provenance.sourceElementType.rawValue, "source_voxel_size_um": sourceVoxelSize,
        "jitter_voxels": jitter, "subpixel_voxels": subpixel, "noise": noise.description,
        "intensity_map": ["offset": intensityOffset, "scale": intensityScale],
        "interpolation": "cubic B-spline, exact prefilter (Unser 1991), mirror boundaries",
        "low_pass": "box average over the tile voxel's footprint along axes where the tile voxel is coarser",
        "world_origin": "centre of the crop's voxel 0",
      ])
    return files
  }
}
