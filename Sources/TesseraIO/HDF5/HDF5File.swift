import CHDF5
import Foundation
import TesseraCore

/// An open HDF5 file. Closed when the last reference goes away.
///
/// All methods take the HDF5 lock (``HDF5Library``); the handle is only used under it, which is
/// what makes the `@unchecked Sendable` sound. A read-only file whose datasets Tessera reads
/// itself can give its HDF5 handle back (``releaseHandles(keeping:)``) and reopens it if HDF5 is
/// asked anything again.
public final class HDF5File: @unchecked Sendable {
  /// The path the file was opened with.
  public let path: String
  /// HDF5's handle, or -1 while released; read and changed only under the HDF5 lock.
  private var handle: hid_t

  /// HDF5's handle, reopened (read-only) if it was released; negative if reopening failed
  /// (``reopenFailure`` says why). Taken under the HDF5 lock (which is recursive, so callers
  /// already holding it may use it). The file is reopened by its path, so the datasets' chunk
  /// indexes and Tessera's descriptor describe the file as it was when first opened: input files
  /// must not be replaced while a job reads them.
  var id: hid_t {
    HDF5Library.withLock {
      if handle < 0 {
        handle = H5Fopen(path, chdf5_F_ACC_RDONLY(), hid_t(H5P_DEFAULT))
        reopenFailure = ""
        if handle < 0 {
          let reason = HDF5Library.reason  // before any other HDF5 call clears it
          reopenFailure = Self.openFailure(path, readOnly: true)?.message ?? "HDF5 refused it\(reason)"
        }
      }
      return handle
    }
  }

  /// Why the last reopen of a released handle failed, empty if it did not (under the HDF5 lock).
  private(set) var reopenFailure = ""

  /// How to open a file.
  public enum Mode: Sendable {
    /// Read only; the file must exist.
    case readOnly
    /// Read and write; the file must exist.
    case readWrite
    /// Create, replacing any existing file.
    case truncate
    /// Create; fails if the file exists.
    case create
  }

  /// Opens or creates an HDF5 file (`H5Fopen`, `H5Fcreate`).
  ///
  /// - Throws: ``HDF5Error`` naming the path, when the file is missing, not HDF5, or not writable.
  public init(path: String, mode: Mode = .readOnly) throws(HDF5Error) {
    self.path = path
    if mode == .readOnly || mode == .readWrite {
      guard FileManager.default.fileExists(atPath: path) else {
        throw HDF5Error(path: path, message: "no such file; check the path")
      }
    }
    // HDF5's reason for a failure is read in the same lock region: its next call clears it.
    let (id, reason): (hid_t, String) = HDF5Library.withLock {
      let id =
        switch mode {
        case .readOnly: H5Fopen(path, chdf5_F_ACC_RDONLY(), hid_t(H5P_DEFAULT))
        case .readWrite: H5Fopen(path, chdf5_F_ACC_RDWR(), hid_t(H5P_DEFAULT))
        case .truncate: H5Fcreate(path, chdf5_F_ACC_TRUNC(), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        case .create: H5Fcreate(path, chdf5_F_ACC_EXCL(), hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT))
        }
      return (id, id < 0 ? HDF5Library.reason : "")
    }
    guard id >= 0 else {
      switch mode {
      case .readOnly, .readWrite:
        if let failure = Self.openFailure(path, readOnly: mode == .readOnly) { throw failure }
        throw HDF5Error(path: path, message: "cannot open as HDF5 (not an HDF5 file, or damaged\(reason))")
      case .truncate, .create:
        throw HDF5Error(
          path: path, message: "cannot create the HDF5 file (check the directory exists and is writable)", kind: .io)
      }
    }
    self.handle = id
    self.readOnly = mode == .readOnly
  }

  /// Why the system cannot open `path` at all (HDF5 does not say), or nil if it can: too many open
  /// files, for this process or for the system, with what to do; or the system's reason.
  static func openFailure(_ path: String, readOnly: Bool) -> HDF5Error? {
    let fd = Glibc.open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
    let code = errno
    if fd >= 0 {
      close(fd)
      return nil
    }
    switch code {
    case EMFILE:
      // Linux's hard limit on open files is never unlimited (at most fs.nr_open).
      var limit = rlimit()
      getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
      let raise =
        limit.rlim_cur < limit.rlim_max
        ? "raise the limit with ulimit -n \(limit.rlim_max)"
        : "raise the hard limit (ulimit -Hn as root, limits.conf, or systemd's LimitNOFILE)"
      return HDF5Error(
        path: path,
        message: "cannot open: too many open files (this process may have \(limit.rlim_cur)); \(raise), "
          + "or combine the tiles into fewer files (a BigDataViewer project)", kind: .io)
    case ENFILE:
      return HDF5Error(
        path: path, message: "cannot open: the system's table of open files is full; raise fs.file-max, or retry",
        kind: .io)
    default:
      return HDF5Error(path: path, message: "cannot open: \(systemError(code))", kind: .io)
    }
  }

