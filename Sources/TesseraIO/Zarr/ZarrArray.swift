import Foundation
import TesseraCore

/// A Zarr v2 or v3 array on the local filesystem: chunk (or shard) reads and writes.
///
/// The unit of writing is one *block*: a chunk, or for a sharded v3 array a whole shard. Each
/// block has exactly one writer, which encodes it on its own thread (no locks) and stores it
/// atomically (temporary file, then rename), so a reader or a resumed run never sees half a
/// chunk. Blocks entirely equal to the fill value are not stored (and a stale copy is removed);
/// inside a shard, such inner chunks get the empty marker.
public final class ZarrArray: Sendable {
  /// The array's directory.
  public let path: String
  public let metadata: ZarrArrayMetadata
  /// The grid of stored blocks (chunks, or shards).
  public let grid: ChunkGrid

  init(path: String, metadata: ZarrArrayMetadata) throws {
    try metadata.validate(path)
    self.path = path
    self.metadata = metadata
    self.grid = try ChunkGrid(shape: metadata.shape, chunkShape: metadata.chunkShape)
  }

  /// Creates an array: its directory, ancestors' group metadata are the caller's business
  /// (``ZarrGroup``); writes `.zarray` (v2) or `zarr.json` (v3) with `attributes`.
  ///
  /// - Throws: ``ZarrError`` for inconsistent metadata or an unwritable directory.
  public static func create(
    at path: String, metadata: ZarrArrayMetadata, attributes: [String: Any] = [:]
  ) throws -> ZarrArray {
    let array = try ZarrArray(path: path, metadata: metadata)
    try ZarrStore.makeDirectory(path)
    switch metadata.format {
    case .v2:
      try ZarrStore.writeJSON(metadata.zarrayJSON(), to: path + "/.zarray")
      if !attributes.isEmpty { try ZarrStore.writeJSON(attributes, to: path + "/.zattrs") }
    case .v3:
      var json = metadata.zarrJSON()
      json["attributes"] = attributes
      try ZarrStore.writeJSON(json, to: path + "/zarr.json")
    }
    return array
  }

  /// Opens an existing v2 or v3 array (whichever metadata file is present).
  ///
  /// - Throws: ``ZarrError`` when there is no array at `path` or its metadata is not supported.
  public static func open(_ path: String) throws -> ZarrArray {
    if FileManager.default.fileExists(atPath: path + "/zarr.json") {
      return try ZarrArray(path: path, metadata: .fromZarrJSON(ZarrStore.readJSON(path + "/zarr.json"), path: path))
    }
    if FileManager.default.fileExists(atPath: path + "/.zarray") {
      return try ZarrArray(path: path, metadata: .fromZarray(ZarrStore.readJSON(path + "/.zarray"), path: path))
    }
    throw ZarrError(path: path, "no Zarr array here (neither zarr.json nor .zarray)")
  }

  public var rank: Int { metadata.shape.count }
  var elementSize: Int { metadata.dataType.byteCount }

  /// The relative key of block `index` ("c/0/1/2", "0/1/2", "0.1.2").
  public func key(of index: [Int]) -> String {
    let parts = index.isEmpty ? ["0"] : index.map(String.init)
    switch metadata.format {
    case .v2: return parts.joined(separator: metadata.separator)
    case .v3:
      if metadata.v2KeyEncoding { return parts.joined(separator: metadata.separator) }
      return (["c"] + (index.isEmpty ? [] : parts)).joined(separator: metadata.separator)
    }
  }

  /// The file of block `index`.
  public func file(of index: [Int]) -> String { path + "/" + key(of: index) }

  /// True if block `index` is stored.
  public func hasBlock(_ index: [Int]) -> Bool { FileManager.default.fileExists(atPath: file(of: index)) }

  /// The fill value's bytes for one element.
  var fillBytes: [UInt8] {
    var one = AnyVolumeBuffer(elementType: metadata.dataType, box: Box(shape: [1]))
    let f = metadata.fillValue
    one.withUnsafeMutableBytes { b in
      switch metadata.dataType {
      case .float32: b.storeBytes(of: Float(f), as: Float.self)
      case .float64: b.storeBytes(of: f, as: Double.self)
      case .uint8: b.storeBytes(of: UInt8(clamping: f), as: UInt8.self)
      case .int8: b.storeBytes(of: Int8(clamping: f), as: Int8.self)
      case .uint16: b.storeBytes(of: UInt16(clamping: f), as: UInt16.self)
      case .int16: b.storeBytes(of: Int16(clamping: f), as: Int16.self)
      case .uint32: b.storeBytes(of: UInt32(clamping: f), as: UInt32.self)
      case .int32: b.storeBytes(of: Int32(clamping: f), as: Int32.self)
      }
    }
    return one.withUnsafeBytes { Array($0) }
  }

