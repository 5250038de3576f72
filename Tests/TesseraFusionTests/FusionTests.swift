import Foundation
import Testing

@testable import TesseraCore
@testable import TesseraFusion

@Suite struct FusionTests {
  static func noise(_ shape: [Int], seed: UInt64) -> VolumeBuffer<Float> {
    var rng = SeedRNG(seed)
    var v = VolumeBuffer<Float>(shape: shape)
    for i in v.storage.indices { v.storage[i] = Float(Int.random(in: 0...60000, using: &rng)) + 0.25 }
    return v
  }

  @Test(arguments: [[13, 21], [7, 11, 19]], [ElementType.uint16, .float32])
  func identityReproducesTheInputExactly(shape: [Int], type: ElementType) throws {
    let f = Self.noise(shape, seed: 3)
    let data = type == .uint16 ? AnyVolumeBuffer(f.converted(to: UInt16.self)) : AnyVolumeBuffer(f)
    let voxel = shape.count == 3 ? [2.0, 0.5, 0.5] : [0.5, 0.5]
    let view = TestView(
      data: data, viewToWorld: AffineTransform(scale: voxel, translation: voxel.map { $0 * 3 }), tile: 0)
    let lower = voxel.map { $0 * 3 - 0.5 * $0 }
    let upper = zip(lower, zip(shape, voxel)).map { $0 + Double($1.0) * $1.1 }
    let grid = OutputGrid(lower: lower, upper: upper, voxelSize: voxel)
    #expect(grid.shape == shape)
    for blend in BlendMode.allCases {
      for interpolation in Interpolation.allCases {
        let out = try fuse(
          [view], grid: grid, blockShape: shape.map { max(1, $0 / 2) }, blend: blend, interpolation: interpolation,
          outputType: type)
        #expect(bytesEqual(out[0], data), "\(blend) \(interpolation)")
      }
    }
  }

