import Foundation

extension RegistrationLink {
  /// Why a link was kept or rejected. Printed, and written to reports, as one sentence
  /// (``description``) with its numbers rounded to the digits shown; a report's sentence reads
  /// back as the case it states.
  public enum Reason: Sendable, Hashable, CustomStringConvertible, Codable {
    /// The pair's phase correlation found no peak with enough overlap within the maximum shift.
    case noPeak
    /// The verified correlation is below `--min-correlation` (``RegistrationOptions/minCorrelation``).
    case lowCorrelation(Double, minimum: Double)
    /// Not solved for: the voxel size the solve was given is not `rank` positive values.
    case unusableVoxelSize([Double], rank: Int)
    /// Not solved for: the link does not join two different tiles.
    case notTwoTiles
    /// Not solved for: the link's tile is not among the tiles solved for.
    case unknownTile(Int)
    /// Not solved for: the link has no finite shift of `rank` values.
    case noFiniteShift(rank: Int)
    /// Rejected by the global solve: it differs from the path through the other links by
    /// `discrepancy` voxels, `normalized` standard deviations (the leave-one-out values).
    case inconsistent(discrepancy: Double, normalized: Double)
    /// Kept by the global solve with residual `residual` voxels after the rejection examined it:
    /// it differs from the path through the other links by `discrepancy` voxels, `normalized`
    /// standard deviations.
    case consistent(residual: Double, discrepancy: Double, normalized: Double)
    /// Kept by the global solve without a leave-one-out check (a bridge, or the rejection
    /// stopped): residual `residual` voxels, `normalized` standard deviations.
    case kept(residual: Double, normalized: Double)

    private static let path = "differs from the path through the other links by "

    public var description: String {
      switch self {
      case .noPeak: "no peak with enough overlap within the maximum shift"
      case .lowCorrelation(let c, let minimum):
        String(format: "correlation %.3f below --min-correlation %.2f", c, minimum)
      case .unusableVoxelSize(let voxel, let rank): "dropped: voxel size \(voxel) is not \(rank) positive values"
      case .notTwoTiles: "dropped: a link joins two different tiles"
      case .unknownTile(let tile): "dropped: tile \(tile) is not among the tiles solved for"
      case .noFiniteShift(let rank): "dropped: no finite shift of \(rank) values"
      case .inconsistent(let e, let z): "dropped: \(Self.path)\(Self.fixed(e, 2)) voxels (\(Self.fixed(z, 1)) σ)"
      case .consistent(let r, let e, let z):
        "kept: residual \(Self.fixed(r, 3)) voxels, \(Self.path)\(Self.fixed(e, 3)) voxels (\(Self.fixed(z, 1)) σ)"
      case .kept(let r, let z): "kept: residual \(Self.fixed(r, 3)) voxels (\(Self.fixed(z, 1)) σ)"
      }
    }

    /// The reason a sentence of ``description``'s forms states, or nil.
    public init?(_ text: String) {
      /// The pieces of `text` between `literals` (which it must start with, and end with unless
      /// the last is empty), or nil.
      func fields(_ literals: String...) -> [Substring]? {
        guard text.hasPrefix(literals[0]) else { return nil }
        var rest = text.dropFirst(literals[0].count)
        var out: [Substring] = []
        for literal in literals.dropFirst() {
          guard let r = literal.isEmpty ? rest.endIndex..<rest.endIndex : rest.range(of: literal) else { return nil }
          out.append(rest[..<r.lowerBound])
          rest = rest[r.upperBound...]
        }
        return rest.isEmpty ? out : nil
      }
      func numbers(_ f: [Substring]?) -> [Double]? {
        guard let values = f?.compactMap({ Double($0) }), values.count == f?.count else { return nil }
        return values
      }
      if text == Self.noPeak.description {
        self = .noPeak
      } else if text == Self.notTwoTiles.description {
        self = .notTwoTiles
      } else if let x = numbers(fields("correlation ", " below --min-correlation ", "")) {
        self = .lowCorrelation(x[0], minimum: x[1])
      } else if let f = fields("dropped: voxel size [", "] is not ", " positive values"), let rank = Int(f[1]),
        let voxel = f[0].isEmpty ? [] : numbers(f[0].split(separator: ", ", omittingEmptySubsequences: false))
      {
        self = .unusableVoxelSize(voxel, rank: rank)
      } else if let f = fields("dropped: tile ", " is not among the tiles solved for"), let tile = Int(f[0]) {
        self = .unknownTile(tile)
      } else if let f = fields("dropped: no finite shift of ", " values"), let rank = Int(f[0]) {
        self = .noFiniteShift(rank: rank)
      } else if let x = numbers(fields("dropped: " + Self.path, " voxels (", " σ)")) {
        self = .inconsistent(discrepancy: x[0], normalized: x[1])
      } else if let x = numbers(fields("kept: residual ", " voxels, " + Self.path, " voxels (", " σ)")) {
        self = .consistent(residual: x[0], discrepancy: x[1], normalized: x[2])
      } else if let x = numbers(fields("kept: residual ", " voxels (", " σ)")) {
        self = .kept(residual: x[0], normalized: x[1])
      } else {
        return nil
      }
    }

    public init(from decoder: any Decoder) throws {
      let container = try decoder.singleValueContainer()
      let text = try container.decode(String.self)
      guard let reason = Self(text) else {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a link's reason: \(text)")
      }
      self = reason
    }

    public func encode(to encoder: any Encoder) throws {
      var container = encoder.singleValueContainer()
      try container.encode(description)
    }

    /// `x` with `digits` (≤ 6) decimals, as `String(format: "%.*f")` prints it, for the many
    /// reasons of a large solve (Foundation's formatter costs microseconds each); ties round away
    /// from zero.
    static func fixed(_ x: Double, _ digits: Int) -> String {
      let scale = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000][digits]
      let scaled = (abs(x) * Double(scale)).rounded()
      guard x.isFinite, scaled < 1e15 else { return String(format: "%.\(digits)f", x) }
      let n = Int(scaled)
      let fraction = String(n % scale)
      let sign = x < 0 ? "-" : ""
      guard digits > 0 else { return sign + String(n) }
      return sign + String(n / scale) + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
  }
}