  /// Whether HDF5's handle is open (false after ``releaseHandles(keeping:)``, until reopened).
  var holdsHandle: Bool { HDF5Library.withLock { handle >= 0 } }

  /// Closes HDF5's handles on this read-only file and on `datasets` (all of the file's datasets
  /// that are open) when every one of them is read without HDF5 (contiguous, or chunked with its
  /// chunk index read — it is read now), keeping Tessera's own read descriptor. HDF5 holds about
  /// half a MiB per open file (its metadata cache), so an acquisition of thousands of tile files
  /// would otherwise hold gigabytes just to stay open. Returns whether the handles were closed;
  /// anything later asked of HDF5 reopens them.
  @discardableResult
  public func releaseHandles(keeping datasets: [HDF5Dataset]) -> Bool {
    guard readOnly, datasets.allSatisfy({ $0.file === self && $0.readsWithoutHDF5() }) else { return false }
    return HDF5Library.withLock {
      // Every object HDF5 has open through this handle must be one of `datasets`: another would
      // keep the file (and its cache) open inside HDF5 after the close below, and nothing would be
      // saved. (Objects opened through another HDF5File of the same path are not seen here; they
      // keep HDF5's shared file open the same way.)
      guard handle >= 0 else { return false }
      let objects = H5Fget_obj_count(
        handle, UInt32(H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL))
      guard objects == datasets.filter({ $0.holdsHandle }).count else { return false }
      for d in datasets { d.releaseHandle() }
      _ = H5Fclose(handle)
      handle = -1
      return true
    }
  }

  /// Whether the file was opened read-only (nothing in this process changes its raw data).
  let readOnly: Bool
  /// A plain POSIX descriptor for reading without HDF5 (and its global lock), opened on first
  /// use: nil until it could be opened.
  private let descriptor = Locked<Int32?>(nil)

  /// The read-only descriptor (see ``HDF5Dataset/contiguousOffset``), opened on first use; nil for
  /// files open for writing, or if it cannot be opened now (reads then go through HDF5; a later
  /// call tries again, so a moment without free descriptors does not last the whole job).
  func readDescriptor() -> Int32? {
    guard readOnly else { return nil }
    return descriptor.withLock { fd in
      if fd == nil {
        let opened = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if opened >= 0 { fd = opened }
      }
      return fd
    }
  }

  deinit {
    HDF5Library.withLock { if handle >= 0 { _ = H5Fclose(handle) } }
    if let fd = descriptor.withLock({ $0 }) { close(fd) }
  }

  /// True if a link (dataset or group) exists at `name` (every intermediate group is checked).
  public func exists(_ name: String) -> Bool {
    HDF5Library.withLock {
      var prefix = ""
      for part in name.split(separator: "/") {
        prefix += "/" + part
        if H5Lexists(id, prefix, hid_t(H5P_DEFAULT)) <= 0 { return false }
      }
      return true
    }
  }

  /// Opens the dataset at `name`.
  ///
  /// - Throws: ``HDF5Error`` when there is no dataset at that path.
  public func dataset(_ name: String) throws(HDF5Error) -> HDF5Dataset {
    guard exists(name) else {
      throw HDF5Error(path: path, object: name, message: "no such dataset in the file; list it with h5ls -r")
    }
    return try HDF5Dataset(file: self, name: name)
  }

