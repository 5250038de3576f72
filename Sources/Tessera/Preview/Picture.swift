import Foundation
import TesseraIO

/// Turning projections into pictures: contrast limits, 8-bit grey, false-colour composites, a
/// scale bar with its length written in a 5×7 bitmap font.
public enum Picture {
  /// Contrast limits from percentiles `low`, `high` (0–100) of `values` (−∞, no data, left out):
  /// the order statistics at ranks ⌊(n − 1)·p⌋ (``OMEZarrImage/percentiles(_:_:_:of:)``), the
  /// upper one at least the lower plus 1e-6.
  public static func limits(_ values: [Float], low: Double, high: Double) -> (lo: Double, hi: Double) {
    let finite = values.lazy.filter { $0.isFinite }.map { Double($0) }
    let (lo, hi) = OMEZarrImage.percentiles(Array(finite), low / 100, high / 100, of: .float64)
    return (lo, max(hi, lo + 1e-6))
  }

  /// `v` mapped to 0…1 by the limits: (v − lo) / (hi − lo), clamped (−∞ gives 0).
  @inline(__always)
  public static func unit(_ v: Float, _ l: (lo: Double, hi: Double)) -> Double {
    guard v.isFinite else { return 0 }
    return Swift.min(1, Swift.max(0, (Double(v) - l.lo) / (l.hi - l.lo)))
  }

  /// The 8-bit grey picture of `image` (rows repeated `rowsPerVoxel` times): round(255 · unit).
  public static func grey(_ image: Projections.Image, _ l: (lo: Double, hi: Double), rowsPerVoxel: Int) -> PNGImage {
    var png = PNGImage(width: image.width, height: image.height * rowsPerVoxel, channels: 1)
    for r in 0..<png.height {
      let source = (r / rowsPerVoxel) * image.width
      for x in 0..<image.width {
        png.samples8[r * image.width + x] = UInt8((255 * unit(image.values[source + x], l)).rounded())
      }
    }
    return png
  }

  /// The 16-bit grey picture of `image`: the values themselves (rounded, clamped to 0…65535;
  /// exact for 8- and 16-bit unsigned data).
  public static func grey16(_ image: Projections.Image, rowsPerVoxel: Int) -> PNGImage {
    var png = PNGImage(width: image.width, height: image.height * rowsPerVoxel, channels: 1, bitDepth: 16)
    for r in 0..<png.height {
      let source = (r / rowsPerVoxel) * image.width
      for x in 0..<image.width {
        let v = image.values[source + x]
        png.samples16[r * image.width + x] = v.isFinite ? UInt16(Swift.min(65535, Swift.max(0, v.rounded()))) : 0
      }
    }
    return png
  }

  /// The false-colour composite: each channel's unit value times its colour (`RRGGBB`), added,
  /// clamped, ×255 rounded.
  public static func composite(
    _ images: [Projections.Image], _ limits: [(lo: Double, hi: Double)], colors: [String], rowsPerVoxel: Int
  ) -> PNGImage {
    let (w, h) = (images[0].width, images[0].height)
    var png = PNGImage(width: w, height: h * rowsPerVoxel, channels: 3)
    let rgb = colors.map(Self.rgb)
    for r in 0..<png.height {
      let source = (r / rowsPerVoxel) * w
      for x in 0..<w {
        var sum = (0.0, 0.0, 0.0)
        for c in images.indices {
          let u = unit(images[c].values[source + x], limits[c])
          sum = (sum.0 + u * rgb[c].0, sum.1 + u * rgb[c].1, sum.2 + u * rgb[c].2)
        }
        let o = 3 * (r * w + x)
        png.samples8[o] = UInt8((255 * Swift.min(1, sum.0)).rounded())
        png.samples8[o + 1] = UInt8((255 * Swift.min(1, sum.1)).rounded())
        png.samples8[o + 2] = UInt8((255 * Swift.min(1, sum.2)).rounded())
      }
    }
    return png
  }

  /// `RRGGBB` as three fractions (white when malformed).
  static func rgb(_ hex: String) -> (Double, Double, Double) {
    guard hex.count == 6, let v = UInt32(hex, radix: 16) else { return (1, 1, 1) }
    return (Double(v >> 16 & 0xFF) / 255, Double(v >> 8 & 0xFF) / 255, Double(v & 0xFF) / 255)
  }

