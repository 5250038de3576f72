import Foundation
import Testing

@testable import Tessera
@testable import TesseraIO

/// Every bad input gives a one-line error naming the file and what is wrong.
@Suite struct DatasetErrorTests {
  /// A small valid BDV project and tile files to break.
  static func project(_ dir: TemporaryDirectory) throws -> String {
    let a = SyntheticAcquisition(tileShape: [4, 16, 16], grid: [1, 1, 2], channels: 1, voxelSize: [2, 1, 1], seed: 2)
    try a.writeBDV(xmlPath: dir.path("p.xml"))
    _ = try a.writeHDF5Tiles(to: dir.path("tiles"))
    return try String(contentsOfFile: dir.path("p.xml"), encoding: .utf8)
  }

  static func writeXML(_ dir: TemporaryDirectory, _ text: String, _ name: String = "bad.xml") throws -> String {
    try text.write(toFile: dir.path(name), atomically: true, encoding: .utf8)
    return dir.path(name)
  }

  /// Crashes the parser fuzzing found (`ParserFuzzTests`), now one-line errors: an empty (or
  /// element-less) BigDataViewer XML trapped in Foundation's XMLDocument; a tile attribute of
  /// 1e19, NaN or ∞ trapped converting to Int; a value with a line break broke the one-line error;
  /// an HDF5 extent beyond Int trapped.
  @Test func fuzzFindings() throws {
    let dir = TemporaryDirectory()
    let empty = try Self.writeXML(dir, "", "empty.xml")
    expectError(["empty.xml", "the file is empty"]) { _ = try DatasetLoader.open([empty]) }
    let text = try Self.writeXML(dir, "just text", "text.xml")
    expectError(["text.xml", "not an XML document"]) { _ = try DatasetLoader.open([text]) }
    let a = SyntheticAcquisition(tileShape: [12, 16], grid: [1, 2], channels: 1, voxelSize: [1, 1], seed: 4)
    let written = try a.writeHDF5Tiles(to: dir.path("tiles"), deflateLevel: nil)
    for bad in [[1e19], [.nan], [-.infinity], [2.5], [1, 2], [-1]] {
      let file = try HDF5File(path: written.tiles[0], mode: .readWrite)
      try file.setAttribute("tile", of: "ch0", values: bad)
      try file.flush()
      expectError(["tile_000.h5", "dataset ch0", "attribute tile must be one whole number ≥ 0"]) {
        _ = try DatasetLoader.open(written.tiles)
      }
    }
    // A dataspace claiming an extent beyond Int (found by Benchmarks/fuzz/hdf5_bytes.py) trapped
    // converting and multiplying sizes: the first 12, 16 dims pair of the header patched.
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: written.tiles[1])))
    let dims = [UInt8]([12, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0])
    let at = try #require((0..<(bytes.count - 16)).first { Array(bytes[$0..<($0 + 16)]) == dims })
    bytes.replaceSubrange(at..<(at + 8), with: [0x0C, 0, 0, 0, 0, 0, 0, 0x6C])
    try Data(bytes).write(to: URL(fileURLWithPath: written.tiles[1]))
    expectError(["tile_001.h5", "ch0", "too large to address; the file is damaged"]) {
      _ = try DatasetLoader.open([written.tiles[1]])
    }
    let xml = try Self.project(dir)
    let broken = try Self.writeXML(
      dir, xml.replacingOccurrences(of: "<affine>1.0 0.0", with: "<affine>1.0 0\n.0\nx"), "newline.xml")
    expectError(["newline.xml", "\\n"]) { _ = try DatasetLoader.open([broken]) }
  }

  /// Failed HDF5 writes name the file, the object, the step and HDF5's own reason, as I/O.
  @Test func hdf5WriteFailuresCarryTheReason() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("w.h5")
    do {
      let file = try HDF5File(path: path, mode: .create)
      _ = try file.createDataset("a", elementType: .uint16, shape: [4, 4])
      expectError(["w.h5", "a", "creating the dataset (does it already exist?) failed: "]) {
        _ = try file.createDataset("a", elementType: .uint16, shape: [4, 4])
      }
      try file.flush()
    }  // closed: HDF5 would otherwise share the writable handle with the read-only open below
    let readOnly = try HDF5File(path: path, mode: .readOnly)
    do {
      try readOnly.setAttribute("position_um", of: "a", values: [1, 2])
      Issue.record("a read-only file took an attribute")
    } catch {
      #expect(error.kind == .io)
      #expect("\(error)".contains("w.h5: a: ") && "\(error)".contains("attribute position_um failed: "))
    }
  }

  @Test func missingFiles() throws {
    let dir = TemporaryDirectory()
    expectError(["nope.xml", "no such file"]) { _ = try DatasetLoader.open([dir.path("nope.xml")]) }
    expectError(["nope.json", "no such file"]) { _ = try DatasetLoader.open([dir.path("nope.json")]) }
    expectError(["nope.h5", "no such file"]) { _ = try DatasetLoader.open([dir.path("nope.h5")]) }
    let xml = try Self.project(dir)
    let moved = try Self.writeXML(dir, xml.replacingOccurrences(of: ">p.h5<", with: ">gone.h5<"))
    expectError(["bad.xml", "gone.h5", "does not exist"]) { _ = try DatasetLoader.open([moved]) }
  }

  @Test func missingDatasets() throws {
    let dir = TemporaryDirectory()
    let xml = try Self.project(dir)
    // A setup in the XML with no cells in the HDF5.
    let extra = xml.replacingOccurrences(
      of: "<ViewRegistration timepoint=\"0\" setup=\"1\">",
      with:
        "<ViewRegistration timepoint=\"0\" setup=\"5\"></ViewRegistration><ViewRegistration timepoint=\"0\" setup=\"1\">"
    ).replacingOccurrences(
      of: "</ViewSetups>",
      with:
        "<ViewSetup><id>5</id><size>16 16 4</size><voxelSize><unit>um</unit><size>1 1 2</size></voxelSize></ViewSetup></ViewSetups>"
    )
    let path = try Self.writeXML(dir, extra)
    expectError(["p.h5", "t00000/s05/0/cells", "missing dataset"]) { _ = try DatasetLoader.open([path]) }
    let manifest =
      #"{"voxel_size_um": [2, 1, 1], "tiles": [{"file": "tiles/tile_000.h5", "dataset": "ch9", "position_um": [0, 0, 0]}]}"#
    let m = try Self.writeXML(dir, manifest, "m.json")
    expectError(["tile_000.h5", "ch9", "no such dataset"]) { _ = try DatasetLoader.open([m]) }
  }

  @Test func malformedXMLAndJSON() throws {
    let dir = TemporaryDirectory()
    let xml = try Self.project(dir)
    let truncated = try Self.writeXML(dir, String(xml.prefix(xml.count / 2)))
    expectError(["bad.xml", "malformed XML"]) { _ = try DatasetLoader.open([truncated]) }
    let notSpim = try Self.writeXML(dir, "<Other/>", "o.xml")
    expectError(["o.xml", "SpimData"]) { _ = try DatasetLoader.open([notSpim]) }
    let badAffine = try Self.writeXML(
      dir, xml.replacingOccurrences(of: "<affine>1.0 0.0 0.0 0.0 0.0 1.0", with: "<affine>1.0 0.0 0.0 0.0 0.0"), "a.xml"
    )
    expectError(["a.xml", "affine"]) { _ = try DatasetLoader.open([badAffine]) }
    let json = try Self.writeXML(dir, #"{"tiles": [ {"file": "x.h5", "dataset": } ]}"#, "bad.json")
    expectError(["bad.json", "malformed manifest", "not valid JSON"]) { _ = try DatasetLoader.open([json]) }
    let missingKey = try Self.writeXML(dir, #"{"tiles": [{"file": "x.h5"}]}"#, "k.json")
    expectError(["k.json", "dataset", "tiles[0]"]) { _ = try DatasetLoader.open([missingKey]) }
  }

  @Test func unknownImageLoader() throws {
    let dir = TemporaryDirectory()
    let xml = try Self.project(dir)
    let n5 = try Self.writeXML(dir, xml.replacingOccurrences(of: "format=\"bdv.hdf5\"", with: "format=\"bdv.n5\""))
    expectError(["bad.xml", "bdv.n5", "unknown image loader"]) { _ = try DatasetLoader.open([n5]) }
  }

  @Test func viewsOfDifferentRank() throws {
    let dir = TemporaryDirectory()
    _ = try Self.project(dir)
    let f = try HDF5File(path: dir.path("flat.h5"), mode: .truncate)
    _ = try f.createDataset("img", elementType: .uint16, shape: [16, 16])
    let manifest = """
      {"tiles": [
        {"file": "tiles/tile_000.h5", "dataset": "ch0", "position_um": [0, 0, 0], "voxel_size_um": [2, 1, 1]},
        {"file": "flat.h5", "dataset": "img", "position_um": [0, 0], "voxel_size_um": [1, 1]}]}
      """
    let m = try Self.writeXML(dir, manifest, "r.json")
    expectError(["r.json", "2-D", "3-D", "same rank"]) { _ = try DatasetLoader.open([m]) }
    let wrongCount = try Self.writeXML(
      dir, #"{"tiles": [{"file": "flat.h5", "dataset": "img", "position_um": [0, 0, 0], "voxel_size_um": [1, 1]}]}"#,
      "w.json")
    expectError(["w.json", "position_um", "3 values", "2 axes"]) { _ = try DatasetLoader.open([wrongCount]) }
  }

  @Test func nonFinitePositionsAndBadVoxelSizes() throws {
    let dir = TemporaryDirectory()
    _ = try Self.project(dir)
    for (value, fragment) in [("NaN", "NaN"), ("Infinity", "NaN or infinity")] {
      // JSON has no NaN literal: such positions arrive from attributes.
      let f = try HDF5File(path: dir.path("t\(value).h5"), mode: .truncate)
      _ = try f.createDataset("ch0", elementType: .uint16, shape: [2, 4, 4])
      try f.setAttribute("position_um", of: "ch0", values: [0, value == "NaN" ? .nan : .infinity, 0])
      try f.setAttribute("voxel_size_um", of: "ch0", values: [1, 1, 1])
      expectError(["t\(value).h5", "position_um", fragment]) { _ = try DatasetLoader.open([dir.path("t\(value).h5")]) }
    }
    for bad in ["0", "-1"] {
      let m = try Self.writeXML(
        dir,
        #"{"tiles": [{"file": "tiles/tile_000.h5", "dataset": "ch0", "position_um": [0, 0, 0], "voxel_size_um": [2, \#(bad), 1]}]}"#,
        "v\(bad).json")
      expectError(["v\(bad).json", "voxel_size_um", "positive"]) { _ = try DatasetLoader.open([m]) }
    }
    let xml = try String(contentsOfFile: dir.path("p.xml"), encoding: .utf8)
    let zero = try Self.writeXML(
      dir, xml.replacingOccurrences(of: "<size>1.0 1.0 2.0</size>", with: "<size>1.0 0.0 2.0</size>"))
    expectError(["bad.xml", "voxelSize", "positive"]) { _ = try DatasetLoader.open([zero]) }
    let nanAffine = try Self.writeXML(
      dir, xml.replacingOccurrences(of: "<affine>1.0 0.0 0.0 0.0", with: "<affine>NaN 0.0 0.0 0.0"), "n.xml")
    expectError(["n.xml", "NaN"]) { _ = try DatasetLoader.open([nanAffine]) }
    let singular = try Self.writeXML(
      dir,
      #"{"tiles": [{"file": "tiles/tile_000.h5", "dataset": "ch0", "affine": [[0, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]}]}"#,
      "s.json")
    expectError(["s.json", "affine", "singular"]) { _ = try DatasetLoader.open([singular]) }
  }

  @Test func datasetSmallerThanTheXMLSays() throws {
    let dir = TemporaryDirectory()
    let xml = try Self.project(dir)
    let bigger = try Self.writeXML(
      dir, xml.replacingOccurrences(of: "<size>16 16 4</size>", with: "<size>16 20 4</size>"))
    expectError(["p.h5", "t00000/s00/0/cells", "smaller than the XML"]) { _ = try DatasetLoader.open([bigger]) }
  }

  @Test func filesWithoutPositions() throws {
    let dir = TemporaryDirectory()
    let f = try HDF5File(path: dir.path("plain.h5"), mode: .truncate)
    _ = try f.createDataset("data", elementType: .uint16, shape: [4, 4])
    expectError(["plain.h5", "position_um", "manifest"]) { _ = try DatasetLoader.open([dir.path("plain.h5")]) }
    try f.setAttribute("position_um", of: "data", values: [0, 0])
    expectError(["plain.h5", "voxel_size_um"]) { _ = try DatasetLoader.open([dir.path("plain.h5")]) }
    let text = dir.path("notes.h5")
    try "not hdf5".write(toFile: text, atomically: true, encoding: .utf8)
    expectError(["notes.h5", "HDF5"]) { _ = try DatasetLoader.open([text]) }
  }
}

/// Manifests as acquisition scripts write them: a bare list of tiles is accepted, and mistakes
/// are named by entry and key in plain words.
@Suite struct FriendlyManifestTests {
  @Test func bareListOfTilesIsAManifest() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(tileShape: [4, 16, 16], grid: [1, 1, 2], channels: 1, voxelSize: [2, 1, 1], seed: 2)
    _ = try a.writeHDF5Tiles(to: dir.path("tiles"))
    let list = #"""
        [{"file": "tiles/tile_000.h5", "dataset": "ch0", "position_um": [0, 0, 0], "voxel_size_um": [2, 1, 1]},
         {"file": "tiles/tile_001.h5", "dataset": "ch0", "position_um": [0, 0, 13.6], "voxel_size_um": [2, 1, 1]}]
      """#
    let path = try DatasetErrorTests.writeXML(dir, "\n  " + list, "list.json")
    let (data, _) = try DatasetLoader.open([path])
    #expect(data.views.count == 2 && data.tiles == [0, 1])
    #expect(data.views[1].viewToWorld.translation == [0, 0, 13.6])
    #expect(data.views[0].voxelSize == [2, 1, 1])
  }

  @Test func mistakesNameTheEntryAndKeyInPlainWords() throws {
    let dir = TemporaryDirectory()
    let cases: [(String, [String])] = [
      (
        #"{"tiles": [{"file": "a.h5", "dataset": "ch0", "position_um": "0,0,0"}]}"#,
        ["tiles[0].position_um", "should be a list of numbers", "it is a string"]
      ),
      (#"[{"file": "a.h5", "dataset": "ch0"}, {"file": "b.h5"}]"#, ["tiles[1]", "has no \"dataset\""]),
      (#"[{"file": "a.h5", "dataset": "ch0", "tile": "one"}]"#, ["tiles[0].tile", "a whole number"]),
      (#""tiles""#, ["the top level", "an object with a \"tiles\" list, or a list of tile entries"]),
      (#"{"tiles": {"file": "a.h5"}}"#, ["tiles", "should be a list of tile entries"]),
    ]
    for (i, (text, words)) in cases.enumerated() {
      let path = try DatasetErrorTests.writeXML(dir, text, "m\(i).json")
      expectError(["m\(i).json", "malformed manifest"] + words) { _ = try DatasetLoader.open([path]) }
    }
  }
}
