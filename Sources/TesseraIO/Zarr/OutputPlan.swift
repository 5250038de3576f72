import Foundation
import TesseraCore

/// What an output is planned to hold, stored in it (`.tessera/plan.json`) so any process can
/// finalize or verify it without the inputs: the image's layout, the fingerprint of the plan (the
/// views, their transforms and every fusion parameter), the provenance block of the final
/// metadata, and which level-0 blocks the plan writes (the others stay fill and have no file).
/// The first process to create the output writes the file; the others check their plan against it.
public struct OutputPlan: Sendable {
  public var spec: OMEZarrImageSpec
  /// The plan's fingerprint: outputs, journals and resumed runs must agree on it.
  public var fingerprint: String
  /// The `tessera` block of the final attributes (version, command, parameters, views), as
  /// JSON bytes (kept as bytes: `[String: Any]` is not `Sendable`).
  public var provenanceJSON: [UInt8]
  /// Level-0 blocks (linear indices in the level's block grid, leading axes included) the plan
  /// writes, as sorted disjoint ranges; nil means every block.
  public var blocks: [Range<Int>]?

  /// A plan for `spec` writing level-0 `blocks` (nil: all), whose fingerprint covers `identity`
  /// (what determines the output's bytes: views as files, shapes and transforms, parameters,
  /// version; default the provenance without its per-process "command" and "dataset" spelling),
  /// the layout and the blocks.
  public init(
    spec: OMEZarrImageSpec, provenance: [String: Any], identity: [String: Any]? = nil, blocks: [Int]?
  ) throws {
    self.spec = spec
    provenanceJSON = try ZarrStore.jsonBytes(provenance)
    self.blocks = blocks.map(Self.ranges)
    var content = identity ?? provenance
    if identity == nil {
      content["command"] = nil
      content["dataset"] = nil
    }
    content["blocks"] = self.blocks.map { $0.map { [$0.lowerBound, $0.upperBound] } } ?? []
    fingerprint = Self.hash(try ZarrStore.jsonBytes(content) + Array(spec.fingerprint.utf8))
  }

  public var provenance: [String: Any] {
    (try? JSONValue.object(provenanceJSON, path: "plan")) ?? [:]
  }

  /// True if level-0 block `linear` is written by the plan.
  public func plans(_ linear: Int) -> Bool {
    guard let blocks else { return true }
    var lo = 0
    var hi = blocks.count
    while lo < hi {
      let mid = (lo + hi) / 2
      if blocks[mid].upperBound <= linear { lo = mid + 1 } else { hi = mid }
    }
    return lo < blocks.count && blocks[lo].contains(linear)
  }

  /// Every planned level-0 block of a grid of `count` blocks, in order.
  public func plannedBlocks(count: Int) -> [Int] {
    guard let blocks else { return Array(0..<count) }
    return blocks.flatMap { Array($0) }
  }

  /// Sorted ranges covering `indices`.
  static func ranges(_ indices: [Int]) -> [Range<Int>] {
    var out: [Range<Int>] = []
    for i in indices.sorted() {
      if let last = out.last, last.upperBound == i {
        out[out.count - 1] = last.lowerBound..<(i + 1)
      } else if out.last?.contains(i) != true {
        out.append(i..<(i + 1))
      }
    }
    return out
  }

  /// 128 bits of two FNV-1a 64 hashes (different offsets), hex: detects a changed plan (not a
  /// cryptographic digest).
  static func hash(_ bytes: [UInt8]) -> String {
    var a = FNV1a()
    var b = FNV1a(offset: 0x6c62_272e_07bb_0142)
    for byte in bytes {
      a.add(byte: byte)
      b.add(byte: byte ^ 0x5a)
    }
    return String(format: "%016llx%016llx", a.value, b.value)
  }

  // MARK: The file

  static func path(in output: String) -> String { output + "/.tessera/plan.json" }

  /// The plan file's bytes (deterministic: every process writes the same).
  func fileBytes() throws -> [UInt8] {
    var object: [String: Any] = [
      "tessera_plan": 1, "plan": fingerprint, "layout": spec.fingerprint,
      "spec": spec.planJSON, "provenance": provenance,
    ]
    if let blocks { object["blocks"] = blocks.map { [$0.lowerBound, $0.upperBound] } }
    return try ZarrStore.jsonBytes(object)
  }

  /// Writes the plan file into `output` unless one is there: the first process to get there
  /// wins (`link(2)` of a private file, which only one process can do), and every process then
  /// reads the file back and checks it holds its plan.
  ///
  /// - Throws: ``ZarrError`` (usage) when the output was planned differently, (I/O) when the
  ///   file cannot be written.
  @discardableResult
  func writeOrCheck(into output: String) throws -> OutputPlan {
    let file = Self.path(in: output)
    if !FileManager.default.fileExists(atPath: file) {
      let mine = file + ".\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
      try AtomicFile.write(try fileBytes(), to: mine)
      defer { unlink(mine) }
      if link(mine, file) != 0 && errno != EEXIST {
        throw ZarrError(path: file, "cannot write (\(String(cString: strerror(errno))))", kind: .io)
      }
    }
    let stored = try Self.read(from: output)
    guard stored.fingerprint == fingerprint else {
      throw ZarrError(
        path: output,
        "was planned from other inputs or parameters (positions, views, blending, version); resume needs the "
          + "same inputs and command (or use --overwrite)", kind: .usage)
    }
    return stored
  }

