import Foundation
import TesseraCore

/// Writes a BigDataViewer/BigStitcher project (SpimData XML + HDF5) the way BigStitcher's
/// exporter does: `t{T}/s{SS}/{L}/cells` datasets (z, y, x) with a mean-downsampled pyramid,
/// `s{SS}/resolutions` and `s{SS}/subdivisions` (x, y, z), and per view a `calibration`
/// transform (voxel size / smallest voxel size) behind a `Translation` placing the tile.
///
/// uint16 data is stored as int16 with no `dataType` attribute (the legacy layout BigStitcher
/// and npy2bdv write) unless `legacyInt16` is false, in which case it is stored natively with
/// `dataType` on `/sNN`. 2-D views are written as one z-plane.
public final class BDVWriter {
  public struct Setup: Sendable {
    public var id: Int
    public var name: String
    public var tile: Int
    public var channel: Int
    /// µm, z, y, x (or y, x for 2-D; z is then 1 µm).
    public var voxelSize: [Double]
    /// Level-0 shape, z, y, x (or y, x).
    public var shape: [Int]

    public init(id: Int, name: String, tile: Int, channel: Int, voxelSize: [Double], shape: [Int]) {
      self.id = id
      self.name = name
      self.tile = tile
      self.channel = channel
      self.voxelSize = voxelSize
      self.shape = shape
    }
  }

  let xmlPath: String
  let h5Path: String
  let file: HDF5File
  let setups: [Setup]
  let subsampling: [[Int]]
  let blockSize: [Int]
  let deflateLevel: Int?
  let legacyInt16: Bool
  let minVoxel: Double
  var registrations: [(ViewID, [(String, [Double])])] = []

  /// - Parameters:
  ///   - subsampling: downsampling factors per level, z, y, x; level 0 must be `[1, 1, 1]`.
  ///   - blockSize: chunk shape, z, y, x.
  public init(
    xmlPath: String, setups: [Setup], subsampling: [[Int]] = [[1, 1, 1]], blockSize: [Int] = [16, 64, 64],
    deflateLevel: Int? = 1, legacyInt16: Bool = true
  ) throws {
    self.xmlPath = xmlPath
    self.h5Path = ((xmlPath as NSString).deletingPathExtension as String) + ".h5"
    self.setups = setups
    self.subsampling = subsampling
    self.blockSize = blockSize
    self.deflateLevel = deflateLevel
    self.legacyInt16 = legacyInt16
    self.minVoxel = setups.flatMap { Self.xyz($0.voxelSize) }.min() ?? 1
    file = try HDF5File(path: h5Path, mode: .truncate)
    for s in setups {
      let group = String(format: "s%02d", s.id)
      let levels = subsampling.count
      let res = try file.createDataset("\(group)/resolutions", elementType: .float64, shape: [levels, 3])
      try res.write(
        VolumeBuffer<Double>(
          box: Box(shape: [levels, 3]), storage: subsampling.flatMap { $0.reversed().map(Double.init) }))
      let sub = try file.createDataset("\(group)/subdivisions", elementType: .int32, shape: [levels, 3])
      try sub.write(
        VolumeBuffer<Int32>(
          box: Box(shape: [levels, 3]), storage: subsampling.flatMap { _ in blockSize.reversed().map { Int32($0) } }))
      if !legacyInt16 { try file.setAttribute("dataType", of: group, string: "uint16") }
    }
  }

  /// x, y, z voxel size from z, y, x (or y, x with a 1 µm z).
  static func xyz(_ zyx: [Double]) -> [Double] { zyx.count == 3 ? zyx.reversed() : [zyx[1], zyx[0], 1] }

