import CHDF5
import Foundation
import TesseraCore

/// Where every stored chunk of a chunked dataset lies in the file: address, stored size and
/// filter mask per chunk of the chunk grid, in flat arrays (16 bytes per chunk).
///
/// HDF5 1.10 (Debian's 1.10.8) has no chunk iterator (`H5Dchunk_iter` came with 1.14), and its
/// `H5Dget_chunk_info(index)` and `H5Dget_chunk_info_by_coord` both walk the chunk B-tree from the
/// start until they reach the chunk, so asking for every chunk is quadratic: measured here for a
/// dataset of 16384 chunks of 1×8×8, 15 s by coordinate (0.9 ms per chunk, 6 ms at 65536 chunks),
/// so a BigDataViewer view of 500 000 blocks would take hours. The index is therefore read
/// directly from the file, once: the dataset's object header gives the layout message and the
/// root of its version-1 B-tree (the chunk index of every file written in HDF5's default format,
/// by h5py, BigDataViewer and Tessera), and one walk over the B-tree's nodes lists all chunks in
/// linear time. The result is checked against HDF5 (`H5Dget_num_chunks`, and the first chunk's
/// `H5Dget_chunk_info`); any other index kind, or any disagreement, leaves the dataset on the
/// per-chunk HDF5 path.
struct HDF5ChunkIndex: Sendable {
  /// File address (absolute byte offset) per chunk, C order over the chunk grid; `.max` if the
  /// chunk was never written.
  var addresses: [UInt64]
  /// Stored (encoded) size in bytes per chunk.
  var sizes: [UInt32]
  /// Filter mask per chunk (bit i set: filter i of the pipeline was skipped).
  var masks: [UInt32]

  static let unallocated = UInt64.max

  /// Number of chunks actually stored.
  var storedCount: Int { addresses.reduce(0) { $0 + ($1 == Self.unallocated ? 0 : 1) } }
}

/// Why the chunk index could not be read (the dataset then stays on HDF5's per-chunk calls).
struct ChunkIndexUnavailable: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

extension HDF5ChunkIndex {
  /// What HDF5 tells about a dataset before its B-tree is walked (gathered under the HDF5 lock).
  struct Facts {
    var objectHeader: UInt64
    var baseAddress: UInt64
    var offsetSize: Int
    var lengthSize: Int
    var chunkCount: Int
    /// The first chunk by HDF5's own lookup: element offset, address, size, mask.
    var first: (offset: [Int], address: UInt64, size: UInt64, mask: UInt32)?
  }

  /// Gathers the facts about `dataset` (call under the HDF5 lock).
  static func facts(of dataset: hid_t, file: hid_t, rank: Int) throws(ChunkIndexUnavailable) -> Facts {
    var info = H5O_info_t()
    guard H5Oget_info2(dataset, &info, UInt32(H5O_INFO_BASIC)) >= 0 else {
      throw ChunkIndexUnavailable("H5Oget_info2 failed")
    }
    let fcpl = H5Fget_create_plist(file)
    guard fcpl >= 0 else { throw ChunkIndexUnavailable("no file creation properties") }
    defer { _ = H5Pclose(fcpl) }
    var offsetSize = 0
    var lengthSize = 0
    var userblock: hsize_t = 0
    guard H5Pget_sizes(fcpl, &offsetSize, &lengthSize) >= 0, H5Pget_userblock(fcpl, &userblock) >= 0,
      [2, 4, 8].contains(offsetSize), [2, 4, 8].contains(lengthSize)
    else { throw ChunkIndexUnavailable("unusual address sizes") }
    let space = H5Dget_space(dataset)
    defer { _ = H5Sclose(space) }
    var count: hsize_t = 0
    guard H5Dget_num_chunks(dataset, space, &count) >= 0 else {
      throw ChunkIndexUnavailable("H5Dget_num_chunks failed")
    }
    var first: (offset: [Int], address: UInt64, size: UInt64, mask: UInt32)? = nil
    if count > 0 {
      var offset = [hsize_t](repeating: 0, count: rank)
      var mask: UInt32 = 0
      var address: haddr_t = 0
      var size: hsize_t = 0
      guard H5Dget_chunk_info(dataset, space, 0, &offset, &mask, &address, &size) >= 0 else {
        throw ChunkIndexUnavailable("H5Dget_chunk_info failed")
      }
      first = (offset.map { Int($0) }, UInt64(address), UInt64(size), mask)
    }
    return Facts(
      objectHeader: UInt64(info.addr), baseAddress: UInt64(userblock), offsetSize: offsetSize,
      lengthSize: lengthSize, chunkCount: Int(count), first: first)
  }

