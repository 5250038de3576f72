import TesseraCore

/// Blosc (``BloscCodec``) as a Zarr bytes→bytes codec: v3 `blosc` and v2 (numcodecs) `blosc`.
extension BloscCodec: ZarrBytesToBytesCodec {
  static let shuffleNames = ["noshuffle", "shuffle", "bitshuffle"]

  /// v3 `blosc`; the shuffle's element size is the array's (as Tessera writes `typesize`).
  init(v3 c: [String: Any], context: ZarrCodecRegistry.Context) throws {
    let shuffle: Shuffle =
      switch c["shuffle"] as? String {
      case "noshuffle": .none
      case "bitshuffle": .bit
      default: .byte
      }
    self.init(
      compressor: (c["cname"] as? String) ?? "lz4", level: c.int("clevel", 5), shuffle: shuffle,
      typeSize: context.dataType.byteCount)
  }

  /// v2 `blosc` (numcodecs): the shuffle is a number.
  init(v2 c: [String: Any], context: ZarrCodecRegistry.Context) throws {
    self.init(
      compressor: (c["cname"] as? String) ?? "lz4", level: (c["level"] as? Int) ?? c.int("clevel", 1),
      shuffle: Shuffle(rawValue: Int32(c.int("shuffle", 1))) ?? .byte, typeSize: context.dataType.byteCount)
  }

  public func v3JSON() -> [String: Any] {
    [
      "name": "blosc",
      "configuration": [
        "cname": compressor, "clevel": level, "shuffle": Self.shuffleNames[Int(shuffle.rawValue)],
        "typesize": typeSize, "blocksize": blockSize,
      ] as [String: Any],
    ]
  }

  public func v2JSON() -> [String: Any]? {
    ["id": "blosc", "cname": compressor, "clevel": level, "shuffle": Int(shuffle.rawValue), "blocksize": blockSize]
  }

  public func payload(of bytes: UnsafeRawBufferPointer) throws -> Range<Int>? { nil }
}
