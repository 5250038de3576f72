import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

@Suite struct ZarrTests {
  static func sample(_ type: ElementType, _ shape: [Int], seed: UInt64 = 1) -> AnyVolumeBuffer {
    var rng = seed
    var f = VolumeBuffer<Double>(shape: shape)
    for i in f.storage.indices {
      rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      f.storage[i] = Double(rng >> 40) / Double(1 << 24) * 250 + Double(i % 7)
    }
    switch type {
    case .uint8: return AnyVolumeBuffer(f.converted(to: UInt8.self))
    case .uint16: return AnyVolumeBuffer(f.converted(to: UInt16.self))
    case .float32: return AnyVolumeBuffer(f.converted(to: Float.self))
    default: fatalError()
    }
  }

  static func equalBytes(_ a: AnyVolumeBuffer, _ b: AnyVolumeBuffer) -> Bool {
    a.elementType == b.elementType && a.box.shape == b.box.shape
      && a.withUnsafeBytes { x in b.withUnsafeBytes { y in x.elementsEqual(y) } }
  }

  static let compressors: [ZarrCompressor] = [
    .none, .zstd(level: 1), .blosc(cname: "lz4", level: 5, shuffle: .byte),
    .blosc(cname: "zstd", level: 3, shuffle: .bit), .gzip(level: 1), .zlib(level: 2),
  ]

