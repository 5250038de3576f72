import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

/// The inflaters (ISA-L and libdeflate, raced; zlib as the fallback) against zlib's deflate:
/// random, camera-like and real microscope data, every level, shuffled and not, both containers;
/// the streams they must refuse with a clear error; and how the race picks its winner.
@Suite struct InflateTests {
  /// The repository's `Datasets/real/nuclei_crop.npy`: a 32×96×96 uint16 crop of a confocal
  /// nuclei volume.
  static let nucleiCrop: AnyVolumeBuffer = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent()
    return try! NumpyFile.read(root.appendingPathComponent("Datasets/real/nuclei_crop.npy").path)
  }()

  static func bytes(of buffer: AnyVolumeBuffer) -> [UInt8] { buffer.withUnsafeBytes { Array($0) } }

  /// uint16 samples: "random" (uniform bytes, incompressible), "camera" (a dim background with
  /// shot-noise-like jitter and a few bright blobs, ratio ~1.4 at level 1), "real" (the nuclei crop).
  static func sample(_ kind: String) -> [UInt8] {
    var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> UInt64 {
      rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return rng >> 33
    }
    switch kind {
    case "random":
      return (0..<150_000).map { _ in UInt8(truncatingIfNeeded: next()) }
    case "camera":
      var out: [UInt8] = []
      for i in 0..<80_000 {
        let blob = (i / 97) % 13 == 0 ? 1500 : 0
        let v = UInt16(100 + blob + Int(next() % 64) + Int(next() % 64))
        out += [UInt8(v & 0xFF), UInt8(v >> 8)]
      }
      return out
    default:
      return bytes(of: nucleiCrop)
    }
  }

  /// HDF5's shuffle filter for 2-byte elements: low bytes, then high bytes.
  static func shuffled(_ data: [UInt8]) -> [UInt8] {
    let n = data.count / 2
    return (0..<n).map { data[2 * $0] } + (0..<n).map { data[2 * $0 + 1] }
  }

  @Test(arguments: ["random", "camera", "real"], [1, 6, 9])
  func inflateMatchesZlibDeflate(kind: String, level: Int) throws {
    for shuffle in [false, true] {
      let data = shuffle ? Self.shuffled(Self.sample(kind)) : Self.sample(kind)
      for container in [DeflateCodec.Container.zlib, .gzip] {
        let codec = DeflateCodec(level: level, container: container)
        let encoded = try codec.encode(data)
        // libdeflate takes it (no fallback) and agrees with zlib.
        var fast = [UInt8](repeating: 0, count: data.count)
        let n = encoded.withUnsafeBytes { src in
          fast.withUnsafeMutableBytes { DeflateCodec.inflateWithLibdeflate(src, into: $0) }
        }
        #expect(n == data.count, "\(kind) level \(level) shuffle \(shuffle) \(container)")
        #expect(fast == data)
        if container == .zlib {
          // So does ISA-L (zlib container only).
          var isal = [UInt8](repeating: 0, count: data.count)
          let k = try encoded.withUnsafeBytes { src in
            try isal.withUnsafeMutableBytes { try Inflater.inflate(src, into: $0, with: .isal, codec: "zlib") }
          }
          #expect(k == data.count, "ISA-L: \(kind) level \(level) shuffle \(shuffle)")
          #expect(isal == data)
        }
        var slow = [UInt8](repeating: 0, count: data.count)
        let m = try encoded.withUnsafeBytes { src in
          try slow.withUnsafeMutableBytes { try DeflateCodec.inflateWithZlib(src, into: $0) }
        }
        #expect(m == data.count)
        #expect(slow == data)
        #expect(try codec.decode(encoded, decodedSize: data.count) == data)
      }
    }
  }

  @Test func unshuffleUndoesTheShuffleFilter() {
    let data = Self.sample("real")
    #expect(HDF5Dataset.unshuffle(Self.shuffled(data), elementSize: 2) == data)
    // 4-byte elements with a trailing partial element, which stays as stored.
    let odd: [UInt8] = Array(0..<11)
    let stored: [UInt8] = [0, 4, 1, 5, 2, 6, 3, 7, 8, 9, 10]
    #expect(HDF5Dataset.unshuffle(stored, elementSize: 4) == odd)
    #expect(HDF5Dataset.unshuffle(odd, elementSize: 1) == odd)
  }

  @Test func wrongChecksumIsAClearError() throws {
    let data = Self.sample("camera")
    for container in [DeflateCodec.Container.zlib, .gzip] {
      var encoded = try DeflateCodec(level: 1, container: container).encode(data)
      // zlib: the adler32 is the last 4 bytes; gzip: crc32 then the size.
      encoded[encoded.count - (container == .zlib ? 1 : 5)] ^= 0x01
      var out = [UInt8](repeating: 0, count: data.count)
      let fast = encoded.withUnsafeBytes { src in
        out.withUnsafeMutableBytes { DeflateCodec.inflateWithLibdeflate(src, into: $0) }
      }
      #expect(fast == nil, "libdeflate checks the trailer")
      if container == .zlib {
        let isal = try encoded.withUnsafeBytes { src in
          try out.withUnsafeMutableBytes { try Inflater.inflate(src, into: $0, with: .isal, codec: "zlib") }
        }
        #expect(isal == nil, "ISA-L checks the adler32")
      }
      let error = #expect(throws: CodecError.self) {
        try DeflateCodec(container: container).decode(encoded, decodedSize: data.count)
      }
      #expect(error?.message.contains("checksum") == true, "\(String(describing: error))")
    }
  }

  @Test func truncatedStreamsThrow() throws {
    let data = Self.sample("camera")
    let encoded = try DeflateCodec(level: 6, container: .zlib).encode(data)
    for length in stride(from: 0, to: encoded.count, by: max(1, encoded.count / 97)) + [encoded.count - 1] {
      let error = #expect(throws: CodecError.self) {
        try DeflateCodec(container: .zlib).decode(Array(encoded.prefix(length)), decodedSize: data.count)
      }
      if length > 2 { #expect(error?.message.contains("truncated") == true, "\(length): \(String(describing: error))") }
    }
  }

  /// 300 zlib streams of `data` (level 1), each with one bit flipped: in each of the first 8 bytes
  /// (the header and the first block's start), then at seeded random places; with the byte index.
  static func flippedStreams(of data: [UInt8], seed: UInt64) throws -> [(Int, [UInt8])] {
    let encoded = try DeflateCodec(level: 1, container: .zlib).encode(data)
    var rng = seed
    return (0..<300).map { trial in
      rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      var corrupt = encoded
      let at = trial < 8 ? trial : Int(rng >> 33) % encoded.count
      corrupt[at] ^= UInt8(1 << ((rng >> 20) % 8))
      return (at, corrupt)
    }
  }

  /// Flipped bits anywhere (header, blocks, trailer) either throw `CodecError` or, when they hit
  /// padding bits, decode to the original bytes. Never a crash, never wrong output.
  @Test func corruptStreamsThrowOrDecodeExactly() throws {
    let data = Self.sample("real")
    var thrown = 0
    for (at, corrupt) in try Self.flippedStreams(of: data, seed: 7) {
      do {
        let out = try DeflateCodec(container: .zlib).decode(corrupt, decodedSize: data.count)
        #expect(out == data, "byte \(at) flipped decodes to different data without an error")
      } catch is CodecError {
        thrown += 1
      }
    }
    #expect(thrown > 250)
  }

  /// Each whole-buffer decoder alone, on the same flipped bits: it refuses the stream or decodes
  /// the original bytes, and says how many it wrote.
  @Test(arguments: [Inflater.isal, .libdeflate])
  func eachDecoderRefusesCorruptStreamsOrDecodesExactly(decoder: Inflater) throws {
    let data = Self.sample("real")
    var refused = 0
    for (at, corrupt) in try Self.flippedStreams(of: data, seed: 11) {
      var out = [UInt8](repeating: 0, count: data.count)
      let n = try corrupt.withUnsafeBytes { src in
        try out.withUnsafeMutableBytes { try Inflater.inflate(src, into: $0, with: decoder, codec: "zlib") }
      }
      if let n {
        #expect(n == data.count && out == data, "\(decoder): byte \(at) flipped decodes to other data")
      } else {
        refused += 1
      }
    }
    #expect(refused > 250)
  }

  /// The race: the first trial streams alternate (ISA-L first), small streams are not timed, and
  /// once both have reported half the trials the one with more bytes per CPU second decodes every
  /// later stream; `TESSERA_INFLATE` fixes the choice; a race decides on real chunks.
  @Test func theFasterDecoderWinsTheRace() throws {
    for (isalSeconds, winner) in [(0.5, Inflater.isal), (2.0, .libdeflate)] {
      let race = InflaterRace(forced: nil)
      #expect(race.next(outputBytes: 100) == (.isal, false))  // small: untimed, does not count
      for i in 0..<Inflater.trials {
        let (decoder, timed) = race.next(outputBytes: 1 << 20)
        #expect(timed && decoder == (i % 2 == 0 ? .isal : .libdeflate))
        race.report(decoder, seconds: decoder == .isal ? isalSeconds : 1, bytes: 1 << 20)
      }
      #expect(race.next(outputBytes: 1 << 20) == (winner, false))
      #expect(race.summary.hasPrefix("\(winner.rawValue) (race: "), "\(race.summary)")
    }
    let forced = InflaterRace(forced: "ZLIB")
    #expect(forced.next(outputBytes: 1 << 20) == (.zlib, false))
    #expect(forced.summary == "zlib (TESSERA_INFLATE)")
    let unknown = InflaterRace(forced: "fast")
    #expect(unknown.next(outputBytes: 1 << 20) == (.isal, true))
    #expect(unknown.summary.hasPrefix("undecided"))
    // Real chunks through a race of their own (the process's is shared with the tests running
    // beside this one): every stream decodes exactly, and the race ends.
    let data = Self.sample("real")
    let encoded = try DeflateCodec(level: 1, container: .zlib).encode(data)
    let real = InflaterRace(forced: nil)
    for _ in 0..<Inflater.trials {
      var out = [UInt8](repeating: 0, count: data.count)
      let n = try encoded.withUnsafeBytes { src in
        try out.withUnsafeMutableBytes { try Inflater.inflateZlib(src, into: $0, codec: "zlib", race: real) }
      }
      #expect(n == data.count && out == data)
    }
    #expect(!real.summary.hasPrefix("undecided"), "\(real.summary)")
    #expect(real.next(outputBytes: 1 << 20).timed == false)
  }

  /// A contender that refuses the race's streams (valid ones the other decodes, as ISA-L would
  /// refuse a form it does not take) loses after ``Inflater/refusalsToLose`` of them.
  @Test func aContenderThatRefusesStreamsLoses() {
    let race = InflaterRace(forced: nil)
    for _ in 0..<Inflater.refusalsToLose {
      let (decoder, timed) = race.next(outputBytes: 1 << 20)
      #expect(decoder == .isal && timed)
      race.withdraw(.isal)
    }
    #expect(race.next(outputBytes: 1 << 20) == (.libdeflate, false))
    #expect(race.summary == "libdeflate (the other refused \(Inflater.refusalsToLose) streams)")
  }

  /// A zlib header announcing a window over 32 KiB (CINFO 8) is invalid: every decoder refuses it,
  /// whichever the race picked.
  @Test func aWindowOver32KiBIsRefusedByEveryDecoder() throws {
    let data = Self.sample("camera")
    var encoded = try DeflateCodec(level: 1, container: .zlib).encode(data)
    encoded[0] = 0x88  // CM 8, CINFO 8
    encoded[1] = UInt8((31 - (Int(encoded[0]) * 256) % 31) % 31)  // FCHECK, no FDICT, FLEVEL 0
    #expect((Int(encoded[0]) * 256 + Int(encoded[1])) % 31 == 0)
    for decoder in [Inflater.isal, .libdeflate] {
      var out = [UInt8](repeating: 0, count: data.count)
      let n = try encoded.withUnsafeBytes { src in
        try out.withUnsafeMutableBytes { try Inflater.inflate(src, into: $0, with: decoder, codec: "zlib") }
      }
      #expect(n == nil, "\(decoder)")
    }
    #expect(throws: CodecError.self) { try DeflateCodec(container: .zlib).decode(encoded, decodedSize: data.count) }
  }

  @Test func misSizedOutputIsAClearError() throws {
    let data = Self.sample("camera")
    let encoded = try DeflateCodec(level: 1, container: .zlib).encode(data)
    let short = #expect(throws: CodecError.self) {
      try DeflateCodec(container: .zlib).decode(encoded, decodedSize: data.count + 10)
    }
    #expect(short?.message == "decoded \(data.count) bytes, expected \(data.count + 10)")
    let long = #expect(throws: CodecError.self) {
      try DeflateCodec(container: .zlib).decode(encoded, decodedSize: 1000)
    }
    #expect(long?.message.contains("larger than the 1000 bytes expected") == true)
    // ISA-L alone: a larger buffer takes the stream and says how much it wrote; a smaller one refuses.
    for (size, expected) in [(data.count + 10, Optional(data.count)), (1000, nil)] {
      var out = [UInt8](repeating: 0, count: size)
      let n = try encoded.withUnsafeBytes { src in
        try out.withUnsafeMutableBytes { try Inflater.inflate(src, into: $0, with: .isal, codec: "zlib") }
      }
      #expect(n == expected, "\(size)-byte buffer")
    }
  }

  /// A zlib stream with the FDICT flag (a preset dictionary): ISA-L and libdeflate refuse it, zlib is asked
  /// and cannot decode it without the dictionary either, so the error comes from zlib.
  @Test func presetDictionaryStreamFallsBackToZlibAndIsAClearError() throws {
    let data = Self.sample("camera")
    let plain = try DeflateCodec(level: 1, container: .zlib).encode(data)
    let cmf = plain[0]
    var flg: UInt8 = 0x20  // FDICT, FLEVEL 0
    flg |= UInt8(31 - (Int(cmf) * 256 + Int(flg)) % 31) % 31
    #expect((Int(cmf) * 256 + Int(flg)) % 31 == 0)
    let withDictionary = [cmf, flg, 0x12, 0x34, 0x56, 0x78] + plain.dropFirst(2)
    var out = [UInt8](repeating: 0, count: data.count)
    let fast = withDictionary.withUnsafeBytes { src in
      out.withUnsafeMutableBytes { DeflateCodec.inflateWithLibdeflate(src, into: $0) }
    }
    #expect(fast == nil)
    let isal = try withDictionary.withUnsafeBytes { src in
      try out.withUnsafeMutableBytes { try Inflater.inflate(src, into: $0, with: .isal, codec: "zlib") }
    }
    #expect(isal == nil)
    let error = #expect(throws: CodecError.self) {
      try DeflateCodec(container: .zlib).decode(withDictionary, decodedSize: data.count)
    }
    #expect(error?.message.contains("preset dictionary") == true)
  }

  /// HDF5 writes the chunks (its own deflate filter, zlib); Tessera's chunk reader inflates them
  /// with ISA-L or libdeflate: bit-exact with `H5Dread` and the source, edge chunks included.
  @Test(arguments: [false, true], [1, 9])
  func hdf5GzipDatasetThroughTheChunkReader(shuffle: Bool, level: Int) throws {
    let dir = TemporaryDirectory()
    let path = dir.path("nuclei.h5")
    guard case .uint16(let volume) = Self.nucleiCrop else {
      Issue.record("nuclei_crop.npy is not uint16")
      return
    }
    do {
      let f = try HDF5File(path: path, mode: .truncate)
      let d = try f.createDataset(
        "cells", elementType: .uint16, shape: volume.box.shape, chunkShape: [12, 40, 40], deflateLevel: level,
        shuffle: shuffle)
      try d.write(volume)
    }
    let d = try HDF5File(path: path).dataset("cells")
    #expect(d.decodesChunksItself)
    let all = try d.readBlock(d.bounds)
    guard case .uint16(let read) = all else {
      Issue.record("wrong element type")
      return
    }
    #expect(read == volume)
    #expect(Self.bytes(of: try d.read(d.bounds)) == Self.bytes(of: all))
    let sub = Box(lower: [5, 30, 17], upper: [31, 95, 90])
    #expect(Self.bytes(of: try d.readBlock(sub, parallel: false)) == Self.bytes(of: .uint16(volume.extracting(sub))))

    // A corrupt chunk: the error names the file and the dataset.
    var raw = try #require(try d.readRawChunk(at: [12, 40, 40]))
    raw.bytes[raw.bytes.count / 2] ^= 0x10
    var out = [UInt8](repeating: 0, count: 12 * 40 * 40 * 2)
    let error = #expect(throws: HDF5Error.self) {
      try out.withUnsafeMutableBytes { try d.decode(raw, into: $0) }
    }
    #expect(error?.path == path)
    #expect(error?.object.hasSuffix("cells") == true)
    #expect(error?.message.hasPrefix("corrupt deflate chunk") == true, "\(String(describing: error))")
  }
}
