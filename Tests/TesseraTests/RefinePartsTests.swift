import Foundation
import Testing

@testable import Tessera
@testable import TesseraIO
@testable import TesseraRegistration

/// `refine-positions` split into parts: the shares of the pair list, the pair files, and the
/// solve from them, which must equal the single-process run bit for bit.
@Suite struct RefinePartsTests {
  /// A written synthetic acquisition, opened.
  struct Fixture {
    let directory = TemporaryDirectory()
    let dataset: Dataset
    var options: RegistrationOptions

    init(_ a: SyntheticAcquisition) throws {
      let written = try a.writeHDF5Tiles(to: directory.url.path, deflateLevel: nil)
      dataset = try DatasetLoader.open(written.tiles).dataset
      options = RegistrationOptions(maxShift: Array(repeating: 8, count: a.rank))
      options.threads = 2
    }

    /// Runs every part of `count` into `folder` (under the fixture's directory); returns its path.
    func measureParts(_ count: Int, folder: String = "pairs") throws -> String {
      let dir = directory.path(folder)
      for i in 0..<count {
        _ = try RefinePositions.measurePart(
          dataset, paths: [dataset.path], options: options, part: Part(index: i, count: count)!, directory: dir)
      }
      return dir
    }
  }

  static let grid2D = SyntheticAcquisition(
    tileShape: [80, 90], grid: [3, 3], overlap: 0.25, channels: 1, voxelSize: [0.65, 0.65], jitter: 3, seed: 41)
  static let grid3D = SyntheticAcquisition(
    tileShape: [24, 64, 72], grid: [1, 2, 3], overlap: 0.25, channels: 2, voxelSize: [1.5, 0.5, 0.5], jitter: 3,
    blobDensity: 3000, seed: 42)

  /// The shares of the pair list, for every part count up to more parts than pairs, are
  /// contiguous and hold every pair exactly once; the work weights are the overlap voxels.
  @Test func sharesCoverEveryPairOnce() throws {
    let f = try Fixture(Self.grid2D)
    let plan = try TileRegistration.plan(f.dataset, options: f.options)
    #expect(plan.pairs.count == 20)  // 12 faces and 8 diagonals of a 3 × 3 grid
    #expect(plan.work.allSatisfy { $0 > 0 })
    for n in [1, 2, 3, 4, 7, 19, 20, 21, 40] {
      var seen = [Int](repeating: 0, count: plan.pairs.count)
      var next = 0
      for i in 0..<n {
        let share = plan.share(Part(index: i, count: n)!)
        #expect(share.lowerBound == next, "part \(i)/\(n) starts at \(share.lowerBound), not \(next)")
        next = share.upperBound
        for k in share { seen[k] += 1 }
      }
      #expect(seen.allSatisfy { $0 == 1 }, "\(n) parts: pairs held \(seen) times")
    }
  }

