import CHDF5
import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

/// The chunk index read from the file (B-tree walk) and the coalesced `pread` path built on it.
@Suite struct HDF5ChunkIndexTests {
  static func volume(_ shape: [Int], seed: UInt64) -> VolumeBuffer<UInt16> {
    var rng = SplitMix64(seed: seed)
    var v = VolumeBuffer<UInt16>(shape: shape)
    for i in v.storage.indices { v.storage[i] = UInt16(truncatingIfNeeded: rng.next() >> 52) &+ UInt16(i / 64) }
    return v
  }

  /// Small chunks (4×8×8, BigDataViewer-like), with and without shuffle and deflate, a part never
  /// written: random boxes read through the index equal H5Dread and the written data (0 where
  /// nothing was written), and the index agrees with HDF5's own lookup for every chunk.
  @Test func smallChunksReadExactlyThroughTheIndex() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("small.h5")
    let shape = [13, 50, 61]
    let v = Self.volume(shape, seed: 5)
    let written = Box(lower: [0, 0, 0], upper: [13, 50, 40])  // chunks with x ≥ 40 stay unwritten
    var expected = v
    Box(lower: [0, 0, 40], upper: shape).forEachIndex { expected[$0] = 0 }
    let layouts: [(String, Int?, Bool)] = [("gzip", 1, false), ("gzip+shuffle", 6, true), ("raw", nil, false)]
    do {
      let f = try HDF5File(path: path, mode: .truncate)
      for (name, level, shuffle) in layouts {
        let d = try f.createDataset(
          name, elementType: .uint16, shape: shape, chunkShape: [4, 8, 8], deflateLevel: level, shuffle: shuffle)
        try d.write(v.extracting(written))
        #expect(d.file.readDescriptor() == nil, "files open for writing keep HDF5's path")
      }
    }
    let f = try HDF5File(path: path)
    var rng = SplitMix64(seed: 11)
    for (name, _, _) in layouts {
      let d = try f.dataset(name)
      let grid = try ChunkGrid(shape: shape, chunkShape: [4, 8, 8])
      let descriptor = try #require(f.readDescriptor())
      let index = try #require(d.chunkIndex(descriptor: descriptor), "\(d.chunkIndexFailure ?? "")")
      #expect(index.addresses.count == grid.chunkCount)
      #expect(index.storedCount == 4 * 7 * 5)
      // Every chunk against H5Dget_chunk_info_by_coord.
      for c in grid.allChunks {
        var coords = grid.fullBox(ofChunk: c).lower.map { hsize_t($0) }
        var mask: UInt32 = 0
        var address: haddr_t = 0
        var size: hsize_t = 0
        let status = HDF5Library.withLock { H5Dget_chunk_info_by_coord(d.id, &coords, &mask, &address, &size) }
        #expect(status >= 0)
        let l = grid.linearIndex(ofChunk: c)
        if address == haddr_t.max {
          #expect(index.addresses[l] == HDF5ChunkIndex.unallocated, "\(name) \(c)")
        } else {
          #expect(index.addresses[l] == UInt64(address), "\(name) \(c)")
          #expect(UInt64(index.sizes[l]) == UInt64(size), "\(name) \(c)")
          #expect(index.masks[l] == mask, "\(name) \(c)")
        }
      }
      #expect(try d.readBlock(d.bounds).converted(to: UInt16.self) == expected, "\(name)")
      for _ in 0..<40 {
        let lo = (0..<3).map { Int.random(in: 0..<shape[$0], using: &rng) }
        let hi = (0..<3).map { Int.random(in: (lo[$0] + 1)...shape[$0], using: &rng) }
        let b = Box(lower: lo, upper: hi)
        let fast = try d.readBlock(b, parallel: rng.next() % 2 == 0).converted(to: UInt16.self)
        #expect(fast == expected.extracting(b), "\(name) \(b)")
        if b.upper[2] <= 40 { #expect(fast == (try d.read(b, as: UInt16.self)), "\(name) \(b) vs H5Dread") }
      }
      // Whole chunks stacked along z (the cache's blocks) inflate straight into place; next to
      // them, stacks two chunks wide, unwritten chunks, and a partial last chunk along z.
      for b in [
        Box(lower: [0, 8, 16], upper: [12, 16, 24]), Box(lower: [4, 0, 0], upper: [8, 8, 8]),
        Box(lower: [0, 8, 16], upper: [8, 16, 32]), Box(lower: [0, 0, 40], upper: [12, 8, 48]),
        Box(lower: [8, 40, 32], upper: [13, 48, 40]),
      ] {
        #expect(try d.readBlock(b).converted(to: UInt16.self) == expected.extracting(b), "\(name) \(b)")
      }
    }
  }