  /// Reads the index of a dataset with `grid` from the file behind `descriptor` (no HDF5 call).
  static func read(
    facts: Facts, grid: ChunkGrid, descriptor: Int32
  ) throws(ChunkIndexUnavailable) -> HDF5ChunkIndex {
    let file = FileBytes(
      descriptor: descriptor, base: facts.baseAddress, offsetSize: facts.offsetSize, lengthSize: facts.lengthSize)
    let root = try file.chunkBTreeRoot(objectHeader: facts.objectHeader, rank: grid.rank)
    var index = HDF5ChunkIndex(
      addresses: [UInt64](repeating: unallocated, count: grid.chunkCount),
      sizes: [UInt32](repeating: 0, count: grid.chunkCount), masks: [UInt32](repeating: 0, count: grid.chunkCount))
    var found = 0
    if root != file.undefined {
      try file.walk(node: root, rank: grid.rank, depth: 0) {
        offset, address, size, mask throws(ChunkIndexUnavailable) in
        var linear = 0
        for d in 0..<grid.rank {
          let c = offset[d] / grid.chunkShape[d]
          guard offset[d] % grid.chunkShape[d] == 0, c < grid.gridShape[d] else {
            throw ChunkIndexUnavailable("chunk offset \(offset) is not on the chunk grid")
          }
          linear = linear * grid.gridShape[d] + c
        }
        guard index.addresses[linear] == unallocated else {
          throw ChunkIndexUnavailable("chunk \(offset) listed twice")
        }
        index.addresses[linear] = address + facts.baseAddress
        index.sizes[linear] = size
        index.masks[linear] = mask
        found += 1
      }
    }
    guard found == facts.chunkCount else {
      throw ChunkIndexUnavailable("B-tree lists \(found) chunks, HDF5 counts \(facts.chunkCount)")
    }
    if let first = facts.first {
      let c = grid.chunk(containing: first.offset)
      let linear = grid.linearIndex(ofChunk: c)
      guard index.addresses[linear] == first.address + facts.baseAddress, UInt64(index.sizes[linear]) == first.size,
        index.masks[linear] == first.mask
      else { throw ChunkIndexUnavailable("B-tree disagrees with H5Dget_chunk_info on chunk \(first.offset)") }
    }
    return index
  }
}

/// Little-endian reads of HDF5 structures straight from the file.
private struct FileBytes {
  let descriptor: Int32
  let base: UInt64
  let offsetSize: Int
  let lengthSize: Int

  var undefined: UInt64 { offsetSize == 8 ? .max : (UInt64(1) << UInt64(offsetSize * 8)) - 1 }