  /// Reads the plan of `output`.
  ///
  /// - Throws: ``ZarrError`` when it is not a Tessera output (no plan file) or the file is damaged.
  public static func read(from output: String) throws -> OutputPlan {
    let file = path(in: output)
    guard FileManager.default.fileExists(atPath: file) else {
      throw ZarrError(
        path: output,
        "has no .tessera/plan.json: not an output of `tessera fuse` (or made by a version before 0.9); "
          + "fuse it again with --overwrite", kind: .usage)
    }
    guard let data = FileManager.default.contents(atPath: file) else {
      throw ZarrError(path: file, "cannot read", kind: .io)
    }
    let json = try JSONValue.object([UInt8](data), path: file)
    guard json["tessera_plan"] as? Int == 1, let fingerprint = json["plan"] as? String,
      let specJSON = json["spec"] as? [String: Any], let spec = OMEZarrImageSpec(planJSON: specJSON),
      spec.fingerprint == json["layout"] as? String
    else {
      throw ZarrError(path: file, "is damaged or of an unknown version; fuse the output again with --overwrite")
    }
    let provenance = json["provenance"] as? [String: Any] ?? [:]
    var plan = try OutputPlan(spec: spec, provenance: provenance, blocks: nil)
    plan.fingerprint = fingerprint
    if let ranges = json["blocks"] as? [[Int]] {
      // Sorted, disjoint and inside the level-0 grid.
      let count = spec.blockGrids[0].chunkCount
      var end = 0
      for r in ranges {
        guard r.count == 2, r[0] >= end, r[0] < r[1], r[1] <= count else {
          throw ZarrError(path: file, "has a damaged block list; fuse the output again with --overwrite")
        }
        end = r[1]
      }
      plan.blocks = ranges.map { $0[0]..<$0[1] }
    } else if json["blocks"] != nil {
      throw ZarrError(path: file, "has a damaged block list; fuse the output again with --overwrite")
    }
    return plan
  }
}

extension OMEZarrImageSpec {
  /// The spec as plain JSON (the plan file).
  var planJSON: [String: Any] {
    [
      "format": format.rawValue, "shape": shape, "voxel_size": voxelSize, "origin": origin,
      "channels": channels.map { ["label": $0.label, "color": $0.color] }, "timepoints": timepoints,
      "dtype": dataType.rawValue, "fill": fillValue, "chunks": chunkShape, "shards": shardShape ?? [],
      "compressor": compressor.planJSON, "levels": levels, "name": name,
    ]
  }

  /// The spec of a plan file, nil if any field is missing or malformed.
  init?(planJSON j: [String: Any]) {
    func doubles(_ key: String) -> [Double]? { (j[key] as? [NSNumber])?.map(\.doubleValue) }
    guard let f = j["format"] as? Int, let format = ZarrFormat(rawValue: f), let shape = j["shape"] as? [Int],
      let voxel = doubles("voxel_size"), let origin = doubles("origin"),
      let channels = j["channels"] as? [[String: String]], let timepoints = j["timepoints"] as? Int,
      let type = (j["dtype"] as? String).flatMap(ElementType.init(rawValue:)), let fill = j["fill"] as? NSNumber,
      let chunks = j["chunks"] as? [Int], let shards = j["shards"] as? [Int],
      let compressor = (j["compressor"] as? [String: Any]).flatMap(ZarrCompressor.init(planJSON:)),
      let levels = j["levels"] as? Int, let name = j["name"] as? String
    else { return nil }
    self.init(
      format: format, shape: shape, voxelSize: voxel, origin: origin,
      channels: channels.map { Channel(label: $0["label"] ?? "", color: $0["color"] ?? "FFFFFF") },
      timepoints: timepoints, dataType: type, fillValue: fill.doubleValue, chunkShape: chunks,
      shardShape: shards.isEmpty ? nil : shards, compressor: compressor, levels: levels, name: name)
  }
}

extension ZarrCompressor {
  /// The compressor as plain JSON (the plan file).
  var planJSON: [String: Any] {
    switch self {
    case .none: ["id": "none"]
    case .zstd(let level): ["id": "zstd", "level": level]
    case .blosc(let cname, let level, let shuffle):
      ["id": "blosc", "cname": cname, "level": level, "shuffle": shuffle.rawValue]
    case .gzip(let level): ["id": "gzip", "level": level]
    case .zlib(let level): ["id": "zlib", "level": level]
    }
  }

  init?(planJSON j: [String: Any]) {
    let level = j["level"] as? Int ?? 0
    switch j["id"] as? String {
    case "none": self = .none
    case "zstd": self = .zstd(level: level)
    case "gzip": self = .gzip(level: level)
    case "zlib": self = .zlib(level: level)
    case "blosc":
      guard let cname = j["cname"] as? String,
        let shuffle = (j["shuffle"] as? Int).flatMap({ BloscCodec.Shuffle(rawValue: Int32($0)) })
      else { return nil }
      self = .blosc(cname: cname, level: level, shuffle: shuffle)
    default: return nil
    }
  }
}
