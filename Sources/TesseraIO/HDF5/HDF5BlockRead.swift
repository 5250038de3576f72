import Foundation
import TesseraCore

extension HDF5Dataset {
  /// Reads `box` in whole chunks, decoding them in parallel outside the HDF5 lock.
  ///
  /// HDF5 runs its filter pipeline under its global lock, so a gzip-compressed dataset read with
  /// `H5Dread` inflates on one core at a time. In a file opened read-only, the dataset's chunk
  /// index (``HDF5ChunkIndex``, read once) locates the chunks, runs of chunks adjacent in the file
  /// are read with one `pread` each, and nothing holds the HDF5 lock (see
  /// ``readIndexed(_:grid:index:descriptor:into:threads:)``). Otherwise only the chunk lookup and
  /// the raw-byte read (`H5Dget_chunk_info_by_coord`, `H5Dread_chunk`) hold the lock. Either way,
  /// inflate and un-shuffle run concurrently (`parallel`), and each chunk's intersection with
  /// `box` is copied into the result. Chunks that were never written read as 0. Datasets Tessera cannot decode itself
  /// (contiguous, big-endian, other filters such as scale-offset) fall back to `H5Dread`.
  ///
  /// - Parameters:
  ///   - elementType: the element type of the result. Must have the stored element size; when it
  ///     differs from the stored type the bits are reinterpreted (BigDataViewer's int16 holding
  ///     uint16), never converted.
  /// - Throws: ``HDF5Error`` for a box outside the dataset, an unavailable filter (LZF), a
  ///   corrupt or truncated chunk, or a damaged chunk B-tree (never handed to HDF5, whose B-tree
  ///   code can recurse forever on one).
  public func readBlock(_ box: Box, as elementType: ElementType? = nil, parallel: Bool = true) throws
    -> AnyVolumeBuffer
  {
    let target = elementType ?? self.elementType
    guard target.byteCount == self.elementType.byteCount else {
      throw HDF5Error(
        path: file.path, object: name,
        message: "cannot reinterpret \(self.elementType) as \(target) (different element sizes)")
    }
    var result = AnyVolumeBuffer(elementType: target, uninitializedBox: box)
    try result.withUnsafeMutableBytes { try readBlock(box, into: $0, parallel: parallel) }
    return result
  }

  /// Reads `box` like ``readBlock(_:as:parallel:)`` into `output`: C order over `box`, in the
  /// stored element type's size (the bits are never converted).
  public func readBlock(_ box: Box, into output: UnsafeMutableRawBufferPointer, parallel: Bool = true) throws {
    guard box.rank == rank, bounds.contains(box) else {
      throw HDF5Error(
        path: file.path, object: name, message: "read box \(box) lies outside the dataset's shape \(shape)")
    }
    let elementSize = elementType.byteCount
    precondition(output.count == box.volume * elementSize, "\(output.count) bytes for \(box) of \(elementType)")
    let missing = unavailableFilters
    guard missing.isEmpty else {
      let names = missing.map { $0 == 32000 ? "LZF (32000)" : "id \($0)" }.joined(separator: ", ")
      throw HDF5Error(
        path: file.path, object: name,
        message: "compressed with filter \(names), which this HDF5 library cannot decode; "
          + "re-save it with gzip, e.g. h5repack -f GZIP=1 in.h5 out.h5")
    }
    if box.isEmpty { return }
    if let offset = contiguousOffset, rank >= 1, let descriptor = file.readDescriptor() {
      try readContiguous(box, at: offset, descriptor: descriptor, into: output)
      return
    }
    guard decodesChunksItself, let chunkShape else {
      // H5Dread with the memory type equal to the stored type: no conversion, bits kept.
      try read(box, memoryType: elementType, into: output)
      return
    }
    let grid = try! ChunkGrid(shape: shape, chunkShape: chunkShape)  // shape and chunks valid by construction
    let threads = parallel ? Parallel.threadLimit : 1
    if let descriptor = file.readDescriptor(), let index = chunkIndex(descriptor: descriptor) {
      try readIndexed(box, grid: grid, index: index, descriptor: descriptor, into: output, threads: threads)
      return
    }
    if let failure = chunkIndexFailure, ChunkIndexUnavailable.isFatal(failure) {
      // HDF5's own B-tree code is not safe on a damaged tree: no fallback.
      throw HDF5Error(
        path: file.path, object: name,
        message: failure.hasPrefix(ChunkIndexUnavailable.damaged)
          ? "\(failure); the file is corrupt, re-export or re-copy it" : failure)
    }
    let chunks = grid.chunks(intersecting: box)
    let chunkBytes = chunkShape.reduce(elementSize, *)
    let destination = SendablePointer(output.baseAddress!)
    try Parallel.forEach(chunks.count, threads: threads) { i in
      let chunkBox = grid.fullBox(ofChunk: chunks[i])
      guard let raw = try self.readRawChunk(at: chunkBox.lower) else {
        // Never written: the fill value, 0.
        RawCopy.forEachRow(of: chunkBox.intersection(box), in: chunkBox, and: box) { _, o, length in
          (destination.pointer + o * elementSize).initializeMemory(
            as: UInt8.self, repeating: 0, count: length * elementSize)
        }
        return
      }
      let decoded = try [UInt8].written(capacity: chunkBytes) { out in
        try self.decode(raw, into: out)
        return chunkBytes
      }
      decoded.withUnsafeBytes { d in
        RawCopy.copy(
          elementSize: elementSize, from: d.baseAddress!, sourceBox: chunkBox, to: destination.pointer,
          destinationBox: box)
      }
    }
  }
}

