/// Little-endian reads of HDF5 structures straight from the file.
struct FileBytes {
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

extension FileBytes {
  /// Sequential little-endian reads from a byte array.
  struct Reader {
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
}
