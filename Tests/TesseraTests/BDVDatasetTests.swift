import Foundation
import Testing

@testable import Tessera
@testable import TesseraIO

@Suite struct BDVDatasetTests {
  static let acquisition3D = SyntheticAcquisition(
    tileShape: [10, 40, 48], grid: [1, 2, 2], overlap: 0.2, channels: 2, voxelSize: [2.0, 0.5, 0.5], jitter: 2,
    blobDensity: 3000, seed: 11)

  @Test func multiChannelMultiResolution3D() throws {
    let dir = TemporaryDirectory()
    let a = Self.acquisition3D
    try a.writeBDV(xmlPath: dir.path("p.xml"), subsampling: [[1, 1, 1], [1, 2, 2], [2, 4, 4]])
    let (dataset, warnings) = try DatasetLoader.open([dir.path("p.xml")])
    #expect(warnings.isEmpty, "\(warnings)")
    #expect(dataset.format == BDVProject.name && dataset.format == "bdv")
    #expect(dataset.views.count == 8)
    #expect(dataset.tiles == [0, 1, 2, 3])
    #expect(dataset.channels == [0, 1])
    #expect(dataset.rank == 3)
    let truth = try (0..<2).map { try groundTruth(dir, channel: $0) }
    let stated = a.statedPositions
    for v in dataset.views {
      #expect(v.elementType == .uint16)
      #expect(v.shape == [10, 40, 48])
      #expect(v.voxelSize == [2.0, 0.5, 0.5])
      #expect(v.levels.map(\.factors) == [[1, 1, 1], [1, 2, 2], [2, 4, 4]])
      #expect(v.levels.map(\.shape) == [[10, 40, 48], [10, 20, 24], [5, 10, 12]])
      // viewToWorld = translation(stated position) ∘ scale(voxel size).
      let expected = AffineTransform(scale: [2.0, 0.5, 0.5], translation: stated[v.tile])
      #expect(zip(v.viewToWorld.entries, expected.entries).allSatisfy { abs($0 - $1) < 1e-9 })
      // Level 0 pixels are exactly the ground truth at the tile's true box.
      let box = Box(lower: [2, 5, 7], upper: [9, 33, 41])
      let read = try v.read(box).converted(to: UInt16.self)
      #expect(read == truth[v.channel].extracting(box.translated(by: a.trueOrigins[v.tile])).moved(to: box.lower))
      // Level 2 pixels are the block means of level 0.
      var tile = truth[v.channel].extracting(a.tileBoxes[v.tile])
      tile.move(to: [0, 0, 0])
      let level2 = try v.reader.read(Box(shape: [5, 10, 12]), level: 2).converted(to: UInt16.self)
      #expect(level2 == BDVWriter.downsample(tile, by: [2, 4, 4]))
    }
    // The level → level-0 transform puts block centres at the mean of their voxel centres.
    let l = dataset.views[0].levels[1].levelToLevel0
    #expect(l.apply([0.0, 0, 0]) == [0, 0.5, 0.5])
  }

  @Test func legacyInt16AndNativeUInt16KeepHighValues() throws {
    for legacy in [true, false] {
      let dir = TemporaryDirectory()
      let setup = BDVWriter.Setup(id: 0, name: "bright", tile: 0, channel: 0, voxelSize: [1, 1, 1], shape: [2, 3, 4])
      let w = try BDVWriter(xmlPath: dir.path("b.xml"), setups: [setup], blockSize: [2, 2, 2], legacyInt16: legacy)
      let values = (0..<24).map { UInt16(40000 + $0 * 1000) }
      try w.addView(
        setup: 0, volume: try VolumeBuffer(box: Box(shape: [2, 3, 4]), storage: values), positionUm: [0, 0, 0])
      try w.finish()
      let d = try BDVProject.load(dir.path("b.xml")).dataset
      let h5 = try HDF5File(path: dir.path("b.h5"))
      #expect(try h5.dataset("t00000/s00/0/cells").elementType == (legacy ? .int16 : .uint16))
      #expect(d.views[0].elementType == .uint16)
      guard case .uint16(let b) = try d.views[0].read(Box(shape: [2, 3, 4])) else {
        Issue.record("not uint16")
        return
      }
      #expect(b.storage == values)
    }
  }