  /// Tiles cut at integer positions from one volume fuse back to it exactly, for every blend
  /// mode, in 2-D and 3-D, per channel.
  @Test(arguments: [2, 3])
  func integerTilesFuseToTheVolume(rank: Int) throws {
    let volumeShape = rank == 3 ? [9, 40, 50] : [40, 50]
    let tile = rank == 3 ? [9, 24, 30] : [24, 30]
    let origins: [[Int]] =
      rank == 3 ? [[0, 0, 0], [0, 0, 20], [0, 16, 0], [0, 16, 20]] : [[0, 0], [0, 20], [16, 0], [16, 20]]
    let voxel = rank == 3 ? [3.0, 0.7, 0.7] : [0.7, 0.7]
    let volumes = (0..<2).map { Self.noise(volumeShape, seed: UInt64(10 + $0)).converted(to: UInt16.self) }
    var views: [TestView] = []
    for (t, o) in origins.enumerated() {
      for c in 0..<2 {
        var piece = volumes[c].extracting(Box(origin: o, shape: tile))
        piece.move(to: Array(repeating: 0, count: rank))
        views.append(
          TestView(
            data: AnyVolumeBuffer(piece),
            viewToWorld: AffineTransform(scale: voxel, translation: zip(o, voxel).map { Double($0) * $1 }), tile: t,
            channel: c))
      }
    }
    let grid = OutputGrid(
      lower: voxel.map { -0.5 * $0 }, upper: zip(volumeShape, voxel).map { (Double($0) - 0.5) * $1 }, voxelSize: voxel)
    #expect(grid.shape == volumeShape)
    for blend in BlendMode.allCases {
      let out = try fuse(views, grid: grid, blockShape: tile.map { $0 / 2 + 1 }, blend: blend, outputType: .uint16)
      for c in 0..<2 { #expect(bytesEqual(out[c], AnyVolumeBuffer(volumes[c])), "\(blend) channel \(c)") }
    }
  }

  /// Tiles sampled from a smooth field at subpixel positions (and with small rotations) fuse to
  /// the field within the error of linear interpolation. Tiles are sampled from the field exactly,
  /// so the only error is fusion's one interpolation, h²/8 · Σ_d max|∂²f/∂x_d²| at worst. With
  /// blobs of σ ≥ 4 voxels that is under 1 % of the peak intensity; measured: max 0.6 %, RMS
  /// 0.11 % (2-D) and max 0.5 %, RMS 0.16 % (3-D). We require max ≤ 1 % and RMS ≤ 0.25 % of the
  /// peak. (That fusion computes exactly multilinear interpolation is checked separately, against
  /// a naive reference.)
  @Test(arguments: [(2, 0.0), (3, 0.0), (2, 3.0), (3, 2.0)])
  func subpixelAndRotatedTilesMatchTheField(rank: Int, degrees: Double) throws {
    let extent = rank == 3 ? [12.0, 60, 60] : [60.0, 60]
    let field = BlobField(rank: rank, extent: extent, count: rank == 3 ? 60 : 30, seed: 5)
    let tile = rank == 3 ? [12, 36, 36] : [36, 36]
    let offsets: [[Double]] =
      rank == 3
      ? [[0, 0.3, 0.6], [0, 0.3, 24.45], [0, 24.7, 0.2], [0, 24.1, 24.9]]
      : [[0.3, 0.6], [0.3, 24.45], [24.7, 0.2], [24.1, 24.9]]
    let angle = degrees * .pi / 180
    var views: [TestView] = []
    for (t, o) in offsets.enumerated() {
      var linear = (0..<rank).map { r in (0..<rank).map { c in r == c ? 1.0 : 0 } }
      // Rotate in the y,x plane about the tile centre (alternating sign per tile).
      let a = t % 2 == 0 ? angle : -angle
      let (y, x) = (rank - 2, rank - 1)
      linear[y][y] = cos(a)
      linear[y][x] = -sin(a)
      linear[x][y] = sin(a)
      linear[x][x] = cos(a)
      let centre = tile.map { Double($0 - 1) / 2 }
      let rotated = linear.map { row in zip(row, centre).map { $0 * $1 }.reduce(0, +) }
      let translation = (0..<rank).map { o[$0] + centre[$0] - rotated[$0] }
      let t2w = try AffineTransform(linear: linear, translation: translation)
      views.append(
        TestView(data: AnyVolumeBuffer(field.render(shape: tile, viewToWorld: t2w)), viewToWorld: t2w, tile: t))
    }
    let grid = OutputGrid(lower: extent.map { _ in 2 }, upper: extent.map { $0 - 2 }, voxelSize: extent.map { _ in 1 })
    let out = try fuse(views, grid: grid, blockShape: grid.shape.map { min($0, 16) }, outputType: .float32)[0]
      .converted(to: Float.self)
    var maxError = 0.0
    var peak = 0.0
    var sumSquares = 0.0
    var n = 0
    grid.bounds.forEachIndex { q in
      let v = Double(out[q])
      guard v > 0 else { return }  // not covered (corners of rotated tiles)
      let truth = field.value(grid.outputToWorld.apply(q))
      peak = max(peak, truth)
      let e = abs(v - truth)
      maxError = max(maxError, e)
      sumSquares += e * e
      n += 1
    }
    let rms = (sumSquares / Double(n)).squareRoot()
    print("rank \(rank) rotation \(degrees)°: max error \(maxError), RMS \(rms), field peak \(peak)")
    #expect(n > grid.bounds.volume * 9 / 10)
    #expect(maxError <= 0.01 * peak, "max error \(maxError) of peak \(peak)")
    #expect(rms <= 0.0025 * peak, "rms \(rms) of peak \(peak)")
  }

  /// With `first` blending, each output voxel is exactly the multilinear (or nearest) sample of
  /// the lowest covering tile, computed here the naive way in Double.
  @Test(arguments: Interpolation.allCases)
  func fusionIsExactlyPullResampling(interpolation: Interpolation) throws {
    var views: [TestView] = []
    for t in 0..<3 {
      let a = Double(t - 1) * 0.07
      let t2w = try AffineTransform(
        linear: [[1.1, 0, 0.02], [0, cos(a), -sin(a) * 0.9], [0.01, sin(a), cos(a) * 0.9]],
        translation: [0.3 * Double(t), Double(t) * 9.7, Double(t) * 5.2])
      views.append(
        TestView(data: AnyVolumeBuffer(Self.noise([7, 15, 16], seed: UInt64(t))), viewToWorld: t2w, tile: t))
    }
    let grid = OutputGrid(lower: [-1, -2, -3], upper: [9, 36, 28], voxelSize: [1, 0.8, 0.9])
    let out = try fuse(views, grid: grid, blockShape: [4, 8, 8], blend: .first, interpolation: interpolation)[0]
      .converted(to: Float.self)
    let inverses = try views.map { try compose($0.viewToWorld.inverse(), grid.outputToWorld) }
    var covered = 0
    grid.bounds.forEachIndex { q in
      var expected = 0.0
      for (i, v) in views.enumerated() {
        let p = inverses[i].apply(q)
        let n = v.data.box.shape
        guard (0..<3).allSatisfy({ p[$0] >= -0.5 && p[$0] < Double(n[$0]) - 0.5 }) else { continue }
        let data = v.data.converted(to: Float.self)
        func at(_ z: Int, _ y: Int, _ x: Int) -> Double {
          Double(data[[min(max(z, 0), n[0] - 1), min(max(y, 0), n[1] - 1), min(max(x, 0), n[2] - 1)]])
        }
        if interpolation == .nearest {
          expected = at(
            Int((p[0] + 0.5).rounded(.down)), Int((p[1] + 0.5).rounded(.down)), Int((p[2] + 0.5).rounded(.down)))
        } else {
          let f = p.map { $0.rounded(.down) }
          let t = zip(p, f).map { $0 - $1 }
          let i0 = f.map { Int($0) }
          expected = 0
          for dz in 0...1 {
            for dy in 0...1 {
              for dx in 0...1 {
                let w = (dz == 1 ? t[0] : 1 - t[0]) * (dy == 1 ? t[1] : 1 - t[1]) * (dx == 1 ? t[2] : 1 - t[2])
                expected += w * at(i0[0] + dz, i0[1] + dy, i0[2] + dx)
              }
            }
          }
        }
        covered += 1
        break
      }
      #expect(abs(Double(out[q]) - expected) <= 0.02 + 2e-6 * expected, "\(q): \(out[q]) vs \(expected)")
    }
    #expect(covered > grid.bounds.volume / 4, "only \(covered) of \(grid.bounds.volume) voxels covered")
  }

  /// Constant tiles fuse to a constant volume: no dark or bright seams in any blend mode.
  @Test(arguments: [2, 3])
  func constantTilesHaveNoSeams(rank: Int) throws {
    let tile = rank == 3 ? [6, 20, 20] : [20, 20]
    let positions: [[Double]] =
      rank == 3
      ? [[0, 0, 0], [0, 0.4, 15.3], [0, 14.6, 0.2], [0, 15.1, 14.8]]
      : [[0, 0], [0.4, 15.3], [14.6, 0.2], [15.1, 14.8]]
    let value: Float = 1234
    let views = positions.enumerated().map { t, p in
      TestView(
        data: AnyVolumeBuffer(VolumeBuffer<Float>(shape: tile, repeating: value)),
        viewToWorld: AffineTransform(translation: p), tile: t)
    }
    let grid = OutputGrid(
      lower: positions[0].map { $0 - 0.5 }, upper: zip(positions[3], tile).map { $0 + Double($1) - 0.5 },
      voxelSize: tile.map { _ in 1 })
    for blend in BlendMode.allCases {
      for interpolation in Interpolation.allCases {
        let out = try fuse(
          views, grid: grid, blockShape: grid.shape.map { min($0, 8) }, blend: blend, interpolation: interpolation)[0]
          .converted(to: Float.self)
        let covered = out.storage.filter { $0 != 0 }
        #expect(covered.count > grid.bounds.volume * 9 / 10)
        #expect(
          covered.allSatisfy { abs($0 - value) <= 1e-3 },
          "\(blend) \(interpolation): \(covered.min()!)…\(covered.max()!)")
        let u16 = try fuse(
          views, grid: grid, blockShape: grid.shape.map { min($0, 8) }, blend: blend, interpolation: interpolation,
          outputType: .uint16)[0]
        #expect(u16.converted(to: UInt16.self).storage.allSatisfy { $0 == 0 || $0 == 1234 })
      }
    }
  }