  /// Parts then the solve give the single-process refined positions and report exactly (the
  /// report's JSON and the written manifest byte for byte), in 2-D and 3-D, for several splits.
  @Test(arguments: [grid2D, grid3D])
  func solveFromPartsEqualsOneProcess(acquisition: SyntheticAcquisition) throws {
    let f = try Fixture(acquisition)
    let (single, singleReport) = try RefinePositions.run(f.dataset, options: f.options)
    #expect(singleReport.accepted > 0)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try DatasetLoader.save(single, to: f.directory.path("single.json"), transformName: "Tessera refine-positions")
    for n in [1, 3, 5] {
      let dir = try f.measureParts(n, folder: "pairs-\(n)")
      let (solved, report) = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: dir)
      #expect(try encoder.encode(report) == encoder.encode(singleReport), "\(n) parts")
      #expect(solved.views.map(\.viewToWorld) == single.views.map(\.viewToWorld))
      let path = f.directory.path("solved-\(n).json")
      try DatasetLoader.save(solved, to: path, transformName: "Tessera refine-positions")
      #expect(
        FileManager.default.contents(atPath: path)
          == FileManager.default.contents(atPath: f.directory.path("single.json")))
    }
  }

  /// Missing parts are named with the command that makes them; a copy of a part is accepted,
  /// a differing one, a file of another split, of other options or a damaged one refused.
  @Test func incompleteOrMixedPairFilesAreRefused() throws {
    let f = try Fixture(Self.grid2D)
    let dir = try f.measureParts(4)
    let file = { (i: Int, n: Int) in "\(dir)/\(PairFile.name(of: Part(index: i, count: n)!))" }
    // A copy of part 1 under another name is the same part: fine.
    try FileManager.default.copyItem(atPath: file(1, 4), toPath: "\(dir)/pairs-copy.json")
    _ = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: dir)
    // The same part with other measurements is not.
    var altered = try PairFile.read(file(1, 4))
    altered.pairs[0].measurement?.correlation -= 0.125
    try altered.write(to: "\(dir)/pairs-copy.json")
    expectError(["pairs-copy.json", "part 1/4", "other measurements"]) {
      _ = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: dir)
    }
    try FileManager.default.removeItem(atPath: "\(dir)/pairs-copy.json")
    // Missing parts, named.
    for i in [1, 3] { try FileManager.default.removeItem(atPath: file(i, 4)) }
    expectError(["parts 1, 3 of 4", "--part i/4 --pairs-out \(dir)", "--part 1/4"]) {
      _ = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: dir)
    }
    _ = try RefinePositions.measurePart(
      f.dataset, paths: [f.dataset.path], options: f.options, part: Part(index: 1, count: 4)!, directory: dir)
    do {
      _ = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: dir)
      Issue.record("a missing part was accepted")
    } catch let error as DatasetError {
      #expect(error.kind == .data)
      #expect("\(error)" == "\(dir): part 3 of 4 has no pair file; run it with --part 3/4 --pairs-out \(dir)")
    }
    // Files of another split of the same job.
    _ = try f.measureParts(4)
    _ = try f.measureParts(2)
    expectError(["pairs-00000-of-00004.json", "part 0 of 4", "pairs-00000-of-00002.json is of 2 parts"]) {
      _ = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: dir)
    }
    // Other measurement options: a usage error naming the option.
    var other = f.options
    other.maxShift = [5, 5]
    do {
      _ = try RefinePositions.solve(f.dataset, options: other, pairsIn: dir)
      Issue.record("other options were accepted")
    } catch let error as DatasetError {
      #expect(error.kind == .usage && error.message.contains("--max-shift 8,8 (this run: 5,5)"), "\(error)")
    }
    // A damaged file.
    try Data("{\"format\": \"tessera refine-positions pairs\", \"version\": 1}".utf8).write(
      to: URL(fileURLWithPath: file(0, 4)))
    expectError([PairFile.name(of: Part(index: 0, count: 4)!), "damaged"]) {
      _ = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: dir)
    }
    let empty = f.directory.path("empty")
    expectError(["no such folder", "--pairs-out \(empty)"]) {
      _ = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: empty)
    }
    try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
    expectError(["no pair files", "--pairs-out \(empty)"]) {
      _ = try RefinePositions.solve(f.dataset, options: f.options, pairsIn: empty)
    }
  }

  /// Doubles of every kind (subnormals, huge, negative zero, random bit patterns) read back from
  /// a pair file with the same bits.
  @Test func pairFilesKeepEveryBitOfTheMeasurements() throws {
    let dir = TemporaryDirectory()
    var rng = SplitMix64(seed: 43)
    func value() -> Double {
      var v: Double
      repeat { v = Double(bitPattern: rng.next()) } while !v.isFinite
      return v
    }
    let specials: [Double] = [
      0, -0.0, .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, 0.1, 1 / 3, -1e-300,
    ]
    var entries: [PairFile.Entry] = []
    for k in 0..<400 {
      let s = k < specials.count ? specials[k] : value()
      let m = PairMeasurement(
        shiftVoxels: [s, value(), value()], shiftUm: [value(), -s, value()], correlation: value(),
        uncertaintyVoxels: k % 3 == 0 ? nil : [value(), value(), s])
      entries.append(.init(index: k, tiles: [k, k + 1], measurement: k % 7 == 6 ? nil : m))
    }
    var options = RegistrationOptions(maxShift: [4, 0.1, 1e-3])
    options.channel = nil
    let file = PairFile(
      fingerprint: "0123456789abcdef", dataset: ["/a.xml"], options: .init(options), part: 0, parts: 1,
      pairCount: entries.count, pairs: entries)
    try file.write(to: dir.path("p.json"))
    let back = try PairFile.read(dir.path("p.json"))
    let bits = { (f: PairFile) in
      f.pairs.map { e in
        e.measurement.map { m in
          (m.shiftVoxels + m.shiftUm + [m.correlation] + (m.uncertaintyVoxels ?? [])).map(\.bitPattern)
        }
      }
    }
    #expect(bits(back) == bits(file))
    #expect(back.options == file.options && back.pairs.map(\.index) == file.pairs.map(\.index))
    #expect(back.pairs.filter { $0.measurement == nil }.count == 57)
  }
}
