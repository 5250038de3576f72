import Foundation
import Testing

@testable import Tessera
@testable import TesseraCore
@testable import TesseraIO

/// Seeded mutation fuzzing of every parser of untrusted input: BigDataViewer XML, the JSON tile
/// manifest, Zarr v3 and v2 array metadata, the Zarr v3 shard index, HDF5 attribute tiles, and the
/// files processes of a multi-process job leave for each other (an output's plan and journals,
/// registration's pair files).
/// Each trial damages a valid file in 1–4 places (a flipped bit, a random or structural byte, a
/// deleted, duplicated or truncated run) and opens and reads it: the parser returns a result or
/// throws a one-line error, and never traps or hangs (a trap ends the test run). The trials per
/// target come from `TESSERA_FUZZ_TRIALS` (default 150; CI's fuzz step runs more), every seed
/// printed on failure; a crash found becomes a regression test below.
@Suite struct ParserFuzzTests {
  static let trials = max(50, Int(ProcessInfo.processInfo.environment["TESSERA_FUZZ_TRIALS"] ?? "") ?? 150)

  /// `bytes` damaged in 1–4 places, reproducibly for `seed`.
  static func mutate(_ original: [UInt8], seed: UInt64, within range: Range<Int>? = nil) -> [UInt8] {
    var rng = SplitMix64(seed: seed)
    var bytes = original
    let structural = Array("<>/=\"'{}[],:-.0123456789eE \n\u{0}".utf8)
    for _ in 0...Int(rng.next() % 4) where !bytes.isEmpty {
      let span = range.map { $0.clamped(to: 0..<bytes.count) } ?? 0..<bytes.count
      guard !span.isEmpty else { break }
      let at = span.lowerBound + Int(rng.next() % UInt64(span.count))
      switch rng.next() % 6 {
      case 0: bytes[at] ^= UInt8(1) << UInt8(rng.next() % 8)
      case 1: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
      case 2: bytes[at] = structural[Int(rng.next() % UInt64(structural.count))]
      case 3: bytes.removeSubrange(at..<min(bytes.count, at + 1 + Int(rng.next() % 16)))
      case 4:
        let run = Array(bytes[at..<min(bytes.count, at + 1 + Int(rng.next() % 32))])
        bytes.insert(contentsOf: run, at: at)
      default:
        if range == nil { bytes.removeSubrange(at...) } else { bytes[at] = 0xFF }
      }
    }
    return bytes
  }

  /// Runs `body` on `trials` mutations of `file`'s bytes (written back to `file`); counts results
  /// and errors, and checks every error is one line.
  static func fuzz(
    _ file: String, trials: Int = trials, salt: UInt64, within range: Range<Int>? = nil, _ body: () throws -> Void
  ) throws -> (ok: Int, errors: Int) {
    let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    var (ok, errors) = (0, 0)
    for trial in 0..<trials {
      let seed = salt &* 1_000_003 &+ UInt64(trial)
      try Data(mutate(original, seed: seed, within: range)).write(to: URL(fileURLWithPath: file))
      do {
        try body()
        ok += 1
      } catch {
        errors += 1
        let text = "\(error)"
        #expect(text.oneLine == text && !text.isEmpty, "seed \(seed): error is not one line: \(text)")
      }
    }
    try Data(original).write(to: URL(fileURLWithPath: file))
    return (ok, errors)
  }

  /// What `tessera info` does with a dataset: open it and look at every view.
  static func inspect(_ paths: [String]) throws {
    let (dataset, _) = try DatasetLoader.open(paths)
    for v in dataset.views {
      _ = v.bounds
      _ = v.worldBounds
      _ = v.reader.preferredBlockShape(level: 0)
    }
    _ = dataset.tileOverlaps(channel: nil, minimumVoxels: 1)
  }