  /// Writes `v` as `name` with 4×8×8 chunks and deflate through the C API, with the file format
  /// bounds given (V18: version-2 object headers; V110: layout version 4 with a fixed-array
  /// chunk index), and one chunk written raw with its deflate filter marked skipped.
  static func writeWithCAPI(path: String, low: H5F_libver_t, high: H5F_libver_t, v: VolumeBuffer<UInt16>) {
    HDF5Library.withLock {
      let fapl = H5Pcreate(chdf5_P_FILE_ACCESS())
      _ = H5Pset_libver_bounds(fapl, low, high)
      let file = H5Fcreate(path, chdf5_F_ACC_TRUNC(), hid_t(H5P_DEFAULT), fapl)
      _ = H5Pclose(fapl)
      var dims = v.shape.map { hsize_t($0) }
      let space = H5Screate_simple(3, &dims, nil)
      let dcpl = H5Pcreate(chdf5_P_DATASET_CREATE())
      var chunks: [hsize_t] = [4, 8, 8]
      _ = H5Pset_chunk(dcpl, 3, &chunks)
      _ = H5Pset_deflate(dcpl, 1)
      let d = H5Dcreate2(file, "x", chdf5_T_STD_U16LE(), space, hid_t(H5P_DEFAULT), dcpl, hid_t(H5P_DEFAULT))
      v.storage.withUnsafeBytes {
        _ = H5Dwrite(d, chdf5_T_NATIVE_UINT16(), hid_t(H5S_ALL), hid_t(H5S_ALL), hid_t(H5P_DEFAULT), $0.baseAddress)
      }
      // Chunk (1, 2, 3) stored raw, deflate (filter 0) skipped.
      var raw = v.extracting(Box(lower: [4, 16, 24], upper: [8, 24, 32]))
      raw.storage[0] = 4242
      var offset: [hsize_t] = [4, 16, 24]
      raw.storage.withUnsafeBytes {
        _ = H5Dwrite_chunk(d, hid_t(H5P_DEFAULT), 1, &offset, $0.count, $0.baseAddress)
      }
      _ = H5Dclose(d)
      _ = H5Pclose(dcpl)
      _ = H5Sclose(space)
      _ = H5Fclose(file)
    }
  }

  /// Version-2 object headers (HDF5 1.8 format, as JHDF5 may write) are indexed too; a chunk
  /// whose deflate filter was skipped is read raw; the 1.10 format's fixed-array chunk index is
  /// not parsed and falls back to HDF5's per-chunk calls, with the same result.
  @Test func objectHeaderVersionsFilterMaskAndFallback() throws {
    let dir = TemporaryDirectory()
    let v = Self.volume([10, 30, 40], seed: 3)
    var expected = v
    expected[[4, 16, 24]] = 4242
    for (name, low, high, indexed) in [
      ("v18.h5", H5F_LIBVER_V18, H5F_LIBVER_V18, true), ("earliest.h5", H5F_LIBVER_EARLIEST, H5F_LIBVER_V110, true),
      ("v110.h5", H5F_LIBVER_V110, H5F_LIBVER_V110, false),
    ] {
      Self.writeWithCAPI(path: dir.path(name), low: low, high: high, v: v)
      let f = try HDF5File(path: dir.path(name))
      let d = try f.dataset("x")
      let descriptor = try #require(f.readDescriptor())
      let index = d.chunkIndex(descriptor: descriptor)
      #expect((index != nil) == indexed, "\(name): \(d.chunkIndexFailure ?? "indexed")")
      if !indexed {
        // Layout version 4: chunk index type 3, a fixed array, named as such.
        #expect(d.chunkIndexFailure?.contains("fixed array") == true, "\(d.chunkIndexFailure ?? "indexed")")
      }
      if let index {
        let grid = try ChunkGrid(shape: v.shape, chunkShape: [4, 8, 8])
        #expect(index.masks[grid.linearIndex(ofChunk: [1, 2, 3])] == 1)
        #expect(index.masks.filter { $0 != 0 }.count == 1)
      }
      #expect(try d.readBlock(d.bounds).converted(to: UInt16.self) == expected, "\(name)")
      let b = Box(lower: [3, 10, 20], upper: [9, 27, 35])
      #expect(try d.readBlock(b).converted(to: UInt16.self) == (try d.read(b, as: UInt16.self)), "\(name)")
    }
  }

