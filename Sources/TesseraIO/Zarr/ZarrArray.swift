import Foundation
import TesseraCore

/// A Zarr v2 or v3 array in a ``Store`` (a folder, usually): chunk (or shard) reads and writes.
///
/// The unit of writing is one *block*: a chunk, or for a sharded v3 array a whole shard. Each
/// block has exactly one writer, which encodes it on its own thread (no locks) through the
/// array's codec chain (prepared once, from the metadata) and stores it whole, so a reader or a
/// resumed run never sees half a chunk. Blocks entirely equal to the fill value are not stored
/// (and a stale copy is removed); inside a shard, such inner chunks get the empty marker.
public final class ZarrArray: Sendable {
  /// Where the array is, for messages (its folder).
  public let path: String
  /// Where its keys live.
  public let store: any Store
  public let metadata: ZarrArrayMetadata
  /// The grid of stored blocks (chunks, or shards).
  public let grid: ChunkGrid
  /// One element of the fill value, as stored.
  let fillBytes: [UInt8]

  init(store: any Store, metadata: ZarrArrayMetadata) throws {
    self.path = store.location(of: "")
    try metadata.validate(path)
    self.store = store
    self.metadata = metadata
    self.grid = try ChunkGrid(shape: metadata.shape, chunkShape: metadata.chunkShape)
    self.fillBytes = Self.fillBytes(metadata.fillValue, metadata.dataType)
  }

  /// Creates an array: writes `.zarray` (v2) or `zarr.json` (v3) with `attributes` at the
  /// store's root; the groups above it are the caller's business (``ZarrGroup``).
  ///
  /// - Throws: ``ZarrError`` for inconsistent metadata or an unwritable store.
  public static func create(
    in store: any Store, metadata: ZarrArrayMetadata, attributes: [String: Any] = [:]
  ) throws -> ZarrArray {
    let array = try ZarrArray(store: store, metadata: metadata)
    switch metadata.format {
    case .v2:
      try store.set(".zarray", ZarrStore.jsonBytes(metadata.zarrayJSON()))
      if !attributes.isEmpty { try store.set(".zattrs", ZarrStore.jsonBytes(attributes)) }
    case .v3:
      var json = metadata.zarrJSON()
      json["attributes"] = attributes
      try store.set("zarr.json", ZarrStore.jsonBytes(json))
    }
    return array
  }

  /// Creates an array in the folder `path` (see ``create(in:metadata:attributes:)``).
  public static func create(
    at path: String, metadata: ZarrArrayMetadata, attributes: [String: Any] = [:]
  ) throws -> ZarrArray {
    try metadata.validate(path)  // before creating folders
    try ZarrStore.makeDirectory(path)
    return try create(in: FileStore(root: path), metadata: metadata, attributes: attributes)
  }

  /// Opens an existing v2 or v3 array (whichever metadata is present).
  ///
  /// - Throws: ``ZarrError`` when there is no array or its metadata is not supported.
  public static func open(in store: any Store) throws -> ZarrArray {
    let path = store.location(of: "")
    if let json = try store.get("zarr.json") {
      let file = store.location(of: "zarr.json")
      return try ZarrArray(
        store: store, metadata: .fromZarrJSON(ZarrStore.jsonObject(json, path: file), path: path))
    }
    if let json = try store.get(".zarray") {
      let file = store.location(of: ".zarray")
      return try ZarrArray(store: store, metadata: .fromZarray(ZarrStore.jsonObject(json, path: file), path: path))
    }
    throw ZarrError(path: path, "no Zarr array here (neither zarr.json nor .zarray)")
  }

  /// Opens the array in the folder `path`.
  public static func open(_ path: String) throws -> ZarrArray { try open(in: FileStore(root: path)) }

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
  public func file(of index: [Int]) -> String { store.location(of: key(of: index)) }

  /// True if block `index` is stored.
  public func hasBlock(_ index: [Int]) -> Bool { store.contains(key(of: index)) }

  /// One element of `fill` as `type` stores it.
  static func fillBytes(_ f: Double, _ type: ElementType) -> [UInt8] {
    type.dispatch(FillBytes(fill: f))
  }

  private struct FillBytes: ElementTypeBody {
    let fill: Double
    func run<T: VoxelElement>(_: T.Type) -> [UInt8] { withUnsafeBytes(of: T(clamping: fill)) { Array($0) } }
  }

