import Foundation

/// The pair file of one part of a split `refine-positions` job: the phase correlations of the
/// part's share of the pairs, and what they were measured on. One JSON file per part
/// (``name(of:)``), written atomically, read by `--solve`.
///
/// Doubles are written in the shortest decimal form that reads back to the same bits (Swift's
/// `description`, which JSONEncoder uses), so a solve from pair files sees exactly the values a
/// single process would have measured.
///
/// ```json
/// {"format": "tessera refine-positions pairs", "version": 1, "fingerprint": "5f0c…",
///  "dataset": ["/data/project.xml"], "options": {"channel": 0, "maxShift": [10, 10, 10], …},
///  "part": 2, "parts": 8, "pairCount": 24,
///  "pairs": [{"index": 6, "tiles": [1, 2], "shiftVoxels": […], "shiftUm": […],
///             "correlation": 0.93, "uncertaintyVoxels": […]},
///            {"index": 7, "tiles": [1, 4], "noPeak": true}]}
/// ```
public struct PairFile: Codable, Sendable, Equatable {
  /// What `format` holds: a pair file is recognised by it, not by its name.
  public static let formatName = "tessera refine-positions pairs"
  /// The version this Tessera writes and reads; other versions are refused.
  public static let currentVersion = 1

  public var format: String = formatName
  public var version: Int = currentVersion
  /// The Tessera release that wrote the file (for people; not checked).
  public var tessera: String = Tessera.version
  /// ``fingerprint(_:options:pairs:)`` of the job: files of one job carry the same.
  public var fingerprint: String
  /// The dataset's paths, absolute: what `--solve` opens when it is given none.
  public var dataset: [String]
  /// The options the measurements depend on.
  public var options: MeasurementOptions
  /// The part (0-based) and the number of parts.
  public var part: Int
  public var parts: Int
  /// Pairs of the whole job.
  public var pairCount: Int
  /// The part's pairs, in order.
  public var pairs: [Entry]

  /// One measured pair: its index in the job's pair list, its tiles, and the measurement (nil
  /// when no peak was found, written `"noPeak": true`).
  public struct Entry: Codable, Sendable, Equatable {
    public var index: Int
    public var tiles: [Int]
    public var measurement: PairMeasurement?

    public init(index: Int, tiles: [Int], measurement: PairMeasurement?) {
      self.index = index
      self.tiles = tiles
      self.measurement = measurement
    }

    enum CodingKeys: String, CodingKey { case index, tiles, noPeak }

    public init(from decoder: any Decoder) throws {
      let c = try decoder.container(keyedBy: CodingKeys.self)
      index = try c.decode(Int.self, forKey: .index)
      tiles = try c.decode([Int].self, forKey: .tiles)
      let noPeak = try c.decodeIfPresent(Bool.self, forKey: .noPeak) ?? false
      measurement = noPeak ? nil : try PairMeasurement(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
      var c = encoder.container(keyedBy: CodingKeys.self)
      try c.encode(index, forKey: .index)
      try c.encode(tiles, forKey: .tiles)
      if let measurement { try measurement.encode(to: encoder) } else { try c.encode(true, forKey: .noPeak) }
    }
  }

  /// The registration options a measurement depends on (the solve's own, such as
  /// `minCorrelation`, are given to `--solve`).
  public struct MeasurementOptions: Codable, Sendable, Equatable {
    /// The registered channel; nil for the average of all channels.
    public var channel: Int?
    public var maxShift: [Double]
    public var minOverlap: Double
    public var downsample: Int
    public var peaks: Int
    public var uncertaintyFloor: Double

    public init(_ options: RegistrationOptions) {
      channel = options.channel
      maxShift = options.maxShift
      minOverlap = options.minOverlap
      downsample = options.downsample
      peaks = options.peaks
      uncertaintyFloor = options.uncertaintyFloor
    }

    /// `options` with these measurement options.
    public func applied(to options: RegistrationOptions) -> RegistrationOptions {
      var o = options
      o.channel = channel
      o.maxShift = maxShift
      o.minOverlap = minOverlap
      o.downsample = downsample
      o.peaks = peaks
      o.uncertaintyFloor = uncertaintyFloor
      return o
    }

    /// The options that differ from `other`'s, as "--max-shift 20,20 (this run: 10,10)".
    public func differences(from other: MeasurementOptions) -> [String] {
      func list(_ v: [Double]) -> String { v.map(Self.number).joined(separator: ",") }
      var out: [String] = []
      func check(_ name: String, _ mine: String, _ theirs: String) {
        if mine != theirs { out.append("\(name) \(mine) (this run: \(theirs))") }
      }
      check("--channel", channel.map(String.init) ?? "all", other.channel.map(String.init) ?? "all")
      check("--max-shift", list(maxShift), list(other.maxShift))
      check("--min-overlap", Self.number(minOverlap), Self.number(other.minOverlap))
      check("--downsample", "\(downsample)", "\(other.downsample)")
      check("peaks", "\(peaks)", "\(other.peaks)")
      check("uncertainty floor", Self.number(uncertaintyFloor), Self.number(other.uncertaintyFloor))
      return out
    }

