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