  /// `count` elements of the fill value.
  func filled(_ count: Int) -> [UInt8] {
    let one = fillBytes
    if one.allSatisfy({ $0 == 0 }) { return [UInt8](repeating: 0, count: count * one.count) }
    var out = [UInt8]()
    out.reserveCapacity(count * one.count)
    for _ in 0..<count { out += one }
    return out
  }

  /// True if every element of `bytes` equals the fill value (bitwise).
  func isFill(_ bytes: UnsafeRawBufferPointer) -> Bool {
    let one = fillBytes
    if one.allSatisfy({ $0 == 0 }) {
      // Word-wise scan for zero.
      let words = bytes.count / 8
      let w = bytes.baseAddress!
      for i in 0..<words where w.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != 0 { return false }
      for i in (words * 8)..<bytes.count where bytes[i] != 0 { return false }
      return true
    }
    for i in 0..<bytes.count where bytes[i] != one[i % one.count] { return false }
    return true
  }

  // MARK: Writing

  /// Writes block `index` from `data`, which must cover the block's box clipped to the array
  /// (extra voxels outside it are ignored; missing ones become the fill value). Returns false if
  /// the block was all fill and so not stored.
  ///
  /// - Throws: ``ZarrError`` when encoding or writing fails (disk full, permissions).
  @discardableResult
  public func writeBlock(_ index: [Int], _ data: AnyVolumeBuffer) throws -> Bool {
    try writeBlock(index) { _ in data }
  }

  /// Writes block `index`, asking `produce` for the data of each piece it is encoded from: the
  /// block's box (clipped to the array), or for a shard each inner chunk's box (clipped) in turn,
  /// so a shard is computed and encoded one inner chunk at a time. `produce` returns nil for a
  /// piece that is all fill. Returns false if nothing but fill was produced (nothing stored, and
  /// a stale file is removed).
  @discardableResult
  public func writeBlock(_ index: [Int], produce: (Box) throws -> AnyVolumeBuffer?) throws -> Bool {
    let encoded: [UInt8]?
    if let inner = metadata.innerChunkShape {
      encoded = try encodeShard(grid.fullBox(ofChunk: index), inner: inner, produce: produce)
    } else {
      let full = grid.fullBox(ofChunk: index)
      if let data = try produce(grid.box(ofChunk: index)) {
        if data.box == full {  // an interior chunk: encode in place
          encoded = try data.withUnsafeBytes { b in isFill(b) ? nil : try encodeChunk(b) }
        } else {
          let block = padded(data, to: full)
          encoded = try block.withUnsafeBytes { b in isFill(b) ? nil : try encodeChunk(b) }
        }
      } else {
        encoded = nil
      }
    }
    let target = file(of: index)
    guard let encoded else {
      if FileManager.default.fileExists(atPath: target) { try? FileManager.default.removeItem(atPath: target) }
      return false
    }
    try ZarrStore.writeAtomically(encoded, to: target)
    return true
  }

  /// `data` placed in a fill-valued buffer of the full (unclipped) `box`.
  func padded(_ data: AnyVolumeBuffer, to box: Box) -> [UInt8] {
    precondition(data.elementType == metadata.dataType, "block of \(data.elementType) for a \(metadata.dataType) array")
    var block = filled(box.volume)
    block.withUnsafeMutableBytes { dst in
      data.withUnsafeBytes { src in
        RawCopy.copy(
          elementSize: elementSize, from: src.baseAddress!, sourceBox: data.box, to: dst.baseAddress!,
          destinationBox: box, region: box.intersection(grid.bounds))
      }
    }
    return block
  }

  /// bytes codec (endianness) + compressor + optional crc32c.
  func encodeChunk(_ raw: UnsafeRawBufferPointer) throws -> [UInt8] {
    var bytes: [UInt8]
    if let codec = metadata.compressor.codec(typeSize: elementSize) {
      do {
        bytes = try codec.encode(raw)
      } catch {
        throw ZarrError(path: path, "encoding failed: \(error)")
      }
    } else {
      bytes = Array(raw)
    }
    if metadata.checksum { Self.appendLE(&bytes, CRC32C.checksum(bytes)) }
    return bytes
  }