  @Test(arguments: [ZarrFormat.v2, .v3], [ElementType.uint8, .uint16, .float32])
  func roundTripEveryCodec2DAnd3D(format: ZarrFormat, type: ElementType) throws {
    let dir = TemporaryDirectory()
    for compressor in Self.compressors {
      if case .zlib = compressor, format == .v3 { continue }
      for (shape, chunks) in [([13, 22], [5, 8]), ([5, 11, 9], [2, 4, 4])] {
        let path = dir.path("\(format)-\(type)-\(compressor)-\(shape.count)".replacingOccurrences(of: " ", with: "_"))
        let data = Self.sample(type, shape)
        let array = try ZarrArray.create(
          at: path,
          metadata: ZarrArrayMetadata(
            format: format, shape: shape, chunkShape: chunks, dataType: type, compressor: compressor))
        for block in array.grid.allChunks { try array.writeBlock(block, data) }
        let reopened = try ZarrArray.open(path)
        #expect(reopened.metadata == array.metadata, "\(compressor)")
        #expect(
          Self.equalBytes(try reopened.read(reopened.grid.bounds), data), "\(format) \(type) \(compressor) \(shape)")
        // Edge chunks are stored full size (decodable to the full chunk).
        let last = array.grid.allChunks.last!
        #expect(try reopened.readBlock(last)?.box.shape == chunks)
        let expectedKey = (format == .v3 ? "c/" : "") + last.map(String.init).joined(separator: "/")
        #expect(array.key(of: last) == expectedKey)
      }
    }
    // No temporary files are left behind.
    let leftovers = FileManager.default.enumerator(atPath: dir.url.path)!.compactMap { $0 as? String }
      .filter { $0.hasSuffix(".tmp") }
    #expect(leftovers.isEmpty)
  }

  @Test func fillChunksAreNotStoredAndReadAsFill() throws {
    let dir = TemporaryDirectory()
    for (fill, type) in [(0.0, ElementType.uint16), (7.0, .uint16), (.nan, .float32)] {
      let path = dir.path("fill-\(fill)-\(type)")
      var meta = ZarrArrayMetadata(format: .v3, shape: [6, 10], chunkShape: [3, 4], dataType: type, fillValue: fill)
      meta.checksum = true
      let array = try ZarrArray.create(at: path, metadata: meta)
      var data = VolumeBuffer<Double>(shape: [6, 10], repeating: fill)
      data[[4, 9]] = 3  // only chunk (1, 2) holds data
      let typed =
        type == .uint16
        ? AnyVolumeBuffer(data.converted(to: UInt16.self)) : AnyVolumeBuffer(data.converted(to: Float.self))
      var stored = 0
      for block in array.grid.allChunks where try array.writeBlock(block, typed) { stored += 1 }
      #expect(stored == 1)
      #expect(array.hasBlock([1, 2]) && !array.hasBlock([0, 0]))
      let back = try ZarrArray.open(path).read(Box(shape: [6, 10])).converted(to: Double.self)
      #expect(back[[4, 9]] == 3)
      #expect(
        back.storage.enumerated().allSatisfy {
          $0.offset == 49 || $0.element == fill || ($0.element.isNaN && fill.isNaN)
        })
      // Rewriting a block as all-fill removes the stale file.
      try array.writeBlock([1, 2], AnyVolumeBuffer(elementType: type, box: Box(shape: [6, 10])))
      if fill == 0 { #expect(!array.hasBlock([1, 2])) }
    }
  }

  @Test func shardsWithEmptyInnerChunks() throws {
    let dir = TemporaryDirectory()
    for atStart in [false, true] {
      let path = dir.path("sharded-\(atStart)")
      var meta = ZarrArrayMetadata(
        format: .v3, shape: [10, 20, 30], chunkShape: [4, 8, 16], innerChunkShape: [2, 4, 8], dataType: .uint16,
        compressor: .blosc(cname: "lz4", level: 5, shuffle: .byte))
      meta.indexAtStart = atStart
      let array = try ZarrArray.create(at: path, metadata: meta)
      var data = VolumeBuffer<UInt16>(shape: [10, 20, 30])
      // Data only in z < 2: in the first shard layer, inner chunks at z 2..<4 hold nothing.
      Box(lower: [0, 0, 0], upper: [2, 20, 30]).forEachIndex { data[$0] = UInt16($0[0] * 1000 + $0[1] * 31 + $0[2]) }
      for block in array.grid.allChunks { try array.writeBlock(block, AnyVolumeBuffer(data)) }
      #expect(array.grid.gridShape == [3, 3, 2])
      #expect(array.hasBlock([0, 0, 0]) && !array.hasBlock([1, 0, 0]))  // shards at z ≥ 4 are all fill
      // The shard's index marks the inner chunks at z 2..<4 that hold nothing as empty.
      let bytes = [UInt8](FileManager.default.contents(atPath: array.file(of: [0, 0, 0]))!)
      let indexBytes = 16 * 8 + 4  // 2×2×2 inner chunks per shard, plus the crc32c
      let index = atStart ? Array(bytes[0..<indexBytes]) : Array(bytes[(bytes.count - indexBytes)...])
      let entries = (0..<16).map { i in (0..<8).reduce(UInt64(0)) { $0 | UInt64(index[8 * i + $1]) << (8 * $1) } }
      #expect((0..<4).allSatisfy { entries[2 * $0] != .max })  // local z = 0: data
      #expect((4..<8).allSatisfy { entries[2 * $0] == .max && entries[2 * $0 + 1] == .max })  // local z = 1: empty
      #expect(
        CRC32C.checksum(Array(index.prefix(128)))
          == index.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
      let back = try ZarrArray.open(path).read(Box(shape: [10, 20, 30]))
      #expect(back.converted(to: UInt16.self) == data)
    }
  }

  @Test func crc32cCheckValue() {
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
  }

  @Test func metadataValidation() throws {
    let dir = TemporaryDirectory()
    #expect(throws: ZarrError.self) {
      try ZarrArray.create(
        at: dir.path("a"),
        metadata: ZarrArrayMetadata(
          format: .v2, shape: [4, 4], chunkShape: [4, 4], innerChunkShape: [2, 2], dataType: .uint8))
    }
    #expect(throws: ZarrError.self) {
      try ZarrArray.create(
        at: dir.path("b"),
        metadata: ZarrArrayMetadata(
          format: .v3, shape: [4, 4], chunkShape: [4, 4], innerChunkShape: [3, 2], dataType: .uint8))
    }
    #expect(throws: ZarrError.self) { try ZarrArray.open(dir.path("nothing")) }
  }

  static func spec(_ format: ZarrFormat, levels: Int = 3, shards: [Int]? = nil) -> OMEZarrImageSpec {
    OMEZarrImageSpec(
      format: format, shape: [9, 30, 34], voxelSize: [2, 0.5, 0.5], origin: [10, -3, 4],
      channels: [.init(label: "a", color: "00FF00"), .init(label: "b", color: "FF00FF")], dataType: .uint16,
      chunkShape: [4, 8, 8], shardShape: shards, compressor: .zstd(level: 1), levels: levels)
  }

  @Test(arguments: [ZarrFormat.v2, .v3])
  func omeImagePyramidAndMetadata(format: ZarrFormat) throws {
    let dir = TemporaryDirectory()
    let spec = Self.spec(format, shards: format == .v3 ? [8, 16, 16] : nil)
    let image = try OMEZarrImage.create(at: dir.path("img"), spec: spec, mode: .new)
    let data = Self.sample(.uint16, [2, 9, 30, 34])
    for block in image.levels[0].grid.allChunks { try image.writeBlock(level: 0, block, data) }
    // Not finished yet: the group has no OME metadata.
    #expect(try ZarrGroup.attributes(at: dir.path("img"))["ome"] == nil)
    #expect(try ZarrGroup.attributes(at: dir.path("img"))["multiscales"] == nil)
    try image.buildPyramid(threads: 2)
    try image.finish(provenance: ["command": "test"])
    #expect(spec.levelFactors == [[1, 1, 1], [1, 2, 2], [1, 4, 4]])
    #expect(image.levels.map(\.metadata.shape) == [[2, 9, 30, 34], [2, 9, 15, 17], [2, 9, 8, 9]])
    // Level 1 is the 1×2×2 block mean of level 0 (rounded half away from zero).
    let l0 = data.converted(to: Double.self)
    let l1 = try image.levels[1].read(image.levels[1].grid.bounds).converted(to: UInt16.self)
    l1.box.forEachIndex { p in
      var sum = 0.0
      for dy in 0..<2 { for dx in 0..<2 { sum += l0[[p[0], p[1], 2 * p[2] + dy, 2 * p[3] + dx]] } }
      #expect(l1[p] == UInt16(clamping: sum / 4))
    }
    // Level 2 at the x edge averages what exists (34 → 17 → 9: last column from one level-1 column).
    let attributes = try ZarrGroup.attributes(at: dir.path("img"))
    let multiscales =
      (format == .v3 ? (attributes["ome"] as? [String: Any])?["multiscales"] : attributes["multiscales"])
      as? [[String: Any]]
    let datasets = multiscales?.first?["datasets"] as? [[String: Any]]
    let t1 = (datasets?[1]["coordinateTransformations"] as? [[String: Any]])?[1]["translation"] as? [Double]
    #expect(t1 == [0, 10, -3 + 0.25, 4 + 0.25])
    #expect((attributes["tessera"] as? [String: Any])?["status"] as? String == "complete")
  }

  @Test func existingOutputsAndResume() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("img")
    let spec = Self.spec(.v3, levels: 2)
    let data = Self.sample(.uint16, [2, 9, 30, 34])
    do {
      let image = try OMEZarrImage.create(at: path, spec: spec, mode: .new)
      for block in image.levels[0].grid.allChunks.prefix(5) { try image.writeBlock(level: 0, block, data) }
    }
    expectThrows("exists") { _ = try OMEZarrImage.create(at: path, spec: spec, mode: .new) }
    var other = spec
    other.compressor = .gzip(level: 1)
    expectThrows("different settings") { _ = try OMEZarrImage.create(at: path, spec: other, mode: .resume) }
    let resumed = try OMEZarrImage.create(at: path, spec: spec, mode: .resume)
    #expect(resumed.completedAtOpen[0].count == 5)
    #expect(resumed.completedAtOpen[1].isEmpty)
    try FileManager.default.createDirectory(atPath: dir.path("notzarr"), withIntermediateDirectories: true)
    expectThrows("not a Zarr group") {
      _ = try OMEZarrImage.create(at: dir.path("notzarr"), spec: spec, mode: .overwrite)
    }
    _ = try OMEZarrImage.create(at: path, spec: spec, mode: .overwrite)
    #expect(try OMEZarrImage.create(at: path, spec: spec, mode: .resume).completedAtOpen[0].isEmpty)
  }

  @Test func progressLogIgnoresATornLineAndOtherPlans() throws {
    let dir = TemporaryDirectory()
    let log = try ProgressLog(directory: dir.path("p"), plan: "abc", part: "1/2")
    try log.record(BlockRecord(level: 0, block: 3, size: 10, crc: 0xbeef))
    try log.finishPart()
    // An older journal (no header, no checksums), torn at its end; and one of another plan.
    try "0 12\n1 4\n0 1".write(toFile: dir.path("p/old.log"), atomically: true, encoding: .utf8)
    try "# tessera journal 1 plan=other part=0/1\n0 5 1 0\n".write(
      toFile: dir.path("p/stale.log"), atomically: true, encoding: .utf8)
    let read = ProgressLog.read(directory: dir.path("p"), plan: "abc", blockCounts: [20, 10])
    #expect(Set(read.records[0].keys) == [3, 12])
    #expect(read.records[0][3] == [BlockRecord(level: 0, block: 3, size: 10, crc: 0xbeef)])
    #expect(read.records[0][12]?.first?.size == -1)
    #expect(Set(read.records[1].keys) == [4])
    #expect(read.stale == ["stale.log"])
    #expect(read.finishedParts == ["1/2"])
  }
}

