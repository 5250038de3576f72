@_exported import TesseraCore
@_exported import TesseraFusion
@_exported import TesseraIO
@_exported import TesseraRegistration

/// Facts about this build of Tessera.
public enum Tessera {
  /// The release version, written into every output's provenance block.
  public static let version = "0.1.0"
}
