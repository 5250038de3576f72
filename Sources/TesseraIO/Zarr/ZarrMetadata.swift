import Foundation
import TesseraCore

/// Zarr storage format version.
public enum ZarrFormat: Int, Sendable, Hashable, Codable {
  case v2 = 2
  case v3 = 3
}

/// The bytes-to-bytes compressor of a Zarr array.
public enum ZarrCompressor: Hashable, Sendable, CustomStringConvertible {
  case none
  /// Zstandard (v2 numcodecs `zstd`; v3 `zstd` extension codec).
  case zstd(level: Int)
  /// Blosc 1 with an inner compressor (`lz4`, `zstd`, …) and a shuffle.
  case blosc(cname: String, level: Int, shuffle: BloscCodec.Shuffle)
  /// DEFLATE in a gzip container (v2 `gzip`, v3 `gzip`).
  case gzip(level: Int)
  /// DEFLATE in a zlib container (v2 `zlib` only; read support).
  case zlib(level: Int)

  /// The codec that implements it, for elements of `typeSize` bytes (nil for `.none`).
  public func codec(typeSize: Int) -> (any ZarrBytesToBytesCodec)? {
    switch self {
    case .none: nil
    case .zstd(let level): ZstdCodec(level: level)
    case .blosc(let cname, let level, let shuffle):
      BloscCodec(compressor: cname, level: level, shuffle: shuffle, typeSize: typeSize)
    case .gzip(let level): DeflateCodec(level: level, container: .gzip)
    case .zlib(let level): DeflateCodec(level: level, container: .zlib)
    }
  }

  public var description: String {
    switch self {
    case .none: "none"
    case .zstd(let l): "zstd level \(l)"
    case .blosc(let c, let l, let s): "blosc-\(c) level \(l) shuffle \(s)"
    case .gzip(let l): "gzip level \(l)"
    case .zlib(let l): "zlib level \(l)"
    }
  }
}

/// What a Zarr array's metadata says: shape, chunking, element type, fill value, codecs and key
/// encoding. One value describes v2 and v3 arrays alike; its codec chain (``ZarrCodecChain``,
/// with sharding as its array→bytes step) is prepared once and used for every chunk.
public struct ZarrArrayMetadata: Hashable, Sendable {
  public var format: ZarrFormat
  public var shape: [Int]
  /// The stored chunk shape; for a sharded v3 array, the shard shape.
  public var chunkShape: [Int]
  public var dataType: ElementType
  /// The fill value (NaN and infinities allowed for floats).
  public var fillValue: Double
  /// The codecs of a stored chunk (of a shard, for a sharded array).
  public var codecs: ZarrCodecChain
  /// Axis names (v3 `dimension_names`; OME-Zarr requires them in 0.5).
  public var dimensionNames: [String]?
  /// Chunk key separator: "/" (nested) or ".".
  public var separator: String
  /// v3 only: `v2` chunk key encoding (keys without the `c` prefix).
  public var v2KeyEncoding: Bool

  /// - Parameter innerChunkShape: for a sharded v3 array, the inner chunk shape (dividing
  ///   `chunkShape`, the shard shape); the index goes at the end, with its CRC-32C.
  public init(
    format: ZarrFormat, shape: [Int], chunkShape: [Int], innerChunkShape: [Int]? = nil, dataType: ElementType,
    fillValue: Double = 0, compressor: ZarrCompressor = .blosc(cname: "lz4", level: 5, shuffle: .byte),
    dimensionNames: [String]? = nil
  ) {
    self.format = format
    self.shape = shape
    self.chunkShape = chunkShape
    self.dataType = dataType
    self.fillValue = fillValue
    let chunkCodecs = ZarrCodecChain(
      arrayToBytes: ZarrBytesCodec(elementSize: dataType.byteCount),
      bytesToBytes: compressor.codec(typeSize: dataType.byteCount).map { [$0] } ?? [])
    if let innerChunkShape {
      codecs = ZarrCodecChain(arrayToBytes: ZarrShardingCodec(innerChunkShape: innerChunkShape, inner: chunkCodecs))
    } else {
      codecs = chunkCodecs
    }
    self.dimensionNames = dimensionNames
    self.separator = "/"
    self.v2KeyEncoding = false
  }

  /// For a sharded v3 array, the inner chunk shape.
  public var innerChunkShape: [Int]? { codecs.sharding?.innerChunkShape }

