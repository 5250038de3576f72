import TesseraCore
import TesseraIO

/// Maximum-intensity projections of one channel of an OME-Zarr level, read chunk by chunk (the
/// level is never held whole): in 3D along z (the overview, y × x), y (z × x) and x (z × y); in
/// 2D the plane itself. Values as Float (exact for data of at most 16 bits).
public struct Projections: Sendable {
  /// A picture's worth of values: `height` rows of `width`, C order.
  public struct Image: Sendable {
    public var width: Int
    public var height: Int
    public var values: [Float]
  }

  /// The region projected, in the level's spatial voxels (z, y, x or y, x).
  public let region: Box
  /// By the axis projected along ("z", "y", "x"), or "plane" in 2D.
  public let images: [String: Image]

  /// Projects channel `channel` (at timepoint 0) of `array` over `region`.
  ///
  /// - Parameter leading: the leading (non-spatial) axes' names (`c`, `t`, or none): `channel` on
  ///   the `c` axis, 0 on any other.
  public static func compute(_ array: ZarrArray, leading: [String], channel: Int, region: Box) throws -> Projections {
    let n = region.rank
    precondition(n == 2 || n == 3, "projections of 2-D or 3-D levels")
    let (nz, ny, nx) =
      n == 3 ? (region.shape[0], region.shape[1], region.shape[2]) : (1, region.shape[0], region.shape[1])
    var mz = [Float](repeating: -.infinity, count: ny * nx)
    var my = [Float](repeating: -.infinity, count: nz * nx)
    var mx = [Float](repeating: -.infinity, count: nz * ny)
    let lead = leading.map { $0 == "c" ? channel : 0 }
    let full = Box(lower: lead + region.lower, upper: lead.map { $0 + 1 } + region.upper)
    for chunk in array.grid.chunks(intersecting: full) {
      let box = array.grid.box(ofChunk: chunk).intersection(full)
      let data = try array.read(box).converted(to: Float.self)
      let lo = Array(box.lower.suffix(n))
      let hi = Array(box.upper.suffix(n))
      let (z0, z1) = n == 3 ? (lo[0] - region.lower[0], hi[0] - region.lower[0]) : (0, 1)
      let (y0, y1) = (lo[n - 2] - region.lower[n - 2], hi[n - 2] - region.lower[n - 2])
      let (x0, x1) = (lo[n - 1] - region.lower[n - 1], hi[n - 1] - region.lower[n - 1])
      var k = 0
      for z in z0..<z1 {
        for y in y0..<y1 {
          var rowMax = mx[z * ny + y]
          for x in x0..<x1 {
            let v = data.storage[k]
            k += 1
            mz[y * nx + x] = Swift.max(mz[y * nx + x], v)
            my[z * nx + x] = Swift.max(my[z * nx + x], v)
            rowMax = Swift.max(rowMax, v)
          }
          mx[z * ny + y] = rowMax
        }
      }
    }
    if n == 2 { return Projections(region: region, images: ["plane": Image(width: nx, height: ny, values: mz)]) }
    return Projections(
      region: region,
      images: [
        "z": Image(width: nx, height: ny, values: mz), "y": Image(width: nx, height: nz, values: my),
        "x": Image(width: ny, height: nz, values: mx),
      ])
  }
}