  /// Where a scale bar went: its rectangle (pixels) and its length in µm.
  public struct ScaleBar: Sendable, Codable {
    public var x: Int
    public var y: Int
    public var width: Int
    public var height: Int
    public var micrometres: Double
    public var label: String
  }

  /// Draws a white scale bar in the lower right of `png` (8-bit) whose length is the round
  /// number of µm (1, 2 or 5 × 10ᵏ) nearest a fifth of the width, `umPerPixel` µm per pixel, with
  /// its length written above it; nil when the picture is too small for one.
  public static func drawScaleBar(_ png: inout PNGImage, umPerPixel: Double) -> ScaleBar? {
    guard png.width >= 40, png.height >= 24, umPerPixel > 0 else { return nil }
    let target = Double(png.width) / 5 * umPerPixel
    let decade = pow(10, floor(log10(target)))
    let um = [1.0, 2, 5, 10].map { $0 * decade }.min { abs($0 - target) < abs($1 - target) }!
    let length = max(1, Int((um / umPerPixel).rounded()))
    let thickness = max(2, png.height / 100)
    let margin = max(4, png.width / 50)
    let bar = ScaleBar(
      x: png.width - margin - length, y: png.height - margin - thickness, width: length, height: thickness,
      micrometres: um, label: um >= 1000 ? "\(format(um / 1000)) mm" : "\(format(um)) µm")
    fill(&png, x: bar.x, y: bar.y, width: bar.width, height: bar.height)
    // The label above the bar, as large as the picture allows (at most 1/200 of its height per
    // font pixel), left out when it does not fit.
    var scale = max(1, png.height / 200)
    while scale > 1 && (bar.label.count * 6 * scale > png.width - margin || bar.y - 9 * scale < 0) { scale -= 1 }
    let textWidth = bar.label.count * 6 * scale
    if textWidth <= png.width - margin && bar.y - 9 * scale >= 0 {
      drawText(&png, bar.label, x: png.width - margin - textWidth, y: bar.y - 9 * scale, scale: scale)
    }
    return bar
  }

  /// A length without a trailing ".0" ("0.5", "20").
  static func format(_ v: Double) -> String {
    v == v.rounded() ? String(Int(v)) : String(v)
  }

  /// An 8-bit colour (a grey picture takes its red).
  typealias Colour = (UInt8, UInt8, UInt8)

  /// Sets the pixels of a rectangle (clipped) of an 8-bit picture to `colour` (white by default).
  static func fill(
    _ png: inout PNGImage, x: Int, y: Int, width: Int, height: Int, colour: Colour = (255, 255, 255)
  ) {
    let values = [colour.0, colour.1, colour.2]
    let (r0, r1, c0, c1) = (max(0, y), min(png.height, y + height), max(0, x), min(png.width, x + width))
    guard r0 < r1, c0 < c1 else { return }  // wholly outside
    for r in r0..<r1 {
      for c in c0..<c1 {
        for k in 0..<png.channels { png.samples8[(r * png.width + c) * png.channels + k] = values[k] }
      }
    }
  }

  /// Writes `text` in `colour`, 5×7 glyphs scaled by `scale`, 1 pixel apart (characters without
  /// a glyph are skipped).
  static func drawText(
    _ png: inout PNGImage, _ text: String, x: Int, y: Int, scale: Int, colour: Colour = (255, 255, 255)
  ) {
    for (i, ch) in text.enumerated() {
      guard let rows = glyphs[ch] else { continue }
      for (r, bits) in rows.enumerated() {
        for c in 0..<5 where bits & (1 << (4 - c)) != 0 {
          fill(&png, x: x + (6 * i + c) * scale, y: y + r * scale, width: scale, height: scale, colour: colour)
        }
      }
    }
  }

  /// 5×7 glyphs, one row per byte, most significant of the 5 bits leftmost.
  static let glyphs: [Character: [UInt8]] = [
    "0": [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], "1": [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
    "2": [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], "3": [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
    "4": [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], "5": [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
    "6": [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], "7": [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
    "8": [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], "9": [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
    ".": [0, 0, 0, 0, 0, 0x0C, 0x0C], "µ": [0, 0, 0x11, 0x11, 0x13, 0x1D, 0x10],
    "m": [0, 0, 0x1A, 0x15, 0x15, 0x11, 0x11], " ": [0, 0, 0, 0, 0, 0, 0],
  ]
}
