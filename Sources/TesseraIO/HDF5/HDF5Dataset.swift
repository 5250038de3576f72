import CHDF5
import TesseraCore

/// One HDF5 filter in a dataset's pipeline.
public struct HDF5Filter: Hashable, Sendable {
  /// The HDF5 filter id (1 = deflate, 2 = shuffle, 32000 = LZF, …).
  public var id: Int32
  /// The filter's client values (deflate: the level; shuffle: the element size).
  public var values: [UInt32]

  public static let deflateID: Int32 = 1
  public static let shuffleID: Int32 = 2
}

/// An open HDF5 dataset: its shape, element type, chunk layout and filters, and hyperslab I/O.
///
/// Every call takes the HDF5 lock; the handle is only used under it (hence `@unchecked Sendable`).
public final class HDF5Dataset: @unchecked Sendable {
  /// The file the dataset lives in (kept open while the dataset is).
  public let file: HDF5File
  /// The dataset's path in the file.
  public let name: String
  /// Extent per axis, slowest first (as stored: z, y, x).
  public let shape: [Int]
  /// The stored element type.
  public let elementType: ElementType
  /// Chunk extent per axis, or nil for a contiguous (or compact) layout.
  public let chunkShape: [Int]?
  /// The filter pipeline, in the order filters are applied when writing.
  public let filters: [HDF5Filter]
  /// HDF5's handle, or -1 while released (``HDF5File/releaseHandles(keeping:)``); read and changed
  /// only under the HDF5 lock.
  private var handle: hid_t

  /// HDF5's handle, reopened if it was released (under the HDF5 lock, which is recursive).
  var id: hid_t {
    HDF5Library.withLock {
      if handle < 0 {
        let f = file.id
        handle = f < 0 ? -1 : H5Dopen2(f, name, hid_t(H5P_DEFAULT))
        reopenFailure =
          handle >= 0 ? "" : f < 0 ? file.reopenFailure : "HDF5 cannot open the dataset\(HDF5Library.reason)"
      }
      return handle
    }
  }

  /// Why the last reopen of a released handle failed, empty if it did not (under the HDF5 lock).
  private var reopenFailure = ""

