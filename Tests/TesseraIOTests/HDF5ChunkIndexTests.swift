import CHDF5
import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraIO

/// The chunk index read from the file (B-tree walk) and the coalesced `pread` path built on it.
@Suite struct HDF5ChunkIndexTests {
  static func volume(_ shape: [Int], seed: UInt64) -> VolumeBuffer<UInt16> {
    var rng = SeededGenerator(seed: seed)
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
    var rng = SeededGenerator(seed: 11)
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
    var generator = SeededGenerator(seed: 4)
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

/// A seeded generator (SplitMix64), so the random boxes are the same on every run.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
