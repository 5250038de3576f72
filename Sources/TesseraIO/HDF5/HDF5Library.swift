import CHDF5
import Foundation
import TesseraCore

/// The one gate through which every HDF5 call passes.
///
/// libhdf5 is not concurrent: Debian's build is thread-safe, which only means it serializes its
/// whole C API behind one global mutex, and a non-thread-safe build must never be entered twice.
/// Tessera therefore serializes all HDF5 calls itself and keeps CPU work (decompression,
/// resampling) outside this lock. The lock is recursive so that a handle released inside a
/// locked region can close itself. HDF5's automatic error printing is per thread; it is turned off
/// on each entry.
///
/// Every call that creates, writes or reads data, or reads a dataset's shape, type, chunks,
/// layout and filters, is checked (``check(_:_:path:object:kind:)`` names the file, the object,
/// the step and HDF5's own reason). Not checked: closing handles (`H5?close`) in `defer`s and
/// `deinit`s — they release handles after work whose statuses were checked, and a write reaches
/// the file through the checked ``HDF5File/flush()``; queries whose failure reads as "absent" or
/// "not contiguous" (an attribute's existence, a name, the contiguous offset, which then sends
/// reads through HDF5 itself); and three calls whose failure only loses a diagnostic (turning off
/// HDF5's printing, its version, walking its error stack).
enum HDF5Library {
  private static let lock = NSRecursiveLock()

  /// Runs `body` holding the HDF5 lock.
  static func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    lock.lock()
    defer { lock.unlock() }
    _ = H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
    return try body()
  }

  /// The library version, e.g. "1.10.8".
  static var version: String {
    withLock {
      var major: UInt32 = 0
      var minor: UInt32 = 0
      var release: UInt32 = 0
      _ = H5get_libversion(&major, &minor, &release)
      return "\(major).\(minor).\(release)"
    }
  }

  /// `status` when it reports success (HDF5 calls return a negative value on failure); else an
  /// error naming the file, the object, `step` and the innermost message of HDF5's error stack
  /// (call under the lock, right after the call).
  @discardableResult
  static func check<S: BinaryInteger>(
    _ status: S, _ step: String, path: String, object: String = "", kind: FailureKind = .data
  ) throws(HDF5Error) -> S {
    guard status < 0 else { return status }
    throw HDF5Error(path: path, object: object, message: "\(step) failed\(reason)", kind: kind)
  }

  /// ": <HDF5's innermost message>", or "" when its error stack is empty (call under the lock).
  static var reason: String { lastErrorMessage().map { ": \($0)" } ?? "" }

  /// The innermost message on the current thread's HDF5 error stack, if any (call under the lock).
  static func lastErrorMessage() -> String? {
    final class Box: @unchecked Sendable { var message: String? }  // only touched in this call
    let box = Box()
    let stack = H5Eget_current_stack()
    defer { _ = H5Eclose_stack(stack) }
    _ = H5Ewalk2(
      stack, H5E_WALK_UPWARD,
      { _, err, context in
        guard let err, let context, let desc = err.pointee.desc else { return 0 }
        let box = Unmanaged<Box>.fromOpaque(context).takeUnretainedValue()
        if box.message == nil { box.message = String(cString: desc) }
        return 0
      }, Unmanaged.passUnretained(box).toOpaque())
    return box.message
  }
}

/// An HDF5 failure: which file, which object, what went wrong and, where known, what to do.
public struct HDF5Error: ClassifiedError, CustomStringConvertible, Sendable {
  /// The file involved.
  public var path: String
  /// The dataset, group or attribute involved (empty for the file itself).
  public var object: String
  /// What went wrong, and what to do about it.
  public var message: String
  /// Bad data by default; I/O for failed reads and writes.
  public var kind: FailureKind

  public init(path: String, object: String = "", message: String, kind: FailureKind = .data) {
    self.path = path
    self.object = object
    self.message = message
    self.kind = kind
  }

  public var description: String {
    (object.isEmpty ? "\(path): \(message)" : "\(path): \(object): \(message)").oneLine
  }
}

extension String {
  /// A string from a C buffer, up to its first NUL.
  init(nulTerminated buffer: [CChar]) {
    self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