  /// A read-only file whose datasets Tessera reads itself gives HDF5's handles back, and reads
  /// the same afterwards (by its chunk index, or contiguous); a dataset that needs HDF5 (a 1.10
  /// fixed-array index) keeps them. Anything later asked of HDF5 reopens the file.
  @Test func releasedHandlesReadTheSameAndReopen() throws {
    let dir = TemporaryDirectory()
    let v = Self.volume([10, 30, 40], seed: 4)
    var expected = v
    expected[[4, 16, 24]] = 4242
    let b = Box(lower: [3, 10, 20], upper: [9, 27, 35])
    for (name, low, high, indexed) in [
      ("v18.h5", H5F_LIBVER_V18, H5F_LIBVER_V18, true), ("v110.h5", H5F_LIBVER_V110, H5F_LIBVER_V110, false),
    ] {
      Self.writeWithCAPI(path: dir.path(name), low: low, high: high, v: v)
      let f = try HDF5File(path: dir.path(name))
      let d = try f.dataset("x")
      #expect(f.releaseHandles(keeping: [d]) == indexed, "\(name)")
      #expect(f.holdsHandle == !indexed && d.holdsHandle == !indexed, "\(name)")
      #expect(try d.readBlock(d.bounds).converted(to: UInt16.self) == expected, "\(name)")
      #expect(f.holdsHandle == !indexed, "\(name): reading by the index needs no HDF5")
      // H5Dread and the attributes reopen what was released.
      #expect(try d.read(b, as: UInt16.self) == expected.extracting(b), "\(name)")
      #expect(f.holdsHandle)
      #expect(f.attributeNames(of: "x").isEmpty)
    }
    // Contiguous: read with pread, released too; a file open for writing never is.
    let plain = dir.path("contiguous.h5")
    do {
      let w = try HDF5File(path: plain, mode: .create)
      let d = try w.createDataset("img", elementType: .uint16, shape: v.shape)
      try d.write(v)
      #expect(!w.releaseHandles(keeping: [d]))
    }
    let f = try HDF5File(path: plain)
    let d = try f.dataset("img")
    #expect(f.releaseHandles(keeping: [d]))
    #expect(try d.readBlock(b).converted(to: UInt16.self) == v.extracting(b))
    #expect(!f.holdsHandle)
    // A dataset of another file is not this file's to release; nor is a file with a dataset open
    // that it was not given (HDF5 would keep the file open for it).
    let other = try HDF5File(path: dir.path("v18.h5"))
    #expect(!other.releaseHandles(keeping: [d]))
    let x = try other.dataset("x")
    let y = try other.dataset("x")
    #expect(!other.releaseHandles(keeping: [x]) && other.holdsHandle && x.holdsHandle)
    #expect(other.releaseHandles(keeping: [x, y]) && !other.holdsHandle)
    // A released file that is gone: reading by the index goes on (the descriptor is open); asking
    // HDF5 is a clear error naming why.
    Self.writeWithCAPI(path: dir.path("gone.h5"), low: H5F_LIBVER_EARLIEST, high: H5F_LIBVER_V18, v: v)
    let g = try HDF5File(path: dir.path("gone.h5"))
    let gd = try g.dataset("x")
    #expect(g.releaseHandles(keeping: [gd]))
    try FileManager.default.removeItem(atPath: dir.path("gone.h5"))
    #expect(try gd.readBlock(b).converted(to: UInt16.self) == expected.extracting(b))
    let error = try #require(throws: HDF5Error.self) { try gd.read(b, as: UInt16.self) }
    #expect(error.description.contains("cannot be reopened") && error.description.contains("No such file"), "\(error)")
    #expect(error.kind == .io)
  }

