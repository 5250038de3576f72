import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

/// The codec chain and the stores: what each codec writes, reads and refuses.
@Suite struct ZarrCodecChainTests {
  static func json(_ text: String) -> [String: Any] {
    try! JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
  }

  /// An array of every compressor (sharded or not, with or without crc32c) in a memory store reads
  /// back bit-exactly, and a store holds exactly the metadata plus the non-fill blocks.
  @Test func memoryStoreRoundTripsEveryChain() throws {
    let data = ZarrTests.sample(.uint16, [6, 10, 12], seed: 7)
    for compressor in ZarrTests.compressors where compressor != .zlib(level: 2) {
      for (inner, checksum) in [(nil, false), (nil, true), ([3, 5, 4] as [Int]?, false), ([3, 5, 4], true)] {
        let store = MemoryStore()
        var meta = ZarrArrayMetadata(
          format: .v3, shape: [6, 10, 12], chunkShape: inner == nil ? [3, 5, 4] : [6, 10, 8], innerChunkShape: inner,
          dataType: .uint16, compressor: compressor)
        meta.checksum = checksum
        let array = try ZarrArray.create(in: store, metadata: meta)
        for block in array.grid.allChunks { try array.writeBlock(block, data) }
        let back = try ZarrArray.open(in: store)
        #expect(back.metadata == meta, "\(compressor) \(String(describing: inner)) \(checksum)")
        #expect(ZarrTests.equalBytes(try back.read(back.grid.bounds), data), "\(compressor) \(checksum)")
        #expect(store.keys.count == 1 + array.grid.allChunks.count)
      }
    }
  }

  /// The chain that a v3 `codecs` list describes writes the same list back.
  @Test func v3CodecsJSONRoundTrips() throws {
    let text = """
      [{"name": "sharding_indexed", "configuration": {"chunk_shape": [2, 4],
        "codecs": [{"name": "bytes", "configuration": {"endian": "big"}},
                   {"name": "zstd", "configuration": {"level": 3, "checksum": false}}, {"name": "crc32c"}],
        "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
        "index_location": "start"}}]
      """
    let codecs = try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
    let chain = try ZarrCodecRegistry.chain(v3: codecs, context: .init(dataType: .uint16, path: "x"))
    let sharding = try #require(chain.sharding)
    #expect(sharding.innerChunkShape == [2, 4] && sharding.indexAtStart && sharding.indexChecksum)
    #expect((sharding.inner.arrayToBytes as? ZarrBytesCodec)?.bigEndian == true)
    #expect((sharding.inner.bytesToBytes.first as? ZstdCodec)?.level == 3)
    #expect(sharding.inner.bytesToBytes.last is ZarrCRC32CCodec)
    let again = try ZarrCodecRegistry.chain(v3: chain.v3JSON(), context: .init(dataType: .uint16, path: "x"))
    #expect(again == chain)
  }

  /// A big-endian array (as other writers may store it) reads as the same values.
  @Test func bigEndianChunksAreSwapped() throws {
    let store = MemoryStore()
    var meta = ZarrArrayMetadata(format: .v3, shape: [3, 4], chunkShape: [3, 4], dataType: .uint16, compressor: .none)
    meta.codecs = ZarrCodecChain(arrayToBytes: ZarrBytesCodec(elementSize: 2, bigEndian: true))
    let array = try ZarrArray.create(in: store, metadata: meta)
    let values = try VolumeBuffer<UInt16>(box: Box(shape: [3, 4]), storage: (0..<12).map { UInt16($0 * 257 + 1) })
    try array.writeBlock([0, 0], AnyVolumeBuffer(values))
    let stored = try #require(try store.get("c/0/0"))
    #expect(Array(stored.prefix(4)) == [0x00, 0x01, 0x01, 0x02])  // 1 and 258, most significant byte first
    #expect(try ZarrArray.open(in: store).read(Box(shape: [3, 4])).converted(to: UInt16.self) == values)
  }

