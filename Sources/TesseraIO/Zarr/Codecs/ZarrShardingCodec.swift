import TesseraCore

/// Zarr v3's `sharding_indexed` codec (array→bytes): a shard is a grid of inner chunks, each
/// encoded with the inner chain and stored back to back, plus an index of (offset, size) per inner
/// chunk — little-endian UInt64 pairs, (2⁶⁴−1, 2⁶⁴−1) for an empty chunk, optionally followed by
/// their CRC-32C — at the start or the end of the shard. Inner chunks that are all fill are left
/// empty.
public struct ZarrShardingCodec: ZarrArrayToBytesCodec, Hashable {
  /// The inner chunk shape (divides the shard shape).
  public var innerChunkShape: [Int]
  /// The codecs of each inner chunk.
  public var inner: ZarrCodecChain
  public var indexAtStart: Bool
  /// The index ends with its CRC-32C (`index_codecs` = bytes, crc32c).
  public var indexChecksum: Bool

  public init(innerChunkShape: [Int], inner: ZarrCodecChain, indexAtStart: Bool = false, indexChecksum: Bool = true) {
    self.innerChunkShape = innerChunkShape
    self.inner = inner
    self.indexAtStart = indexAtStart
    self.indexChecksum = indexChecksum
  }

  init(v3 c: [String: Any], context: ZarrCodecRegistry.Context) throws {
    guard let shape = c["chunk_shape"] as? [Int], let codecs = c["codecs"] as? [[String: Any]] else {
      throw ZarrError(path: context.path, "unsupported sharding configuration")
    }
    let indexCodecs = (c["index_codecs"] as? [[String: Any]]) ?? []
    self.init(
      innerChunkShape: shape, inner: try ZarrCodecRegistry.chain(v3: codecs, context: context),
      indexAtStart: (c["index_location"] as? String) == "start",
      indexChecksum: indexCodecs.contains { $0["name"] as? String == "crc32c" })
  }

  public func v3JSON() -> [String: Any] {
    var indexCodecs: [[String: Any]] = [ZarrBytesCodec(elementSize: 8).v3JSON()]
    if indexChecksum { indexCodecs.append(ZarrCRC32CCodec().v3JSON()) }
    return [
      "name": "sharding_indexed",
      "configuration": [
        "chunk_shape": innerChunkShape, "codecs": inner.v3JSON(), "index_codecs": indexCodecs,
        "index_location": indexAtStart ? "start" : "end",
      ] as [String: Any],
    ]
  }

  public var isElementBytes: Bool { false }
  public func reorder(_ chunk: UnsafeMutableRawBufferPointer) {}

  /// Inner chunks per shard of `shardShape`, per axis.
  func perShard(_ shardShape: [Int]) -> [Int] { zip(shardShape, innerChunkShape).map { $0 / $1 } }

  /// Inner chunk `local` (its index within the shard) of the shard at `shardBox`, unclipped.
  public func innerBox(_ local: [Int], in shardBox: Box) -> Box {
    Box(origin: zip(local, innerChunkShape).map { $0 * $1 }, shape: innerChunkShape).translated(by: shardBox.lower)
  }

  /// The inner chunks' boxes (unclipped) of the shard at `shardBox`, in C order (the index's).
  public func innerBoxes(of shardBox: Box) -> [Box] {
    var out: [Box] = []
    Box(shape: perShard(shardBox.shape)).forEachIndex { out.append(innerBox($0, in: shardBox)) }
    return out
  }

  /// Index bytes: 16 per inner chunk, plus the checksum.
  func indexBytes(_ count: Int) -> Int { 16 * count + (indexChecksum ? 4 : 0) }

  /// A shard from its inner chunks, in index order: `encodeInner` gives inner chunk `box`'s stored
  /// bytes (the inner chain applied), or nil to leave it empty. Nil when every one is empty.
  public func encodeShard(_ shardBox: Box, encodeInner: (Box) throws -> [UInt8]?) throws -> [UInt8]? {
    let boxes = innerBoxes(of: shardBox)
    var index = [UInt64](repeating: .max, count: 2 * boxes.count)
    var body: [UInt8] = []
    let base = indexAtStart ? indexBytes(boxes.count) : 0
    var any = false
    for (k, box) in boxes.enumerated() {
      guard let encoded = try encodeInner(box) else { continue }
      any = true
      index[2 * k] = UInt64(base + body.count)
      index[2 * k + 1] = UInt64(encoded.count)
      body += encoded
    }
    guard any else { return nil }
    var indexData: [UInt8] = []
    indexData.reserveCapacity(indexBytes(boxes.count))
    for v in index { withUnsafeBytes(of: v.littleEndian) { indexData += $0 } }
    if indexChecksum { withUnsafeBytes(of: CRC32C.checksum(indexData).littleEndian) { indexData += $0 } }
    return indexAtStart ? indexData + body : body + indexData
  }