  /// The same inputs give the same bytes whatever the chunk shape, block order, thread count,
  /// cache budget, or whether views are read through the cache or region by region.
  @Test func outputIsInvariantToChunkingOrderThreadsAndCache() throws {
    let field = BlobField(rank: 3, extent: [10, 50, 50], count: 40, seed: 9)
    var views: [TestView] = []
    for (t, o) in [[0.0, 0.2, 0.7], [0, 0.5, 24.3], [0, 23.8, 0.1], [0, 24.4, 24.6]].enumerated() {
      let t2w = try AffineTransform(matrix: [[1, 0, 0, o[0]], [0, 0.999, -0.035, o[1]], [0, 0.035, 0.999, o[2]]])
      views.append(
        TestView(
          data: AnyVolumeBuffer(field.render(shape: [10, 30, 30], viewToWorld: t2w).converted(to: UInt16.self)),
          viewToWorld: t2w, tile: t))
    }
    let grid = OutputGrid(lower: [-0.5, -0.5, -0.5], upper: [9.5, 54, 55], voxelSize: [1, 1, 1])
    let reference = try fuse(views, grid: grid, blockShape: [10, 16, 16], outputType: .uint16)[0]
    for (block, compute, reversed, threads, budget, direct) in [
      ([5, 7, 9], nil, false, 1, 1 << 30, false), ([10, 32, 32], [5, 16, 16] as [Int]?, true, 2, 1 << 30, false),
      ([3, 50, 8], nil, true, 3, 4096, false), ([4, 9, 20], nil, true, 2, 0, true),
    ] {
      let out = try fuse(
        views, grid: grid, blockShape: block, computeShape: compute, outputType: .uint16, reversed: reversed,
        threads: threads, cacheBudget: budget, direct: direct)[0]
      #expect(bytesEqual(out, reference), "\(block) \(String(describing: compute)) \(reversed) \(threads) \(direct)")
    }
  }