  /// The boxes (clipped to the array) that ``writeBlock(_:produce:)`` asks `produce` for, in
  /// order: the block's box, or each inner chunk of a shard that lies in the array.
  public func pieces(ofBlock index: [Int]) -> [Box] {
    guard let inner = metadata.innerChunkShape else { return [grid.box(ofChunk: index)] }
    let shardBox = grid.fullBox(ofChunk: index)
    var out: [Box] = []
    Box(shape: zip(metadata.chunkShape, inner).map { $0 / $1 }).forEachIndex { local in
      let clipped = Self.innerBox(local, inner: inner, in: shardBox).intersection(grid.bounds)
      if !clipped.isEmpty { out.append(clipped) }
    }
    return out
  }

  /// Inner chunk `local` (its index within the shard) of the shard at `shardBox`, unclipped.
  static func innerBox(_ local: [Int], inner: [Int], in shardBox: Box) -> Box {
    Box(origin: zip(local, inner).map { $0 * $1 }, shape: inner).translated(by: shardBox.lower)
  }

  func encodeShard(_ shardBox: Box, inner: [Int], produce: (Box) throws -> AnyVolumeBuffer?) throws -> [UInt8]? {
    let perShard = zip(metadata.chunkShape, inner).map { $0 / $1 }
    let count = perShard.reduce(1, *)
    var index = [UInt64](repeating: .max, count: 2 * count)
    var body: [UInt8] = []
    let indexBytes = 16 * count + (metadata.indexChecksum ? 4 : 0)
    let base = metadata.indexAtStart ? indexBytes : 0
    var k = 0
    var any = false
    try Box(shape: perShard).forEachIndex { local in
      defer { k += 1 }
      let innerBox = Self.innerBox(local, inner: inner, in: shardBox)
      // Inner chunks wholly outside the array stay empty (``pieces(ofBlock:)`` lists the others).
      let clipped = innerBox.intersection(grid.bounds)
      guard !clipped.isEmpty, let data = try produce(clipped) else { return }
      let encoded: [UInt8]?
      if data.box == innerBox {
        encoded = try data.withUnsafeBytes { b in isFill(b) ? nil : try encodeChunk(b) }
      } else {
        encoded = try padded(data, to: innerBox).withUnsafeBytes { b in isFill(b) ? nil : try encodeChunk(b) }
      }
      guard let encoded else { return }
      any = true
      index[2 * k] = UInt64(base + body.count)
      index[2 * k + 1] = UInt64(encoded.count)
      body += encoded
    }
    guard any else { return nil }
    var indexData: [UInt8] = []
    indexData.reserveCapacity(indexBytes)
    for v in index { Self.appendLE(&indexData, v) }
    if metadata.indexChecksum { Self.appendLE(&indexData, CRC32C.checksum(indexData)) }
    return metadata.indexAtStart ? indexData + body : body + indexData
  }

