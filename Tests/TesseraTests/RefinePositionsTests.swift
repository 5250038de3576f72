import Foundation
import Testing

@testable import Tessera
@testable import TesseraIO
@testable import TesseraRegistration

@Suite struct RefinePositionsTests {
  /// RMS over tiles of |refined − true| in voxels, after removing the common offset (the solve
  /// fixes the mean correction, not the absolute position).
  static func rmsError(_ dataset: Dataset, _ truth: [[Double]], voxel: [Double]) -> Double {
    let rank = voxel.count
    var errors: [[Double]] = []
    for t in dataset.tiles {
      let v = dataset.views.first { $0.tile == t }!
      errors.append((0..<rank).map { (v.viewToWorld.translation[$0] - truth[t][$0]) / voxel[$0] })
    }
    let mean = (0..<rank).map { d in errors.map { $0[d] }.reduce(0, +) / Double(errors.count) }
    let squares = errors.map { e in (0..<rank).map { (e[$0] - mean[$0]) * (e[$0] - mean[$0]) }.reduce(0, +) }
    return (squares.reduce(0, +) / Double(squares.count)).squareRoot()
  }

  @Test(arguments: [
    SyntheticAcquisition(
      tileShape: [120, 140], grid: [3, 3], overlap: 0.2, channels: 2, voxelSize: [0.65, 0.65], jitter: 5, seed: 21),
    SyntheticAcquisition(
      tileShape: [32, 72, 80], grid: [2, 2, 2], overlap: 0.25, channels: 1, voxelSize: [1.5, 0.5, 0.5], jitter: 5,
      blobDensity: 3000, seed: 22),
  ])
  func recoversJitteredPositions(acquisition: SyntheticAcquisition) throws {
    let dir = TemporaryDirectory()
    let written = try acquisition.writeHDF5Tiles(to: dir.url.path, deflateLevel: nil)
    let (dataset, _) = try DatasetLoader.open(written.tiles)
    let before = Self.rmsError(dataset, acquisition.truePositions, voxel: acquisition.voxelSize)
    var options = RegistrationOptions(maxShift: Array(repeating: 12, count: acquisition.rank))
    options.threads = 2
    let (refined, report) = try RefinePositions.run(dataset, options: options)
    let after = Self.rmsError(refined, acquisition.truePositions, voxel: acquisition.voxelSize)
    print(
      "rank \(acquisition.rank): RMS error \(before) → \(after) voxels; \(report.accepted) accepted, \(report.rejected) rejected"
    )
    #expect(before > 2)
    #expect(after <= 0.25)
    #expect(report.tiles.allSatisfy { $0.source == .solved })
    // Channels of a tile moved together.
    for t in refined.tiles {
      let views = refined.views.filter { $0.tile == t }
      #expect(Set(views.map(\.viewToWorld)).count == 1)
    }
  }

