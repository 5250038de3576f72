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
/// directly from the file, once: the dataset's object header gives the layout message (version
/// 3) and the root of its version-1 B-tree (the chunk index of every file written in HDF5's
/// default format, by h5py, BigDataViewer and Tessera), and one walk over the B-tree's nodes
/// lists all chunks in linear time. Layout version 4 (the 1.10 format, whose chunk indexes are
/// single chunk, implicit, fixed or extensible arrays and version-2 B-trees) is not parsed. The
/// result is checked against HDF5 (`H5Dget_num_chunks`, and the first chunk's
/// `H5Dget_chunk_info`) and every address, size and node against the file; any other index
/// kind, any disagreement or anything corrupt leaves the dataset on the per-chunk HDF5 path.
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

/// Why the chunk index could not be read. The dataset then stays on HDF5's per-chunk calls,
/// unless the index is damaged or unreadable (``isFatal``): HDF5 1.10's own B-tree code is not
/// safe on a damaged tree (a node pointing back to itself recurses until the stack overflows),
/// so reads of such a dataset end in an ``HDF5Error`` instead.
struct ChunkIndexUnavailable: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }

  /// The prefix of a damaged B-tree's description.
  static let damaged = "the chunk B-tree is damaged: "
  /// The prefix of a failed read's description.
  static let readFailed = "reading the chunk index failed: "

  /// True if the B-tree is damaged or could not be read (no fallback to HDF5).
  static func isFatal(_ description: String) -> Bool {
    description.hasPrefix(damaged) || description.hasPrefix(readFailed)
  }

  /// This error as damage to the B-tree (a read failure stays one).
  var asDamage: ChunkIndexUnavailable {
    Self.isFatal(description) ? self : ChunkIndexUnavailable(Self.damaged + description)
  }
}

extension HDF5ChunkIndex {
  /// What HDF5 tells about a dataset before its B-tree is walked (gathered under the HDF5 lock).
  struct Facts {
    /// The dataset, for HDF5's cross-check once the B-tree has been walked.
    var dataset: hid_t
    var objectHeader: UInt64
    var baseAddress: UInt64
    var offsetSize: Int
    var lengthSize: Int
    /// Bytes per stored element (a decoded chunk holds `chunkShape.product × elementSize`).
    var elementSize: Int
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
    let type = H5Dget_type(dataset)
    guard type >= 0 else { throw ChunkIndexUnavailable("H5Dget_type failed") }
    let elementSize = H5Tget_size(type)
    _ = H5Tclose(type)
    guard elementSize > 0, elementSize <= 64 else { throw ChunkIndexUnavailable("element size \(elementSize)") }
    return Facts(
      dataset: dataset, objectHeader: UInt64(info.addr), baseAddress: UInt64(userblock), offsetSize: offsetSize,
      lengthSize: lengthSize, elementSize: elementSize)
  }

  /// HDF5's own count of stored chunks, and its first chunk (call under the HDF5 lock, only
  /// after the B-tree passed ``read(facts:grid:descriptor:)``'s checks: both calls walk it).
  static func hdf5View(of dataset: hid_t, rank: Int) throws(ChunkIndexUnavailable) -> (
    count: Int, first: (offset: [Int], address: UInt64, size: UInt64, mask: UInt32)?
  ) {
    let space = H5Dget_space(dataset)
    defer { _ = H5Sclose(space) }
    var count: hsize_t = 0
    guard H5Dget_num_chunks(dataset, space, &count) >= 0, let chunkCount = Int(exactly: count) else {
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
      let elementOffset = offset.compactMap { Int(exactly: $0) }
      guard elementOffset.count == rank else { throw ChunkIndexUnavailable("H5Dget_chunk_info: offset \(offset)") }
      first = (elementOffset, UInt64(address), UInt64(size), mask)
    }
    return (chunkCount, first)
  }

  /// The largest stored size accepted for a chunk that decodes to `chunkBytes`: deflate's
  /// worst-case expansion of incompressible data (5 bytes per 16 KiB block plus the zlib
  /// header) is well inside `chunkBytes / 1000 + 64 KiB`.
  static func maximumStoredSize(chunkBytes: Int) -> Int { chunkBytes + chunkBytes / 1000 + 65536 }

