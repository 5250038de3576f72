import Foundation
import TesseraCore
import TesseraIO

extension SyntheticAcquisition {
  /// What ``writeHDF5Tiles(to:deflateLevel:chunkShape:)`` wrote.
  public struct WrittenFiles: Sendable {
    /// One HDF5 file per tile, in tile order.
    public var tiles: [String]
    /// The ground truth: one dataset per channel plus the true tile positions.
    public var groundTruth: String
  }

  /// Writes the acquisition the way a microscope script would: one HDF5 file per tile
  /// (`tile_000.h5`, …) with one uint16 dataset per channel (`ch0`, `ch1`, …), each carrying its
  /// stated stage position and voxel size as attributes (`position_um`, `voxel_size_um`, z,y,x
  /// order), plus `tile` and `channel` ids. `ground_truth.h5` holds the untiled volume of each
  /// channel and the true positions (`true_positions_um`, tiles × rank).
  ///
  /// - Parameters:
  ///   - deflateLevel: gzip level for the tile datasets (chunked), or nil for contiguous,
  ///     uncompressed data.
  ///   - chunkShape: HDF5 chunk shape of the tile datasets (clipped to the tile), default 64 per
  ///     axis.
  /// - Throws: ``HDF5Error`` when a file cannot be written.
  public func writeHDF5Tiles(to directory: String, deflateLevel: Int? = 1, chunkShape: [Int]? = nil) throws
    -> WrittenFiles
  {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let volumes = (0..<channels).map { renderVolume(channel: $0) }
    let chunkShape = zip(tileShape, chunkShape ?? tileShape.map { _ in 64 }).map { min($0, $1) }
    let stated = statedPositions
    var tilePaths: [String] = []
    for (t, box) in tileBoxes.enumerated() {
      let path = (directory as NSString).appendingPathComponent(String(format: "tile_%03d.h5", t))
      let file = try HDF5File(path: path, mode: .truncate)
      for c in 0..<channels {
        let name = "ch\(c)"
        let d = try file.createDataset(
          name, elementType: .uint16, shape: tileShape, chunkShape: deflateLevel == nil ? nil : chunkShape,
          deflateLevel: deflateLevel)
        var tile = volumes[c].extracting(box)
        tile.move(to: Array(repeating: 0, count: rank))
        try d.write(tile)
        try file.setAttribute("position_um", of: name, values: stated[t])
        try file.setAttribute("voxel_size_um", of: name, values: voxelSize)
        try file.setAttribute("tile", of: name, values: [Double(t)])
        try file.setAttribute("channel", of: name, values: [Double(c)])
      }
      try file.flush()
      tilePaths.append(path)
    }
    let truthPath = (directory as NSString).appendingPathComponent("ground_truth.h5")
    try writeGroundTruth(to: truthPath, volumes: volumes)
    return WrittenFiles(tiles: tilePaths, groundTruth: truthPath)
  }
}

extension SyntheticAcquisition {
  /// Writes the acquisition as a BigStitcher project (`xmlPath` and the `.h5` beside it): one
  /// setup per tile × channel, stated positions as each view's `Translation` transform, and the
  /// given pyramid (`subsampling`, z,y,x factors per level). Ground truth goes to
  /// `ground_truth.h5` in the same directory, as for ``writeHDF5Tiles(to:deflateLevel:chunkShape:)``.
  /// `blockShape` is the HDF5 chunk shape (z, y, x; BDV's "subdivisions"), default 64 per axis.
  public func writeBDV(
    xmlPath: String, subsampling: [[Int]] = [[1, 1, 1]], deflateLevel: Int? = 1, legacyInt16: Bool = true,
    blockShape: [Int]? = nil
  ) throws {
    let directory = (xmlPath as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(
      atPath: directory.isEmpty ? "." : directory, withIntermediateDirectories: true)
    var setups: [BDVWriter.Setup] = []
    for t in 0..<tileCount {
      for c in 0..<channels {
        setups.append(
          BDVWriter.Setup(
            id: t * channels + c, name: "tile\(t)-ch\(c)", tile: t, channel: c, voxelSize: voxelSize,
            shape: tileShape))
      }
    }
    let writer = try BDVWriter(
      xmlPath: xmlPath, setups: setups, subsampling: subsampling,
      blockSize: tileShape.count == 3
        ? zip(tileShape, blockShape ?? [64, 64, 64]).map { min($0, $1) }
        : [1] + zip(tileShape, blockShape.map { Array($0.suffix(2)) } ?? [64, 64]).map { min($0, $1) },
      deflateLevel: deflateLevel, legacyInt16: legacyInt16)
    let volumes = (0..<channels).map { renderVolume(channel: $0) }
    let stated = statedPositions
    for (t, box) in tileBoxes.enumerated() {
      for c in 0..<channels {
        try writer.addView(setup: t * channels + c, volume: volumes[c].extracting(box), positionUm: stated[t])
      }
    }
    try writer.finish()
    try writeGroundTruth(
      to: ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent("ground_truth.h5"),
      volumes: volumes)
  }

  /// `ground_truth.h5`: the untiled volume per channel and the true tile positions.
  func writeGroundTruth(to path: String, volumes: [VolumeBuffer<UInt16>]) throws {
    let truth = try HDF5File(path: path, mode: .truncate)
    for c in 0..<channels {
      let d = try truth.createDataset(
        "ch\(c)", elementType: .uint16, shape: volumeShape, chunkShape: volumeShape.map { min($0, 64) },
        deflateLevel: 1)
      try d.write(volumes[c])
      try truth.setAttribute("voxel_size_um", of: "ch\(c)", values: voxelSize)
    }
    let positions = try truth.createDataset("true_positions_um", elementType: .float64, shape: [tileCount, rank])
    try positions.write(
      VolumeBuffer<Double>(box: Box(shape: [tileCount, rank]), storage: truePositions.flatMap { $0 }))
    try truth.flush()
  }
}