  static func appendLE<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ v: T) {
    withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
  }

  // MARK: Reading

  /// Reads block `index` as a full-size block (box = the block's unclipped box), or nil when it
  /// is not stored (it reads as the fill value).
  ///
  /// - Throws: ``ZarrError`` for corrupt data, a bad checksum or a truncated shard.
  public func readBlock(_ index: [Int]) throws -> AnyVolumeBuffer? {
    let target = file(of: index)
    guard let data = FileManager.default.contents(atPath: target) else { return nil }
    let full = grid.fullBox(ofChunk: index)
    var out = AnyVolumeBuffer(elementType: metadata.dataType, box: full)
    try data.withUnsafeBytes { bytes in
      try out.withUnsafeMutableBytes { dst in
        if let inner = metadata.innerChunkShape {
          try decodeShard(bytes, shardBox: full, inner: inner, file: target, into: dst)
        } else {
          try decodeChunk(bytes, into: dst, file: target)
        }
      }
    }
    return out
  }

  /// Decodes one stored chunk into `out` (its full decoded size): checksum, compressor, byte
  /// order — without intermediate copies.
  func decodeChunk(_ stored: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, file: String) throws {
    var body = stored
    if metadata.checksum {
      guard stored.count >= 4 else { throw ZarrError(path: file, "chunk too short for its crc32c") }
      body = UnsafeRawBufferPointer(rebasing: stored[0..<(stored.count - 4)])
      let crc = stored.loadUnaligned(fromByteOffset: stored.count - 4, as: UInt32.self).littleEndian
      guard CRC32C.checksum(body) == crc else { throw ZarrError(path: file, "crc32c mismatch: corrupt chunk") }
    }
    if let codec = metadata.compressor.codec(typeSize: elementSize) {
      do {
        try codec.decode(body, into: out)
      } catch {
        throw ZarrError(path: file, "cannot decode chunk (\(error))")
      }
    } else {
      guard body.count == out.count else {
        throw ZarrError(path: file, "chunk holds \(body.count) bytes, expected \(out.count)")
      }
      out.copyMemory(from: body)
    }
    if metadata.bigEndian { Self.swapBytes(out, elementSize) }
  }

  /// Decodes a shard into `out` (the full shard, C order), fill where inner chunks are empty.
  func decodeShard(
    _ bytes: UnsafeRawBufferPointer, shardBox: Box, inner: [Int], file: String, into out: UnsafeMutableRawBufferPointer
  ) throws {
    let perShard = zip(metadata.chunkShape, inner).map { $0 / $1 }
    let count = perShard.reduce(1, *)
    let indexBytes = 16 * count + (metadata.indexChecksum ? 4 : 0)
    guard bytes.count >= indexBytes else { throw ZarrError(path: file, "shard shorter than its index") }
    let indexSlice = metadata.indexAtStart ? Array(bytes[0..<indexBytes]) : Array(bytes[(bytes.count - indexBytes)...])
    if metadata.indexChecksum {
      let body = Array(indexSlice.prefix(16 * count))
      let stored = indexSlice.suffix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
      guard CRC32C.checksum(body) == stored else { throw ZarrError(path: file, "shard index crc32c mismatch") }
    }
    let entries: [UInt64] = (0..<(2 * count)).map { i in
      (0..<8).reduce(UInt64(0)) { $0 | UInt64(indexSlice[8 * i + $1]) << (8 * $1) }
    }
    filled(shardBox.volume).withUnsafeBytes { out.copyMemory(from: $0) }
    let innerCount = inner.reduce(1, *)
    var k = 0
    try Box(shape: perShard).forEachIndex { local in
      defer { k += 1 }
      let (offset, size) = (entries[2 * k], entries[2 * k + 1])
      if offset == .max && size == .max { return }
      guard offset <= UInt64(bytes.count), size <= UInt64(bytes.count) - offset else {
        throw ZarrError(path: file, "shard index points past the end of the shard")
      }
      var decoded = [UInt8](repeating: 0, count: innerCount * elementSize)
      try decoded.withUnsafeMutableBytes {
        try decodeChunk(UnsafeRawBufferPointer(rebasing: bytes[Int(offset)..<Int(offset + size)]), into: $0, file: file)
      }
      let innerBox = Box(origin: zip(local, inner).map { $0 * $1 }, shape: inner).translated(by: shardBox.lower)
      decoded.withUnsafeBytes { src in
        RawCopy.copy(
          elementSize: elementSize, from: src.baseAddress!, sourceBox: innerBox, to: out.baseAddress!,
          destinationBox: shardBox)
      }
    }
  }

  static func swapBytes(_ bytes: UnsafeMutableRawBufferPointer, _ size: Int) {
    guard size > 1 else { return }
    for start in stride(from: 0, to: bytes.count, by: size) {
      for k in 0..<(size / 2) { bytes.swapAt(start + k, start + size - 1 - k) }
    }
  }

  /// Reads `box` (inside the array), with the fill value wherever no block is stored.
  public func read(_ box: Box) throws -> AnyVolumeBuffer {
    guard box.rank == rank, grid.bounds.contains(box) else {
      throw ZarrError(path: path, "read box \(box) lies outside the array's shape \(metadata.shape)")
    }
    var out = AnyVolumeBuffer(elementType: metadata.dataType, box: box)  // zeros
    let one = fillBytes
    if !one.allSatisfy({ $0 == 0 }) {
      out.withUnsafeMutableBytes { dst in
        for i in 0..<dst.count { dst[i] = one[i % one.count] }
      }
    }
    for index in grid.chunks(intersecting: box) {
      guard let block = try readBlock(index) else { continue }
      out.withUnsafeMutableBytes { dst in
        block.withUnsafeBytes { src in
          RawCopy.copy(
            elementSize: elementSize, from: src.baseAddress!, sourceBox: block.box, to: dst.baseAddress!,
            destinationBox: box)
        }
      }
    }
    return out
  }
}