  /// `--downsample 2` on tiles without stored pyramid levels block-averages each overlap region
  /// in memory (the regions are labelled with their place in the tile, not at 0: that trapped once)
  /// and still finds the positions, to the coarser grid's accuracy.
  @Test func downsampledInMemoryRecoversPositions() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(
      tileShape: [16, 96, 112], grid: [1, 2, 2], overlap: 0.25, channels: 1, voxelSize: [2, 0.5, 0.5], jitter: 4,
      blobDensity: 3000, seed: 24)
    let written = try a.writeHDF5Tiles(to: dir.url.path, deflateLevel: nil)
    let (dataset, _) = try DatasetLoader.open(written.tiles)
    var options = RegistrationOptions(maxShift: [4, 12, 12])
    options.downsample = 2
    let (refined, report) = try RefinePositions.run(dataset, options: options)
    #expect(report.accepted >= 3)
    #expect(Self.rmsError(dataset, a.truePositions, voxel: a.voxelSize) > 2)
    #expect(Self.rmsError(refined, a.truePositions, voxel: a.voxelSize) <= 0.5)
  }

  /// A rotated view is refused before any pair is measured, naming both views.
  @Test func rotatedViewsAreRefusedUpFront() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(
      tileShape: [60, 70], grid: [1, 2], overlap: 0.3, channels: 1, voxelSize: [1, 1], jitter: 1, seed: 25)
    let written = try a.writeHDF5Tiles(to: dir.url.path, deflateLevel: nil)
    var (dataset, _) = try DatasetLoader.open(written.tiles)
    let (c, s) = (0.8, 0.6)
    let rotation = try AffineTransform(matrix: [[c, -s, 0], [s, c, 0]])
    dataset.views[1].viewToWorld = compose(dataset.views[1].viewToWorld, rotation)
    expectError(["axis-aligned", dataset.views[0].name, dataset.views[1].name]) {
      _ = try RefinePositions.run(dataset, options: RegistrationOptions(maxShift: [8, 8]))
    }
  }

  /// Empty background tiles: their links are rejected, and they keep a sensible position (their
  /// neighbours' average correction), not a wild jump.
  @Test func emptyTilesAreRejectedAndStayPut() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(
      tileShape: [100, 120], grid: [3, 3], overlap: 0.2, channels: 1, voxelSize: [1, 1], jitter: 3, seed: 23)
    let written = try a.writeHDF5Tiles(to: dir.url.path, deflateLevel: nil)
    // Tile 4 (the centre) and tile 8 image only dark background: uniform noise, no structure.
    var rng = SplitMix64(seed: 5)
    for t in [4, 8] {
      let f = try HDF5File(path: written.tiles[t], mode: .readWrite)
      let d = try f.dataset("ch0")
      var noise = VolumeBuffer<UInt16>(shape: d.shape)
      for i in noise.storage.indices { noise.storage[i] = UInt16(100 + rng.next() % 20) }
      try d.write(noise)
    }
    let (dataset, _) = try DatasetLoader.open(written.tiles)
    var options = RegistrationOptions(maxShift: [8, 8])
    options.threads = 2
    let (refined, report) = try RefinePositions.run(dataset, options: options)
    for link in report.links where link.tiles.contains(4) || link.tiles.contains(8) {
      #expect(!link.accepted, "link \(link.tiles) with correlation \(link.correlation ?? .nan) was accepted")
      #expect(link.reason != nil)
    }
    for t in [4, 8] {
      let tile = report.tiles.first { $0.tile == t }!
      #expect(tile.links == 0)
      #expect(tile.source == .fromNeighbours)
      // No wild jump: within the stage error (3 voxels) of the stated position, plus the solve's spread.
      let moved = zip(refined.views[t].viewToWorld.translation, dataset.views[t].viewToWorld.translation).map {
        abs($0 - $1)
      }
      #expect(moved.allSatisfy { $0 <= 6 }, "tile \(t) moved \(moved)")
    }
  }

  /// A channel no view has (the library call; the command refuses it first): an empty report,
  /// not a trap.
  @Test func aChannelWithoutViewsRegistersNothing() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(tileShape: [40, 40], grid: [1, 2], overlap: 0.2, channels: 1, voxelSize: [1, 1])
    let written = try a.writeHDF5Tiles(to: dir.url.path, deflateLevel: nil)
    let (dataset, _) = try DatasetLoader.open(written.tiles)
    var options = RegistrationOptions(maxShift: [4, 4])
    options.channel = 3
    let report = try TileRegistration.register(dataset, options: options)
    #expect(report.links.isEmpty && report.tiles.isEmpty && report.accepted == 0)
  }

  /// Refine, then fuse: the fused image matches the ground truth better than fusing the stated
  /// positions.
  @Test func refineThenFuseBeatsStatedPositions() throws {
    let dir = TemporaryDirectory()
    let a = SyntheticAcquisition(
      tileShape: [90, 100], grid: [2, 2], overlap: 0.25, channels: 1, voxelSize: [1, 1], jitter: 4, seed: 24)
    let written = try a.writeHDF5Tiles(to: dir.url.path, deflateLevel: nil)
    let (dataset, _) = try DatasetLoader.open(written.tiles)
    let (refined, _) = try RefinePositions.run(dataset, options: RegistrationOptions(maxShift: [10, 10]))
    let truth = try groundTruth(dir, channel: 0).converted(to: Float.self)
    func fusedError(_ d: Dataset, _ name: String) throws -> Double {
      var options = FusionOptions()
      options.pyramidLevels = 1
      options.threads = 2
      // Fuse on the ground truth's grid: tile 0's true position is the origin.
      let t0 = d.views[0].viewToWorld.translation
      let shift = zip(a.truePositions[0], t0).map { $0 - $1 }
      var aligned = d
      for i in aligned.views.indices {
        aligned.views[i].viewToWorld = compose(AffineTransform(translation: shift), aligned.views[i].viewToWorld)
      }
      options.bbox = (a.volumeShape.map { _ in -0.5 }, a.volumeShape.map { Double($0) - 0.5 })
      let job = try FusionJob(dataset: aligned, options: options)
      _ = try job.run(output: dir.path(name)) { _ in }
      let fused = try ZarrArray.open(dir.path(name) + "/0").read(Box(shape: [1] + a.volumeShape)).converted(
        to: Float.self)
      var sum = 0.0
      for i in truth.storage.indices { sum += abs(Double(fused.storage[i] - truth.storage[i])) }
      return sum / Double(truth.count)
    }
    let stated = try fusedError(dataset, "stated.zarr")
    let corrected = try fusedError(refined, "refined.zarr")
    print("mean |fused − truth|: stated \(stated), refined \(corrected)")
    #expect(corrected < stated / 2)
  }
}