  init(file: HDF5File, name: String) throws(HDF5Error) {
    self.file = file
    self.name = name
    struct Info {
      var id: hid_t = -1
      var shape: [Int] = []
      var type: ElementType?
      var chunks: [Int]?
      var filters: [HDF5Filter] = []
      var littleEndian = true
      var contiguousOffset: Int?
      /// Why reading the dataset's description failed, if it did.
      var failure: String?
    }
    let info: Info = HDF5Library.withLock {
      var info = Info()
      let d = H5Dopen2(file.id, name, hid_t(H5P_DEFAULT))
      guard d >= 0 else { return info }
      info.id = d
      let space = H5Dget_space(d)
      defer { _ = H5Sclose(space) }
      let rank = Int(H5Sget_simple_extent_ndims(space))
      var dims = [hsize_t](repeating: 0, count: max(rank, 0))
      guard space >= 0, rank >= 0, H5Sget_simple_extent_dims(space, &dims, nil) >= 0 else {
        info.failure = "reading its shape failed\(HDF5Library.reason)"
        return info
      }
      // A damaged dataspace can claim extents beyond Int: refused below as too large.
      info.shape = dims.map { Int(exactly: $0) ?? -1 }
      let type = H5Dget_type(d)
      guard type >= 0 else {
        info.failure = "reading its element type failed\(HDF5Library.reason)"
        return info
      }
      defer { _ = H5Tclose(type) }
      info.type = HDF5Types.elementType(of: type)
      info.littleEndian = H5Tget_size(type) == 1 || H5Tget_order(type) == H5T_ORDER_LE
      let dcpl = H5Dget_create_plist(d)
      guard dcpl >= 0 else {
        info.failure = "reading its storage layout failed\(HDF5Library.reason)"
        return info
      }
      defer { _ = H5Pclose(dcpl) }
      if H5Pget_layout(dcpl) == H5D_CHUNKED, rank > 0 {
        var c = [hsize_t](repeating: 0, count: rank)
        guard H5Pget_chunk(dcpl, Int32(rank), &c) >= 0 else {
          info.failure = "reading its chunk shape failed\(HDF5Library.reason)"
          return info
        }
        info.chunks = c.map { Int(exactly: $0) ?? -1 }
      }
      // Contiguous, allocated, in this file (no external storage): a plain C array at an offset.
      if H5Pget_layout(dcpl) == H5D_CONTIGUOUS, H5Pget_external_count(dcpl) == 0, H5Pget_nfilters(dcpl) == 0 {
        // Every count checked: a damaged header can claim sizes that overflow.
        let bytes = info.shape.reduce(Int(exactly: H5Tget_size(type)) ?? -1) { total, n in
          let (product, overflow) = total.multipliedReportingOverflow(by: n)
          return total < 0 || n < 0 || overflow ? -1 : product
        }
        if bytes >= 0, let offset = Int(exactly: H5Dget_offset(d)), offset != Int(exactly: haddr_t.max),
          Int(exactly: H5Dget_storage_size(d)) == bytes
        {
          info.contiguousOffset = offset
        }
      }
      for i in 0..<max(0, H5Pget_nfilters(dcpl)) {
        var flags: UInt32 = 0
        var count = 16
        var values = [UInt32](repeating: 0, count: 16)
        var nameBuffer = [CChar](repeating: 0, count: 64)
        var config: UInt32 = 0
        let fid = H5Pget_filter2(dcpl, UInt32(i), &flags, &count, &values, 64, &nameBuffer, &config)
        guard fid >= 0 else {
          info.failure = "reading its filters failed\(HDF5Library.reason)"
          return info
        }
        info.filters.append(HDF5Filter(id: fid, values: Array(values.prefix(count))))
      }
      return info
    }
    guard info.id >= 0 else {
      throw HDF5Error(path: file.path, object: name, message: "cannot open dataset (is it a group?)")
    }
    self.handle = info.id
    if let failure = info.failure {
      HDF5Library.withLock { _ = H5Dclose(info.id) }
      throw HDF5Error(path: file.path, object: name, message: "\(failure); the file is damaged")
    }
    guard let type = info.type else {
      HDF5Library.withLock { _ = H5Dclose(info.id) }
      throw HDF5Error(
        path: file.path, object: name,
        message: "unsupported element type; Tessera reads 8/16/32-bit integers and 32/64-bit floats")
    }
    // A damaged dataspace can claim extents whose voxel (or chunk) count overflows: refuse it here,
    // before any grid or buffer is sized from it.
    func overflows(_ extents: [Int]) -> Bool {
      var bytes = type.byteCount
      for n in extents {
        let (product, o) = bytes.multipliedReportingOverflow(by: max(1, n))
        if o || n < 0 { return true }
        bytes = product
      }
      return false
    }
    let overflow = overflows(info.shape) || overflows(info.chunks ?? [])
    guard !overflow, info.chunks?.allSatisfy({ $0 > 0 }) ?? true else {
      HDF5Library.withLock { _ = H5Dclose(info.id) }
      throw HDF5Error(
        path: file.path, object: name,
        message: "shape \(info.shape) with chunks \(info.chunks ?? []) is too large to address; the file is damaged")
    }
    self.shape = info.shape
    self.elementType = type
    self.chunkShape = info.chunks
    self.filters = info.filters
    self.storedLittleEndian = info.littleEndian
    self.contiguousOffset = info.littleEndian && file.readOnly ? info.contiguousOffset : nil
  }

  /// The file offset of the raw data when the dataset is stored contiguously, unfiltered and
  /// little-endian in a file opened read-only: ``readBlock(_:into:parallel:)`` then reads the
  /// bytes itself with `pread`, in parallel and without HDF5's global lock.
  public let contiguousOffset: Int?

  /// True if the stored bytes are little-endian (always true for 1-byte types).
  public let storedLittleEndian: Bool

  /// The chunk index (see ``HDF5ChunkIndex``), built on the first chunked read of a file opened
  /// read-only; the lock makes one thread build it while others wait.
  let chunkIndexState = Locked<ChunkIndexState>(.unknown)

  enum ChunkIndexState {
    case unknown
    case ready(HDF5ChunkIndex)
    case unavailable(String)
  }

