import Foundation
import TesseraCore

/// One step of a Zarr codec chain, as Zarr v3 defines it: array→bytes (``ZarrArrayToBytesCodec``,
/// exactly one per chain) then bytes→bytes (``ZarrBytesToBytesCodec``, any number). Zarr v2's
/// compressor maps onto the same chain (a `bytes` step whose byte order comes from the dtype, then
/// the compressor). Each codec is an immutable value that owns its JSON, built once per array and
/// shared by every thread.
public protocol ZarrCodec: Sendable {
  /// The v3 codec entry (`{"name": …, "configuration": …}`).
  func v3JSON() -> [String: Any]
}

/// A bytes→bytes codec: a compressor or a checksum.
public protocol ZarrBytesToBytesCodec: ZarrCodec {
  /// Encodes `bytes`.
  func encode(_ bytes: UnsafeRawBufferPointer) throws -> [UInt8]
  /// Decodes `bytes` into `output`, which must be filled exactly (its size is the decoded size).
  func decode(_ bytes: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws
  /// For a codec that only checks and strips (a checksum): checks `bytes` and returns the range
  /// of the payload within them, so that nothing is copied. Nil for a compressor.
  func payload(of bytes: UnsafeRawBufferPointer) throws -> Range<Int>?
  /// The v2 `compressor` entry, or nil when Zarr v2 has no such compressor.
  func v2JSON() -> [String: Any]?
}

/// What a codec is told about the chunk it encodes or decodes (Zarr v3's "chunk
/// representation"): its shape, element size and fill value.
public struct ZarrChunkSpec: Sendable {
  public var shape: [Int]
  public var elementSize: Int
  /// One element of the fill value, as stored.
  public var fill: [UInt8]

  public init(shape: [Int], elementSize: Int, fill: [UInt8]) {
    self.shape = shape
    self.elementSize = elementSize
    self.fill = fill
  }

  /// The chunk's size in bytes.
  public var byteCount: Int { shape.reduce(elementSize, *) }

  /// True if every element of `bytes` equals the fill value (bitwise).
  public func isFill(_ bytes: UnsafeRawBufferPointer) -> Bool {
    if fill.allSatisfy({ $0 == 0 }) {
      let words = bytes.count / 8  // word-wise scan for zero
      let w = bytes.baseAddress!
      for i in 0..<words where w.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != 0 { return false }
      for i in (words * 8)..<bytes.count where bytes[i] != 0 { return false }
      return true
    }
    for i in 0..<bytes.count where bytes[i] != fill[i % fill.count] { return false }
    return true
  }

  /// `count` elements of the fill value.
  public func filled(_ count: Int) -> [UInt8] {
    if fill.allSatisfy({ $0 == 0 }) { return [UInt8](repeating: 0, count: count * fill.count) }
    var out = [UInt8]()
    out.reserveCapacity(count * fill.count)
    for _ in 0..<count { out += fill }
    return out
  }
}

/// An array→bytes codec: serialises one chunk's elements (C order, host byte order) to bytes.
public protocol ZarrArrayToBytesCodec: ZarrCodec {
  /// Serialises `chunk` and hands the bytes to `next` (without a copy when they are the same).
  func encode(
    _ chunk: UnsafeRawBufferPointer, spec: ZarrChunkSpec, then next: (UnsafeRawBufferPointer) throws -> [UInt8]
  ) throws -> [UInt8]
  /// Deserialises `bytes` into `chunk` (its full size).
  func decode(_ bytes: UnsafeRawBufferPointer, spec: ZarrChunkSpec, into chunk: UnsafeMutableRawBufferPointer) throws
  /// True when the serialised chunk is its elements in some byte order, of the chunk's size, so
  /// that a compressor can inflate straight into the chunk and ``reorder(_:)`` converts in place.
  var isElementBytes: Bool { get }
  /// Converts serialised element bytes in `chunk` to host order in place (only when
  /// ``isElementBytes``).
  func reorder(_ chunk: UnsafeMutableRawBufferPointer)
}

/// The prepared codecs of one array (or of a shard's inner chunks).
public struct ZarrCodecChain: Sendable, Hashable {
  public var arrayToBytes: any ZarrArrayToBytesCodec
  public var bytesToBytes: [any ZarrBytesToBytesCodec]

  public init(arrayToBytes: any ZarrArrayToBytesCodec, bytesToBytes: [any ZarrBytesToBytesCodec] = []) {
    self.arrayToBytes = arrayToBytes
    self.bytesToBytes = bytesToBytes
  }

  /// The sharding codec when the chain's array→bytes step is one.
  public var sharding: ZarrShardingCodec? { arrayToBytes as? ZarrShardingCodec }

  /// The v3 `codecs` list.
  public func v3JSON() -> [[String: Any]] { [arrayToBytes.v3JSON()] + bytesToBytes.map { $0.v3JSON() } }

  /// Two chains are equal when they write the same JSON.
  public static func == (a: Self, b: Self) -> Bool { a.canonical == b.canonical }
  public func hash(into hasher: inout Hasher) { hasher.combine(canonical) }
  private var canonical: String {
    let data = try? JSONSerialization.data(withJSONObject: v3JSON(), options: [.sortedKeys])
    return data.map { String(decoding: $0, as: UTF8.self) } ?? ""
  }

