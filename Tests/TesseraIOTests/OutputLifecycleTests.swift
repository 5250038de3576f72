import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

/// Create, fill in parts, finalize, verify: the output lifecycle of a multi-process fusion.
@Suite struct OutputLifecycleTests {
  static let spec = ZarrTests.spec(.v3, levels: 3)
  static let data = ZarrTests.sample(.uint16, [2, 9, 30, 34]).converted(to: UInt16.self)

  static func piece(_ box: Box) -> AnyVolumeBuffer { AnyVolumeBuffer(data.extracting(box)) }

  static func plan(_ spec: OMEZarrImageSpec = spec, blocks: [Int]? = nil) throws -> OutputPlan {
    try OutputPlan(spec: spec, provenance: ["version": "test", "views": [1, 2]], blocks: blocks)
  }

  /// Fills level 0 of `path` as `parts` processes would (each its share, joining the output).
  static func fill(_ path: String, parts: Int, plan: OutputPlan) throws {
    let blocks = try OMEZarrImage.create(at: path, spec: spec, mode: .join, plan: plan).levels[0].grid.allChunks
    let split = spec.shares(of: blocks, work: blocks.map { _ in 1 }, count: parts)
    for p in 0..<parts {
      let image = try OMEZarrImage.create(
        at: path, spec: spec, mode: .join, plan: plan, part: Part(index: p, count: parts)!)
      let stream = image.pyramidStream(for: split.parts[p].map { blocks[$0] }, top: split.top)
      for i in split.parts[p] {
        try image.writeBlock(level: 0, blocks[i]) { box in
          let piece = piece(box)
          stream?.add(level: 0, block: blocks[i], piece: piece)
          return piece
        }
        try stream?.finished(level: 0, block: blocks[i])
      }
      try image.finishJournal()
    }
  }

  @Test func planFileRoundTrips() throws {
    let dir = TemporaryDirectory()
    let plan = try Self.plan(blocks: [7, 3, 4, 5, 9, 10])
    #expect(plan.blocks == [3..<6, 7..<8, 9..<11])
    #expect([3, 5, 7, 9, 10].allSatisfy(plan.plans) && ![0, 6, 8, 11].contains(where: plan.plans))
    _ = try OMEZarrImage.create(at: dir.path("o"), spec: Self.spec, mode: .new, plan: plan)
    let read = try OutputPlan.read(from: dir.path("o"))
    #expect(read.spec == Self.spec && read.fingerprint == plan.fingerprint && read.blocks == plan.blocks)
    #expect(try read.fileBytes() == plan.fileBytes())
    // The fingerprint follows the content, not the command.
    let other = try OutputPlan(spec: Self.spec, provenance: ["version": "test", "views": [1, 3]], blocks: nil)
    let sameButCommand = try OutputPlan(
      spec: Self.spec, provenance: ["version": "test", "views": [1, 2], "command": "x"], blocks: [3, 4, 5, 7, 9, 10])
    #expect(other.fingerprint != plan.fingerprint && sameButCommand.fingerprint == plan.fingerprint)
    #expect(try Self.plan(blocks: [3, 4]).fingerprint != plan.fingerprint)  // and the blocks
  }