    /// A number as a user would type it: 10, not 10.0.
    static func number(_ v: Double) -> String {
      v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)"
    }
  }

  /// The file name of `part`: `pairs-00002-of-00008.json` for part 2 of 8.
  public static func name(of part: Part) -> String {
    String(format: "pairs-%05d-of-%05d.json", part.index, part.count)
  }

  /// Whether a file name is one ``name(of:)`` could give (the temporary files of an atomic write
  /// start with a dot and are not).
  static func isPairFileName(_ name: String) -> Bool {
    name.hasPrefix("pairs-") && name.hasSuffix(".json")
  }

  /// Writes the file atomically to `path` (a reader sees the old file or the new one, whole).
  ///
  /// - Throws: I/O errors naming the path.
  public func write(to path: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    try AtomicFile.write(try encoder.encode(self), to: path)
  }

  /// Reads and checks the pair file at `path`.
  ///
  /// - Throws: ``DatasetError``: data for a file that is not a pair file, has another version,
  ///   or is inconsistent in itself; data or I/O for one that cannot be read.
  public static func read(_ path: String) throws -> PairFile {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
      throw DatasetError(
        path: path, "cannot read the pair file (\((error as NSError).localizedDescription))",
        kind: FailureKind.of(error))
    }
    struct Header: Decodable {
      var format: String?
      var version: Int?
    }
    guard let header = try? JSONDecoder().decode(Header.self, from: data), header.format == formatName else {
      throw DatasetError(path: path, "not a pair file of tessera refine-positions; remove it from the folder")
    }
    guard header.version == currentVersion else {
      throw DatasetError(
        path: path,
        "pair file version \(header.version.map(String.init) ?? "?"), this tessera reads version \(currentVersion); "
          + "run its part again with this tessera")
    }
    let file: PairFile
    do { file = try JSONDecoder().decode(PairFile.self, from: data) } catch let error as DecodingError {
      let c: DecodingError.Context? =
        switch error {
        case .dataCorrupted(let c), .keyNotFound(_, let c), .typeMismatch(_, let c), .valueNotFound(_, let c): c
        @unknown default: nil
        }
      let place = c.map { $0.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined() } ?? ""
      throw DatasetError(
        path: path,
        "damaged pair file (\(place.isEmpty ? "" : "at \(place): ")\(c?.debugDescription ?? "\(error)")); "
          + "run its part again")
    }
    guard file.parts >= 1, (0..<file.parts).contains(file.part), file.pairCount >= 0 else {
      throw DatasetError(
        path: path,
        "damaged pair file (part \(file.part) of \(file.parts), \(file.pairCount) pairs); run its part again")
    }
    let rank = file.options.maxShift.count
    for e in file.pairs {
      guard let m = e.measurement else { continue }
      guard m.shiftVoxels.count == rank, m.shiftUm.count == rank, m.uncertaintyVoxels.map({ $0.count == rank }) ?? true
      else {
        throw DatasetError(
          path: path, element: "pair \(e.index)",
          "damaged pair file (a shift without \(rank) values); run its part again"
        )
      }
    }
    return file
  }

  /// A fingerprint of everything that determines the pairs and their measurement: every view's
  /// identity, tile, channel, element type, shape, voxel size, `viewToWorld` and stored levels,
  /// the measurement options, and the pair list with its overlap boxes. Doubles enter by their
  /// bits, so any change shows. 64-bit FNV-1a, as 16 hex digits.
  public static func fingerprint(_ dataset: Dataset, options: RegistrationOptions, pairs: [TileOverlap]) -> String {
    var h = FNV1a()
    h.add("tessera refine-positions pairs \(currentVersion)")
    h.add(dataset.rank)
    h.add(dataset.views.count)
    for v in dataset.views {
      for n in [v.id.timepoint, v.id.setup, v.tile, v.channel, v.illumination, v.angle] { h.add(n) }
      h.add(v.elementType.rawValue)
      h.add(v.shape)
      h.add(v.voxelSize)
      for row in v.viewToWorld.homogeneousMatrix { h.add(row) }
      h.add(v.levels.count)
      for level in v.levels {
        h.add(level.factors)
        h.add(level.shape)
      }
    }
    let m = MeasurementOptions(options)
    h.add(m.channel ?? -1)
    h.add(m.maxShift)
    h.add([m.minOverlap, m.uncertaintyFloor])
    h.add([m.downsample, m.peaks])
    h.add(pairs.count)
    for p in pairs {
      h.add(p.tiles)
      h.add(p.lowerUm)
      h.add(p.upperUm)
      h.add(p.extentVoxels)
    }
    return String(h.value, radix: 16).leftPadded(to: 16)
  }
}

extension String {
  /// The string with zeros in front up to `width` characters.
  fileprivate func leftPadded(to width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}