extension HDF5Dataset {
  /// Reads `box` through the chunk index, without the HDF5 lock: the chunks `box` meets are taken
  /// in C order and cut into runs of chunks that follow each other in the file (BigDataViewer and
  /// HDF5 write chunks in order, so a row of chunks usually is one run); each run is one `pread`,
  /// and its chunks are decoded and copied into place. Runs are spread over `threads` workers
  /// (at most 4 MiB, and about a quarter of a worker's share, per run so the workers stay busy).
  func readIndexed(
    _ box: Box, grid: ChunkGrid, index: HDF5ChunkIndex, descriptor: Int32, into output: UnsafeMutableRawBufferPointer,
    threads: Int
  ) throws {
    let elementSize = elementType.byteCount
    let chunkBytes = grid.chunkShape.reduce(elementSize, *)
    let range = grid.chunkRange(intersecting: box)
    let rank = grid.rank
    // The chunks in C order over the chunk range, as linear indices into the index.
    var linear: [Int] = []
    linear.reserveCapacity(range.volume)
    range.forEachIndex { c in
      var l = 0
      for d in 0..<rank { l = l * grid.gridShape[d] + c[d] }
      linear.append(l)
    }
    // The index was checked against the file when it was read (every chunk inside the file, of
    // a plausible size); the arithmetic below is checked again so that no index can trap it.
    func outside(_ l: Int) -> HDF5Error {
      HDF5Error(
        path: file.path, object: name,
        message: "the chunk index places chunk \(l) at byte \(index.addresses[l]) (\(index.sizes[l]) bytes), "
          + "outside the file; the file is corrupt, re-export it")
    }
    var stored = 0
    for l in linear where index.addresses[l] != HDF5ChunkIndex.unallocated {
      stored = stored.addingReportingOverflow(Int(index.sizes[l])).partialValue
    }
    let maxRunBytes = max(1, min(4 << 20, stored / max(1, 4 * threads)))
    // Runs: [start, end) into `linear`; an unwritten chunk is a run of its own.
    var runs: [(start: Int, end: Int)] = []
    var i = 0
    while i < linear.count {
      var j = i + 1
      let a = index.addresses[linear[i]]
      if a != HDF5ChunkIndex.unallocated {
        var (end, overflow) = a.addingReportingOverflow(UInt64(index.sizes[linear[i]]))
        guard !overflow, Int(exactly: end) != nil else { throw outside(linear[i]) }
        var bytes = Int(index.sizes[linear[i]])
        while j < linear.count, index.addresses[linear[j]] == end,
          bytes + Int(index.sizes[linear[j]]) <= maxRunBytes
        {
          bytes += Int(index.sizes[linear[j]])
          (end, overflow) = end.addingReportingOverflow(UInt64(index.sizes[linear[j]]))
          guard !overflow, Int(exactly: end) != nil else { throw outside(linear[j]) }
          j += 1
        }
      }
      runs.append((i, j))
      i = j
    }
    let destination = SendablePointer(output.baseAddress!)
    let gridShape = grid.gridShape
    let (linearChunks, chunkRuns) = (linear, runs)
    try Parallel.forEach(chunkRuns.count, threads: threads) { r in
      let run = chunkRuns[r]
      let first = linearChunks[run.start]
      func chunkBox(_ l: Int) -> Box {
        var rest = l
        var lower = [Int](repeating: 0, count: rank)
        for d in stride(from: rank - 1, through: 0, by: -1) {
          lower[d] = (rest % gridShape[d]) * grid.chunkShape[d]
          rest /= gridShape[d]
        }
        return Box(lower: lower, upper: zip(lower, grid.chunkShape).map { $0 + $1 })
      }
      guard index.addresses[first] != HDF5ChunkIndex.unallocated else {
        // Never written: the fill value, 0.
        let cb = chunkBox(first)
        RawCopy.forEachRow(of: cb.intersection(box), in: cb, and: box) { _, o, length in
          (destination.pointer + o * elementSize).initializeMemory(
            as: UInt8.self, repeating: 0, count: length * elementSize)
        }
        return
      }
      // Checked above: every run ends at an address that is an Int.
      let start = Int(index.addresses[first])
      let last = linearChunks[run.end - 1]
      let count = Int(index.addresses[last]) + Int(index.sizes[last]) - start
      let encoded = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 64)
      defer { encoded.deallocate() }
      try self.preadFully(descriptor, encoded.baseAddress!, count, start, what: "chunk data")
      // A chunk whose voxels are one contiguous range of the output — `box` itself, or a slab of
      // it spanning every axis but the first (the cache's blocks stack whole chunks along z) —
      // inflates straight into place; others go through one scratch chunk and are copied in.
      var scratch: UnsafeMutableRawBufferPointer? = nil
      defer { scratch?.deallocate() }
      let slab = box.shape.dropFirst().reduce(elementSize, *)
      for k in run.start..<run.end {
        let l = linearChunks[k]
        let from = Int(index.addresses[l]) - start
        let bytes = UnsafeRawBufferPointer(rebasing: encoded[from..<from + Int(index.sizes[l])])
        let cb = chunkBox(l)
        if box.contains(cb), (1..<rank).allSatisfy({ cb.lower[$0] == box.lower[$0] && cb.upper[$0] == box.upper[$0] }) {
          let offset = (cb.lower[0] - box.lower[0]) * slab
          let place = UnsafeMutableRawBufferPointer(start: destination.pointer + offset, count: chunkBytes)
          try self.decode(bytes, filterMask: index.masks[l], into: place)
          continue
        }
        let decoded = scratch ?? UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 64)
        scratch = decoded
        try self.decode(bytes, filterMask: index.masks[l], into: decoded)
        RawCopy.copy(
          elementSize: elementSize, from: decoded.baseAddress!, sourceBox: cb, to: destination.pointer,
          destinationBox: box)
      }
    }
  }

  /// Reads exactly `count` bytes at `position`; a short read means the file is truncated.
  func preadFully(
    _ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, _ position: Int, what: String
  ) throws(HDF5Error) {
    switch preadAll(descriptor, buffer, count, at: position) {
    case .complete:
      return
    case .endOfFile(let at):
      throw HDF5Error(
        path: file.path, object: name,
        message: "the file ends inside the dataset's \(what) (at byte \(at)); it is truncated, re-export or re-copy it")
    case .failed(let code):
      throw HDF5Error(
        path: file.path, object: name,
        message: "reading the dataset's \(what) at byte \(position) failed: \(systemError(code))", kind: .io)
    }
  }

  /// Reads `box` of a contiguous dataset stored at byte `offset` of the file with `pread`: per
  /// plane (all but the last two axes fixed), the span from the box's first row to its last in
  /// one read when that wastes little, else row by row.
  func readContiguous(
    _ box: Box, at offset: Int, descriptor: Int32, into output: UnsafeMutableRawBufferPointer
  ) throws {
    let size = elementType.byteCount
    let n = rank
    let strides = VolumeBuffer<UInt8>.strides(for: shape)
    let rowLength = box.shape[n - 1] * size
    let rows = n >= 2 ? box.shape[n - 2] : 1
    let rowStride = n >= 2 ? strides[n - 2] * size : 0
    let span = (rows - 1) * rowStride + rowLength
    // A system call costs about as much as copying a few KiB from the page cache: read the whole
    // span when skipping the gaps between rows would save less than 8 KiB per row.
    let wholeSpan = rows > 1 && span - rows * rowLength <= rows * 8192
    let outer = Box(lower: Array(box.lower.prefix(max(0, n - 2))), upper: Array(box.upper.prefix(max(0, n - 2))))
    let scratch = UnsafeMutableRawBufferPointer.allocate(
      byteCount: wholeSpan && span > rows * rowLength ? span : 0, alignment: 64)
    defer { scratch.deallocate() }
    var destination = output.baseAddress!
    func readFully(_ buffer: UnsafeMutableRawPointer, _ count: Int, _ position: Int) throws {
      try preadFully(descriptor, buffer, count, position, what: "data")
    }
    try outer.forEachIndex { o in
      var first = 0
      for d in 0..<max(0, n - 2) { first += o[d] * strides[d] }
      if n >= 2 { first += box.lower[n - 2] * strides[n - 2] }
      first += box.lower[n - 1]
      let start = offset + first * size
      if wholeSpan && span == rows * rowLength {
        // Whole rows: the plane's part is one contiguous run, read straight into place.
        try readFully(destination, span, start)
        destination += span
      } else if wholeSpan {
        try readFully(scratch.baseAddress!, span, start)
        for r in 0..<rows {
          destination.copyMemory(from: scratch.baseAddress! + r * rowStride, byteCount: rowLength)
          destination += rowLength
        }
      } else {
        for r in 0..<rows {
          try readFully(destination, rowLength, start + r * rowStride)
          destination += rowLength
        }
      }
    }
  }
}

