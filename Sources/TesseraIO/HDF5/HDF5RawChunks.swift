import CHDF5
import TesseraCore

/// Raw chunks: a stored chunk's encoded bytes read from the file (under the HDF5 lock), and
/// decoded by Tessera itself (deflate and shuffle) outside the lock, so decoding runs in parallel.
extension HDF5Dataset {
  /// True if chunks can be read raw and decoded by Tessera outside the HDF5 lock: a chunked,
  /// little-endian dataset whose filters are only deflate and shuffle.
  public var decodesChunksItself: Bool {
    chunkShape != nil && storedLittleEndian
      && filters.allSatisfy { $0.id == HDF5Filter.deflateID || $0.id == HDF5Filter.shuffleID }
  }

  /// One stored chunk, still encoded.
  public struct RawChunk: Sendable {
    /// The encoded bytes.
    public var bytes: [UInt8]
    /// Bit `i` set means filter `i` of the pipeline was skipped for this chunk.
    public var filterMask: UInt32
  }

  /// Reads the stored bytes of the chunk whose first voxel is `offset`
  /// (`H5Dget_chunk_storage_size` + `H5Dread_chunk`), or nil if the chunk was never written
  /// (it reads as the fill value).
  ///
  /// Both calls look the chunk up in the chunk index (O(log n) in a B-tree). HDF5 1.10 reports an
  /// unwritten chunk's storage size as an error, so only then is `H5Dget_chunk_info_by_coord`
  /// asked, which tells unwritten from broken but walks the index from its start (O(n)).
  public func readRawChunk(at offset: [Int]) throws(HDF5Error) -> RawChunk? {
    var coords = offset.map { hsize_t($0) }
    var mask: UInt32 = 0
    var size: hsize_t = 0
    // The handle reopened if it was released (the calls below each take the lock again: a
    // dataset is only released at load, before any chunk is read this way).
    let id = try HDF5Library.withLock { () throws(HDF5Error) in try openHandle() }
    let sized = HDF5Library.withLock { H5Dget_chunk_storage_size(id, &coords, &size) }
    if sized < 0 || size == 0 {
      var address: haddr_t = 0
      let located = HDF5Library.withLock { H5Dget_chunk_info_by_coord(id, &coords, &mask, &address, &size) }
      guard located >= 0 else {
        throw HDF5Error(path: file.path, object: name, message: "cannot locate the chunk at \(offset)")
      }
      if address == haddr_t.max || size == 0 { return nil }
    }
    var status: herr_t = 0
    let bytes = [UInt8].written(capacity: Int(size)) { b in
      status = HDF5Library.withLock { H5Dread_chunk(id, hid_t(H5P_DEFAULT), &coords, &mask, b.baseAddress) }
      return status >= 0 ? b.count : 0
    }
    guard status >= 0 else {
      throw HDF5Error(
        path: file.path, object: name, message: "cannot read the chunk at \(offset); the file may be truncated")
    }
    return RawChunk(bytes: bytes, filterMask: mask)
  }

