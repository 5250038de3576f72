import TesseraCore

/// A problem with a dataset's description or files: which file, which element, what is wrong and
/// what to do. Printed as one line.
public struct DatasetError: ClassifiedError, CustomStringConvertible, Sendable, Equatable {
  /// Bad data by default; usage for options the dataset cannot satisfy, I/O for failed writes.
  public var kind: FailureKind
  /// The file at fault (XML, manifest or HDF5).
  public var path: String
  /// The element, key or dataset at fault (may be empty).
  public var element: String
  /// What is wrong, and the fix.
  public var message: String

  public init(path: String, element: String = "", _ message: String, kind: FailureKind = .data) {
    self.path = path
    self.element = element
    self.message = message
    self.kind = kind
  }

  /// One line (control characters quoted from a damaged file are escaped).
  public var description: String {
    (element.isEmpty ? "\(path): \(message)" : "\(path): \(element): \(message)").oneLine
  }
}