  /// Reads the index of a dataset with `grid` from the file behind `descriptor` (no HDF5 call).
  ///
  /// Every value read from the file is checked before use: addresses and sizes against the
  /// file's size, child nodes one level below their parent, the number of nodes against the
  /// chunk grid, every chunk on the grid and listed once, every stored size plausible for the
  /// decoded chunk. Only then is HDF5 asked for its count and first chunk (both walk the tree).
  /// A corrupt or hostile file therefore ends in ``ChunkIndexUnavailable`` (fatal for a damaged
  /// B-tree, see ``ChunkIndexUnavailable/isFatal(_:)``), never in a trap, a loop or a huge
  /// allocation.
  static func read(
    facts: Facts, grid: ChunkGrid, descriptor: Int32
  ) throws(ChunkIndexUnavailable) -> HDF5ChunkIndex {
    var status = stat()
    guard fstat(descriptor, &status) == 0, status.st_size >= 0 else {
      throw ChunkIndexUnavailable("fstat failed (\(String(cString: strerror(errno))))")
    }
    let file = FileBytes(
      descriptor: descriptor, fileSize: UInt64(status.st_size), base: facts.baseAddress, offsetSize: facts.offsetSize,
      lengthSize: facts.lengthSize)
    // HDF5 refuses to write chunks of 4 GiB or more: a larger chunk shape is damage (and would
    // be allocated per chunk read).
    var chunkBytes = facts.elementSize
    for n in grid.chunkShape {
      let (v, overflow) = chunkBytes.multipliedReportingOverflow(by: n)
      guard !overflow, v < 1 << 32 else {
        throw ChunkIndexUnavailable(
          ChunkIndexUnavailable.damaged
            + "chunks of \(grid.chunkShape) × \(facts.elementSize) bytes exceed HDF5's 4 GiB chunk limit")
      }
      chunkBytes = v
    }
    // The index takes 16 bytes per chunk of the grid, stored or not: a grid far larger than the
    // file (a sparse or a damaged dataspace) stays on HDF5's per-chunk path. (Counted here with
    // overflow checks: a damaged dataspace can make `grid.chunkCount` overflow.)
    let chunkLimit = 1 << 20 + Int(status.st_size) / 8
    var chunkCount = 1
    for n in grid.gridShape {
      let (v, overflow) = chunkCount.multipliedReportingOverflow(by: n)
      guard !overflow, v <= chunkLimit else {
        throw ChunkIndexUnavailable("a grid of \(grid.gridShape) chunks in a file of \(status.st_size) bytes")
      }
      chunkCount = v
    }
    let maximumSize = UInt64(maximumStoredSize(chunkBytes: chunkBytes))
    let root = try file.chunkBTreeRoot(objectHeader: facts.objectHeader, rank: grid.rank)
    var index = HDF5ChunkIndex(
      addresses: [UInt64](repeating: unallocated, count: chunkCount),
      sizes: [UInt32](repeating: 0, count: chunkCount), masks: [UInt32](repeating: 0, count: chunkCount))
    var found = 0
    if root != file.undefined {
      // Every chunk found is a distinct position on the grid, so at most `chunkCount`.
      var walk = FileBytes.Walk(rank: grid.rank, chunkCount: chunkCount)
      do throws(ChunkIndexUnavailable) {
        try file.walk(node: root, expectedLevel: nil, &walk) {
          offset, address, size, mask throws(ChunkIndexUnavailable) in
          found += 1
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
          guard size > 0, UInt64(size) <= maximumSize else {
            throw ChunkIndexUnavailable(
              "chunk \(offset) stored in \(size) bytes, implausible for \(chunkBytes) bytes decoded")
          }
          let absolute = try file.absolute(address, count: UInt64(size), what: "chunk \(offset)")
          guard absolute != unallocated else { throw ChunkIndexUnavailable("chunk \(offset) at an undefined address") }
          index.addresses[linear] = absolute
          index.sizes[linear] = size
          index.masks[linear] = mask
        }
      } catch {
        throw error.asDamage
      }
    }
    let view = try HDF5Library.withLock {
      Result { () throws(ChunkIndexUnavailable) in try hdf5View(of: facts.dataset, rank: grid.rank) }
    }.get()
    guard found == view.count else {
      throw ChunkIndexUnavailable("B-tree lists \(found) chunks, HDF5 counts \(view.count)")
    }
    if let first = view.first {
      guard first.offset.count == grid.rank, grid.rank == grid.shape.count,
        zip(first.offset, grid.shape).allSatisfy({ $0 >= 0 && $0 < $1 })
      else { throw ChunkIndexUnavailable("H5Dget_chunk_info: chunk offset \(first.offset) outside the dataset") }
      let c = grid.chunk(containing: first.offset)
      let linear = grid.linearIndex(ofChunk: c)
      let (expected, overflow) = first.address.addingReportingOverflow(facts.baseAddress)
      guard !overflow, index.addresses[linear] == expected, UInt64(index.sizes[linear]) == first.size,
        index.masks[linear] == first.mask
      else { throw ChunkIndexUnavailable("B-tree disagrees with H5Dget_chunk_info on chunk \(first.offset)") }
    }
    return index
  }
}

