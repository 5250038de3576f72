import Foundation
import TesseraCore

/// Reads baseline multi-page TIFF stacks (one page per z-plane), so real volumes saved by
/// ImageJ, tifffile or a microscope's software can be used as a simulation source.
///
/// Supported: classic TIFF (not BigTIFF), little- or big-endian; one sample per pixel;
/// 8- and 16-bit unsigned or signed integers, 32-bit unsigned or signed integers and 32-bit
/// floats (`SampleFormat` 1, 2, 3); strips (`StripOffsets`/`StripByteCounts`, any
/// `RowsPerStrip`); compression none (1), Adobe/zlib deflate (8 and 32946, through zlib) and
/// PackBits (32773); horizontal differencing (`Predictor` 2) for integers. All pages must have
/// the same width, height and sample type. One page gives a 2-D `y, x` volume, several a 3-D
/// `z, y, x` volume.
///
/// Anything else (tiles, LZW/JPEG, several samples per pixel, 1-bit or 64-bit samples,
/// BigTIFF) is refused with one line naming the file and the tag.
public enum TIFFFile {
  /// Reads every page of the TIFF at `path` into one volume (native byte order).
  ///
  /// - Throws: ``DatasetError`` naming the file and the tag for a missing file, a malformed
  ///   header or IFD, an unsupported feature, or pages of different shapes or types.
  public static func read(_ path: String) throws -> AnyVolumeBuffer {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw DatasetError(path: path, "no such file or not readable")
    }
    return try decode([UInt8](data), path: path)
  }

  /// Decodes the bytes of a TIFF file (see ``read(_:)``); `path` is only used in errors.
  public static func decode(_ bytes: [UInt8], path: String = "<memory>") throws -> AnyVolumeBuffer {
    var reader = try ByteReader(bytes: bytes, path: path)
    var offset = try reader.headerIFDOffset()
    var pages: [Page] = []
    var seen = Set<Int>()
    while offset != 0 {
      guard seen.insert(offset).inserted else {
        throw DatasetError(path: path, element: "IFD \(pages.count)", "IFD chain loops back to offset \(offset)")
      }
      let (page, next) = try reader.page(at: offset, index: pages.count)
      pages.append(page)
      offset = next
    }
    guard let first = pages.first else { throw DatasetError(path: path, "no image in the file") }
    for (i, p) in pages.enumerated() where p.width != first.width || p.height != first.height || p.type != first.type {
      throw DatasetError(
        path: path, element: "IFD \(i)",
        "page is \(p.width)×\(p.height) \(p.type), page 0 is \(first.width)×\(first.height) \(first.type); "
          + "all pages must match")
    }
    let planeBytes = first.width * first.height * first.type.byteCount
    let shape = pages.count == 1 ? [first.height, first.width] : [pages.count, first.height, first.width]
    var out = AnyVolumeBuffer(elementType: first.type, box: Box(shape: shape))
    try out.withUnsafeMutableBytes { dst in
      for (z, page) in pages.enumerated() {
        let plane = UnsafeMutableRawBufferPointer(rebasing: dst[(z * planeBytes)..<((z + 1) * planeBytes)])
        try reader.decodePlane(page, index: z, into: plane)
      }
    }
    return out
  }

  /// One image file directory, reduced to what the reader needs.
  struct Page {
    var width: Int
    var height: Int
    var type: ElementType
    var compression: Int
    var predictor: Int
    var rowsPerStrip: Int
    var stripOffsets: [Int]
    var stripByteCounts: [Int]
  }

  /// Reads integers of the file's byte order, with bounds checks that name the file.
  struct ByteReader {
    let bytes: [UInt8]
    let path: String
    var littleEndian = true

    init(bytes: [UInt8], path: String) throws {
      self.bytes = bytes
      self.path = path
    }

    func u16(_ at: Int) throws -> Int {
      guard at >= 0, at + 2 <= bytes.count else { throw truncated(at) }
      let a = Int(bytes[at])
      let b = Int(bytes[at + 1])
      return littleEndian ? a | b << 8 : a << 8 | b
    }

    func u32(_ at: Int) throws -> Int {
      guard at >= 0, at + 4 <= bytes.count else { throw truncated(at) }
      let b = (0..<4).map { Int(bytes[at + $0]) }
      return littleEndian ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]
    }

    func truncated(_ at: Int) -> DatasetError {
      DatasetError(path: path, "truncated TIFF: offset \(at) is beyond the file's \(bytes.count) bytes")
    }

    mutating func headerIFDOffset() throws -> Int {
      guard bytes.count >= 8 else { throw DatasetError(path: path, "not a TIFF file (shorter than its header)") }
      switch (bytes[0], bytes[1]) {
      case (0x49, 0x49): littleEndian = true
      case (0x4D, 0x4D): littleEndian = false
      default: throw DatasetError(path: path, "not a TIFF file (byte order mark is not II or MM)")
      }
      let magic = try u16(2)
      if magic == 43 {
        throw DatasetError(path: path, "BigTIFF is not supported; convert with tifffile.imwrite(..., bigtiff=False)")
      }
      guard magic == 42 else { throw DatasetError(path: path, "not a TIFF file (magic \(magic), expected 42)") }
      return try u32(4)
    }

    /// The values of one IFD entry (SHORT, LONG or BYTE), following the offset when they do not
    /// fit in the entry.
    func values(entry at: Int, tag: Int) throws -> [Int] {
      let type = try u16(at + 2)
      let count = try u32(at + 4)
      let size: Int
      switch type {
      case 1, 2, 6, 7: size = 1
      case 3, 8: size = 2
      case 4, 9: size = 4
      default: size = 0
      }
      guard size > 0 else { return [] }  // RATIONAL, DOUBLE, …: not needed for the tags we read.
      let start = count * size <= 4 ? at + 8 : try u32(at + 8)
      guard start + count * size <= bytes.count else { throw truncated(start + count * size) }
      return try (0..<count).map { i in
        switch size {
        case 1: return Int(bytes[start + i])
        case 2: return try u16(start + 2 * i)
        default: return try u32(start + 4 * i)
        }
      }
    }

    func page(at offset: Int, index: Int) throws -> (Page, next: Int) {
      let count = try u16(offset)
      var tags: [Int: [Int]] = [:]
      for e in 0..<count {
        let at = offset + 2 + 12 * e
        let tag = try u16(at)
        tags[tag] = try values(entry: at, tag: tag)
      }
      let next = try u32(offset + 2 + 12 * count)
      let ifd = "IFD \(index)"
      func one(_ tag: Int, _ name: String, default value: Int? = nil) throws -> Int {
        if let v = tags[tag]?.first { return v }
        if let value { return value }
        throw DatasetError(path: path, element: ifd, "missing tag \(name) (\(tag))")
      }
      func unsupported(_ what: String) -> DatasetError {
        DatasetError(path: path, element: ifd, "\(what) is not supported (Tessera reads baseline strip TIFFs)")
      }
      let width = try one(256, "ImageWidth")
      let height = try one(257, "ImageLength")
      let samples = try one(277, "SamplesPerPixel", default: 1)
      guard samples == 1 else { throw unsupported("SamplesPerPixel (277) = \(samples)") }
      let bits = tags[258] ?? [1]
      guard Set(bits).count == 1, let bitsPerSample = bits.first else {
        throw unsupported("BitsPerSample (258) = \(bits)")
      }
      let format = try one(339, "SampleFormat", default: 1)
      let type: ElementType
      switch (format, bitsPerSample) {
      case (1, 8): type = .uint8
      case (1, 16): type = .uint16
      case (1, 32): type = .uint32
      case (2, 8): type = .int8
      case (2, 16): type = .int16
      case (2, 32): type = .int32
      case (3, 32): type = .float32
      default: throw unsupported("SampleFormat (339) = \(format) with BitsPerSample (258) = \(bitsPerSample)")
      }
      let compression = try one(259, "Compression", default: 1)
      guard [1, 8, 32946, 32773].contains(compression) else {
        throw unsupported("Compression (259) = \(compression) (supported: 1 none, 8/32946 deflate, 32773 PackBits)")
      }
      let predictor = try one(317, "Predictor", default: 1)
      guard predictor == 1 || (predictor == 2 && !type.isFloatingPoint) else {
        throw unsupported("Predictor (317) = \(predictor) for \(type)")
      }
      if tags[322] != nil || tags[324] != nil { throw unsupported("tiled layout (TileWidth 322 / TileOffsets 324)") }
      let planar = try one(284, "PlanarConfiguration", default: 1)
      guard planar == 1 || samples == 1 else { throw unsupported("PlanarConfiguration (284) = \(planar)") }
      guard let offsets = tags[273], !offsets.isEmpty else {
        throw DatasetError(path: path, element: ifd, "missing tag StripOffsets (273)")
      }
      var counts = tags[279] ?? []
      if counts.isEmpty, compression == 1, offsets.count == 1 {
        counts = [width * height * type.byteCount]  // some writers omit it for one raw strip
      }
      guard counts.count == offsets.count else {
        throw DatasetError(
          path: path, element: ifd,
          "StripByteCounts (279) has \(counts.count) values, StripOffsets (273) \(offsets.count)")
      }
      let rows = min(try one(278, "RowsPerStrip", default: height), height)
      guard rows > 0, (height + rows - 1) / rows == offsets.count else {
        throw DatasetError(
          path: path, element: ifd,
          "RowsPerStrip (278) = \(rows) does not match \(offsets.count) strips of \(height) rows")
      }
      return (
        Page(
          width: width, height: height, type: type, compression: compression, predictor: predictor, rowsPerStrip: rows,
          stripOffsets: offsets, stripByteCounts: counts), next
      )
    }

    /// Decodes one page into `plane` (row-major, native byte order).
    func decodePlane(_ page: Page, index: Int, into plane: UnsafeMutableRawBufferPointer) throws {
      let rowBytes = page.width * page.type.byteCount
      let ifd = "IFD \(index)"
      for (s, (offset, count)) in zip(page.stripOffsets, page.stripByteCounts).enumerated() {
        let row0 = s * page.rowsPerStrip
        let rowCount = min(page.rowsPerStrip, page.height - row0)
        let expected = rowCount * rowBytes
        guard offset >= 0, count >= 0, offset + count <= bytes.count else {
          throw DatasetError(
            path: path, element: ifd, "strip \(s) (StripOffsets 273) runs past the end of the file")
        }
        let out = UnsafeMutableRawBufferPointer(rebasing: plane[(row0 * rowBytes)..<(row0 * rowBytes + expected)])
        try bytes.withUnsafeBytes { all in
          let input = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + count)])
          switch page.compression {
          case 1:
            guard count >= expected else {
              throw DatasetError(
                path: path, element: ifd, "strip \(s) holds \(count) bytes (StripByteCounts 279), expected \(expected)")
            }
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: input[0..<expected]))
          case 8, 32946:
            do {
              let n = try DeflateCodec.inflate(input, into: out, codec: "deflate")
              guard n == expected else {
                throw CodecError(codec: "deflate", message: "decoded \(n) bytes, expected \(expected)")
              }
            } catch let error as CodecError {
              throw DatasetError(path: path, element: ifd, "strip \(s) (Compression 259 = deflate): \(error)")
            }
          default:
            try unpackBits(input, into: out, strip: s, ifd: ifd)
          }
        }
        if page.predictor == 2 { undoPredictor(out, rows: rowCount, width: page.width, type: page.type) }
      }
      if littleEndian != (1.littleEndian == 1) { swapBytes(plane, size: page.type.byteCount) }
    }

    /// PackBits (Apple; TIFF 6.0 §9): a header byte n, then n+1 literal bytes (n ≥ 0) or one
    /// byte repeated 1−n times (−127 ≤ n ≤ −1); −128 is skipped.
    func unpackBits(
      _ input: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, strip: Int, ifd: String
    ) throws {
      var i = 0
      var o = 0
      while o < out.count {
        guard i < input.count else {
          throw DatasetError(
            path: path, element: ifd,
            "strip \(strip) (Compression 259 = PackBits) decodes to \(o) bytes, expected \(out.count)")
        }
        let n = Int(Int8(bitPattern: input[i]))
        i += 1
        if n >= 0 {
          let length = n + 1
          guard i + length <= input.count, o + length <= out.count else {
            throw DatasetError(path: path, element: ifd, "strip \(strip) (Compression 259 = PackBits) is corrupt")
          }
          for k in 0..<length { out[o + k] = input[i + k] }
          i += length
          o += length
        } else if n != -128 {
          let length = 1 - n
          guard i < input.count, o + length <= out.count else {
            throw DatasetError(path: path, element: ifd, "strip \(strip) (Compression 259 = PackBits) is corrupt")
          }
          for k in 0..<length { out[o + k] = input[i] }
          i += 1
          o += length
        }
      }
    }

    /// Horizontal differencing: each sample of a row was stored as its difference to the left one
    /// (in the file's byte order, which the caller swaps afterwards).
    func undoPredictor(_ out: UnsafeMutableRawBufferPointer, rows: Int, width: Int, type: ElementType) {
      let size = type.byteCount
      for r in 0..<rows {
        let row = r * width * size
        for x in 1..<max(width, 1) {
          switch size {
          case 1:
            out[row + x] = out[row + x] &+ out[row + x - 1]
          default:
            let a = read(out, row + (x - 1) * size, size)
            let b = read(out, row + x * size, size)
            write(out, row + x * size, size, a &+ b)
          }
        }
      }
    }

    private func read(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ size: Int) -> UInt32 {
      var v: UInt32 = 0
      for k in 0..<size {
        let byte = UInt32(p[at + (littleEndian ? k : size - 1 - k)])
        v |= byte << (8 * UInt32(k))
      }
      return v
    }

    private func write(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ size: Int, _ value: UInt32) {
      for k in 0..<size {
        p[at + (littleEndian ? k : size - 1 - k)] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(k)))
      }
    }

    private func swapBytes(_ p: UnsafeMutableRawBufferPointer, size: Int) {
      guard size > 1 else { return }
      var i = 0
      while i + size <= p.count {
        for k in 0..<(size / 2) { p.swapAt(i + k, i + size - 1 - k) }
        i += size
      }
    }
  }
}