  @Test func bigDataViewerXML() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(tileShape: [4, 16, 16], grid: [1, 2, 2], channels: 2, voxelSize: [2, 1, 1], seed: 2)
    try a.writeBDV(xmlPath: dir.path("p.xml"), subsampling: [[1, 1, 1], [1, 2, 2]])
    let (ok, errors) = try Self.fuzz(dir.path("p.xml"), salt: 1) { try Self.inspect([dir.path("p.xml")]) }
    #expect(ok > 0 && errors > 0, "\(ok) opened, \(errors) refused")
  }

  @Test func jsonManifest() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(tileShape: [12, 16], grid: [2, 2], channels: 1, voxelSize: [1, 1], seed: 3)
    let written = try a.writeHDF5Tiles(to: dir.path("tiles"), deflateLevel: nil)
    let (dataset, _) = try DatasetLoader.open(written.tiles)
    let manifest = dir.path("tiles/manifest.json")
    try DatasetLoader.save(dataset, to: manifest, transformName: "fuzz")
    let (ok, errors) = try Self.fuzz(manifest, salt: 2) { try Self.inspect([manifest]) }
    #expect(ok > 0 && errors > 0, "\(ok) opened, \(errors) refused")
  }

  /// A small array, sharded in v3 (shards 6×20×24 of inner chunks 3×10×12), chunked in v2.
  static func array(_ format: ZarrFormat, at path: String) throws -> (ZarrArray, VolumeBuffer<UInt16>) {
    let shape = [6, 20, 24]
    var data = VolumeBuffer<UInt16>(shape: shape)
    for i in data.storage.indices { data.storage[i] = UInt16(i % 1000) }
    let array = try ZarrArray.create(
      at: path,
      metadata: ZarrArrayMetadata(
        format: format, shape: shape, chunkShape: format == .v3 ? shape : [3, 10, 12],
        innerChunkShape: format == .v3 ? [3, 10, 12] : nil, dataType: .uint16))
    for block in array.grid.allChunks {
      _ = try array.writeBlock(block, AnyVolumeBuffer(data.extracting(array.grid.box(ofChunk: block))))
    }
    return (array, data)
  }

  /// Array metadata (zarr.json with its codec chain and sharding, .zarray with its compressor).
  @Test(arguments: [ZarrFormat.v3, .v2])
  func zarrMetadata(format: ZarrFormat) throws {
    let dir = TemporaryDirectory()
    let path = dir.path("a.zarr")
    let (_, data) = try Self.array(format, at: path)
    let metadata = path + (format == .v3 ? "/zarr.json" : "/.zarray")
    let (ok, errors) = try Self.fuzz(metadata, salt: format == .v3 ? 3 : 4) {
      _ = try ZarrArray.open(path).read(data.box)
    }
    #expect(ok > 0 && errors > 0, "\(ok) read, \(errors) refused")
  }

  /// The shard file of a sharded v3 array, damaged in its index (the last 16 bytes per inner
  /// chunk and the CRC32C) or anywhere: the read gives the data, or an error.
  @Test func zarrShardIndex() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("s.zarr")
    let (array, data) = try Self.array(.v3, at: path)
    let shard = array.file(of: [0, 0, 0])
    let size = try #require(try FileManager.default.attributesOfItem(atPath: shard)[.size] as? Int)
    let index = 16 * 8 + 4
    let (ok, errors) = try Self.fuzz(shard, salt: 6, within: (size - index)..<size) {
      _ = try ZarrArray.open(path).read(data.box)
    }
    #expect(errors > 0, "\(ok) read, \(errors) refused")
    // Anywhere in the shard: compressed chunks damaged too.
    let (ok2, errors2) = try Self.fuzz(shard, salt: 7) { _ = try ZarrArray.open(path).read(data.box) }
    #expect(ok2 > 0 && errors2 > 0, "\(ok2) read, \(errors2) refused")
  }

  /// HDF5 tiles whose position, voxel size, tile and channel are attributes, written with
  /// seeded odd values through HDF5 itself (wrong counts, NaN, ±∞, huge, negative, fractional,
  /// strings instead of numbers, missing): reading them gives a dataset or a one-line error.
  /// (Damage to the file's bytes is HDF5's own parsing: `HDF5ChunkIndexTests` fuzzes the chunk
  /// index Tessera reads itself; libhdf5 1.10 can crash on some damaged object headers, see README.)
  @Test func hdf5AttributeValues() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(tileShape: [12, 16], grid: [1, 2], channels: 1, voxelSize: [1, 1], seed: 4)
    let written = try a.writeHDF5Tiles(to: dir.path("tiles"), deflateLevel: nil)
    let odd: [Double] = [.nan, .infinity, -.infinity, 1e308, -1e308, -1, 0, 0.5, 3, 1e19, -0.0]
    var (ok, errors) = (0, 0)
    for trial in 0..<Self.trials {
      var rng = SplitMix64(seed: 900 + UInt64(trial))
      let file = try HDF5File(path: written.tiles[trial % 2], mode: .readWrite)
      for name in ["position_um", "voxel_size_um", "tile", "channel", "timepoint"] where rng.next() % 3 == 0 {
        switch rng.next() % 4 {
        case 0: try file.setAttribute(name, of: "ch0", string: "12.5 µm")
        case 1: try file.setAttribute(name, of: "ch0", values: [])
        default:
          let count = Int(rng.next() % 4)
          try file.setAttribute(
            name, of: "ch0", values: (0..<count).map { _ in odd[Int(rng.next() % UInt64(odd.count))] })
        }
      }
      try file.flush()
      do {
        try Self.inspect(written.tiles)
        ok += 1
      } catch {
        errors += 1
        #expect("\(error)".oneLine == "\(error)", "trial \(trial): error is not one line: \(error)")
      }
      // Back to the stated values for the next trial.
      try file.setAttribute("position_um", of: "ch0", values: a.statedPositions[trial % 2])
      try file.setAttribute("voxel_size_um", of: "ch0", values: [1, 1])
      try file.setAttribute("tile", of: "ch0", values: [Double(trial % 2)])
      try file.setAttribute("channel", of: "ch0", values: [0])
      try file.setAttribute("timepoint", of: "ch0", values: [0])
      try file.flush()
    }
    #expect(ok > 0 && errors > 0, "\(ok) opened, \(errors) refused")
  }

  /// A small finished output of two parts: its plan file and a part's journal, damaged, are read
  /// by `tessera verify` and `tessera finalize` (a report or a one-line error).
  @Test func outputPlanAndJournals() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("o.zarr")
    let spec = OMEZarrImageSpec(
      shape: [6, 20, 24], voxelSize: [2, 0.5, 0.5], origin: [1, -2.25, 0.1],
      channels: [.init(label: "a", color: "00FF00")], dataType: .uint16, chunkShape: [3, 10, 12], levels: 2)
    let plan = try OutputPlan(
      spec: spec, provenance: ["version": "fuzz", "views": [[0.5, 1e-3]]], blocks: [0, 1, 2, 5])
    var data = VolumeBuffer<UInt16>(shape: [1, 6, 20, 24])
    for i in data.storage.indices { data.storage[i] = UInt16(i % 977) }
    for p in 0..<2 {
      if p == 1 { try FileManager.default.copyItem(atPath: path, toPath: dir.path("unfinished.zarr")) }
      let image = try OMEZarrImage.create(
        at: path, spec: spec, mode: .join, plan: plan, part: Part(index: p, count: 2)!)
      for b in [0, 1, 2, 5] where b % 2 == p {
        let index = image.levels[0].grid.chunkIndex(linear: b)
        try image.writeBlock(
          level: 0, index, AnyVolumeBuffer(data.extracting(image.levels[0].grid.box(ofChunk: index))))
      }
      try image.finishJournal()
    }
    try OMEZarrImage.finalize(at: path, threads: 1)
    // A finished output and one with a part still to do; a quarter of the trials per file.
    var (opened, refused) = (0, 0)
    for output in [path, dir.path("unfinished.zarr")] {
      let journal = try #require(
        try FileManager.default.contentsOfDirectory(atPath: output + "/.tessera/progress").sorted().first)
      for (file, salt) in [(OutputPlan.path(in: output), UInt64(8)), (output + "/.tessera/progress/" + journal, 9)] {
        let (ok, errors) = try Self.fuzz(file, trials: Self.trials / 4, salt: salt) {
          let image = try OMEZarrImage.open(at: output)
          _ = image.verify(threads: 1)
          _ = image.partsReport()
          _ = image.missingLevel0()
          _ = try? OMEZarrImage.finalize(at: output, threads: 1)
        }
        #expect(ok + errors == Self.trials / 4)
        (opened, refused) = (opened + ok, refused + errors)
      }
    }
    #expect(opened > 0 && refused > 0, "\(opened) read, \(refused) refused")
  }

  /// Registration's pair files, damaged, are refused by `--solve` in one line (or, when the
  /// damage leaves them valid, solved).
  @Test func registrationPairFiles() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(
      tileShape: [40, 48], grid: [2, 2], overlap: 0.3, channels: 1, voxelSize: [1, 1], seed: 5)
    let written = try a.writeHDF5Tiles(to: dir.path("tiles"), deflateLevel: nil)
    let dataset = try DatasetLoader.open(written.tiles).dataset
    var options = RegistrationOptions(maxShift: [6, 6])
    options.threads = 1
    let pairs = dir.path("pairs")
    for i in 0..<2 {
      _ = try RefinePositions.measurePart(
        dataset, paths: written.tiles, options: options, part: Part(index: i, count: 2)!, directory: pairs)
    }
    let file = pairs + "/" + PairFile.name(of: Part(index: 1, count: 2)!)
    let (ok, errors) = try Self.fuzz(file, salt: 10) {
      _ = try RefinePositions.solve(dataset, options: options, pairsIn: pairs)
    }
    #expect(ok > 0 && errors > 0, "\(ok) solved, \(errors) refused")
    // Regression (found by review): a part count below 1 trapped building the shares.
    let text = try String(contentsOfFile: file, encoding: .utf8)
    try text.replacingOccurrences(of: #""parts"\s*:\s*2"#, with: "\"parts\": -1", options: .regularExpression)
      .write(toFile: file, atomically: true, encoding: .utf8)
    expectError(["damaged pair file", "part 1 of -1"]) {
      _ = try RefinePositions.solve(dataset, options: options, pairsIn: pairs)
    }
  }

  /// Regressions (found by review): a journal record of a block outside its level's grid trapped
  /// `verify` of an unfinished output, a plan whose block list leaves the grid trapped `verify`
  /// and `finalize`.
  @Test func journalAndPlanOutsideTheGrid() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("o.zarr")
    let spec = OMEZarrImageSpec(
      shape: [6, 20, 24], voxelSize: [1, 1, 1], channels: [.init(label: "a", color: "00FF00")], dataType: .uint16,
      chunkShape: [3, 10, 12], levels: 2)
    let plan = try OutputPlan(spec: spec, provenance: ["version": "fuzz"], blocks: [0, 1])
    let image = try OMEZarrImage.create(at: path, spec: spec, mode: .join, plan: plan, part: Part(index: 0, count: 2)!)
    try image.finishJournal()
    try "# tessera journal 1 plan=\(plan.fingerprint) part=1/2\n1 99999 10 ff\n0 -3 10 ff\n".write(
      toFile: path + "/.tessera/progress/damaged.log", atomically: true, encoding: .utf8)
    let report = try OMEZarrImage.open(at: path).verify(threads: 1)
    #expect(!report.isValid && report.missing.count == 2)
    let file = OutputPlan.path(in: path)
    let text = try String(contentsOfFile: file, encoding: .utf8)
    try text.replacingOccurrences(of: #"\[\s*0,\s*2\s*\]"#, with: "[0, 99999]", options: .regularExpression)
      .write(toFile: file, atomically: true, encoding: .utf8)
    expectError(["damaged block list"]) { _ = try OMEZarrImage.open(at: path) }
    expectError(["damaged block list"]) { try OMEZarrImage.finalize(at: path, threads: 1) }
  }
}