  /// Calls `each` with every stored inner chunk of a shard (its unclipped box and stored bytes),
  /// after checking the index against the shard's size.
  public func forEachStored(
    _ bytes: UnsafeRawBufferPointer, shardBox: Box, _ each: (Box, UnsafeRawBufferPointer) throws -> Void
  ) throws {
    let boxes = innerBoxes(of: shardBox)
    let count = boxes.count
    let size = indexBytes(count)
    guard bytes.count >= size else {
      throw CodecError(codec: "sharding_indexed", message: "shard shorter than its index")
    }
    let index = UnsafeRawBufferPointer(rebasing: indexAtStart ? bytes[0..<size] : bytes[(bytes.count - size)...])
    if indexChecksum {
      let stored = index.loadUnaligned(fromByteOffset: 16 * count, as: UInt32.self).littleEndian
      guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: index[0..<(16 * count)])) == stored else {
        throw CodecError(codec: "sharding_indexed", message: "shard index crc32c mismatch")
      }
    }
    for (k, box) in boxes.enumerated() {
      let offset = index.loadUnaligned(fromByteOffset: 16 * k, as: UInt64.self).littleEndian
      let length = index.loadUnaligned(fromByteOffset: 16 * k + 8, as: UInt64.self).littleEndian
      if offset == .max && length == .max { continue }
      guard offset <= UInt64(bytes.count), length <= UInt64(bytes.count) - offset else {
        throw CodecError(codec: "sharding_indexed", message: "shard index points past the end of the shard")
      }
      try each(box, UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + length)]))
    }
  }

  /// The spec of one inner chunk of a shard with spec `spec`.
  func innerSpec(_ spec: ZarrChunkSpec) -> ZarrChunkSpec {
    ZarrChunkSpec(shape: innerChunkShape, elementSize: spec.elementSize, fill: spec.fill)
  }

  /// Encodes a whole shard held in `chunk` (C order over the shard): inner chunks that are all
  /// fill are left empty.
  public func encode(
    _ chunk: UnsafeRawBufferPointer, spec: ZarrChunkSpec, then next: (UnsafeRawBufferPointer) throws -> [UInt8]
  ) throws -> [UInt8] {
    let shardBox = Box(shape: spec.shape)
    let innerSpec = innerSpec(spec)
    var piece = [UInt8](repeating: 0, count: innerSpec.byteCount)
    let shard = try encodeShard(shardBox) { box in
      piece.withUnsafeMutableBytes { dst in
        RawCopy.copy(
          elementSize: spec.elementSize, from: chunk.baseAddress!, sourceBox: shardBox, to: dst.baseAddress!,
          destinationBox: box)
      }
      return try piece.withUnsafeBytes { innerSpec.isFill($0) ? nil : try inner.encode($0, spec: innerSpec) }
    }
    return try (shard ?? indexOfEmptyShard(count: innerBoxes(of: shardBox).count)).withUnsafeBytes { try next($0) }
  }

  /// The index alone, every inner chunk empty.
  func indexOfEmptyShard(count: Int) -> [UInt8] {
    var index = [UInt8](repeating: 0xFF, count: 16 * count)
    if indexChecksum { withUnsafeBytes(of: CRC32C.checksum(index).littleEndian) { index += $0 } }
    return index
  }

  /// Decodes a shard into `chunk` (the whole shard, C order), fill where inner chunks are empty.
  public func decode(_ bytes: UnsafeRawBufferPointer, spec: ZarrChunkSpec, into chunk: UnsafeMutableRawBufferPointer)
    throws
  {
    let shardBox = Box(shape: spec.shape)
    spec.filled(shardBox.volume).withUnsafeBytes { chunk.copyMemory(from: $0) }
    let innerSpec = innerSpec(spec)
    var decoded = [UInt8](repeating: 0, count: innerSpec.byteCount)
    try forEachStored(bytes, shardBox: shardBox) { box, stored in
      try decoded.withUnsafeMutableBytes { try inner.decode(stored, spec: innerSpec, into: $0) }
      decoded.withUnsafeBytes { src in
        RawCopy.copy(
          elementSize: spec.elementSize, from: src.baseAddress!, sourceBox: box, to: chunk.baseAddress!,
          destinationBox: shardBox)
      }
    }
  }
}