  /// `count` bytes at relative address `address`.
  func bytes(at address: UInt64, count: Int) throws(ChunkIndexUnavailable) -> [UInt8] {
    guard count > 0, count < 1 << 26 else { throw ChunkIndexUnavailable("implausible structure size \(count)") }
    var out = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let got = out.withUnsafeMutableBytes { b in
        pread(descriptor, b.baseAddress! + done, count - done, off_t(base + address) + off_t(done))
      }
      if got < 0 && errno == EINTR { continue }
      guard got > 0 else { throw ChunkIndexUnavailable("the file ends inside its chunk index") }
      done += got
    }
    return out
  }

  /// The address of the version-1 B-tree that indexes the chunks of the dataset whose object
  /// header is at `objectHeader`, from its data layout message (version 3, or version 4 with a
  /// version-1 B-tree index).
  func chunkBTreeRoot(objectHeader: UInt64, rank: Int) throws(ChunkIndexUnavailable) -> UInt64 {
    var layout: [UInt8]?
    try forEachMessage(objectHeader: objectHeader) { type, data in
      if type == 8 { layout = data }
    }
    guard let layout, layout.count >= 2 else { throw ChunkIndexUnavailable("no data layout message") }
    var r = Reader(layout)
    let version = try r.u8()
    switch version {
    case 3:
      guard try r.u8() == 2 else { throw ChunkIndexUnavailable("layout is not chunked") }
      guard Int(try r.u8()) == rank + 1 else { throw ChunkIndexUnavailable("layout rank differs") }
      return try r.uint(offsetSize)
    case 4:
      guard try r.u8() == 2 else { throw ChunkIndexUnavailable("layout is not chunked") }
      _ = try r.u8()  // flags
      guard Int(try r.u8()) == rank + 1 else { throw ChunkIndexUnavailable("layout rank differs") }
      let encoded = Int(try r.u8())
      try r.skip(encoded * (rank + 1))
      guard try r.u8() == 1 else { throw ChunkIndexUnavailable("chunk index is not a version-1 B-tree") }
      return try r.uint(offsetSize)
    default:
      throw ChunkIndexUnavailable("data layout message version \(version)")
    }
  }

  /// Calls `body(type, data)` for every message of an object header (version 1 or 2), following
  /// continuation messages.
  func forEachMessage(
    objectHeader: UInt64, _ body: (Int, [UInt8]) throws(ChunkIndexUnavailable) -> Void
  ) throws(ChunkIndexUnavailable) {
    let prefix = try bytes(at: objectHeader, count: 16)
    var blocks: [(address: UInt64, length: Int, version: Int, creationOrder: Bool, continuation: Bool)] = []
    if prefix[0] == 1 {
      var r = Reader(prefix)
      try r.skip(8)
      let size = Int(try r.uint(4))
      blocks.append((objectHeader + 16, size, 1, false, false))
    } else if prefix.starts(with: Array("OHDR".utf8)), prefix[4] == 2 {
      let flags = prefix[5]
      var header = 6
      if flags & 0x20 != 0 { header += 16 }
      if flags & 0x10 != 0 { header += 4 }
      let head = try bytes(at: objectHeader, count: header + 8)
      var r = Reader(head)
      try r.skip(header)
      let size = Int(try r.uint(1 << Int(flags & 3)))
      let start = objectHeader + UInt64(header + (1 << Int(flags & 3)))
      blocks.append((start, size, 2, flags & 0x04 != 0, false))
    } else {
      throw ChunkIndexUnavailable("unknown object header format")
    }
    var visited = 0
    while let block = blocks.popLast() {
      visited += 1
      guard visited < 10_000 else { throw ChunkIndexUnavailable("object header continuations loop") }
      var data = try bytes(at: block.address, count: block.length)
      if block.version == 2 && block.continuation {
        // A version-2 continuation block: "OCHK", messages, checksum (chunk 0's checksum follows
        // its stated size).
        guard data.starts(with: Array("OCHK".utf8)), data.count >= 8 else {
          throw ChunkIndexUnavailable("bad object header continuation block")
        }
        data = Array(data[4..<(data.count - 4)])
      }
      var r = Reader(data)
      while true {
        let type: Int
        let size: Int
        if block.version == 1 {
          guard r.remaining >= 8 else { break }
          type = Int(try r.uint(2))
          size = Int(try r.uint(2))
          try r.skip(4)
        } else {
          guard r.remaining >= (block.creationOrder ? 6 : 4) else { break }
          type = Int(try r.u8())
          size = Int(try r.uint(2))
          try r.skip(block.creationOrder ? 3 : 1)
        }
        guard size <= r.remaining else { throw ChunkIndexUnavailable("object header message overruns its block") }
        let message = try r.take(size)
        if type == 0x10 {
          var c = Reader(message)
          let address = try c.uint(offsetSize)
          let length = Int(try c.uint(lengthSize))
          blocks.append((address, length, block.version, block.creationOrder, true))
        } else {
          try body(type, message)
        }
      }
    }
  }

  /// Walks the version-1 B-tree node at `node` (type 1: raw data chunks), calling `body(offset,
  /// address, size, mask)` for every chunk (offset in elements, slowest axis first).
  func walk(
    node: UInt64, rank: Int, depth: Int,
    _ body: ([Int], UInt64, UInt32, UInt32) throws(ChunkIndexUnavailable) -> Void
  ) throws(ChunkIndexUnavailable) {
    guard depth < 64 else { throw ChunkIndexUnavailable("B-tree too deep") }
    let headerSize = 8 + 2 * offsetSize
    let keySize = 8 + 8 * (rank + 1)
    let head = try bytes(at: node, count: headerSize)
    guard head.starts(with: Array("TREE".utf8)), head[4] == 1 else {
      throw ChunkIndexUnavailable("not a chunk B-tree node")
    }
    let level = Int(head[5])
    let entries = Int(head[6]) | Int(head[7]) << 8
    guard entries > 0 else { return }
    let data = try bytes(at: node + UInt64(headerSize), count: entries * (keySize + offsetSize) + keySize)
    var r = Reader(data)
    var offset = [Int](repeating: 0, count: rank)
    for _ in 0..<entries {
      let size = UInt32(try r.uint(4))
      let mask = UInt32(try r.uint(4))
      for d in 0..<rank { offset[d] = Int(try r.uint(8)) }
      try r.skip(8)
      let child = try r.uint(offsetSize)
      if level == 0 {
        try body(offset, child, size, mask)
      } else {
        try walk(node: child, rank: rank, depth: depth + 1, body)
      }
    }
  }
}

/// Sequential little-endian reads from a byte array.
private struct Reader {
  let bytes: [UInt8]
  var position = 0
  init(_ bytes: [UInt8]) { self.bytes = bytes }

  var remaining: Int { bytes.count - position }

  mutating func u8() throws(ChunkIndexUnavailable) -> UInt8 { UInt8(try uint(1)) }

  mutating func uint(_ size: Int) throws(ChunkIndexUnavailable) -> UInt64 {
    guard size <= remaining else { throw ChunkIndexUnavailable("structure ends early") }
    var v: UInt64 = 0
    for i in 0..<size { v |= UInt64(bytes[position + i]) << UInt64(8 * i) }
    position += size
    return v
  }

  mutating func skip(_ count: Int) throws(ChunkIndexUnavailable) {
    guard count <= remaining else { throw ChunkIndexUnavailable("structure ends early") }
    position += count
  }

  mutating func take(_ count: Int) throws(ChunkIndexUnavailable) -> [UInt8] {
    guard count <= remaining else { throw ChunkIndexUnavailable("structure ends early") }
    defer { position += count }
    return Array(bytes[position..<position + count])
  }
}