func expectThrows(_ fragment: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
  do {
    try body()
    Issue.record("expected an error mentioning \(fragment)", sourceLocation: sourceLocation)
  } catch {
    #expect("\(error)".contains(fragment), "\(error)", sourceLocation: sourceLocation)
  }
}

/// Display windows pick order statistics by counting for small integer types: the same values
/// as sorting, on seeded samples of every such type (with repeats, extremes, one value, none).
@Suite struct DisplayWindowPercentileTests {
  @Test(arguments: [ElementType.uint8, .int8, .uint16, .int16, .uint32, .float32])
  func countingMatchesSorting(type: ElementType) {
    var rng = SplitMix64(seed: 0x5EED + UInt64(type.byteCount))
    let range = type.isFloatingPoint ? -1000.0...1000.0 : type.range
    for trial in 0..<40 {
      let count = [0, 1, 2, 7, 1000, 20_000][trial % 6]
      let spread = trial % 3 == 0 ? 3.0 : range.upperBound - range.lowerBound
      let values = (0..<count).map { _ -> Double in
        let x = range.lowerBound + Double(rng.next() % 1_000_003) / 1_000_003 * spread
        return type.isFloatingPoint ? x : x.rounded(.down)
      }
      let (p, q) = ([0.0, 0.001, 0.3][trial % 3], [0.999, 1.0, 0.5][trial % 3])
      let got = OMEZarrImage.percentiles(values, p, q, of: type)
      if values.isEmpty {
        #expect(got == (0, 1))
        continue
      }
      let sorted = values.sorted()
      let expected = (sorted[Int(Double(count - 1) * p)], sorted[Int(Double(count - 1) * q)])
      #expect(got == expected, "\(type) trial \(trial)")
    }
  }
}
