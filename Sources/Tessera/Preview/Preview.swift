import Foundation
import TesseraCore
import TesseraIO

/// What `tessera preview` draws.
public struct PreviewOptions: Sendable {
  /// Contrast limits per channel at these percentiles of its overview projection.
  public var percentiles: (low: Double, high: Double) = (0.5, 99.8)
  /// The level drawn: the finest whose y and x extents are both at most this (else the coarsest).
  public var maxSize: Int = 2048
  /// A region of level 0 (spatial voxels, z,y,x or y,x) drawn at full resolution instead, for
  /// checking seams.
  public var box: Box?
  /// Also write 16-bit grey projections holding the voxel values themselves.
  public var sixteenBit: Bool = false

  public init() {}
}

/// The pictures written, and how to read them (`preview.json`).
public struct PreviewSummary: Sendable, Codable {
  public struct ChannelLimits: Sendable, Codable {
    public var label: String
    public var low: Double
    public var high: Double
  }

  public struct File: Sendable, Codable {
    public var path: String
    /// "z", "y", "x" (the axis projected along) or "plane" (2D).
    public var projection: String
    /// The channel, or nil for the composite.
    public var channel: Int?
    public var bitDepth: Int
    /// Picture rows per voxel of the level (side views are stretched to the voxels' aspect).
    public var rowsPerVoxel: Int
    public var scaleBar: Picture.ScaleBar?
  }

  public var image: String
  public var level: Int
  /// The region drawn, in the level's spatial voxels.
  public var lower: [Int]
  public var upper: [Int]
  /// µm per voxel of the level (spatial axes).
  public var voxelSizeUm: [Double]
  public var channels: [ChannelLimits]
  public var files: [File]
}

/// Pictures of a fused OME-Zarr image: per channel a maximum-intensity projection along each
/// axis (z for the overview; y and x for side views in 3D), 8-bit with contrast limits from
/// percentiles, a false-colour composite of the channels in their display colours, and a scale
/// bar. They come from the finest level whose y and x extents fit ``PreviewOptions/maxSize`` —
/// a pyramid level, never the whole level 0 of a large image — or from a region of level 0.
public enum Preview {
  /// Writes the pictures of the image at `image` into `directory` (and `preview.json`).
  ///
  /// - Throws: ``ZarrError`` for an image that is not a finished OME-Zarr, ``OptionError`` for a
  ///   `--box` outside the image.
  public static func write(image path: String, to directory: String, options: PreviewOptions) throws -> PreviewSummary {
    let image = try OMEZarrMultiscales(path: path)
    let spatial = image.axes.enumerated().filter { ["z", "y", "x"].contains($0.element) }.map(\.offset)
    let n = spatial.count
    guard n == 2 || n == 3, spatial == Array((image.axes.count - n)..<image.axes.count) else {
      throw ZarrError(path: path, "axes \(image.axes): previews need spatial axes (z,) y, x last")
    }
    let leading = Array(image.axes.prefix(image.axes.count - n))
    guard !image.channels.isEmpty else { throw ZarrError(path: path, "has no channels (its c axis is empty)") }
    // The level: the finest that fits, or level 0 for a box.
    var level = image.levels.count - 1
    if options.box == nil {
      for (k, l) in image.levels.enumerated() {
        let shape = l.array.metadata.shape.suffix(2)
        if shape.allSatisfy({ $0 <= options.maxSize }) {
          level = k
          break
        }
      }
    } else {
      level = 0
    }
    let array = image.levels[level].array
    let bounds = Box(shape: Array(array.metadata.shape.suffix(n)))
    let region = options.box ?? bounds
    guard region.rank == n, !region.isEmpty, bounds.contains(region) else {
      throw OptionError("--box", "\(region) is not inside the image's level 0 \(bounds) (\(n) axes, z,y,x order)")
    }
    let voxel = Array(image.levels[level].scale.suffix(n))
    var projections: [Projections] = []
    for c in image.channels.indices {
      projections.append(try Projections.compute(array, leading: leading, channel: c, region: region))
    }
    // Contrast from the overview (z, or the plane).
    let overview = n == 3 ? "z" : "plane"
    let limits = projections.map {
      Picture.limits($0.images[overview]!.values, low: options.percentiles.low, high: options.percentiles.high)
    }
    var files: [PreviewSummary.File] = []
    for axis in n == 3 ? ["z", "y", "x"] : ["plane"] {
      // Side views: rows are z, stretched to the voxels' aspect; the horizontal axis is x (y for
      // the view along x).
      let horizontal = axis == "x" ? voxel[n - 2] : voxel[n - 1]
      let rowsPerVoxel = axis == "y" || axis == "x" ? max(1, Int((voxel[0] / horizontal).rounded())) : 1
      let suffix = axis == "plane" ? "" : "-\(axis)"
      for (c, p) in projections.enumerated() {
        var png = Picture.grey(p.images[axis]!, limits[c], rowsPerVoxel: rowsPerVoxel)
        let bar = Picture.drawScaleBar(&png, umPerPixel: horizontal)
        let name = "mip\(suffix)-channel-\(c).png"
        try png.write(to: directory + "/" + name)
        files.append(
          .init(path: name, projection: axis, channel: c, bitDepth: 8, rowsPerVoxel: rowsPerVoxel, scaleBar: bar))
        if options.sixteenBit {
          let raw = "mip\(suffix)-channel-\(c)-16bit.png"
          try Picture.grey16(p.images[axis]!, rowsPerVoxel: rowsPerVoxel).write(to: directory + "/" + raw)
          files.append(
            .init(path: raw, projection: axis, channel: c, bitDepth: 16, rowsPerVoxel: rowsPerVoxel, scaleBar: nil))
        }
      }
      var composite = Picture.composite(
        projections.map { $0.images[axis]! }, limits, colors: image.channels.map(\.color), rowsPerVoxel: rowsPerVoxel)
      let bar = Picture.drawScaleBar(&composite, umPerPixel: horizontal)
      let name = "composite\(suffix).png"
      try composite.write(to: directory + "/" + name)
      files.append(
        .init(path: name, projection: axis, channel: nil, bitDepth: 8, rowsPerVoxel: rowsPerVoxel, scaleBar: bar))
    }
    let summary = PreviewSummary(
      image: path, level: level, lower: region.lower, upper: region.upper, voxelSizeUm: voxel,
      channels: zip(image.channels, limits).map { .init(label: $0.label, low: $1.lo, high: $1.hi) }, files: files)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try AtomicFile.write(try encoder.encode(summary), to: directory + "/preview.json")
    return summary
  }
}
