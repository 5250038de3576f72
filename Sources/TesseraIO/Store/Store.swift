import Foundation

/// Where a Zarr array's or group's values live, by key (`zarr.json`, `c/0/1/2`): whole values in,
/// whole values out. A value is stored whole or not at all, so a reader (or a resumed run) never
/// sees part of one. Stores are safe to use from many threads, each writing its own keys.
public protocol Store: Sendable {
  /// The value at `key`, or nil when there is none.
  func get(_ key: String) throws -> [UInt8]?
  /// Stores `value` at `key`, replacing any, atomically.
  func set(_ key: String, _ value: [UInt8]) throws
  /// Removes `key`; no error when it is absent.
  func erase(_ key: String) throws
  /// True if `key` holds a value.
  func contains(_ key: String) -> Bool
  /// Where `key` lives, for messages (a file path).
  func location(of key: String) -> String
}

/// A store in a filesystem folder: key `a/b` is the file `root/a/b`, written by ``AtomicFile``
/// (a temporary file beside it, then a rename) with its folders created as needed.
public struct FileStore: Store {
  /// The folder holding the keys.
  public let root: String

  public init(root: String) { self.root = root }

  public func location(of key: String) -> String { key.isEmpty ? root : root + "/" + key }

  public func get(_ key: String) throws -> [UInt8]? {
    let path = location(of: key)
    guard let data = FileManager.default.contents(atPath: path) else {
      if FileManager.default.fileExists(atPath: path) { throw ZarrError(path: path, "cannot read", kind: .io) }
      return nil
    }
    return [UInt8](data)
  }

  public func set(_ key: String, _ value: [UInt8]) throws { try AtomicFile.write(value, to: location(of: key)) }

  public func erase(_ key: String) throws {
    let path = location(of: key)
    guard unlink(path) == 0 || errno == ENOENT else {
      throw ZarrError(path: path, "cannot remove (\(String(cString: strerror(errno))))", kind: .io)
    }
  }

  public func contains(_ key: String) -> Bool { FileManager.default.fileExists(atPath: location(of: key)) }
}

/// A store in memory, for tests and for building small outputs before writing them.
public final class MemoryStore: Store, @unchecked Sendable {
  private let lock = NSLock()
  private var values: [String: [UInt8]] = [:]
  /// A name for messages.
  public let name: String

  public init(name: String = "memory") { self.name = name }

  public func location(of key: String) -> String { name + ":" + key }
  public func get(_ key: String) throws -> [UInt8]? { lock.withLock { values[key] } }
  public func set(_ key: String, _ value: [UInt8]) throws { lock.withLock { values[key] = value } }
  public func erase(_ key: String) throws { _ = lock.withLock { values.removeValue(forKey: key) } }
  public func contains(_ key: String) -> Bool { lock.withLock { values[key] != nil } }
  /// Every key held, sorted.
  public var keys: [String] { lock.withLock { values.keys.sorted() } }
}
