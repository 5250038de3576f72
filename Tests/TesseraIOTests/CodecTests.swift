import Testing

@testable import TesseraIO

@Suite struct CodecTests {
  /// Compressible but not trivial: a noisy ramp of uint16 values.
  static let sample: [UInt8] = {
    var rng: UInt64 = 12345
    var out: [UInt8] = []
    for i in 0..<20_000 {
      rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      let v = UInt16(truncatingIfNeeded: i / 7 + Int(rng >> 60))
      out.append(UInt8(v & 0xFF))
      out.append(UInt8(v >> 8))
    }
    return out
  }()

  static let codecs: [(String, any BytesCodec)] = [
    ("zstd-1", ZstdCodec(level: 1)),
    ("zstd-5", ZstdCodec(level: 5)),
    ("blosc-lz4", BloscCodec(compressor: "lz4", level: 5, shuffle: .byte, typeSize: 2)),
    ("blosc-zstd", BloscCodec(compressor: "zstd", level: 3, shuffle: .bit, typeSize: 2)),
    ("blosc-noshuffle", BloscCodec(compressor: "blosclz", level: 9, shuffle: .none, typeSize: 1)),
    ("gzip", DeflateCodec(level: 1, container: .gzip)),
    ("zlib", DeflateCodec(level: 6, container: .zlib)),
  ]

  @Test(arguments: codecs.map(\.0))
  func roundTrip(name: String) throws {
    let codec = Self.codecs.first { $0.0 == name }!.1
    let encoded = try codec.encode(Self.sample)
    #expect(encoded.count < Self.sample.count)
    #expect(try codec.decode(encoded, decodedSize: Self.sample.count) == Self.sample)
    // Empty input survives too.
    #expect(try codec.decode(try codec.encode([]), decodedSize: 0) == [])
  }

  @Test func containersAreTheRightOnes() throws {
    let gz = try DeflateCodec(container: .gzip).encode(Self.sample)
    #expect(gz.prefix(2) == [0x1F, 0x8B])  // gzip magic
    let zl = try DeflateCodec(container: .zlib).encode(Self.sample)
    #expect(zl[0] & 0x0F == 8)  // zlib CMF: deflate
    let zs = try ZstdCodec().encode(Self.sample)
    #expect(zs.prefix(4) == [0x28, 0xB5, 0x2F, 0xFD])  // zstd frame magic
  }

  @Test func corruptOrMisSizedInputThrows() throws {
    let z = try ZstdCodec().encode(Self.sample)
    #expect(throws: CodecError.self) { try ZstdCodec().decode(z, decodedSize: Self.sample.count - 1) }
    #expect(throws: CodecError.self) { try ZstdCodec().decode(Array(z.prefix(10)), decodedSize: Self.sample.count) }
    let g = try DeflateCodec().encode(Self.sample)
    #expect(throws: CodecError.self) { try DeflateCodec().decode(Array(g.prefix(100)), decodedSize: Self.sample.count) }
    #expect(throws: CodecError.self) { try DeflateCodec().decode(g, decodedSize: 10) }
    let b = try BloscCodec(typeSize: 2).encode(Self.sample)
    #expect(throws: CodecError.self) { try BloscCodec().decode(b, decodedSize: 10) }
    #expect(throws: CodecError.self) { try BloscCodec().decode([1, 2, 3], decodedSize: 10) }
  }
}