/// Little-endian reads of HDF5 structures straight from the file.
private struct FileBytes {
  let descriptor: Int32
  /// The file's size in bytes (`fstat`, once): no structure or chunk may reach beyond it.
  let fileSize: UInt64
  let base: UInt64
  let offsetSize: Int
  let lengthSize: Int

  var undefined: UInt64 { offsetSize == 8 ? .max : (UInt64(1) << UInt64(offsetSize * 8)) - 1 }

  /// The absolute file offset of relative address `address`, checked that `count` bytes from
  /// there lie inside the file.
  func absolute(_ address: UInt64, count: UInt64, what: @autoclosure () -> String) throws(ChunkIndexUnavailable)
    -> UInt64
  {
    let (start, o1) = base.addingReportingOverflow(address)
    let (end, o2) = start.addingReportingOverflow(count)
    guard !o1, !o2, end <= fileSize else {
      throw ChunkIndexUnavailable("\(what()) at address \(address) (\(count) bytes) lies beyond the file's end")
    }
    return start
  }

  /// `address + delta`, or `ChunkIndexUnavailable` if that overflows.
  func offset(_ address: UInt64, by delta: Int) throws(ChunkIndexUnavailable) -> UInt64 {
    let (v, o) = address.addingReportingOverflow(UInt64(delta))
    guard !o else { throw ChunkIndexUnavailable("address \(address) + \(delta) overflows") }
    return v
  }

  /// `count` bytes at relative address `address`.
  func bytes(at address: UInt64, count: Int) throws(ChunkIndexUnavailable) -> [UInt8] {
    guard count > 0, count < 1 << 26 else { throw ChunkIndexUnavailable("implausible structure size \(count)") }
    let start = try absolute(address, count: UInt64(count), what: "a \(count)-byte structure")
    guard let position = Int(exactly: start) else { throw ChunkIndexUnavailable("address \(start) too large") }
    var out = [UInt8](repeating: 0, count: count)
    let outcome = out.withUnsafeMutableBytes { preadAll(descriptor, $0.baseAddress!, count, at: position) }
    switch outcome {
    case .complete: return out
    case .endOfFile(let at): throw ChunkIndexUnavailable("the file ends inside its chunk index (at byte \(at))")
    case .failed(let code): throw ChunkIndexUnavailable(ChunkIndexUnavailable.readFailed + systemError(code))
    }
  }

