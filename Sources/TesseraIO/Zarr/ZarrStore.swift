import Foundation

/// Filesystem operations of the writers: folders, write probes, free space, JSON files (written
/// whole by ``AtomicFile``).
public enum ZarrStore {
  /// Creates a directory and its parents (`mkdir -p`); a failure names the system's reason
  /// ("Not a directory", "Permission denied", "No space left on device").
  static func makeDirectory(_ path: String) throws {
    func isDirectory(_ p: String) -> Bool {
      var status = stat()
      return stat(p, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }
    // Bottom-up: one mkdir when the parent exists (the common case, however deep the path); an
    // error on an existing directory (some network filesystems say EACCES) is no error.
    func make(_ p: String) throws {
      if mkdir(p, 0o777) == 0 || isDirectory(p) { return }
      var code = errno
      let parent = (p as NSString).deletingLastPathComponent
      if code == ENOENT, !parent.isEmpty, parent != p {
        try make(parent)
        if mkdir(p, 0o777) == 0 || isDirectory(p) { return }
        code = errno
      }
      let reason = code == EEXIST ? "\(p) exists and is not a directory" : String(cString: strerror(code))
      throw ZarrError(path: path, "cannot create directory (\(reason))", kind: .io)
    }
    try make(path)
  }

  /// Checks, before any work, that a file can be written at `path` later: its nearest existing
  /// ancestor is a folder in which a file can be created (a probe file, removed at once; this
  /// also catches read-only filesystems, which permission bits do not show to root). Nothing is
  /// left behind.
  ///
  /// - Throws: ``ZarrError`` (I/O) naming the path and the system's reason.
  public static func checkWritable(fileAt path: String) throws {
    var status = stat()
    if stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR {
      throw ZarrError(path: path, "cannot write here (it is a directory)", kind: .io)
    }
    let folder = nearestExisting(folderOf: path)
    guard stat(folder, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
      throw ZarrError(path: path, "cannot write here (\(folder) is not a directory)", kind: .io)
    }
    let probe = folder + "/.tessera-probe-\(UUID().uuidString)"
    let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
      throw ZarrError(path: path, "cannot write in \(folder) (\(String(cString: strerror(errno))))", kind: .io)
    }
    close(fd)
    unlink(probe)
  }

  /// Bytes available to an unprivileged writer on the filesystem that `path` (which need not
  /// exist yet) would be created on — that of its nearest existing ancestor — and that ancestor;
  /// nil if none can be examined.
  public static func freeBytes(near path: String) -> (bytes: Int, at: String)? {
    let folder = nearestExisting(folderOf: path + "/.")
    var info = statvfs()
    guard statvfs(folder, &info) == 0 else { return nil }
    let (bytes, overflow) = Int(clamping: info.f_bavail).multipliedReportingOverflow(by: Int(info.f_frsize))
    return (overflow ? Int.max : bytes, folder)
  }

  /// The nearest existing ancestor of the file `path` would be ("." for a relative path with
  /// none; it may be a file where a folder should be, which the caller reports).
  static func nearestExisting(folderOf path: String) -> String {
    var folder = (path as NSString).deletingLastPathComponent
    var status = stat()
    while !folder.isEmpty, folder != "/", stat(folder, &status) != 0 {
      folder = (folder as NSString).deletingLastPathComponent
    }
    return folder.isEmpty ? "." : folder
  }

  /// A JSON object as Tessera writes it: keys sorted, pretty-printed, a final newline.
  static func jsonBytes(_ object: [String: Any]) throws -> [UInt8] {
    let data = try JSONSerialization.data(
      withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    return [UInt8](data) + [0x0A]
  }

  /// The JSON object in `bytes`, read from `path`.
  static func jsonObject(_ bytes: [UInt8], path: String) throws -> [String: Any] {
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)), let dict = object as? [String: Any] else {
      throw ZarrError(path: path, "not a JSON object")
    }
    return dict
  }

  /// Writes a JSON object atomically, keys sorted, pretty-printed.
  public static func writeJSON(_ object: [String: Any], to path: String) throws {
    try AtomicFile.write(jsonBytes(object), to: path)
  }

  /// Reads a JSON object.
  public static func readJSON(_ path: String) throws -> [String: Any] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ZarrError(path: path, "cannot read", kind: .io)
    }
    return try jsonObject([UInt8](data), path: path)
  }
}

/// A Zarr group's metadata: `.zgroup` (+ `.zattrs`) in v2, `zarr.json` in v3.
public enum ZarrGroup {
  /// Writes group metadata at `path` (creating the directory), replacing any.
  public static func write(at path: String, format: ZarrFormat, attributes: [String: Any] = [:]) throws {
    try ZarrStore.makeDirectory(path)
    switch format {
    case .v2:
      // Attributes first: a reader that sees `.zgroup` sees the group's attributes too.
      if !attributes.isEmpty { try ZarrStore.writeJSON(attributes, to: path + "/.zattrs") }
      try ZarrStore.writeJSON(["zarr_format": 2], to: path + "/.zgroup")
    case .v3:
      try ZarrStore.writeJSON(
        ["zarr_format": 3, "node_type": "group", "attributes": attributes], to: path + "/zarr.json")
    }
  }

  /// A group's attributes (empty when none).
  public static func attributes(at path: String) throws -> [String: Any] {
    if FileManager.default.fileExists(atPath: path + "/zarr.json") {
      return (try ZarrStore.readJSON(path + "/zarr.json")["attributes"] as? [String: Any]) ?? [:]
    }
    if FileManager.default.fileExists(atPath: path + "/.zattrs") { return try ZarrStore.readJSON(path + "/.zattrs") }
    return [:]
  }
}