  /// The codecs of one stored chunk: the inner chunks' for a sharded array.
  public var chunkCodecs: ZarrCodecChain {
    get { codecs.sharding?.inner ?? codecs }
    set {
      if var sharding = codecs.sharding {
        sharding.inner = newValue
        codecs.arrayToBytes = sharding
      } else {
        codecs = newValue
      }
    }
  }

  /// A `crc32c` codec ends the (inner) chunks' codec chain.
  public var checksum: Bool {
    get { chunkCodecs.bytesToBytes.last is ZarrCRC32CCodec }
    set {
      guard newValue != checksum else { return }
      if newValue { chunkCodecs.bytesToBytes.append(ZarrCRC32CCodec()) } else { chunkCodecs.bytesToBytes.removeLast() }
    }
  }

  /// Sharding: the index is at the start of the shard (else at its end).
  public var indexAtStart: Bool {
    get { codecs.sharding?.indexAtStart ?? false }
    set {
      guard var sharding = codecs.sharding else { return }
      sharding.indexAtStart = newValue
      codecs.arrayToBytes = sharding
    }
  }

  /// Checks the shapes fit together.
  func validate(_ path: String) throws {
    let n = shape.count
    guard chunkShape.count == n, chunkShape.allSatisfy({ $0 > 0 }), shape.allSatisfy({ $0 >= 0 }) else {
      throw ZarrError(path: path, "chunk shape \(chunkShape) does not fit array shape \(shape)")
    }
    if let inner = innerChunkShape {
      guard format == .v3 else { throw ZarrError(path: path, "sharding needs Zarr v3") }
      guard ChunkGrid.holdsWhole(inner, in: chunkShape) else {
        throw ZarrError(path: path, "inner chunk shape \(inner) must divide the shard shape \(chunkShape)")
      }
      guard codecs.bytesToBytes.isEmpty, chunkCodecs.sharding == nil else {
        throw ZarrError(path: path, "Tessera reads shards without codecs around them and without nested sharding")
      }
    }
    if let names = dimensionNames, names.count != n {
      throw ZarrError(path: path, "\(names.count) dimension names for \(n) dimensions")
    }
    if format == .v3, chunkCodecs.bytesToBytes.contains(where: { ($0 as? DeflateCodec)?.container == .zlib }) {
      throw ZarrError(path: path, "zlib is a Zarr v2 compressor; use gzip with Zarr v3")
    }
    if format == .v2 {
      let compressors = codecs.bytesToBytes
      guard codecs.sharding == nil, compressors.count <= 1, compressors.allSatisfy({ $0.v2JSON() != nil }) else {
        throw ZarrError(path: path, "Zarr v2 has one compressor and no sharding or crc32c")
      }
    }
  }

  /// The description of one stored chunk for its codecs.
  func chunkSpec(shape: [Int], fill: [UInt8]) -> ZarrChunkSpec {
    ZarrChunkSpec(shape: shape, elementSize: dataType.byteCount, fill: fill)
  }

  // MARK: JSON

  /// The fill value as JSON: integers for integer types, numbers or "NaN"/"Infinity" strings for
  /// floats.
  var fillValueJSON: Any {
    if !dataType.isFloatingPoint { return Int(fillValue) }
    if fillValue.isNaN { return "NaN" }
    if fillValue.isInfinite { return fillValue > 0 ? "Infinity" : "-Infinity" }
    return fillValue
  }

