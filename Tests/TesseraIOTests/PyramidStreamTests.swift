import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

/// The in-stream pyramid writes the same bytes as the pyramid built from level 0 on disk.
@Suite struct PyramidStreamTests {
  struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var format: ZarrFormat = .v3
    var shape: [Int]
    var voxel: [Double]
    var chunks: [Int]
    var shards: [Int]? = nil
    var levels: Int
    var type: ElementType = .uint16
    var timepoints: Int = 1
    var fill: Double = 0
    var testDescription: String { name }
  }

  static let cases: [Case] = [
    Case(name: "3D anisotropic, odd shape", shape: [9, 30, 34], voxel: [2, 0.5, 0.5], chunks: [4, 8, 8], levels: 4),
    Case(
      name: "3D isotropic, z halves, float32, Zarr v2", format: .v2, shape: [13, 27, 35], voxel: [1, 1, 1],
      chunks: [4, 8, 6], levels: 3, type: .float32),
    Case(name: "2D uint8, 5 levels", shape: [37, 50], voxel: [0.5, 0.5], chunks: [8, 16], levels: 5, type: .uint8),
    Case(
      name: "3D sharded", shape: [9, 30, 34], voxel: [1, 1, 1], chunks: [4, 8, 8], shards: [8, 16, 16], levels: 3),
    Case(name: "2D with timepoints", shape: [20, 31], voxel: [1, 1], chunks: [4, 8], levels: 3, timepoints: 2),
    Case(name: "one chunk spans an odd axis", shape: [5, 21, 40], voxel: [1, 1, 1], chunks: [5, 21, 8], levels: 3),
    Case(name: "fill value 7", shape: [30, 34], voxel: [1, 1], chunks: [8, 8], levels: 3, fill: 7),
  ]

  static func spec(_ c: Case) -> OMEZarrImageSpec {
    OMEZarrImageSpec(
      format: c.format, shape: c.shape, voxelSize: c.voxel,
      channels: [.init(label: "a", color: "00FF00"), .init(label: "b", color: "FF00FF")], timepoints: c.timepoints,
      dataType: c.type, fillValue: c.fill, chunkShape: c.chunks, shardShape: c.shards, compressor: .zstd(level: 1),
      levels: c.levels)
  }

  /// The piece `box` of the level-0 volume: random values, except that every fifth block is all 0.
  static func piece(_ volume: AnyVolumeBuffer, _ box: Box, zero: Bool) -> AnyVolumeBuffer {
    var out = AnyVolumeBuffer(elementType: volume.elementType, box: box)
    if zero { return out }
    volume.withUnsafeBytes { src in
      out.withUnsafeMutableBytes { dst in
        RawCopy.copy(
          elementSize: volume.elementType.byteCount, from: src.baseAddress!, sourceBox: volume.box,
          to: dst.baseAddress!, destinationBox: box)
      }
    }
    return out
  }

  /// Every stored file of the image, relative path → bytes (progress logs excluded).
  static func files(_ root: String) throws -> [String: Data] {
    var out: [String: Data] = [:]
    let fm = FileManager.default
    for case let f as String in fm.enumerator(atPath: root)! where !f.hasPrefix(".tessera") {
      var isDirectory: ObjCBool = false
      if fm.fileExists(atPath: root + "/" + f, isDirectory: &isDirectory), !isDirectory.boolValue {
        out[f] = fm.contents(atPath: root + "/" + f)
      }
    }
    return out
  }

  @Test(arguments: cases)
  func inStreamEqualsFromDisk(_ c: Case) throws {
    let dir = TemporaryDirectory()
    let spec = Self.spec(c)
    #expect(spec.canStreamPyramid)
    let full = spec.arrayShape(level: 0)
    let volume = ZarrTests.sample(c.type, full, seed: UInt64(c.shape.reduce(0, +)))
    // The blocks "fusion" writes: all but every seventh (left as fill), every fifth all 0.
    let reference = try OMEZarrImage.create(at: dir.path("disk"), spec: spec, mode: .new)
    let all = reference.levels[0].grid.allChunks
    let blocks = all.enumerated().filter { $0.offset % 7 != 3 }.map(\.element)
    let zero = Set(all.enumerated().filter { $0.offset % 5 == 1 }.map(\.element))
    for b in blocks {
      try reference.writeBlock(level: 0, b) { box in Self.piece(volume, box, zero: zero.contains(b)) }
    }
    try reference.buildPyramid(threads: 2)

    let streamed = try OMEZarrImage.create(at: dir.path("stream"), spec: spec, mode: .new)
    let stream = try #require(streamed.pyramidStream(for: blocks))
    let order = streamed.pyramidOrder(of: blocks)
    #expect(order.sorted() == Array(blocks.indices))
    try Parallel.forEach(order.count, threads: 2) { i in
      let b = blocks[order[i]]
      try streamed.writeBlock(level: 0, b) { box in
        let p = Self.piece(volume, box, zero: zero.contains(b))
        stream.add(level: 0, block: b, piece: p)
        return p
      }
      try stream.finished(level: 0, block: b)
    }
    #expect(stream.isComplete)
    let predicted = spec.pyramidStreamBytes(for: blocks, threads: 2)
    #expect(stream.peakBytes > 0 && stream.peakBytes <= predicted)
    let a = try Self.files(dir.path("disk"))
    let s = try Self.files(dir.path("stream"))
    #expect(a.keys.sorted() == s.keys.sorted())
    for (k, v) in a { #expect(s[k] == v, "\(k) differs") }
    // Some pyramid blocks are stored at every level (the comparison is not vacuous).
    for level in 1..<spec.levels {
      let chunks = a.keys.filter { $0.hasPrefix("\(level)/") && !$0.hasSuffix("zarr.json") && !$0.hasSuffix(".zarray") }
      #expect(!chunks.isEmpty, "level \(level) has no stored block")
    }
  }

  @Test func oddChunksAndResumedOutputsUseTheDisk() throws {
    let dir = TemporaryDirectory()
    var c = Self.cases[0]
    c.chunks = [4, 7, 8]
    let odd = Self.spec(c)
    #expect(!odd.canStreamPyramid)
    let image = try OMEZarrImage.create(at: dir.path("odd"), spec: odd, mode: .new)
    #expect(image.pyramidStream(for: image.levels[0].grid.allChunks) == nil)
    #expect(odd.pyramidStreamBytes(for: image.levels[0].grid.allChunks, threads: 2) == 0)
    // A resumed output knows its complete blocks (a fusion that has some builds its pyramid from
    // disk instead of in the stream).
    let spec = Self.spec(Self.cases[0])
    let volume = ZarrTests.sample(.uint16, spec.arrayShape(level: 0))
    do {
      let first = try OMEZarrImage.create(at: dir.path("resumed"), spec: spec, mode: .new)
      let b = first.levels[0].grid.allChunks[0]
      try first.writeBlock(level: 0, b) { Self.piece(volume, $0, zero: false) }
    }
    let resumed = try OMEZarrImage.create(at: dir.path("resumed"), spec: spec, mode: .resume)
    #expect(resumed.isComplete(level: 0, block: 0) && resumed.isIntact(level: 0, block: 0))
    #expect(!resumed.isComplete(level: 0, block: 1))
  }
}