  /// Creates a dataset (and any missing parent groups).
  ///
  /// - Parameters:
  ///   - chunkShape: chunked layout with this chunk shape, or contiguous when nil.
  ///   - deflateLevel: gzip/deflate filter level (chunked only), or no compression when nil.
  ///   - shuffle: add HDF5's byte-shuffle filter before deflate.
  /// - Throws: ``HDF5Error`` when the dataset exists or cannot be created.
  public func createDataset(
    _ name: String, elementType: ElementType, shape: [Int], chunkShape: [Int]? = nil,
    deflateLevel: Int? = nil, shuffle: Bool = false
  ) throws(HDF5Error) -> HDF5Dataset {
    if let chunkShape, chunkShape.count != shape.count || chunkShape.contains(where: { $0 <= 0 }) {
      throw HDF5Error(path: path, object: name, message: "chunk shape \(chunkShape) does not fit shape \(shape)")
    }
    try HDF5Library.withLock { () throws(HDF5Error) in
      var dims = shape.map { hsize_t($0) }
      let space = try check(H5Screate_simple(Int32(shape.count), &dims, nil), "H5Screate_simple", name)
      defer { _ = H5Sclose(space) }
      let dcpl = try check(H5Pcreate(chdf5_P_DATASET_CREATE()), "H5Pcreate", name)
      defer { _ = H5Pclose(dcpl) }
      // No modification times in the object header: the same data gives the same file bytes.
      try check(H5Pset_obj_track_times(dcpl, false), "H5Pset_obj_track_times", name)
      if let chunkShape {
        var cdims = chunkShape.map { hsize_t($0) }
        try check(H5Pset_chunk(dcpl, Int32(chunkShape.count), &cdims), "setting chunks \(chunkShape)", name)
        if shuffle { try check(H5Pset_shuffle(dcpl), "H5Pset_shuffle", name) }
        if let deflateLevel { try check(H5Pset_deflate(dcpl, UInt32(deflateLevel)), "H5Pset_deflate", name) }
      }
      let lcpl = try check(H5Pcreate(chdf5_P_LINK_CREATE()), "H5Pcreate", name)
      defer { _ = H5Pclose(lcpl) }
      try check(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group", name)
      let d = try check(
        H5Dcreate2(id, name, HDF5Types.fileType(elementType), space, lcpl, dcpl, hid_t(H5P_DEFAULT)),
        "creating the dataset (does it already exist?)", name)
      _ = H5Dclose(d)
    }
    return try dataset(name)
  }

  /// Creates a group (and missing parents); existing groups are left alone.
  public func createGroup(_ name: String) throws(HDF5Error) {
    if exists(name) { return }
    try HDF5Library.withLock { () throws(HDF5Error) in
      let lcpl = try check(H5Pcreate(chdf5_P_LINK_CREATE()), "H5Pcreate", name)
      defer { _ = H5Pclose(lcpl) }
      try check(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group", name)
      let g = try check(H5Gcreate2(id, name, lcpl, hid_t(H5P_DEFAULT), hid_t(H5P_DEFAULT)), "creating the group", name)
      _ = H5Gclose(g)
    }
  }

  /// Flushes buffered writes to disk (`H5Fflush`).
  public func flush() throws(HDF5Error) {
    let status = HDF5Library.withLock { H5Fflush(id, H5F_SCOPE_LOCAL) }
    guard status >= 0 else {
      throw HDF5Error(path: path, message: "flush failed (is the disk full?)", kind: .io)
    }
  }
}

/// Mapping between Tessera element types and HDF5 type ids (call under the lock).
enum HDF5Types {
  /// The in-memory (native) type of an element type.
  static func nativeType(_ t: ElementType) -> hid_t {
    switch t {
    case .uint8: chdf5_T_NATIVE_UINT8()
    case .int8: chdf5_T_NATIVE_INT8()
    case .uint16: chdf5_T_NATIVE_UINT16()
    case .int16: chdf5_T_NATIVE_INT16()
    case .uint32: chdf5_T_NATIVE_UINT32()
    case .int32: chdf5_T_NATIVE_INT32()
    case .float32: chdf5_T_NATIVE_FLOAT()
    case .float64: chdf5_T_NATIVE_DOUBLE()
    }
  }

  /// The little-endian on-disk type written for an element type.
  static func fileType(_ t: ElementType) -> hid_t {
    switch t {
    case .uint8: chdf5_T_STD_U8LE()
    case .int16: chdf5_T_STD_I16LE()
    case .uint16: chdf5_T_STD_U16LE()
    case .int32: chdf5_T_STD_I32LE()
    case .float32: chdf5_T_IEEE_F32LE()
    case .float64: chdf5_T_IEEE_F64LE()
    case .int8, .uint32: nativeType(t)
    }
  }

  /// The element type of an HDF5 datatype, or nil for types Tessera does not read.
  static func elementType(of type: hid_t) -> ElementType? {
    let size = H5Tget_size(type)
    switch H5Tget_class(type) {
    case H5T_INTEGER:
      let signed = H5Tget_sign(type) == H5T_SGN_2
      switch (size, signed) {
      case (1, false): return .uint8
      case (1, true): return .int8
      case (2, false): return .uint16
      case (2, true): return .int16
      case (4, false): return .uint32
      case (4, true): return .int32
      default: return nil
      }
    case H5T_FLOAT:
      switch size {
      case 4: return .float32
      case 8: return .float64
      default: return nil
      }
    default: return nil
    }
  }
}
