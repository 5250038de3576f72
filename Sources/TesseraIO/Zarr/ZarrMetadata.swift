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
  public func codec(typeSize: Int) -> (any BytesCodec)? {
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

/// What a Zarr array's metadata says: shape, chunking (and sharding), element type, fill value,
/// codecs and key encoding. One value describes v2 and v3 arrays alike.
public struct ZarrArrayMetadata: Hashable, Sendable {
  public var format: ZarrFormat
  public var shape: [Int]
  /// The stored chunk shape; for a sharded v3 array, the shard shape.
  public var chunkShape: [Int]
  /// For a sharded v3 array, the inner chunk shape (divides `chunkShape`).
  public var innerChunkShape: [Int]?
  public var dataType: ElementType
  /// The fill value (NaN and infinities allowed for floats).
  public var fillValue: Double
  public var compressor: ZarrCompressor
  /// Axis names (v3 `dimension_names`; OME-Zarr requires them in 0.5).
  public var dimensionNames: [String]?
  /// Chunk key separator: "/" (nested) or ".".
  public var separator: String
  /// v3 only: `v2` chunk key encoding (keys without the `c` prefix).
  public var v2KeyEncoding: Bool
  /// Stored byte order (read support; Tessera writes little-endian).
  public var bigEndian: Bool
  /// A `crc32c` codec ends the (inner) codec chain (v3).
  public var checksum: Bool
  /// Sharding: where the index is, and whether it carries a crc32c.
  public var indexAtStart: Bool
  public var indexChecksum: Bool

  public init(
    format: ZarrFormat, shape: [Int], chunkShape: [Int], innerChunkShape: [Int]? = nil, dataType: ElementType,
    fillValue: Double = 0, compressor: ZarrCompressor = .blosc(cname: "lz4", level: 5, shuffle: .byte),
    dimensionNames: [String]? = nil
  ) {
    self.format = format
    self.shape = shape
    self.chunkShape = chunkShape
    self.innerChunkShape = innerChunkShape
    self.dataType = dataType
    self.fillValue = fillValue
    self.compressor = compressor
    self.dimensionNames = dimensionNames
    self.separator = "/"
    self.v2KeyEncoding = false
    self.bigEndian = false
    self.checksum = false
    self.indexAtStart = false
    self.indexChecksum = true
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
    }
    if let names = dimensionNames, names.count != n {
      throw ZarrError(path: path, "\(names.count) dimension names for \(n) dimensions")
    }
    if case .zlib = compressor, format == .v3 {
      throw ZarrError(path: path, "zlib is a Zarr v2 compressor; use gzip with Zarr v3")
    }
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
    var compressorJSON: Any = NSNull()
    switch compressor {
    case .none: break
    case .zstd(let level): compressorJSON = ["id": "zstd", "level": level] as [String: Any]
    case .blosc(let cname, let level, let shuffle):
      compressorJSON =
        ["id": "blosc", "cname": cname, "clevel": level, "shuffle": Int(shuffle.rawValue), "blocksize": 0]
        as [String: Any]
    case .gzip(let level): compressorJSON = ["id": "gzip", "level": level] as [String: Any]
    case .zlib(let level): compressorJSON = ["id": "zlib", "level": level] as [String: Any]
    }
    return [
      "zarr_format": 2, "shape": shape, "chunks": chunkShape, "dtype": dataType.numpyTypeString,
      "compressor": compressorJSON, "fill_value": fillValueJSON, "order": "C", "filters": NSNull(),
      "dimension_separator": separator,
    ]
  }

  /// The v3 bytes→bytes codecs.
  func v3BytesCodecs() -> [[String: Any]] {
    var out: [[String: Any]] = []
    switch compressor {
    case .none: break
    case .zstd(let level): out.append(["name": "zstd", "configuration": ["level": level, "checksum": false]])
    case .blosc(let cname, let level, let shuffle):
      let s = ["noshuffle", "shuffle", "bitshuffle"][Int(shuffle.rawValue)]
      out.append([
        "name": "blosc",
        "configuration": [
          "cname": cname, "clevel": level, "shuffle": s, "typesize": dataType.byteCount, "blocksize": 0,
        ]
          as [String: Any],
      ])
    case .gzip(let level), .zlib(let level): out.append(["name": "gzip", "configuration": ["level": level]])
    }
    if checksum { out.append(["name": "crc32c"]) }
    return out
  }

  func bytesCodecJSON() -> [String: Any] {
    dataType.byteCount == 1
      ? ["name": "bytes"] : ["name": "bytes", "configuration": ["endian": bigEndian ? "big" : "little"]]
  }

  /// v3 array `zarr.json` content (without attributes).
  func zarrJSON() -> [String: Any] {
    var codecs: [[String: Any]]
    if let inner = innerChunkShape {
      var indexCodecs: [[String: Any]] = [["name": "bytes", "configuration": ["endian": "little"]]]
      if indexChecksum { indexCodecs.append(["name": "crc32c"]) }
      codecs = [
        [
          "name": "sharding_indexed",
          "configuration": [
            "chunk_shape": inner, "codecs": [bytesCodecJSON()] + v3BytesCodecs(), "index_codecs": indexCodecs,
            "index_location": indexAtStart ? "start" : "end",
          ] as [String: Any],
        ]
      ]
    } else {
      codecs = [bytesCodecJSON()] + v3BytesCodecs()
    }
    var json: [String: Any] = [
      "zarr_format": 3, "node_type": "array", "shape": shape, "data_type": dataType.rawValue,
      "chunk_grid": ["name": "regular", "configuration": ["chunk_shape": chunkShape]],
      "chunk_key_encoding": v2KeyEncoding
        ? ["name": "v2", "configuration": ["separator": separator]]
        : ["name": "default", "configuration": ["separator": separator]],
      "fill_value": fillValueJSON, "codecs": codecs, "attributes": [String: Any](),
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
    var compressor = ZarrCompressor.none
    if let c = j["compressor"] as? [String: Any] {
      let level = (c["level"] as? Int) ?? (c["clevel"] as? Int) ?? 1
      switch c["id"] as? String {
      case "zstd": compressor = .zstd(level: level)
      case "gzip": compressor = .gzip(level: level)
      case "zlib": compressor = .zlib(level: level)
      case "blosc":
        let shuffle = BloscCodec.Shuffle(rawValue: Int32((c["shuffle"] as? Int) ?? 1)) ?? .byte
        compressor = .blosc(cname: (c["cname"] as? String) ?? "lz4", level: level, shuffle: shuffle)
      case let other: throw ZarrError(path: path, "unsupported compressor \(other ?? "?")")
      }
    }
    var m = ZarrArrayMetadata(
      format: .v2, shape: shape, chunkShape: chunks, dataType: type,
      fillValue: try parseFill(j["fill_value"], type, path), compressor: compressor)
    m.separator = (j["dimension_separator"] as? String) ?? "."
    m.bigEndian = big && type.byteCount > 1
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
    var chain = codecs
    if let first = chain.first, first["name"] as? String == "sharding_indexed" {
      guard chain.count == 1, let config = first["configuration"] as? [String: Any],
        let inner = config["chunk_shape"] as? [Int], let innerCodecs = config["codecs"] as? [[String: Any]]
      else { throw ZarrError(path: path, "unsupported sharding configuration") }
      m.innerChunkShape = inner
      m.indexAtStart = (config["index_location"] as? String) == "start"
      let indexCodecs = (config["index_codecs"] as? [[String: Any]]) ?? []
      m.indexChecksum = indexCodecs.contains { $0["name"] as? String == "crc32c" }
      chain = innerCodecs
    }
    try m.parseV3Chain(chain, path)
    return m
  }

  mutating func parseV3Chain(_ chain: [[String: Any]], _ path: String) throws {
    guard let bytes = chain.first, bytes["name"] as? String == "bytes" else {
      throw ZarrError(path: path, "the codec chain must start with \"bytes\" (transpose is not supported)")
    }
    bigEndian = ((bytes["configuration"] as? [String: Any])?["endian"] as? String) == "big" && dataType.byteCount > 1
    for codec in chain.dropFirst() {
      let config = (codec["configuration"] as? [String: Any]) ?? [:]
      switch codec["name"] as? String {
      case "zstd": compressor = .zstd(level: (config["level"] as? Int) ?? 0)
      case "gzip": compressor = .gzip(level: (config["level"] as? Int) ?? 5)
      case "blosc":
        let shuffle: BloscCodec.Shuffle =
          switch config["shuffle"] as? String {
          case "noshuffle": .none
          case "bitshuffle": .bit
          default: .byte
          }
        compressor = .blosc(
          cname: (config["cname"] as? String) ?? "lz4", level: (config["clevel"] as? Int) ?? 5, shuffle: shuffle)
      case "crc32c": checksum = true
      case let other: throw ZarrError(path: path, "unsupported codec \(other ?? "?")")
      }
    }
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

/// CRC-32C (Castagnoli), as the Zarr v3 `crc32c` codec and the sharding index use it.
public enum CRC32C {
  static let table: [UInt32] = (0..<256).map { i in
    var c = UInt32(i)
    for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    return c
  }

  public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    table.withUnsafeBufferPointer { t in
      for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    }
    return c ^ 0xFFFF_FFFF
  }

  public static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
}
