import Foundation
import Testing

@testable import Tessera
@testable import TesseraIO

@Suite struct ManifestAndAttributeTests {
  static let acquisition = SyntheticAcquisition(
    tileShape: [8, 32, 40], grid: [1, 2, 2], overlap: 0.2, channels: 2, voxelSize: [3.0, 0.8, 0.8], jitter: 2,
    seed: 4)

  @Test func attributePositionedTilesLoadWithoutAManifest() throws {
    let dir = TemporaryDirectory()
    let a = Self.acquisition
    let written = try a.writeHDF5Tiles(to: dir.url.path)
    let (dataset, _) = try DatasetLoader.open(written.tiles)
    #expect(dataset.format == HDF5TileFiles.name && dataset.format == "hdf5Attributes")
    #expect(dataset.views.count == 8)
    #expect(dataset.tiles == [0, 1, 2, 3])
    #expect(dataset.channels == [0, 1])
    let truth = try (0..<2).map { try groundTruth(dir, channel: $0) }
    for v in dataset.views {
      #expect(v.voxelSize == [3.0, 0.8, 0.8])
      #expect(v.viewToWorld == AffineTransform(scale: [3.0, 0.8, 0.8], translation: a.statedPositions[v.tile]))
      let box = Box(lower: [1, 3, 5], upper: [7, 30, 39])
      #expect(
        try v.read(box).converted(to: UInt16.self)
          == truth[v.channel].extracting(box.translated(by: a.trueOrigins[v.tile])).moved(to: box.lower))
    }
    let bounds = dataset.worldBounds!
    let minPos = (0..<3).map { d in a.statedPositions.map { $0[d] }.min()! }
    #expect(zip(bounds.lower, minPos).enumerated().allSatisfy { abs($1.0 - ($1.1 - 0.5 * a.voxelSize[$0])) < 1e-9 })
  }

  @Test func manifestWithStageAxesAndAffines() throws {
    let dir = TemporaryDirectory()
    _ = try Self.acquisition.writeHDF5Tiles(to: dir.url.path)
    let manifest = """
      {
        "tessera_manifest": 1,
        "voxel_size_um": [3.0, 0.8, 0.8],
        "stage_axes": ["x", "-y", "z"],
        "tiles": [
          {"file": "tile_000.h5", "dataset": "ch0", "tile": 7, "channel": 1, "position_um": [10, 20, 30]},
          {"file": "tile_001.h5", "dataset": "ch1", "position_um": [1, 2, 3], "voxel_size_um": [2, 1, 1],
           "stage_axes": ["z", "y", "x"]},
          {"file": "tile_002.h5", "dataset": "ch0", "affine": [[3, 0, 0, 5], [0, 0.8, 0.1, 6], [0, 0, 0.8, 7]]}
        ]
      }
      """
    try manifest.write(toFile: dir.path("m.json"), atomically: true, encoding: .utf8)
    let d = try TileManifest.load(dir.path("m.json"))
    #expect(d.views.count == 3)
    #expect(d.views[0].tile == 7 && d.views[0].channel == 1)
    #expect(d.views[1].tile == 1 && d.views[1].channel == 0)
    // Stage x,−y,z → image z,y,x: position (10, 20, 30) is x=10, y=−20, z=30.
    #expect(d.views[0].viewToWorld.translation == [30, -20, 10])
    #expect(d.views[1].viewToWorld == AffineTransform(scale: [2, 1, 1], translation: [1, 2, 3]))
    #expect(d.views[2].viewToWorld[1, 2] == 0.1)
    #expect(d.views[2].viewToWorld.translation == [5, 6, 7])
    // Round trip through a written manifest, from another directory.
    try FileManager.default.createDirectory(atPath: dir.path("sub"), withIntermediateDirectories: true)
    var changed = d
    changed.views[1].viewToWorld = compose(AffineTransform(translation: [0, 0.25, -1]), d.views[1].viewToWorld)
    try DatasetLoader.save(changed, to: dir.path("sub/new.json"), transformName: "x")
    let again = try TileManifest.load(dir.path("sub/new.json"))
    for (a, b) in zip(changed.views, again.views) {
      #expect(a.viewToWorld == b.viewToWorld)
      #expect(a.tile == b.tile && a.channel == b.channel)
      #expect(
        try a.read(Box(shape: [1, 2, 3])).converted(to: Float.self)
          == b.read(Box(shape: [1, 2, 3])).converted(to: Float.self))
    }
  }

  @Test func parallelChunkDecodeMatchesHDF5Read() throws {
    let dir = TemporaryDirectory()
    let f = try HDF5File(path: dir.path("c.h5"), mode: .truncate)
    var rng = SplitMix64(seed: 99)
    let box = Box(shape: [9, 37, 50])
    var v = VolumeBuffer<UInt16>(box: box)
    for i in v.storage.indices { v.storage[i] = UInt16(truncatingIfNeeded: rng.next() >> 50) &+ UInt16(i / 100) }
    let layouts: [(String, [Int]?, Int?, Bool)] = [
      ("gzip+shuffle", [4, 16, 16], 3, true), ("gzip", [3, 10, 25], 1, false), ("raw chunks", [5, 8, 8], nil, false),
      ("contiguous", nil, nil, false),
    ]
    for (name, chunks, level, shuffle) in layouts {
      let d = try f.createDataset(
        name, elementType: .uint16, shape: box.shape, chunkShape: chunks, deflateLevel: level, shuffle: shuffle)
      // Leave the last z-plane unwritten in chunked layouts: missing chunks read as 0.
      try d.write(chunks == nil ? v : v.extracting(Box(lower: [0, 0, 0], upper: [8, 37, 50])))
      var expected = v
      if chunks != nil {
        for z in 8..<9 { Box(lower: [z, 0, 0], upper: [z + 1, 37, 50]).forEachIndex { expected[$0] = 0 } }
      }
      #expect(d.decodesChunksItself == (chunks != nil), "\(name)")
      for _ in 0..<20 {
        let lo = (0..<3).map { Int.random(in: 0..<box.shape[$0], using: &rng) }
        let hi = (0..<3).map { Int.random(in: (lo[$0] + 1)...box.shape[$0], using: &rng) }
        let b = Box(lower: lo, upper: hi)
        let fast = try d.readBlock(b).converted(to: UInt16.self)
        let slow = try d.read(b, as: UInt16.self)
        #expect(fast == expected.extracting(b), "\(name) \(b)")
        if chunks == nil || !b.contains(Box(lower: [8, 0, 0], upper: [9, 1, 1])) { #expect(slow == fast) }
      }
    }
  }

  /// Contiguous datasets in files opened read-only are read with pread, bypassing HDF5: whole
  /// spans or row by row (rows more than 8 KiB apart), in 1-D, 2-D and 3-D; a truncated file is a
  /// clear error.
  @Test func contiguousReadsBypassHDF5() throws {
    let dir = TemporaryDirectory()
    var rng = SplitMix64(seed: 7)
    var volumes: [String: VolumeBuffer<UInt16>] = [:]
    do {
      let f = try HDF5File(path: dir.path("c.h5"), mode: .truncate)
      for (name, shape) in [("d1", [300]), ("d2", [40, 70]), ("d3", [5, 20, 33]), ("wide", [3, 6, 9000])] {
        var v = VolumeBuffer<UInt16>(shape: shape)
        for i in v.storage.indices { v.storage[i] = UInt16(truncatingIfNeeded: rng.next() >> 48) }
        let d = try f.createDataset(name, elementType: .uint16, shape: shape)
        try d.write(v)
        #expect(d.contiguousOffset == nil, "files open for writing go through HDF5")
        volumes[name] = v
      }
    }
    let f = try HDF5File(path: dir.path("c.h5"))
    for (name, v) in volumes {
      let d = try f.dataset(name)
      #expect(d.contiguousOffset != nil, "\(name)")
      for _ in 0..<25 {
        let lo = v.shape.indices.map { Int.random(in: 0..<v.shape[$0], using: &rng) }
        let hi = v.shape.indices.map { Int.random(in: (lo[$0] + 1)...v.shape[$0], using: &rng) }
        let b = Box(lower: lo, upper: hi)
        #expect(try d.readBlock(b).converted(to: UInt16.self) == v.extracting(b), "\(name) \(b)")
      }
    }
    // Cut the file inside the last dataset's data.
    let path = dir.path("c.h5")
    let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
    #expect(truncate(path, off_t(size - 1000)) == 0)
    let cut = try HDF5File(path: path).dataset("wide")
    #expect(throws: HDF5Error.self) { try cut.readBlock(cut.bounds) }
  }
}