  /// Writes one view (uint16) at `positionUm` (world µm of voxel 0, z, y, x or y, x).
  public func addView(setup id: Int, timepoint: Int = 0, volume: VolumeBuffer<UInt16>, positionUm: [Double]) throws {
    guard let setup = setups.first(where: { $0.id == id }) else {
      throw DatasetError(path: xmlPath, "unknown setup \(id)")
    }
    var level0 = volume
    level0.move(to: Array(repeating: 0, count: volume.rank))
    if level0.rank == 2 {
      level0 = try VolumeBuffer(box: Box(shape: [1] + level0.shape), storage: level0.storage)
    }
    for (level, factors) in subsampling.enumerated() {
      let data = level == 0 ? level0 : Self.downsample(level0, by: factors)
      let path = String(format: "t%05d/s%02d/%d/cells", timepoint, setup.id, level)
      let d = try file.createDataset(
        path, elementType: legacyInt16 ? .int16 : .uint16, shape: data.shape,
        chunkShape: zip(blockSize, data.shape).map { min($0, $1) }, deflateLevel: deflateLevel)
      if legacyInt16 {
        try d.write(VolumeBuffer<Int16>(box: data.box, storage: data.storage.map { Int16(bitPattern: $0) }))
      } else {
        try d.write(data)
      }
    }
    let v = Self.xyz(setup.voxelSize)
    let calibration = [v[0] / minVoxel, 0, 0, 0, 0, v[1] / minVoxel, 0, 0, 0, 0, v[2] / minVoxel, 0]
    let p = positionUm.count == 3 ? Array(positionUm.reversed()) : [positionUm[1], positionUm[0], 0]
    let translation = [1, 0, 0, p[0] / minVoxel, 0, 1, 0, p[1] / minVoxel, 0, 0, 1, p[2] / minVoxel]
    registrations.append(
      (ViewID(timepoint: timepoint, setup: id), [("Translation", translation), ("calibration", calibration)]))
  }

  /// Block mean over `factors` (z, y, x) in `Double` (``BlockMean``); edge blocks average what
  /// they hold. Shape: floor, at least 1, as BigDataViewer's exporter.
  static func downsample(_ v: VolumeBuffer<UInt16>, by factors: [Int]) -> VolumeBuffer<UInt16> {
    let shape = zip(v.shape, factors).map { max(1, $0 / $1) }
    return BlockMean.reduce(AnyVolumeBuffer(v), to: Box(shape: shape), step: factors, accumulator: .double)
      .converted(to: UInt16.self)
  }

  /// Writes the XML and closes the HDF5 file's datasets.
  public func finish(timepoints: Int = 1) throws {
    try file.flush()
    let tiles = Set(setups.map(\.tile)).sorted()
    let channels = Set(setups.map(\.channel)).sorted()
    var x = """
      <?xml version="1.0" encoding="UTF-8"?>
      <SpimData version="0.2">
        <BasePath type="relative">.</BasePath>
        <SequenceDescription>
          <ImageLoader format="bdv.hdf5">
            <hdf5 type="relative">\((h5Path as NSString).lastPathComponent)</hdf5>
          </ImageLoader>
          <ViewSetups>

      """
    for s in setups {
      let size = s.shape.count == 3 ? s.shape.reversed() : [s.shape[1], s.shape[0], 1]
      x += """
            <ViewSetup>
              <id>\(s.id)</id>
              <name>\(s.name)</name>
              <size>\(size.map(String.init).joined(separator: " "))</size>
              <voxelSize>
                <unit>µm</unit>
                <size>\(Self.xyz(s.voxelSize).map { "\($0)" }.joined(separator: " "))</size>
              </voxelSize>
              <attributes>
                <illumination>0</illumination>
                <channel>\(s.channel)</channel>
                <tile>\(s.tile)</tile>
                <angle>0</angle>
              </attributes>
            </ViewSetup>

        """
    }
    x += "      <Attributes name=\"illumination\"><Illumination><id>0</id><name>0</name></Illumination></Attributes>\n"
    x += "      <Attributes name=\"channel\">"
    x += channels.map { "<Channel><id>\($0)</id><name>\($0)</name></Channel>" }.joined() + "</Attributes>\n"
    x += "      <Attributes name=\"tile\">"
    x += tiles.map { "<Tile><id>\($0)</id><name>\($0)</name></Tile>" }.joined() + "</Attributes>\n"
    x += "      <Attributes name=\"angle\"><Angle><id>0</id><name>0</name></Angle></Attributes>\n"
    x += """
          </ViewSetups>
          <Timepoints type="range">
            <first>0</first>
            <last>\(timepoints - 1)</last>
          </Timepoints>
        </SequenceDescription>
        <ViewRegistrations>

      """
    for (id, transforms) in registrations.sorted(by: { $0.0 < $1.0 }) {
      x += "    <ViewRegistration timepoint=\"\(id.timepoint)\" setup=\"\(id.setup)\">\n"
      for (name, affine) in transforms {
        x += "      <ViewTransform type=\"affine\">\n        <Name>\(name)</Name>\n"
        x += "        <affine>\(affine.map { "\($0)" }.joined(separator: " "))</affine>\n      </ViewTransform>\n"
      }
      x += "    </ViewRegistration>\n"
    }
    x += "  </ViewRegistrations>\n</SpimData>\n"
    try AtomicFile.write(Data(x.utf8), to: xmlPath)
  }
}