  /// What the codecs are told about a stored chunk of `shape`.
  func spec(_ shape: [Int]) -> ZarrChunkSpec { metadata.chunkSpec(shape: shape, fill: fillBytes) }

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
    try writeBlockBytes(index, produce: produce) != nil
  }

  /// ``writeBlock(_:produce:)`` returning the bytes stored (nil: all fill, nothing stored).
  func writeBlockBytes(_ index: [Int], produce: (Box) throws -> AnyVolumeBuffer?) throws -> [UInt8]? {
    let full = grid.fullBox(ofChunk: index)
    let encoded: [UInt8]?
    if let sharding = metadata.codecs.sharding {
      // Inner chunks wholly outside the array stay empty (``pieces(ofBlock:)`` lists the others).
      encoded = try sharding.encodeShard(full) { innerBox in
        let clipped = innerBox.intersection(grid.bounds)
        guard !clipped.isEmpty, let data = try produce(clipped) else { return nil }
        return try encodePiece(data, full: innerBox, codecs: sharding.inner)
      }
    } else {
      encoded = try produce(grid.box(ofChunk: index)).flatMap {
        try encodePiece($0, full: full, codecs: metadata.codecs)
      }
    }
    let key = key(of: index)
    guard let encoded else {
      if store.contains(key) { try? store.erase(key) }
      return nil
    }
    try store.set(key, encoded)
    return encoded
  }

  /// `data` (covering the chunk `full` clipped to the array) encoded with `codecs`, or nil when it
  /// is all fill. An interior chunk is encoded in place; an edge chunk is padded with fill first.
  func encodePiece(_ data: AnyVolumeBuffer, full: Box, codecs: ZarrCodecChain) throws -> [UInt8]? {
    let spec = spec(full.shape)
    func encode(_ b: UnsafeRawBufferPointer) throws -> [UInt8]? {
      if spec.isFill(b) { return nil }
      do {
        return try codecs.encode(b, spec: spec)
      } catch {
        throw ZarrError(path: path, "encoding failed: \(error)")
      }
    }
    if data.box == full { return try data.withUnsafeBytes { try encode($0) } }
    return try padded(data, to: full).withUnsafeBytes { try encode($0) }
  }

  /// `data` placed in a fill-valued buffer of the full (unclipped) `box`.
  func padded(_ data: AnyVolumeBuffer, to box: Box) -> [UInt8] {
    precondition(data.elementType == metadata.dataType, "block of \(data.elementType) for a \(metadata.dataType) array")
    var block = spec(box.shape).filled(box.volume)
    block.withUnsafeMutableBytes { dst in
      data.withUnsafeBytes { src in
        RawCopy.copy(
          elementSize: elementSize, from: src.baseAddress!, sourceBox: data.box, to: dst.baseAddress!,
          destinationBox: box, region: box.intersection(grid.bounds))
      }
    }
    return block
  }

  /// The boxes (clipped to the array) that ``writeBlock(_:produce:)`` asks `produce` for, in
  /// order: the block's box, or each inner chunk of a shard that lies in the array.
  public func pieces(ofBlock index: [Int]) -> [Box] {
    guard let sharding = metadata.codecs.sharding else { return [grid.box(ofChunk: index)] }
    return sharding.innerBoxes(of: grid.fullBox(ofChunk: index)).map { $0.intersection(grid.bounds) }.filter {
      !$0.isEmpty
    }
  }

  // MARK: Reading

  /// Reads block `index` as a full-size block (box = the block's unclipped box), or nil when it
  /// is not stored (it reads as the fill value).
  ///
  /// - Throws: ``ZarrError`` for corrupt data, a bad checksum or a truncated shard.
  public func readBlock(_ index: [Int]) throws -> AnyVolumeBuffer? {
    let key = key(of: index)
    guard let data = try store.get(key) else { return nil }
    let full = grid.fullBox(ofChunk: index)
    var out = AnyVolumeBuffer(elementType: metadata.dataType, box: full)
    try data.withUnsafeBytes { bytes in
      try out.withUnsafeMutableBytes { dst in
        do {
          try metadata.codecs.decode(bytes, spec: spec(full.shape), into: dst)
        } catch let error as ZarrError {
          throw error
        } catch {
          let what = metadata.codecs.sharding == nil ? "chunk" : "shard"
          throw ZarrError(path: store.location(of: key), "cannot decode \(what) (\(error))")
        }
      }
    }
    return out
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