  @Test func joiningWritesTheSameBytesAndRefusesAnotherPlan() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("o")
    let plan = try Self.plan()
    _ = try OMEZarrImage.create(at: path, spec: Self.spec, mode: .join, plan: plan)
    let before = try Self.files(path)
    _ = try OMEZarrImage.create(at: path, spec: Self.spec, mode: .join, plan: plan, part: Part(index: 1, count: 2)!)
    #expect(try Self.files(path) == before)
    let moved = try OutputPlan(spec: Self.spec, provenance: ["version": "test", "views": [9]], blocks: nil)
    expectThrows("other inputs") { _ = try OMEZarrImage.create(at: path, spec: Self.spec, mode: .join, plan: moved) }
  }

  /// A resumed or joined output keeps the name it was created with (the name is not part of the
  /// plan's fingerprint, so an output reached under another name still resumes).
  @Test func aResumedOutputKeepsItsName() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("o")
    var first = Self.spec
    first.name = "first"
    _ = try OMEZarrImage.create(at: path, spec: first, mode: .new, plan: try Self.plan(first))
    var second = Self.spec
    second.name = "second"
    for mode in [OMEZarrImage.Mode.resume, .join] {
      let image = try OMEZarrImage.create(at: path, spec: second, mode: mode, plan: try Self.plan(second))
      #expect(image.spec.name == "first" && image.plan.spec.name == "first", "\(mode)")
    }
  }

  /// Processes starting together all create the output at once: none is refused.
  @Test func partsCreatingOneOutputAtOnceAllSucceed() throws {
    let dir = TemporaryDirectory()
    let plan = try Self.plan()
    for round in 0..<100 {
      let path = dir.path("o\(round)")
      let failures = Locked(0)
      try Parallel.forEach(6, threads: 6) { p in
        do {
          _ = try OMEZarrImage.create(
            at: path, spec: Self.spec, mode: .join, plan: plan, part: Part(index: p, count: 6)!)
        } catch { failures.withLock { $0 += 1 } }
      }
      #expect(failures.withLock { $0 } == 0)
    }
  }

  /// Seeded: for several part counts the shares are disjoint, cover every block, hold whole
  /// level-`top` blocks, and the parts' output equals a single writer's, byte for byte.
  @Test(arguments: [1, 2, 3, 5])
  func partsGiveTheSingleWritersBytes(parts: Int) throws {
    let dir = TemporaryDirectory()
    let plan = try Self.plan()
    try Self.fill(dir.path("one"), parts: 1, plan: plan)
    try Self.fill(dir.path("many"), parts: parts, plan: plan)
    #expect(try OMEZarrImage.finalize(at: dir.path("one"), threads: 2))
    #expect(try OMEZarrImage.finalize(at: dir.path("many"), threads: 2))
    #expect(try !OMEZarrImage.finalize(at: dir.path("many"), threads: 2))  // already done
    #expect(try Self.files(dir.path("one")) == Self.files(dir.path("many")))
    let report = try OMEZarrImage.open(at: dir.path("many")).verify(threads: 2)
    #expect(report.isValid, "\(report)")
    let blocks = try OMEZarrImage.open(at: dir.path("many")).levels[0].grid.allChunks
    let split = Self.spec.shares(of: blocks, work: blocks.indices.map { Double($0 % 5 + 1) }, count: parts)
    #expect(split.parts.flatMap { $0 }.sorted() == Array(blocks.indices))
    let steps = Self.spec.fullSteps
    func ancestor(_ b: [Int]) -> [Int] {
      (1...max(1, split.top)).reduce(b) { a, l in split.top == 0 ? a : zip(a, steps[l]).map { $0 / $1 } }
    }
    let owners = Dictionary(grouping: split.parts.indices.flatMap { p in split.parts[p].map { (p, blocks[$0]) } }) {
      ancestor($0.1)
    }
    #expect(owners.values.allSatisfy { Set($0.map(\.0)).count == 1 })
  }

  @Test func finalizeNamesUnfinishedPartsAndVerifyNamesDamage() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("o")
    let plan = try Self.plan()
    let image = try OMEZarrImage.create(
      at: path, spec: Self.spec, mode: .join, plan: plan, part: Part(index: 0, count: 3)!)
    let blocks = image.levels[0].grid.allChunks
    try image.writeBlock(level: 0, blocks[0], Self.piece(image.levels[0].grid.box(ofChunk: blocks[0])))
    try image.finishJournal()
    expectThrows("parts 1, 2 of 3 have not finished (1, 2 never started)") {
      _ = try OMEZarrImage.finalize(at: path, threads: 1)
    }
    try Self.fill(path, parts: 1, plan: plan)
    try OMEZarrImage.finalize(at: path, threads: 1)
    let open = try OMEZarrImage.open(at: path)
    #expect(open.verify(threads: 1).isValid)
    // Damage: a changed byte, a removed file, a file where the plan writes nothing.
    let level0 = open.levels[0]
    let changed = level0.file(of: blocks[1])
    var bytes = [UInt8](FileManager.default.contents(atPath: changed)!)
    bytes[bytes.count / 2] ^= 0xFF
    try Data(bytes).write(to: URL(fileURLWithPath: changed))
    try FileManager.default.removeItem(atPath: level0.file(of: blocks[2]))
    let report = open.verify(threads: 1)
    #expect(report.corrupt == ["0/" + level0.key(of: blocks[1])])
    #expect(report.missing == ["0/" + level0.key(of: blocks[2])])
    #expect(!report.isValid)
    // A plan that leaves block 3 empty finds its file stale.
    let partial = try Self.plan(blocks: [0, 1, 2])
    let other = dir.path("p")
    try FileManager.default.copyItem(atPath: path, toPath: other)
    try AtomicFile.write(try partial.fileBytes(), to: OutputPlan.path(in: other))
    #expect(try OMEZarrImage.open(at: other).verify(threads: 1).stale.contains("0/" + level0.key(of: blocks[3])))
  }

  /// Every regular file under `path` (the journals and plan aside) with its bytes.
  static func files(_ path: String) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for case let f as String in FileManager.default.enumerator(atPath: path)! where !f.hasPrefix(".tessera") {
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: path + "/" + f, isDirectory: &isDirectory), !isDirectory.boolValue {
        out[f] = FileManager.default.contents(atPath: path + "/" + f)
      }
    }
    return out
  }
}