  /// Translations a hair off an integer (4.9 µm / 0.7 µm = 7.000000000000001) fuse the same
  /// whatever the chunking: each voxel's taps and fraction come from the view's shift, not from
  /// where its region starts. Every blend mode and interpolation, 2-D and 3-D, cached and direct.
  @Test(arguments: [2, 3])
  func nearIntegerShiftsAreInvariantToChunking(rank: Int) throws {
    let tile = rank == 3 ? [7, 23, 37] : [23, 37]
    let positions: [[Double]] = [
      [0.3, 0.6], [0.25, 30.45], [17.7, 0.2], [18.1, 29.9], [3.0000000000000004, 4.9 / 0.7],
    ].map { rank == 3 ? [0.5] + $0 : $0 }
    let views = positions.enumerated().map { t, p in
      TestView(
        data: AnyVolumeBuffer(Self.noise(tile, seed: UInt64(t + 40))), viewToWorld: AffineTransform(translation: p),
        tile: t)
    }
    let upper: [Double] = rank == 3 ? [8, 42, 68] : [42, 68]
    let grid = OutputGrid(lower: upper.map { _ in -0.5 }, upper: upper, voxelSize: upper.map { _ in 1 })
    let blocks: [[Int]] = rank == 3 ? [[3, 5, 7], [8, 13, 64], [2, 40, 3]] : [[5, 7], [13, 64], [40, 3]]
    for blend in BlendMode.allCases {
      for interpolation in Interpolation.allCases {
        let reference = try fuse(
          views, grid: grid, blockShape: grid.shape, blend: blend, interpolation: interpolation,
          outputType: .float32)[0]
        for (k, block) in blocks.enumerated() {
          let out = try fuse(
            views, grid: grid, blockShape: block, blend: blend, interpolation: interpolation, outputType: .float32,
            reversed: k % 2 == 1, threads: 1 + k % 2, direct: k % 2 == 0)[0]
          let same = bytesEqual(out, reference)
          #expect(same, "\(blend) \(interpolation) \(block)")
        }
      }
    }
  }

  /// The source box a plan computes holds every voxel the kernel reads, for random affines.
  @Test func sourceBoxesHoldEveryTap() throws {
    var rng = SeedRNG(77)
    for _ in 0..<200 {
      let linear = (0..<3).map { r in
        (0..<3).map { c in
          (r == c ? Double.random(in: 0.6...1.6, using: &rng) : 0) + Double.random(in: -0.2...0.2, using: &rng)
        }
      }
      let t2w = try AffineTransform(
        linear: linear, translation: (0..<3).map { _ in Double.random(in: -5...5, using: &rng) })
      let view = FusionView(index: 0, tile: 0, channel: 0, timepoint: 0, shape: [9, 12, 10], viewToWorld: t2w)
      let grid = OutputGrid(lower: [-8, -8, -8], upper: [22, 22, 22], voxelSize: [1, 1, 1])
      let plan = try FusionPlan(
        views: [view], grid: grid, channels: [0], timepoints: [0], blockShape: [7, 7, 7], blendWidth: [0, 0, 0])
      for b in plan.blocks {
        let box = plan.blockGrid.box(ofChunk: b.block)
        let source = plan.sourceBox(view: 0, for: box)
        box.forEachIndex { q in
          let p = plan.outputToView[0].apply(q)
          let inside = (0..<3).allSatisfy { p[$0] >= -0.5 && p[$0] < Double(view.shape[$0]) - 0.5 }
          guard inside else { return }
          guard let source else {
            Issue.record("no source box but \(q) samples the view")
            return
          }
          let taps = (0..<3).map { d in
            [max(Int(p[d].rounded(.down)), 0), min(Int(p[d].rounded(.down)) + 1, view.shape[d] - 1)]
          }
          for z in taps[0] { for y in taps[1] { for x in taps[2] { #expect(source.contains([z, y, x])) } } }
        }
      }
    }
  }

  @Test func defaultBlendWidthIsTheOverlap() {
    let views = [[0.0, 0.0], [0.0, 90.0], [80.0, 0.0]].enumerated().map { i, p in
      FusionView(
        index: i, tile: i, channel: 0, timepoint: 0, shape: [100, 100], viewToWorld: AffineTransform(translation: p))
    }
    #expect(FusionPlan.defaultBlendWidth(views: views) == [20, 10])
  }
}