  /// The chunk index, read from the file on first use; nil when the file is open for writing,
  /// the dataset is not chunked, or its chunk index is not a version-1 B-tree (reads then go
  /// through HDF5 chunk by chunk).
  func chunkIndex(descriptor: Int32) -> HDF5ChunkIndex? {
    guard let chunkShape, file.readOnly else { return nil }
    return chunkIndexState.withLock { state in
      if case .unknown = state {
        let grid = try! ChunkGrid(shape: shape, chunkShape: chunkShape)  // valid by construction
        do throws(ChunkIndexUnavailable) {
          // The facts hold the dataset's handle past this lock region: safe, as a dataset is only
          // released once its index is ready, and the index is only built before that.
          let facts = HDF5Library.withLock {
            Result { () throws(ChunkIndexUnavailable) in try HDF5ChunkIndex.facts(of: id, file: file.id, rank: rank) }
          }
          state = .ready(try HDF5ChunkIndex.read(facts: try facts.get(), grid: grid, descriptor: descriptor))
        } catch {
          state = .unavailable(error.description)
        }
      }
      if case .ready(let index) = state { return index }
      return nil
    }
  }

  /// Why the chunk index is not used, if it was tried and failed (for tests and diagnostics).
  var chunkIndexFailure: String? {
    chunkIndexState.withLock { if case .unavailable(let why) = $0 { return why } else { return nil } }
  }

  /// Filters that no libhdf5 build here can decode (e.g. LZF, 32000, which only h5py bundles).
  public var unavailableFilters: [Int32] {
    HDF5Library.withLock { filters.map(\.id).filter { H5Zfilter_avail(H5Z_filter_t($0)) <= 0 } }
  }

  deinit { HDF5Library.withLock { if handle >= 0 { _ = H5Dclose(handle) } } }

  /// Whether reads never need HDF5: contiguous storage read with `pread`, or chunks Tessera
  /// decodes itself located by its own chunk index (read now if it was not yet).
  func readsWithoutHDF5() -> Bool {
    // The descriptor is opened now in every case, so a file without one keeps HDF5's handles.
    guard let descriptor = file.readDescriptor() else { return false }
    if contiguousOffset != nil { return true }
    guard decodesChunksItself, unavailableFilters.isEmpty else { return false }
    return chunkIndex(descriptor: descriptor) != nil
  }

  /// Whether HDF5's handle is open (under the HDF5 lock, which is recursive).
  var holdsHandle: Bool { HDF5Library.withLock { handle >= 0 } }

  /// HDF5's handle, or an error naming why the released file could not be reopened (call under
  /// the HDF5 lock, and use the handle within the same lock region).
  func openHandle() throws(HDF5Error) -> hid_t {
    let d = id
    guard d >= 0 else {
      throw HDF5Error(
        path: file.path, object: name, message: "the released file cannot be reopened (\(reopenFailure))", kind: .io)
    }
    return d
  }

  /// Closes HDF5's handle (call under the HDF5 lock); ``id`` reopens it.
  func releaseHandle() {
    if handle >= 0 { _ = H5Dclose(handle) }
    handle = -1
  }

  /// Number of axes.
  public var rank: Int { shape.count }

  /// The whole dataset as a box.
  public var bounds: Box { Box(shape: shape) }

  /// Reads `box` (which must lie inside the dataset) in the stored element type (`H5Dread` of a
  /// hyperslab).
  ///
  /// - Throws: ``HDF5Error`` when the box is outside the dataset or the read fails.
  public func read(_ box: Box) throws(HDF5Error) -> AnyVolumeBuffer {
    try read(box, storedAs: elementType)
  }

  /// Reads `box` with HDF5 converting the stored values into `memoryType`.
  ///
  /// Used for the BigDataViewer convention of uint16 data stored as int16: read with
  /// `memoryType: .int16` and reinterpret the bits as `uint16`.
  public func read(_ box: Box, storedAs memoryType: ElementType) throws(HDF5Error) -> AnyVolumeBuffer {
    var out = AnyVolumeBuffer(elementType: memoryType, box: box)
    try out.withUnsafeMutableBytes { (bytes) throws(HDF5Error) in try read(box, memoryType: memoryType, into: bytes) }
    return out
  }

