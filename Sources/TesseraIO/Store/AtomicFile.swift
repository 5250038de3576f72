import Foundation

/// Writes files so that a reader never sees a half-written one — chunks, metadata, manifests,
/// BDV XML, reports: the bytes go to a temporary name in the same folder, then are renamed into
/// place. Failures name the system's reason and are I/O errors. The one atomic writer.
public enum AtomicFile {
  /// Writes `bytes` to `path`, creating the parent folder if needed. A failure (disk full)
  /// leaves no partial file behind.
  ///
  /// - Throws: ``ZarrError`` (I/O) naming the path and the system's reason.
  public static func write(_ bytes: [UInt8], to path: String) throws {
    let parent = (path as NSString).deletingLastPathComponent
    let directory = parent.isEmpty ? "." : parent  // a bare file name is in the current folder
    let name = (path as NSString).lastPathComponent
    let tmp = directory + "/.\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
    func attempt() -> Int32 {
      let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
      if fd < 0 { return errno }
      var written = 0
      let status: Int32 = bytes.withUnsafeBytes { b in
        while written < b.count {
          let n = Glibc.write(fd, b.baseAddress! + written, b.count - written)
          if n < 0 {
            if errno == EINTR { continue }
            return errno
          }
          written += n
        }
        return 0
      }
      let closed = close(fd)
      if status != 0 { return status }
      if closed != 0 { return errno }
      return rename(tmp, path) == 0 ? 0 : errno
    }
    var error = attempt()
    if error == ENOENT {
      try ZarrStore.makeDirectory(directory)
      error = attempt()
    }
    if error != 0 {
      unlink(tmp)
      let reason = String(cString: strerror(error))
      throw ZarrError(
        path: path,
        "cannot write (\(reason))" + (error == ENOSPC ? "; free some disk space and run again with --resume" : ""),
        kind: .io)
    }
  }

  /// Writes `data` to `path` (see ``write(_:to:)-([UInt8],_)``).
  public static func write(_ data: Data, to path: String) throws { try write([UInt8](data), to: path) }
}