  static func parseFill(_ value: Any?, _ type: ElementType, _ path: String) throws -> Double {
    switch value {
    case nil, is NSNull: return 0
    case let s as String:
      switch s {
      case "NaN": return .nan
      case "Infinity": return .infinity
      case "-Infinity": return -.infinity
      default:
        if s.hasPrefix("0x"), let bits = UInt64(s.dropFirst(2), radix: 16) {
          return type == .float32
            ? Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits))) : Double(bitPattern: bits)
        }
        throw ZarrError(path: path, "unsupported fill_value \"\(s)\"")
      }
    case let n as NSNumber: return n.doubleValue
    default: throw ZarrError(path: path, "unsupported fill_value \(String(describing: value))")
    }
  }

  /// v2 `.zarray` content.
  func zarrayJSON() -> [String: Any] {
    let bigEndian = (codecs.arrayToBytes as? ZarrBytesCodec)?.bigEndian ?? false
    let dtype = dataType.numpyTypeString
    return [
      "zarr_format": 2, "shape": shape, "chunks": chunkShape,
      "dtype": bigEndian ? ">" + dtype.dropFirst() : dtype,
      "compressor": codecs.bytesToBytes.first?.v2JSON() ?? NSNull(), "fill_value": fillValueJSON, "order": "C",
      "filters": NSNull(), "dimension_separator": separator,
    ]
  }

  /// v3 array `zarr.json` content (without attributes).
  func zarrJSON() -> [String: Any] {
    var json: [String: Any] = [
      "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dataType.rawValue,
      "chunk_grid": ["name": "regular", "configuration": ["chunk_shape": chunkShape]],
      "chunk_key_encoding": v2KeyEncoding
        ? ["name": "v2", "configuration": ["separator": separator]]
        : ["name": "default", "configuration": ["separator": separator]],
      "fill_value": fillValueJSON, "codecs": codecs.v3JSON(), "attributes": [String: Any](),
    ]
    if let dimensionNames { json["dimension_names"] = dimensionNames }
    return json
  }

  /// Parses v2 `.zarray` JSON.
  static func fromZarray(_ j: [String: Any], path: String) throws -> ZarrArrayMetadata {
    guard let shape = j["shape"] as? [Int], let chunks = j["chunks"] as? [Int], let dtype = j["dtype"] as? String
    else { throw ZarrError(path: path, "missing shape, chunks or dtype") }
    let big = dtype.hasPrefix(">")
    guard let type = ElementType(numpyTypeString: big ? "<" + dtype.dropFirst() : dtype) else {
      throw ZarrError(path: path, "unsupported dtype \(dtype)")
    }
    if let order = j["order"] as? String, order != "C" {
      throw ZarrError(path: path, "order \"\(order)\" is not supported (Tessera reads C-order arrays)")
    }
    if let filters = j["filters"], !(filters is NSNull), !((filters as? [Any])?.isEmpty ?? false) {
      throw ZarrError(path: path, "filters are not supported")
    }
    var m = ZarrArrayMetadata(
      format: .v2, shape: shape, chunkShape: chunks, dataType: type,
      fillValue: try parseFill(j["fill_value"], type, path), compressor: .none)
    let context = ZarrCodecRegistry.Context(dataType: type, path: path)
    m.codecs = try ZarrCodecRegistry.chain(
      v2: j["compressor"] as? [String: Any], bigEndian: big && type.byteCount > 1, context: context)
    m.separator = (j["dimension_separator"] as? String) ?? "."
    return m
  }

  /// Parses v3 array `zarr.json`.
  static func fromZarrJSON(_ j: [String: Any], path: String) throws -> ZarrArrayMetadata {
    guard j["node_type"] as? String == "array" else { throw ZarrError(path: path, "not an array (node_type)") }
    guard let shape = j["shape"] as? [Int], let dtype = j["data_type"] as? String,
      let grid = j["chunk_grid"] as? [String: Any], grid["name"] as? String == "regular",
      let chunks = (grid["configuration"] as? [String: Any])?["chunk_shape"] as? [Int]
    else { throw ZarrError(path: path, "missing shape, data_type or a regular chunk_grid") }
    guard let type = ElementType(rawValue: dtype) else { throw ZarrError(path: path, "unsupported data_type \(dtype)") }
    guard let codecs = j["codecs"] as? [[String: Any]] else { throw ZarrError(path: path, "missing codecs") }
    var m = ZarrArrayMetadata(
      format: .v3, shape: shape, chunkShape: chunks, dataType: type,
      fillValue: try parseFill(j["fill_value"], type, path), compressor: .none,
      dimensionNames: (j["dimension_names"] as? [Any])?.map { ($0 as? String) ?? "" })
    if (j["dimension_names"] as? [Any])?.contains(where: { $0 is NSNull }) ?? false { m.dimensionNames = nil }
    if let enc = j["chunk_key_encoding"] as? [String: Any] {
      let config = enc["configuration"] as? [String: Any]
      m.v2KeyEncoding = enc["name"] as? String == "v2"
      m.separator = (config?["separator"] as? String) ?? (m.v2KeyEncoding ? "." : "/")
    }
    m.codecs = try ZarrCodecRegistry.chain(v3: codecs, context: ZarrCodecRegistry.Context(dataType: type, path: path))
    return m
  }
}

/// A Zarr problem: which file, what is wrong.
public struct ZarrError: ClassifiedError, CustomStringConvertible, Sendable, Equatable {
  public var path: String
  public var message: String
  /// Bad data by default; I/O for failed reads and writes, usage for outputs the options do not allow.
  public var kind: FailureKind

  public init(path: String, _ message: String, kind: FailureKind = .data) {
    self.path = path
    self.message = message
    self.kind = kind
  }

  public var description: String { "\(path): \(message)".oneLine }
}