  /// Decodes a raw chunk of this dataset into `output` (the full chunk, C order): undoes deflate
  /// and shuffle in reverse pipeline order. Runs without the HDF5 lock. The usual pipelines go
  /// without intermediate copies: deflate alone inflates straight into `output`, shuffle + deflate
  /// un-shuffles from one scratch buffer into it.
  public func decode(_ chunk: RawChunk, into output: UnsafeMutableRawBufferPointer) throws(HDF5Error) {
    var failure: HDF5Error? = nil
    chunk.bytes.withUnsafeBytes { bytes in
      do throws(HDF5Error) { try decode(bytes, filterMask: chunk.filterMask, into: output) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  /// ``decode(_:into:)`` of the encoded bytes `bytes` with filter mask `filterMask`, read in
  /// place (the caller's read buffer, no copy).
  func decode(
    _ bytes: UnsafeRawBufferPointer, filterMask: UInt32, into output: UnsafeMutableRawBufferPointer
  ) throws(HDF5Error) {
    do {
      try decodeSteps(bytes, filterMask: filterMask, into: output)
    } catch let error as HDF5Error {
      throw error
    } catch {
      throw HDF5Error(path: file.path, object: name, message: "corrupt deflate chunk (\(error))")
    }
  }

  /// ``decode(_:into:)``, throwing `CodecError` for a stream that does not inflate.
  private func decodeSteps(
    _ bytes: UnsafeRawBufferPointer, filterMask: UInt32, into output: UnsafeMutableRawBufferPointer
  ) throws {
    let steps = filters.indices.reversed().filter { filterMask & (1 << UInt32($0)) == 0 }.map { filters[$0].id }
    // `DeflateCodec.inflate`: ISA-L or libdeflate (raced, `Inflater`), with zlib as the fallback.
    if steps == [HDF5Filter.deflateID] {
      let n = try DeflateCodec.inflate(bytes, into: output, codec: "deflate")
      try checkDecodedSize(n, output.count)
      return
    }
    if steps == [HDF5Filter.deflateID, HDF5Filter.shuffleID] {
      let shuffled = try [UInt8].written(capacity: output.count) {
        try DeflateCodec.inflate(bytes, into: $0, codec: "deflate")
      }
      try checkDecodedSize(shuffled.count, output.count)
      shuffled.withUnsafeBytes { Self.unshuffle($0, elementSize: elementType.byteCount, into: output) }
      return
    }
    var data = Array(bytes)
    for id in steps {
      switch id {
      case HDF5Filter.deflateID:
        data = try data.withUnsafeBytes { src in
          try [UInt8].written(capacity: output.count) { try DeflateCodec.inflate(src, into: $0, codec: "deflate") }
        }
      case HDF5Filter.shuffleID:
        data = Self.unshuffle(data, elementSize: elementType.byteCount)
      default:
        throw HDF5Error(path: file.path, object: name, message: "filter \(id) is not decoded by Tessera")
      }
    }
    try checkDecodedSize(data.count, output.count)
    data.withUnsafeBytes { output.copyMemory(from: $0) }
  }

  private func checkDecodedSize(_ count: Int, _ expected: Int) throws(HDF5Error) {
    guard count == expected else {
      throw HDF5Error(
        path: file.path, object: name, message: "chunk decoded to \(count) bytes, expected \(expected)")
    }
  }

  /// Undoes HDF5's shuffle filter: bytes are stored grouped by byte position within elements.
  static func unshuffle(_ data: [UInt8], elementSize: Int) -> [UInt8] {
    guard elementSize > 1 else { return data }
    return [UInt8].written(capacity: data.count) { out in
      data.withUnsafeBytes { unshuffle($0, elementSize: elementSize, into: out) }
      return data.count
    }
  }

  /// Un-shuffles `src` into `dst` (the same size). A trailing partial element (if any) is left as
  /// stored, like HDF5 does.
  static func unshuffle(_ src: UnsafeRawBufferPointer, elementSize: Int, into dst: UnsafeMutableRawBufferPointer) {
    precondition(src.count == dst.count)
    guard elementSize > 1, src.count >= elementSize else {
      dst.copyMemory(from: src)
      return
    }
    let count = src.count / elementSize
    let s = src.baseAddress!
    let d = dst.baseAddress!
    if elementSize == 2 {  // uint16, the common case: ~3.4 GiB/s on one core here
      for i in 0..<count {
        let low = UInt16(s.load(fromByteOffset: i, as: UInt8.self))
        let high = UInt16(s.load(fromByteOffset: count + i, as: UInt8.self))
        d.storeBytes(of: (low | high << 8).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
      }
    } else {
      for b in 0..<elementSize {
        let plane = b * count
        for i in 0..<count {
          d.storeBytes(
            of: s.load(fromByteOffset: plane + i, as: UInt8.self), toByteOffset: i * elementSize + b, as: UInt8.self)
        }
      }
    }
    let tail = count * elementSize
    (d + tail).copyMemory(from: s + tail, byteCount: src.count - tail)
  }
}
