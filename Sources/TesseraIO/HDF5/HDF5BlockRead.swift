import Foundation
import TesseraCore

extension HDF5Dataset {
  /// Reads `box` in whole chunks, decoding them in parallel outside the HDF5 lock.
  ///
  /// HDF5 runs its filter pipeline under its global lock, so a gzip-compressed dataset read with
  /// `H5Dread` inflates on one core at a time. Here only the chunk lookup and the raw-byte read
  /// (`H5Dget_chunk_info_by_coord`, `H5Dread_chunk`) hold the lock; inflate and un-shuffle run
  /// concurrently (`parallel`), and each chunk's intersection with `box` is copied into the
  /// result. Chunks that were never written read as 0. Datasets Tessera cannot decode itself
  /// (contiguous, big-endian, other filters such as scale-offset) fall back to `H5Dread`.
  ///
  /// - Parameters:
  ///   - elementType: the element type of the result. Must have the stored element size; when it
  ///     differs from the stored type the bits are reinterpreted (BigDataViewer's int16 holding
  ///     uint16), never converted.
  /// - Throws: ``HDF5Error`` for a box outside the dataset, an unavailable filter (LZF), or a
  ///   corrupt or truncated chunk.
  public func readBlock(_ box: Box, as elementType: ElementType? = nil, parallel: Bool = true) throws
    -> AnyVolumeBuffer
  {
    let target = elementType ?? self.elementType
    guard target.byteCount == self.elementType.byteCount else {
      throw HDF5Error(
        path: file.path, object: name,
        message: "cannot reinterpret \(self.elementType) as \(target) (different element sizes)")
    }
    guard box.rank == rank, bounds.contains(box) else {
      throw HDF5Error(
        path: file.path, object: name, message: "read box \(box) lies outside the dataset's shape \(shape)")
    }
    let missing = unavailableFilters
    guard missing.isEmpty else {
      let names = missing.map { $0 == 32000 ? "LZF (32000)" : "id \($0)" }.joined(separator: ", ")
      throw HDF5Error(
        path: file.path, object: name,
        message: "compressed with filter \(names), which this HDF5 library cannot decode; "
          + "re-save it with gzip, e.g. h5repack -f GZIP=1 in.h5 out.h5")
    }
    guard decodesChunksItself, let chunkShape else {
      // H5Dread with the memory type equal to the stored type: no conversion, bits kept.
      return try read(box, storedAs: self.elementType).reinterpreted(as: target)
    }
    var result = AnyVolumeBuffer(elementType: target, box: box)
    if box.isEmpty { return result }
    let grid = try! ChunkGrid(shape: shape, chunkShape: chunkShape)  // shape and chunks valid by construction
    let chunks = grid.chunks(intersecting: box)
    let elementSize = target.byteCount
    let chunkBytes = chunkShape.reduce(elementSize, *)
    try result.withUnsafeMutableBytes { out in
      let destination = SendablePointer(out.baseAddress!)
      let threads = parallel ? ProcessInfo.processInfo.activeProcessorCount : 1
      try Parallel.forEach(chunks.count, threads: threads) { i in
        let chunkBox = grid.fullBox(ofChunk: chunks[i])
        guard let raw = try self.readRawChunk(at: chunkBox.lower) else { return }  // fill value 0
        var decoded = [UInt8](repeating: 0, count: chunkBytes)
        try decoded.withUnsafeMutableBytes { try self.decode(raw, into: $0) }
        decoded.withUnsafeBytes { d in
          RawCopy.copy(
            elementSize: elementSize, from: d.baseAddress!, sourceBox: chunkBox, to: destination.pointer,
            destinationBox: box)
        }
      }
    }
    return result
  }
}

/// A raw pointer handed to concurrent workers that write disjoint regions through it.
struct SendablePointer: @unchecked Sendable {
  let pointer: UnsafeMutableRawPointer
  init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }
}