  /// Many threads reading a freshly opened dataset at once: one builds the index, the others wait
  /// for it, and every read is exact.
  @Test func concurrentFirstReadsShareOneIndex() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("race.h5")
    let v = Self.volume([12, 64, 64], seed: 21)
    do {
      let f = try HDF5File(path: path, mode: .truncate)
      let d = try f.createDataset(
        "x", elementType: .uint16, shape: v.shape, chunkShape: [4, 8, 8], deflateLevel: 1, shuffle: true)
      try d.write(v)
    }
    var generator = SplitMix64(seed: 4)
    let boxes = (0..<32).map { _ in
      let lo = (0..<3).map { Int.random(in: 0..<v.shape[$0], using: &generator) }
      let hi = (0..<3).map { Int.random(in: (lo[$0] + 1)...v.shape[$0], using: &generator) }
      return Box(lower: lo, upper: hi)
    }
    for _ in 0..<3 {
      let d = try HDF5File(path: path).dataset("x")
      let wrong = Locked(0)
      try Parallel.forEach(boxes.count, threads: 8) { i in
        let read = try d.readBlock(boxes[i], parallel: false).converted(to: UInt16.self)
        if read != v.extracting(boxes[i]) { wrong.withLock { $0 += 1 } }
      }
      #expect(wrong.withLock { $0 } == 0)
      #expect(d.chunkIndexFailure == nil)
    }
  }

  /// A file cut inside its chunk data: reading the lost chunks is an error that says so.
  @Test func truncatedFileIsAClearError() throws {
    let dir = TemporaryDirectory()
    let path = dir.path("cut.h5")
    let v = Self.volume([16, 64, 64], seed: 8)
    do {
      let f = try HDF5File(path: path, mode: .truncate)
      let d = try f.createDataset(
        "x", elementType: .uint16, shape: v.shape, chunkShape: [4, 8, 8], deflateLevel: 1)
      try d.write(v)
    }
    // The index is read before the cut, as a long-running reader would have it.
    let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
    let f = try HDF5File(path: path)
    let d = try f.dataset("x")
    let descriptor = try #require(f.readDescriptor())
    #expect(d.chunkIndex(descriptor: descriptor) != nil)
    #expect(try d.readBlock(d.bounds).converted(to: UInt16.self) == v)
    #expect(truncate(path, off_t(size / 2)) == 0)
    do {
      _ = try d.readBlock(d.bounds)
      Issue.record("read of a truncated file succeeded")
    } catch let error as HDF5Error {
      #expect(error.description.contains("truncated"), "\(error)")
      #expect(error.description.contains(path))
    }
    // Opened after the cut: index or not, the read fails with an HDF5Error.
    let g = try HDF5File(path: path).dataset("x")
    #expect(throws: HDF5Error.self) { try g.readBlock(g.bounds) }
  }
}

/// Corrupt and hostile files: whatever the object header and the chunk B-tree say, reading ends
/// in the right data or an ``HDF5Error``, never in a trap, a hang or a huge allocation.
@Suite struct HDF5ChunkIndexCorruptionTests {
  static let shape = [8, 64, 80]
  static let chunkShape = [4, 8, 8]

  /// A pristine file: 160 chunks of 4×8×8 uint16 with gzip (a B-tree of a root and a few leaves),
  /// its bytes, the dataset's object header span and the chunk B-tree nodes' spans (found by
  /// their "TREE" signatures, node type 1).
  struct Pristine {
    var v: VolumeBuffer<UInt16>
    var bytes: [UInt8]
    var objectHeader: Range<Int>
    /// Per chunk B-tree node: its address, level and entry count.
    var nodes: [(address: Int, level: Int, entries: Int)]
    /// Bytes of a node header and of one key (offset size 8, rank 3).
    static let nodeHeader = 24
    static let keySize = 40

    func span(of node: (address: Int, level: Int, entries: Int)) -> Range<Int> {
      node.address..<(node.address + Self.nodeHeader + node.entries * (Self.keySize + 8) + Self.keySize)
    }
    /// The byte position of child pointer `i` of `node`.
    func child(_ i: Int, of node: (address: Int, level: Int, entries: Int)) -> Int {
      node.address + Self.nodeHeader + i * (Self.keySize + 8) + Self.keySize
    }
    /// The byte position of key `i` of `node` (its chunk size comes first, 4 bytes).
    func key(_ i: Int, of node: (address: Int, level: Int, entries: Int)) -> Int {
      node.address + Self.nodeHeader + i * (Self.keySize + 8)
    }
  }