  /// Encodes one chunk (its elements in C order).
  public func encode(_ chunk: UnsafeRawBufferPointer, spec: ZarrChunkSpec) throws -> [UInt8] {
    try arrayToBytes.encode(chunk, spec: spec) { serialised in
      guard let first = bytesToBytes.first else { return Array(serialised) }
      var bytes = try first.encode(serialised)
      for codec in bytesToBytes.dropFirst() { bytes = try bytes.withUnsafeBytes { try codec.encode($0) } }
      return bytes
    }
  }

  /// Decodes one stored chunk into `chunk` (its full decoded size), without intermediate copies:
  /// checksums are checked and stripped in place, the compressor inflates into `chunk` (or, for
  /// an array→bytes step that is not plain element bytes, such as sharding, the payload goes to
  /// it as stored).
  ///
  /// - Throws: ``CodecError`` or ``ZarrError`` for data a codec refuses. A compressor must be the
  ///   chain's first bytes→bytes codec (only checksums after it) in front of plain element bytes,
  ///   since only then is its decoded size known.
  public func decode(_ stored: UnsafeRawBufferPointer, spec: ZarrChunkSpec, into chunk: UnsafeMutableRawBufferPointer)
    throws
  {
    var current = stored
    for (k, codec) in bytesToBytes.enumerated().reversed() {
      if let payload = try codec.payload(of: current) {
        current = UnsafeRawBufferPointer(rebasing: current[payload])
        continue
      }
      guard k == 0, arrayToBytes.isElementBytes else {
        throw CodecError(codec: "zarr", message: "a compressor whose decoded size is unknown is not supported here")
      }
      try codec.decode(current, into: chunk)
      arrayToBytes.reorder(chunk)
      return
    }
    try arrayToBytes.decode(current, spec: spec, into: chunk)
  }
}

/// Which codecs Tessera reads and writes, by their JSON names: adding a codec is one file
/// (conforming to ``ZarrBytesToBytesCodec`` or ``ZarrArrayToBytesCodec``) and one line here.
public enum ZarrCodecRegistry {
  /// What a codec's parser is given besides its `configuration`.
  public struct Context: Sendable {
    /// The array's element type.
    public var dataType: ElementType
    /// The file whose metadata is parsed, for error messages.
    public var path: String
  }

  typealias Parser = @Sendable (_ configuration: [String: Any], _ context: Context) throws -> any ZarrCodec

  /// v3 codecs by name.
  static let v3: [String: Parser] = [
    "bytes": ZarrBytesCodec.init(v3:context:),
    "sharding_indexed": ZarrShardingCodec.init(v3:context:),
    "blosc": BloscCodec.init(v3:context:),
    "zstd": ZstdCodec.init(v3:context:),
    "gzip": DeflateCodec.init(v3:context:),
    "crc32c": ZarrCRC32CCodec.init(v3:context:),
  ]

  /// v2 compressors by `id`.
  static let v2: [String: Parser] = [
    "blosc": BloscCodec.init(v2:context:),
    "zstd": ZstdCodec.init(v2:context:),
    "gzip": DeflateCodec.init(v2:context:),
    "zlib": DeflateCodec.init(v2:context:),
  ]

  /// The chain a v3 `codecs` list describes.
  public static func chain(v3 codecs: [[String: Any]], context: Context) throws -> ZarrCodecChain {
    var arrayToBytes: (any ZarrArrayToBytesCodec)? = nil
    var bytesToBytes: [any ZarrBytesToBytesCodec] = []
    for entry in codecs {
      let name = entry["name"] as? String
      guard let name, let parse = v3[name] else {
        if name == "transpose" {
          throw ZarrError(path: context.path, "the transpose codec is not supported (Tessera reads C-order chunks)")
        }
        throw ZarrError(path: context.path, "unsupported codec \(name ?? "?")")
      }
      let codec = try parse((entry["configuration"] as? [String: Any]) ?? [:], context)
      if let a = codec as? any ZarrArrayToBytesCodec {
        guard arrayToBytes == nil, bytesToBytes.isEmpty else {
          throw ZarrError(path: context.path, "codec \(name) must come first and only once in the chain")
        }
        arrayToBytes = a
      } else if let b = codec as? any ZarrBytesToBytesCodec {
        guard arrayToBytes != nil else {
          throw ZarrError(path: context.path, "the codec chain must start with \"bytes\" or \"sharding_indexed\"")
        }
        bytesToBytes.append(b)
      }
    }
    guard let arrayToBytes else { throw ZarrError(path: context.path, "the codec chain has no \"bytes\" codec") }
    return ZarrCodecChain(arrayToBytes: arrayToBytes, bytesToBytes: bytesToBytes)
  }

  /// The chain a v2 `.zarray` describes: its dtype's byte order, then its compressor (nil: none).
  public static func chain(v2 compressor: [String: Any]?, bigEndian: Bool, context: Context) throws
    -> ZarrCodecChain
  {
    let bytes = ZarrBytesCodec(elementSize: context.dataType.byteCount, bigEndian: bigEndian)
    guard let compressor else { return ZarrCodecChain(arrayToBytes: bytes) }
    let id = compressor["id"] as? String
    guard let id, let parse = v2[id], let codec = try parse(compressor, context) as? any ZarrBytesToBytesCodec else {
      throw ZarrError(path: context.path, "unsupported compressor \(id ?? "?")")
    }
    return ZarrCodecChain(arrayToBytes: bytes, bytesToBytes: [codec])
  }
}

extension [String: Any] {
  /// An integer setting, or `fallback` when absent.
  func int(_ key: String, _ fallback: Int) -> Int { (self[key] as? Int) ?? fallback }
}