/// How a ``preadAll(_:_:_:at:)`` ended.
enum PreadOutcome {
  /// All bytes were read.
  case complete
  /// The file ends at byte `at`, before the last byte asked for.
  case endOfFile(at: Int)
  /// `pread` failed with this `errno` (never `EINTR`, which is retried).
  case failed(Int32)
}

/// Reads exactly `count` bytes at byte `position` of `descriptor` into `buffer`, retrying short
/// reads and `EINTR`: the one `pread` loop behind every direct read of an HDF5 file.
func preadAll(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, at position: Int) -> PreadOutcome {
  guard count >= 0, position >= 0, position <= Int.max - count else { return .failed(EOVERFLOW) }
  var done = 0
  while done < count {
    let got = pread(descriptor, buffer + done, count - done, off_t(position + done))
    if got < 0 {
      let code = errno
      if code == EINTR { continue }
      return .failed(code)
    }
    if got == 0 { return .endOfFile(at: position + done) }
    done += got
  }
  return .complete
}

/// `errno` `code` as a sentence part: the system's message and what to check.
func systemError(_ code: Int32) -> String {
  "\(String(cString: strerror(code))) (errno \(code)); check that the file is readable and its volume mounted"
}

/// A raw pointer handed to concurrent workers that write disjoint regions through it.
struct SendablePointer: @unchecked Sendable {
  let pointer: UnsafeMutableRawPointer
  init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }
}