  static func pristine(at path: String) throws -> Pristine {
    let v = HDF5ChunkIndexTests.volume(shape, seed: 17)
    var header = 0
    do {
      let f = try HDF5File(path: path, mode: .truncate)
      let d = try f.createDataset(
        "x", elementType: .uint16, shape: shape, chunkShape: chunkShape, deflateLevel: 1)
      try d.write(v)
    }
    do {
      let d = try HDF5File(path: path).dataset("x")
      var info = H5O_info_t()
      #expect(HDF5Library.withLock { H5Oget_info2(d.id, &info, UInt32(H5O_INFO_BASIC)) } >= 0)
      header = Int(info.addr)
      #expect(d.chunkIndex(descriptor: try #require(d.file.readDescriptor())) != nil, "\(d.chunkIndexFailure ?? "")")
    }
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(bytes[header] == 1, "version-1 object header")
    let size = (0..<4).reduce(0) { $0 | Int(bytes[header + 8 + $1]) << (8 * $1) }
    var nodes: [(address: Int, level: Int, entries: Int)] = []
    let signature = Array("TREE".utf8)
    for a in 0..<(bytes.count - 8) where bytes[a..<a + 4].elementsEqual(signature) && bytes[a + 4] == 1 {
      nodes.append((a, Int(bytes[a + 5]), Int(bytes[a + 6]) | Int(bytes[a + 7]) << 8))
    }
    return Pristine(v: v, bytes: bytes, objectHeader: header..<(header + 16 + size), nodes: nodes)
  }

  /// Opens `bytes` as a file and reads the whole dataset through the normal reader. Returns what
  /// happened: "exact", "error" (an HDF5Error), "hdf5" (not the original data, but what HDF5's
  /// own H5Dread makes of the corrupt file) or a description of a wrong result; and the index
  /// failure, if any.
  static func readBack(_ bytes: [UInt8], path: String, expected: VolumeBuffer<UInt16>) -> (String, String?) {
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    var failure: String?
    do {
      let d = try HDF5File(path: path).dataset("x")
      let indexed = d.file.readDescriptor().flatMap { d.chunkIndex(descriptor: $0) } != nil
      failure = d.chunkIndexFailure
      // A damaged dataspace message is HDF5's to parse, not the index's (and may claim terabytes).
      guard d.shape == expected.shape else { return ("other shape", failure) }
      let read = try d.readBlock(d.bounds)
      if read.elementType.byteCount == 2, d.shape == expected.shape,
        read.converted(to: UInt16.self) == expected
      {
        return ("exact", failure)
      }
      // HDF5's own read walks the tree unchecked: only when the index accepted it.
      if failure == nil, let own = try? d.read(d.bounds, as: UInt16.self), own == read.converted(to: UInt16.self) {
        return ("hdf5", failure)
      }
      return ("wrong data (indexed: \(indexed))", failure)
    } catch is HDF5Error {
      return ("error", failure)
    } catch {
      return ("unexpected \(type(of: error)): \(error)", failure)
    }
  }

