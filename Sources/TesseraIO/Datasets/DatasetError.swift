import TesseraCore

/// A problem with a dataset's description or files: which file, which element, what is wrong and
/// what to do. Printed as one line.
public struct DatasetError: ClassifiedError, CustomStringConvertible, Sendable, Equatable {
  public var kind: FailureKind { .data }
  /// The file at fault (XML, manifest or HDF5).
  public var path: String
  /// The element, key or dataset at fault (may be empty).
  public var element: String
  /// What is wrong, and the fix.
  public var message: String

  public init(path: String, element: String = "", _ message: String) {
    self.path = path
    self.element = element
    self.message = message
  }

  public var description: String { element.isEmpty ? "\(path): \(message)" : "\(path): \(element): \(message)" }
}
