import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

/// A scratch directory removed when the test ends.
final class TemporaryDirectory {
  let url: URL
  init() {
    url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }
  func path(_ name: String) -> String { url.appendingPathComponent(name).path }
  deinit { try? FileManager.default.removeItem(at: url) }
}

@Suite struct HDF5Tests {
  @Test func chunkedDeflatedDatasetRoundTrip3D() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("vol.h5")
    let box = Box(shape: [5, 17, 23])
    var vol = VolumeBuffer<UInt16>(box: box)
    var i = 0
    box.forEachIndex { p in
      vol[p] = UInt16(truncatingIfNeeded: i &* 2_654_435_761 >> 7)
      i += 1
    }
    do {
      let f = try HDF5File(path: path, mode: .truncate)
      let d = try f.createDataset(
        "t00000/s00/0/cells", elementType: .uint16, shape: box.shape, chunkShape: [2, 8, 8], deflateLevel: 4,
        shuffle: true)
      try d.write(vol)
    }
    let f = try HDF5File(path: path)
    let d = try f.dataset("t00000/s00/0/cells")
    #expect(d.shape == [5, 17, 23])
    #expect(d.elementType == .uint16)
    #expect(d.chunkShape == [2, 8, 8])
    #expect(d.filters.map(\.id) == [HDF5Filter.shuffleID, HDF5Filter.deflateID])
    guard case .uint16(let all) = try d.read(box) else {
      Issue.record("wrong element type")
      return
    }
    #expect(all == vol)
    // A hyperslab that crosses chunk borders.
    let sub = Box(lower: [1, 5, 7], upper: [4, 14, 20])
    #expect(try d.read(sub, as: UInt16.self) == vol.extracting(sub))
    // Converted read.
    #expect(try d.read(sub, as: Float.self) == vol.extracting(sub).converted(to: Float.self))
  }

  @Test func float2DRoundTripAndPartialWrites() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("plane.h5")
    let f = try HDF5File(path: path, mode: .create)
    let d = try f.createDataset("img", elementType: .float32, shape: [6, 9])
    var half = VolumeBuffer<Float>(box: Box(lower: [3, 0], upper: [6, 9]), repeating: 1.5)
    half[[4, 4]] = -2
    try d.write(half)
    let back = try d.read(Box(shape: [6, 9]), as: Float.self)
    #expect(back.storage.prefix(27).allSatisfy { $0 == 0 })
    #expect(back[[4, 4]] == -2)
    #expect(back[[5, 8]] == 1.5)
  }

  @Test func errorsNameTheFileAndObject() throws {
    let dir = TemporaryDirectory()
    #expect {
      try HDF5File(path: dir.path("missing.h5"))
    } throws: { error in
      "\(error)".contains("missing.h5") && "\(error)".contains("no such file")
    }
    let notHDF5 = dir.path("text.h5")
    try "hello".write(toFile: notHDF5, atomically: true, encoding: .utf8)
    #expect(throws: HDF5Error.self) { try HDF5File(path: notHDF5) }
    let f = try HDF5File(path: dir.path("a.h5"), mode: .truncate)
    _ = try f.createDataset("x", elementType: .uint8, shape: [4, 4])
    #expect {
      try f.dataset("nope/cells")
    } throws: { error in
      "\(error)".contains("a.h5") && "\(error)".contains("nope/cells")
    }
    let d = try f.dataset("x")
    #expect(throws: HDF5Error.self) { try d.read(Box(lower: [0, 0], upper: [5, 4])) }
    #expect(throws: HDF5Error.self) { try f.createDataset("x", elementType: .uint8, shape: [4, 4]) }
  }
}