  /// Reads `box` converted to `T` by Tessera's rules (round, clamp; see ``VoxelElement``).
  public func read<T: VoxelElement>(_ box: Box, as type: T.Type) throws(HDF5Error) -> VolumeBuffer<T> {
    guard elementType == T.elementType else { return try read(box).converted(to: T.self) }
    var out = VolumeBuffer<T>(box: box)
    try fill(&out, elementType)
    return out
  }

  /// Fills `buffer` (whose box must lie inside the dataset) from the file, HDF5 converting the
  /// stored values to `memoryType`, which must have the buffer's element size.
  private func fill<T: VoxelElement>(_ buffer: inout VolumeBuffer<T>, _ memoryType: ElementType) throws(HDF5Error) {
    precondition(memoryType.byteCount == MemoryLayout<T>.stride)
    let box = buffer.box
    var failure: HDF5Error?
    buffer.storage.withUnsafeMutableBytes { bytes in
      do throws(HDF5Error) { try read(box, memoryType: memoryType, into: bytes) } catch { failure = error }
    }
    if let failure { throw failure }
  }

  /// Reads `box` (which must lie inside the dataset) into `bytes` (C order over `box`), HDF5
  /// converting the stored values to `memoryType` (`H5Dread` of a hyperslab).
  func read(_ box: Box, memoryType: ElementType, into bytes: UnsafeMutableRawBufferPointer) throws(HDF5Error) {
    precondition(bytes.count == box.volume * memoryType.byteCount)
    try checkInside(box, "read")
    if box.isEmpty { return }
    // HDF5's reason is read right after H5Dread: closing the dataspaces clears it.
    var detail: String?
    let status = try HDF5Library.withLock { () throws(HDF5Error) in
      let d = try openHandle()
      return withHyperslab(box) {
        let status = H5Dread(d, HDF5Types.nativeType(memoryType), $0, $1, hid_t(H5P_DEFAULT), bytes.baseAddress)
        if status < 0 { detail = HDF5Library.lastErrorMessage() }
        return status
      }
    }
    guard status >= 0 else {
      throw HDF5Error(
        path: file.path, object: name,
        message: "read of \(box) failed" + (detail.map { " (\($0))" } ?? "")
          + "; the file may be truncated or use a filter this HDF5 lacks (e.g. LZF)")
    }
  }

  private func checkInside(_ box: Box, _ verb: String) throws(HDF5Error) {
    guard box.rank == rank, bounds.contains(box) else {
      throw HDF5Error(
        path: file.path, object: name, message: "\(verb) box \(box) lies outside the dataset's shape \(shape)")
    }
  }

  /// Calls `body(memorySpace, fileSpace)` with `box` selected in the file (call under the lock).
  private func withHyperslab(_ box: Box, _ body: (hid_t, hid_t) -> herr_t) -> herr_t {
    let fileSpace = H5Dget_space(id)
    defer { _ = H5Sclose(fileSpace) }
    var start = box.lower.map { hsize_t($0) }
    var count = box.shape.map { hsize_t($0) }
    guard fileSpace >= 0, H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil) >= 0 else {
      return -1
    }
    let memSpace = H5Screate_simple(Int32(rank), &count, nil)
    guard memSpace >= 0 else { return -1 }
    defer { _ = H5Sclose(memSpace) }
    return body(memSpace, fileSpace)
  }

  /// Writes `buffer` at its box (which must lie inside the dataset), converting to the stored type.
  ///
  /// - Throws: ``HDF5Error`` when the box is outside the dataset or the write fails.
  public func write<T: VoxelElement>(_ buffer: VolumeBuffer<T>) throws(HDF5Error) {
    let box = buffer.box
    try checkInside(box, "write")
    if box.isEmpty { return }
    let status = buffer.storage.withUnsafeBytes { bytes in
      HDF5Library.withLock {
        withHyperslab(box) {
          H5Dwrite(id, HDF5Types.nativeType(T.elementType), $0, $1, hid_t(H5P_DEFAULT), bytes.baseAddress)
        }
      }
    }
    guard status >= 0 else {
      throw HDF5Error(path: file.path, object: name, message: "write of \(box) failed (is the disk full?)", kind: .io)
    }
  }
}