  @Test func singlePlaneProjectsAre2D() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(
      tileShape: [30, 40], grid: [2, 2], overlap: 0.25, channels: 1, voxelSize: [0.65, 0.65], jitter: 1.5, seed: 5)
    try a.writeBDV(xmlPath: dir.path("flat.xml"), subsampling: [[1, 1, 1], [1, 2, 2]])
    let (dataset, _) = try DatasetLoader.open([dir.path("flat.xml")])
    #expect(dataset.rank == 2)
    let truth = try groundTruth(dir, channel: 0)
    for v in dataset.views {
      #expect(v.shape == [30, 40])
      #expect(v.voxelSize == [0.65, 0.65])
      #expect(v.levels[1].shape == [15, 20])
      #expect(v.levels[1].factors == [2, 2])
      let expected = AffineTransform(scale: [0.65, 0.65], translation: a.statedPositions[v.tile])
      #expect(zip(v.viewToWorld.entries, expected.entries).allSatisfy { abs($0 - $1) < 1e-9 })
      let read = try v.read(v.bounds).converted(to: UInt16.self)
      #expect(read == truth.extracting(a.tileBoxes[v.tile]).moved(to: [0, 0]))
    }
    #expect(dataset.tileOverlaps().count == 6)  // 2×2 grid: 4 edges + 2 diagonals
  }

  @Test func composedTransformsFollowBDVOrderAndUnits() throws {
    // The formats.md §4.3 example: voxel (x=0, y=0, z=10) of setup 0 maps to BDV world
    // (0, 0, 49.26); world unit = smallest voxel = 0.406 µm.
    let dir = TemporaryDirectory()
    let setups = (0..<2).map {
      BDVWriter.Setup(id: $0, name: "t\($0)", tile: $0, channel: 0, voxelSize: [2.0, 0.406, 0.406], shape: [12, 8, 8])
    }
    let w = try BDVWriter(xmlPath: dir.path("e.xml"), setups: setups, blockSize: [4, 8, 8])
    for s in 0..<2 { try w.addView(setup: s, volume: VolumeBuffer(shape: [12, 8, 8]), positionUm: [0, 0, 0]) }
    try w.finish()
    // Replace the registrations with the example's.
    var xml = try String(contentsOfFile: dir.path("e.xml"), encoding: .utf8)
    let start = xml.range(of: "<ViewRegistrations>")!.lowerBound
    let end = xml.range(of: "</ViewRegistrations>")!.upperBound
    let cal =
      "<ViewTransform type=\"affine\"><Name>calibration</Name><affine>1.0 0.0 0.0 0.0 0.0 1.0 0.0 0.0 0.0 0.0 4.926108374384237 0.0</affine></ViewTransform>"
    xml.replaceSubrange(
      start..<end,
      with: """
        <ViewRegistrations>
        <ViewRegistration timepoint="0" setup="0">\(cal)</ViewRegistration>
        <ViewRegistration timepoint="0" setup="1">
        <ViewTransform type="affine"><Name>Stitching Transform</Name><affine>1.0 0.0 0.0 -3.7 0.0 1.0 0.0 1.2 0.0 0.0 1.0 0.4</affine></ViewTransform>
        <ViewTransform type="affine"><Name>Translation to Regular Grid</Name><affine>1.0 0.0 0.0 1843.2 0.0 1.0 0.0 0.0 0.0 0.0 1.0 0.0</affine></ViewTransform>
        \(cal)</ViewRegistration>
        </ViewRegistrations>
        """)
    try xml.write(toFile: dir.path("e.xml"), atomically: true, encoding: .utf8)
    let d = try BDVProject.load(dir.path("e.xml")).dataset
    let p0 = d.views[0].viewToWorld.apply([10.0, 0, 0])  // z = 10
    #expect(abs(p0[0] - 49.26108374384237 * 0.406) < 1e-9)
    #expect(p0[1] == 0 && p0[2] == 0)
    // Setup 1: calibration first, then grid translation, then the stitching correction.
    let p1 = d.views[1].viewToWorld.apply([0.0, 0, 0])
    #expect(abs(p1[2] - (1843.2 - 3.7) * 0.406) < 1e-9)
    #expect(abs(p1[1] - 1.2 * 0.406) < 1e-9)
    #expect(abs(p1[0] - 0.4 * 0.406) < 1e-9)
  }

  @Test func writeBackPrependsANamedTransformAndReadsAgain() throws {
    let dir = TemporaryDirectory()
    try Self.acquisition3D.writeBDV(xmlPath: dir.path("p.xml"))
    var (dataset, _) = try DatasetLoader.open([dir.path("p.xml")])
    let shift: [Double] = [0.5, -1.25, 3.0]
    for i in dataset.views.indices where dataset.views[i].tile == 2 {
      dataset.views[i].viewToWorld = compose(AffineTransform(translation: shift), dataset.views[i].viewToWorld)
    }
    try FileManager.default.createDirectory(atPath: dir.path("out"), withIntermediateDirectories: true)
    let out = dir.path("out/refined.xml")
    try DatasetLoader.save(dataset, to: out, transformName: "Tessera refine-positions")
    let (again, _) = try DatasetLoader.open([out])
    for (a, b) in zip(dataset.views, again.views) {
      #expect(zip(a.viewToWorld.entries, b.viewToWorld.entries).allSatisfy { abs($0 - $1) < 1e-9 })
      #expect(
        try a.read(Box(shape: [1, 2, 2])).converted(to: UInt16.self)
          == b.read(Box(shape: [1, 2, 2])).converted(to: UInt16.self))
    }
    let xml = try String(contentsOfFile: out, encoding: .utf8)
    #expect(xml.components(separatedBy: "Tessera refine-positions").count - 1 == 2)  // 2 channels of tile 2
    // The new transform comes first in its registration, the old ones are kept.
    let reg = xml.components(separatedBy: "setup=\"4\"")[1]
    #expect(reg.range(of: "Tessera refine-positions")!.lowerBound < reg.range(of: "Translation")!.lowerBound)
    #expect(reg.contains("calibration"))
    // Saving again on top of a saved file keeps working (the second read composes three transforms).
    try DatasetLoader.save(again, to: dir.path("out/again.xml"), transformName: "unchanged")
    #expect(!(try String(contentsOfFile: dir.path("out/again.xml"), encoding: .utf8)).contains("unchanged"))
  }

  /// Writing back compares with the transforms the dataset was opened with: the project is not
  /// loaded again (its HDF5 file may be gone or busy by then), and a changed XML on disk does not
  /// change what counts as changed.
  @Test func writeBackNeedsNoReload() throws {
    let dir = TemporaryDirectory()
    try Self.acquisition3D.writeBDV(xmlPath: dir.path("p.xml"))
    var (dataset, _) = try DatasetLoader.open([dir.path("p.xml")])
    #expect(dataset.openedTransforms.count == dataset.views.count)
    dataset.views[0].viewToWorld = compose(AffineTransform(translation: [0, 0, 1]), dataset.views[0].viewToWorld)
    let h5 = try FileManager.default.contentsOfDirectory(atPath: dir.path("")).filter { $0.hasSuffix(".h5") }
    #expect(!h5.isEmpty)
    for name in h5 { try FileManager.default.moveItem(atPath: dir.path(name), toPath: dir.path(name + ".moved")) }
    #expect(throws: (any Error).self) { _ = try DatasetLoader.open([dir.path("p.xml")]) }  // no pixels now
    try DatasetLoader.save(dataset, to: dir.path("r.xml"), transformName: "moved")
    let xml = try String(contentsOfFile: dir.path("r.xml"), encoding: .utf8)
    #expect(xml.components(separatedBy: "moved").count - 1 == 1)
    expectError(["r.json", "written back as XML"]) {
      try DatasetLoader.save(dataset, to: dir.path("r.json"), transformName: "x")
    }
  }

  /// Each format claims its paths; HDF5 tile files take the rest.
  @Test func formatsProbeByExtension() {
    #expect(DatasetLoader.formats.map { $0.name } == ["bdv", "manifest", "hdf5Attributes"])
    #expect(BDVProject.probe(["a/P.XML"]) && !BDVProject.probe(["a.json"]))
    #expect(TileManifest.probe(["m.json"]) && !TileManifest.probe(["t.h5"]))
    #expect(HDF5TileFiles.probe(["t.h5", "u.h5"]))
  }
}

extension VolumeBuffer {
  func moved(to origin: [Int]) -> VolumeBuffer {
    var copy = self
    copy.move(to: origin)
    return copy
  }
}