  /// What the registry refuses, each with its own message naming the file.
  @Test func unsupportedChainsAreRefused() throws {
    let context = ZarrCodecRegistry.Context(dataType: .uint16, path: "a/zarr.json")
    func refused(_ text: String, _ needle: String) {
      let codecs = try! JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
      do {
        _ = try ZarrCodecRegistry.chain(v3: codecs, context: context)
        Issue.record("accepted \(text)")
      } catch {
        #expect("\(error)".contains(needle), "\(error)")
        #expect("\(error)".hasPrefix("a/zarr.json"), "\(error)")
      }
    }
    refused(#"[{"name": "bytes"}, {"name": "lz77"}]"#, "unsupported codec lz77")
    refused(#"[{"name": "transpose", "configuration": {"order": [1, 0]}}, {"name": "bytes"}]"#, "transpose")
    refused(#"[{"name": "zstd"}]"#, "must start with")
    refused(#"[{"name": "bytes"}, {"name": "bytes"}]"#, "only once")
    refused(#"[{"name": "bytes", "configuration": {"endian": "middle"}}]"#, "endian")
    // A compressor after a checksum decodes to a size only the next codec knows: refused when read.
    let chain = try ZarrCodecRegistry.chain(
      v3: [["name": "bytes"], ["name": "crc32c"], ["name": "zstd"]], context: context)
    let encoded = try [UInt8](repeating: 3, count: 8).withUnsafeBytes {
      try chain.encode($0, spec: ZarrChunkSpec(shape: [4], elementSize: 2, fill: [0, 0]))
    }
    var out = [UInt8](repeating: 0, count: 8)
    #expect(throws: CodecError.self) {
      try encoded.withUnsafeBytes { e in
        try out.withUnsafeMutableBytes {
          try chain.decode(e, spec: ZarrChunkSpec(shape: [4], elementSize: 2, fill: [0, 0]), into: $0)
        }
      }
    }
  }

  /// The sharding codec on a whole shard in memory: inner chunks all fill are left empty, the
  /// rest decode to the same bytes, and a damaged index is refused.
  @Test func shardingCodecOnAWholeShard() throws {
    let inner = ZarrCodecChain(arrayToBytes: ZarrBytesCodec(elementSize: 1), bytesToBytes: [ZstdCodec(level: 1)])
    let codec = ZarrShardingCodec(innerChunkShape: [2, 3], inner: inner)
    let spec = ZarrChunkSpec(shape: [4, 6], elementSize: 1, fill: [9])
    var shard = [UInt8](repeating: 9, count: 24)
    for i in 0..<3 { shard[i] = UInt8(i) }  // only the first inner chunk (rows 0–1, columns 0–2) holds data
    let chain = ZarrCodecChain(arrayToBytes: codec)
    let encoded = try shard.withUnsafeBytes { try chain.encode($0, spec: spec) }
    let indexStart = encoded.count - (16 * 4 + 4)
    let entries = (0..<8).map { i in
      (0..<8).reduce(UInt64(0)) { $0 | UInt64(encoded[indexStart + 8 * i + $1]) << (8 * $1) }
    }
    #expect(entries[0] == 0 && entries[1] == UInt64(indexStart))
    #expect(entries[2...].allSatisfy { $0 == .max })
    var back = [UInt8](repeating: 0, count: 24)
    try encoded.withUnsafeBytes { e in try back.withUnsafeMutableBytes { try chain.decode(e, spec: spec, into: $0) } }
    #expect(back == shard)
    var damaged = encoded
    damaged[indexStart] ^= 1
    #expect(throws: CodecError.self) {
      try damaged.withUnsafeBytes { e in try back.withUnsafeMutableBytes { try chain.decode(e, spec: spec, into: $0) } }
    }
  }

  /// A corrupt chunk in a file store names its file.
  @Test func corruptChunkNamesItsFile() throws {
    let dir = TemporaryDirectory()
    var meta = ZarrArrayMetadata(format: .v3, shape: [4, 4], chunkShape: [4, 4], dataType: .uint8, compressor: .none)
    meta.checksum = true
    let array = try ZarrArray.create(at: dir.path("a"), metadata: meta)
    try array.writeBlock([0, 0], AnyVolumeBuffer(VolumeBuffer<UInt8>(shape: [4, 4], repeating: 5)))
    let file = array.file(of: [0, 0])
    var bytes = [UInt8](FileManager.default.contents(atPath: file)!)
    bytes[3] = 6
    try AtomicFile.write(bytes, to: file)
    do {
      _ = try ZarrArray.open(dir.path("a")).readBlock([0, 0])
      Issue.record("a corrupt chunk was read")
    } catch {
      #expect("\(error)" == "\(file): cannot decode chunk (crc32c: checksum mismatch: corrupt chunk)")
    }
  }
}
