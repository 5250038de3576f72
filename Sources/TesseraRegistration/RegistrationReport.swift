/// One registered pair of tiles.
public struct RegistrationLink: Sendable, Codable, Hashable {
  public var tiles: [Int]
  /// Overlap extent per axis at the stated positions, voxels.
  public var overlapVoxels: [Double]
  /// Measured correction of the second tile relative to the first, voxels and µm (nil if none).
  public var shiftVoxels: [Double]?
  public var shiftUm: [Double]?
  public var correlation: Double?
  public var accepted: Bool
  /// Why the link was kept or rejected.
  public var reason: Reason?
  /// Residual of the link after the global solve, voxels.
  public var residualVoxels: Double?
  /// Per-axis standard deviation of the measured shift, voxels (from the pair's own fit; nil if
  /// none: the solve then assumes ``RegistrationOptions/defaultUncertainty``).
  public var uncertaintyVoxels: [Double]? = nil
  /// The residual in units of its standard deviation, √Σₖ(rₖ/σₖ)²; for links the rejection
  /// examined, the leave-one-out (studentized) value.
  public var normalizedResidual: Double? = nil
}

extension RegistrationLink {
  /// A link from a pairwise measurement: `shiftUm` is the second tile's correction relative to
  /// the first (nil when none was found), `uncertaintyVoxels` its per-axis standard deviation.
  public init(
    tiles: [Int], overlapVoxels: [Double], shiftVoxels: [Double]?, shiftUm: [Double]?, correlation: Double?,
    accepted: Bool, uncertaintyVoxels: [Double]?
  ) {
    self.init(
      tiles: tiles, overlapVoxels: overlapVoxels, shiftVoxels: shiftVoxels, shiftUm: shiftUm, correlation: correlation,
      accepted: accepted, reason: nil, uncertaintyVoxels: uncertaintyVoxels)
  }
}

/// One tile's outcome.
public struct TileCorrection: Sendable, Codable, Hashable {
  public var tile: Int
  /// Correction added to the stated position, µm (z, y, x).
  public var correctionUm: [Double]
  /// Accepted links touching the tile.
  public var links: Int
  /// Largest residual among them, voxels.
  public var maxResidualVoxels: Double
  /// How the correction was found.
  public var source: Source

  /// How a tile's correction was found; printed and written to reports as its raw value.
  public enum Source: String, Sendable, Codable, Hashable, CustomStringConvertible {
    /// By the global solve: the tile has accepted links.
    case solved
    /// The mean correction of overlapping neighbours that were solved (the tile has no accepted link).
    case fromNeighbours = "from neighbours"
    /// None: no accepted link and no solved neighbour.
    case unchanged

    public var description: String { rawValue }
  }
}

/// The outcome of a registration.
public struct RegistrationReport: Sendable, Codable {
  public var links: [RegistrationLink]
  public var tiles: [TileCorrection]
  public var accepted: Int
  public var rejected: Int
  public var maxResidualVoxels: Double
  public var rmsResidualVoxels: Double
  /// Solved tiles whose position rests on weak links only (every accepted link touching them
  /// has a standard deviation above ``RegistrationOptions/weakUncertainty`` on some axis).
  public var weaklyLinkedTiles: [Int] = []
}
