@_exported import TesseraCore
@_exported import TesseraFusion
@_exported import TesseraIO
@_exported import TesseraRegistration

/// Facts about this build of Tessera.
public enum Tessera {
  /// The release version, written into every output's provenance block.
  public static let version = "0.1.0"
}

/// Foundation also declares an `AffineTransform` (2-D graphics); inside Tessera the name means ours.
typealias AffineTransform = TesseraCore.AffineTransform