  /// A few hundred seeded trials, each overwriting 1–3 places in the object header or the chunk
  /// B-tree nodes (a flipped bit, a random byte, or 8 bytes of 0xFF or noise over an address or
  /// size): every read returns the original data or throws an HDF5Error. Whenever the chunk index
  /// was accepted the data must be exact or HDF5's own reading; many trials are rejected by the
  /// index checks, and none traps or hangs (the walk is bounded by the node cap).
  @Test func seededMutationsNeverTrapOrHang() throws {
    let dir = TemporaryDirectory()
    let p = try Self.pristine(at: dir.path("pristine.h5"))
    let leaves = p.nodes.filter { $0.level == 0 }
    try #require(leaves.count >= 2 && p.nodes.contains { $0.level == 1 }, "\(p.nodes)")
    let regions = [p.objectHeader] + p.nodes.map { p.span(of: $0) }
    var rng = SplitMix64(seed: 2026)
    var outcomes: [String: Int] = [:]
    var rejected = 0
    for trial in 0..<300 {
      var bytes = p.bytes
      for _ in 0...Int.random(in: 0..<3, using: &rng) {
        // Three quarters of the mutations hit the B-tree, the rest the object header.
        let region = rng.next() % 4 == 0 ? regions[0] : regions[1 + Int.random(in: 0..<p.nodes.count, using: &rng)]
        let at = Int.random(in: region, using: &rng)
        switch rng.next() % 4 {
        case 0, 1: bytes[at] ^= UInt8(1) << UInt8(rng.next() % 8)
        case 2: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
        default:
          let fill = rng.next() % 2 == 0 ? UInt64.max : rng.next()
          for k in 0..<min(8, region.upperBound - at) { bytes[at + k] = UInt8(truncatingIfNeeded: fill >> (8 * k)) }
        }
      }
      let (outcome, failure) = Self.readBack(bytes, path: dir.path("trial.h5"), expected: p.v)
      outcomes[outcome, default: 0] += 1
      if failure != nil { rejected += 1 }
      #expect(
        ["exact", "error", "hdf5", "other shape"].contains(outcome),
        "trial \(trial): \(outcome), index: \(failure ?? "used")")
    }
    #expect(rejected > 10, "\(outcomes), \(rejected) rejected by the index checks")
    #expect(outcomes["exact", default: 0] > 10, "\(outcomes)")
  }

  /// A B-tree node whose child pointer leads back to itself is rejected (its level is not one
  /// below), and so are two child pointers to the same leaf (its chunks listed twice).
  @Test func selfReferencingAndSharedNodesAreRejected() throws {
    let dir = TemporaryDirectory()
    let p = try Self.pristine(at: dir.path("pristine.h5"))
    let root = try #require(p.nodes.first { $0.level == 1 && $0.entries >= 2 }, "\(p.nodes)")
    func patch(_ bytes: inout [UInt8], at position: Int, _ value: UInt64, count: Int = 8) {
      for k in 0..<count { bytes[position + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
    }
    var loop = p.bytes
    patch(&loop, at: p.child(0, of: root), UInt64(root.address))
    let (loopOutcome, loopFailure) = Self.readBack(loop, path: dir.path("loop.h5"), expected: p.v)
    #expect(loopFailure?.contains("level 1, its parent expects 0") == true, "\(loopFailure ?? "index used")")
    #expect(["exact", "error", "hdf5"].contains(loopOutcome), "\(loopOutcome)")

    var shared = p.bytes
    let firstChild = (0..<8).reduce(UInt64(0)) { $0 | UInt64(p.bytes[p.child(0, of: root) + $1]) << (8 * UInt64($1)) }
    patch(&shared, at: p.child(1, of: root), firstChild)
    let (_, sharedFailure) = Self.readBack(shared, path: dir.path("shared.h5"), expected: p.v)
    let why = sharedFailure ?? "index used"
    #expect(why.contains("listed twice") || why.contains("more than"), "\(why)")
    #expect(throws: HDF5Error.self) {
      try HDF5File(path: dir.path("shared.h5")).dataset("x").readBlock(Box(shape: p.v.shape))
    }
  }

  /// A leaf key claiming a 4 GiB chunk, or a chunk beyond the file's end, is rejected by the
  /// index before anything is allocated for it.
  @Test func hugeOrOutsideChunksAreRejected() throws {
    let dir = TemporaryDirectory()
    let p = try Self.pristine(at: dir.path("pristine.h5"))
    // The last leaf's last chunk: not the first chunk, which HDF5's own lookup cross-checks.
    let leaf = try #require(p.nodes.filter { $0.level == 0 }.max { $0.address < $1.address })
    var huge = p.bytes
    for k in 0..<4 { huge[p.key(leaf.entries - 1, of: leaf) + k] = k == 0 ? 0xF0 : 0xFF }
    _ = FileManager.default.createFile(atPath: dir.path("huge.h5"), contents: Data(huge))
    let d = try HDF5File(path: dir.path("huge.h5")).dataset("x")
    #expect(d.chunkIndex(descriptor: try #require(d.file.readDescriptor())) == nil)
    #expect(
      d.chunkIndexFailure?.contains("stored in 4294967280 bytes, implausible") == true, "\(d.chunkIndexFailure ?? "")")

    var outside = p.bytes
    let pointer = p.child(leaf.entries - 1, of: leaf)
    for k in 0..<8 { outside[pointer + k] = UInt8(truncatingIfNeeded: UInt64(p.bytes.count - 10) >> (8 * UInt64(k))) }
    _ = FileManager.default.createFile(atPath: dir.path("outside.h5"), contents: Data(outside))
    let e = try HDF5File(path: dir.path("outside.h5")).dataset("x")
    #expect(e.chunkIndex(descriptor: try #require(e.file.readDescriptor())) == nil)
    #expect(e.chunkIndexFailure?.contains("beyond the file's end") == true, "\(e.chunkIndexFailure ?? "")")
    #expect(throws: HDF5Error.self) { try e.readBlock(e.bounds) }
  }
}