  /// The address of the version-1 B-tree that indexes the chunks of the dataset whose object
  /// header is at `objectHeader`, from its data layout message. Only layout version 3 has
  /// version-1 B-tree chunk indexes; layout version 4 (the 1.10 format) indexes chunks by single
  /// chunk (1), implicit (2), fixed array (3), extensible array (4) or version-2 B-tree (5),
  /// none of which is parsed here.
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
      let type = try r.u8()
      let names: [UInt8: String] = [
        1: "single chunk", 2: "implicit", 3: "fixed array", 4: "extensible array", 5: "version-2 B-tree",
      ]
      throw ChunkIndexUnavailable(
        "layout version 4 chunk index type \(type) (\(names[type] ?? "unknown")) is not a version-1 B-tree")
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
      blocks.append((try offset(objectHeader, by: 16), size, 1, false, false))
    } else if prefix.starts(with: Array("OHDR".utf8)), prefix[4] == 2 {
      let flags = prefix[5]
      var header = 6
      if flags & 0x20 != 0 { header += 16 }
      if flags & 0x10 != 0 { header += 4 }
      let head = try bytes(at: objectHeader, count: header + 8)
      var r = Reader(head)
      try r.skip(header)
      guard let size = Int(exactly: try r.uint(1 << Int(flags & 3))) else {
        throw ChunkIndexUnavailable("implausible object header size")
      }
      let start = try offset(objectHeader, by: header + (1 << Int(flags & 3)))
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
          guard let length = Int(exactly: try c.uint(lengthSize)) else {
            throw ChunkIndexUnavailable("implausible object header continuation length")
          }
          blocks.append((address, length, block.version, block.creationOrder, true))
        } else {
          try body(type, message)
        }
      }
    }
  }

  /// The state of one B-tree walk: how many nodes it may still visit.
  struct Walk {
    let rank: Int
    /// Chunks the grid has room for: every leaf lists at least one distinct chunk, so a tree
    /// whose root is at level L has at most `(chunkCount + 1) × (L + 1)` nodes; more means
    /// shared or looping children.
    let chunkCount: Int
    var nodes = 0
    var nodeLimit = 0
  }

  /// The deepest root level accepted (HDF5 trees of millions of chunks have a handful).
  static let maximumLevel = 32

  /// Walks the version-1 B-tree node at `node` (type 1: raw data chunks), calling `body(offset,
  /// address, size, mask)` for every chunk (offset in elements, slowest axis first). The root is
  /// walked with `expectedLevel` nil; every child must lie exactly one level below its parent,
  /// which bounds the depth by the root's level and rules out cycles.
  func walk(
    node: UInt64, expectedLevel: Int?, _ state: inout Walk,
    _ body: ([Int], UInt64, UInt32, UInt32) throws(ChunkIndexUnavailable) -> Void
  ) throws(ChunkIndexUnavailable) {
    let rank = state.rank
    let headerSize = 8 + 2 * offsetSize
    let keySize = 8 + 8 * (rank + 1)
    let head = try bytes(at: node, count: headerSize)
    guard head.starts(with: Array("TREE".utf8)), head[4] == 1 else {
      throw ChunkIndexUnavailable("not a chunk B-tree node at address \(node)")
    }
    let level = Int(head[5])
    if let expectedLevel {
      guard level == expectedLevel else {
        throw ChunkIndexUnavailable(
          "B-tree node at address \(node) has level \(level), its parent expects \(expectedLevel)")
      }
    } else {
      guard level <= Self.maximumLevel else { throw ChunkIndexUnavailable("B-tree root level \(level) too deep") }
      state.nodeLimit = (state.chunkCount + 1) * (level + 1)
    }
    state.nodes += 1
    guard state.nodes <= state.nodeLimit else {
      throw ChunkIndexUnavailable("B-tree has more than \(state.nodeLimit) nodes for \(state.chunkCount) chunks")
    }
    let entries = Int(head[6]) | Int(head[7]) << 8
    guard entries > 0 else {
      if expectedLevel == nil { return }  // an empty root: no chunk written
      throw ChunkIndexUnavailable("empty B-tree node at address \(node)")
    }
    let data = try bytes(at: try offset(node, by: headerSize), count: entries * (keySize + offsetSize) + keySize)
    var r = Reader(data)
    var offset = [Int](repeating: 0, count: rank)
    for _ in 0..<entries {
      let size = UInt32(try r.uint(4))
      let mask = UInt32(try r.uint(4))
      for d in 0..<rank {
        guard let o = Int(exactly: try r.uint(8)) else {
          throw ChunkIndexUnavailable("chunk offset out of range in the B-tree node at address \(node)")
        }
        offset[d] = o
      }
      try r.skip(8)
      let child = try r.uint(offsetSize)
      if level == 0 {
        try body(offset, child, size, mask)
      } else {
        try walk(node: child, expectedLevel: level - 1, &state, body)
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
