import Foundation
import TesseraCore
import TesseraIO
import TesseraRegistration

/// The tile and link layout of a dataset, as a PNG and an SVG: tile footprints in y, x (all z) at
/// the stated positions (grey, dashed) and, with a registration report, at the refined ones
/// (blue); each link a line between tile centres coloured by its correlation (red 0 → green 1;
/// grey without a report), rejected links dashed and labelled with their correlation; tiles whose
/// placement rests on weak links ringed in orange.
public enum Layout {
  public struct Summary: Sendable, Codable {
    public var tiles: Int
    public var links: Int
    public var rejected: Int
    public var weak: [Int]
    public var png: String
    public var svg: String
  }

  struct Tile {
    var id: Int
    /// y, x bounds (µm) as stated and refined.
    var stated: (lower: [Double], upper: [Double])
    var refined: (lower: [Double], upper: [Double])?
  }

  struct Link {
    var a: Int
    var b: Int
    var correlation: Double?
    var accepted: Bool
  }

  /// Draws `dataset`'s layout (with `report`, the refine-positions report of this dataset as
  /// stated) to `png` and the SVG beside it (same name, `.svg`).
  public static func write(dataset: Dataset, report: RegistrationReport?, to png: String, size: Int = 1000) throws
    -> Summary
  {
    let n = dataset.rank
    var tiles: [Tile] = []
    // Each tile's first view and correction, looked up once (datasets have thousands of tiles).
    var firstView: [Int: View] = [:]
    for v in dataset.views where firstView[v.tile] == nil { firstView[v.tile] = v }
    let corrections = Dictionary(
      (report?.tiles ?? []).map { ($0.tile, $0.correctionUm) }, uniquingKeysWith: { a, _ in a })
    for t in dataset.tiles {
      guard let v = firstView[t] else { continue }
      let (lo, hi) = v.worldBounds
      let stated = (Array(lo.suffix(2)), Array(hi.suffix(2)))
      var refined: (lower: [Double], upper: [Double])? = nil
      if let c = corrections[t]?.suffix(2) {
        let shift = Array(c)
        refined = (zip(stated.0, shift).map { $0 + $1 }, zip(stated.1, shift).map { $0 + $1 })
      }
      tiles.append(Tile(id: t, stated: stated, refined: refined))
    }
    let links: [Link] =
      report.map { r in
        r.links.map { Link(a: $0.tiles[0], b: $0.tiles[1], correlation: $0.correlation, accepted: $0.accepted) }
      }
      ?? dataset.tileOverlaps().map { Link(a: $0.tiles[0], b: $0.tiles[1], correlation: nil, accepted: true) }
    let weak = Set(report?.weaklyLinkedTiles ?? [])
    // World (y, x) → pixels: the union of all footprints, with a margin.
    var lo = tiles[0].stated.lower
    var hi = tiles[0].stated.upper
    for t in tiles {
      for box in [t.stated] + (t.refined.map { [$0] } ?? []) {
        for d in 0..<2 {
          lo[d] = min(lo[d], box.lower[d])
          hi[d] = max(hi[d], box.upper[d])
        }
      }
    }
    let extent = max(hi[0] - lo[0], hi[1] - lo[1], 1e-9)
    let margin = 20.0
    let scale = (Double(size) - 2 * margin) / extent
    let width = Int((hi[1] - lo[1]) * scale + 2 * margin)
    let height = Int((hi[0] - lo[0]) * scale + 2 * margin)
    func px(_ y: Double, _ x: Double) -> (Double, Double) {
      ((x - lo[1]) * scale + margin, (y - lo[0]) * scale + margin)
    }
    let tileByID = Dictionary(tiles.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    func centre(_ id: Int) -> (Double, Double)? {
      guard let t = tileByID[id] else { return nil }
      let b = t.refined ?? t.stated
      return px((b.lower[0] + b.upper[0]) / 2, (b.lower[1] + b.upper[1]) / 2)
    }
    func colour(_ l: Link) -> (Int, Int, Int) {
      guard let c = l.correlation else { return (150, 150, 150) }
      let u = min(1, max(0, c))
      return (Int((1 - u) * 230), Int(u * 200), 40)
    }
    var canvas = Canvas(width: width, height: height)
    var svg = [
      #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(width)" height="\#(height)" viewBox="0 0 \#(width) \#(height)">"#,
      #"<rect width="100%" height="100%" fill="black"/>"#,
      "<title>\(escape(dataset.path)): \(tiles.count) tiles, \(links.count) links (\(n)-D, y × x)</title>",
    ]
    for t in tiles {
      let (x0, y0) = px(t.stated.lower[0], t.stated.lower[1])
      let (x1, y1) = px(t.stated.upper[0], t.stated.upper[1])
      canvas.rectangle(x0, y0, x1, y1, (120, 120, 120), dashed: true)
      svg.append(
        #"<rect class="tile stated" data-tile="\#(t.id)" x="\#(f(x0))" y="\#(f(y0))" width="\#(f(x1 - x0))" height="\#(f(y1 - y0))" fill="none" stroke="rgb(120,120,120)" stroke-dasharray="6 4"/>"#
      )
      if let r = t.refined {
        let (a0, b0) = px(r.lower[0], r.lower[1])
        let (a1, b1) = px(r.upper[0], r.upper[1])
        canvas.rectangle(a0, b0, a1, b1, (80, 140, 255), dashed: false)
        svg.append(
          #"<rect class="tile refined" data-tile="\#(t.id)" x="\#(f(a0))" y="\#(f(b0))" width="\#(f(a1 - a0))" height="\#(f(b1 - b0))" fill="none" stroke="rgb(80,140,255)"/>"#
        )
      }
    }
    var rejected = 0
    for l in links {
      guard let (xa, ya) = centre(l.a), let (xb, yb) = centre(l.b) else { continue }
      let (r, g, b) = colour(l)
      canvas.line(xa, ya, xb, yb, (r, g, b), dashed: !l.accepted)
      let label = l.correlation.map { String(format: "%.2f", $0) } ?? ""
      svg.append(
        #"<line class="link \#(l.accepted ? "accepted" : "rejected")" data-tiles="\#(l.a) \#(l.b)" x1="\#(f(xa))" y1="\#(f(ya))" x2="\#(f(xb))" y2="\#(f(yb))" stroke="rgb(\#(r),\#(g),\#(b))" stroke-width="2"\#(l.accepted ? "" : #" stroke-dasharray="8 5""#)><title>tiles \#(l.a)–\#(l.b): correlation \#(label.isEmpty ? "not measured" : label)\#(l.accepted ? "" : ", rejected")</title></line>"#
      )
      if !l.accepted {
        rejected += 1
        let (mx, my) = ((xa + xb) / 2, (ya + yb) / 2)
        canvas.text(label.isEmpty ? "0" : label, Int(mx) + 4, Int(my) - 10, (255, 90, 90))
        svg.append(
          #"<text class="rejected-label" x="\#(f(mx + 4))" y="\#(f(my - 4))" fill="rgb(255,90,90)" font-family="sans-serif" font-size="12">rejected \#(label)</text>"#
        )
      }
    }
    for t in tiles {
      guard let (cx, cy) = centre(t.id) else { continue }
      let ringed = weak.contains(t.id)
      canvas.disc(cx, cy, ringed ? 9 : 4, ringed ? (255, 160, 0) : (255, 255, 255))
      svg.append(
        #"<circle class="tile-centre\#(ringed ? " weak" : "")" data-tile="\#(t.id)" cx="\#(f(cx))" cy="\#(f(cy))" r="\#(ringed ? 9 : 4)" fill="\#(ringed ? "rgb(255,160,0)" : "white")"/>"#
      )
      canvas.text(String(t.id), Int(cx) + 8, Int(cy) + 6, (255, 255, 255))
      svg.append(
        #"<text class="tile-label" x="\#(f(cx + 8))" y="\#(f(cy + 12))" fill="white" font-family="sans-serif" font-size="12">\#(t.id)</text>"#
      )
    }
    svg.append("</svg>")
    let svgPath = (png as NSString).deletingPathExtension + ".svg"
    try canvas.png.write(to: png)
    try AtomicFile.write(Array((svg.joined(separator: "\n") + "\n").utf8), to: svgPath)
    return Summary(
      tiles: tiles.count, links: links.count, rejected: rejected, weak: weak.sorted(), png: png, svg: svgPath)
  }

  static func f(_ v: Double) -> String { String(format: "%.1f", v) }
  static func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
  }
}

/// An RGB raster for the layout: lines (2 px, optionally dashed), outlines, discs and text.
struct Canvas {
  var png: PNGImage

  init(width: Int, height: Int) { png = PNGImage(width: max(1, width), height: max(1, height), channels: 3) }

  mutating func set(_ x: Int, _ y: Int, _ c: (Int, Int, Int)) {
    Picture.fill(&png, x: x, y: y, width: 1, height: 1, colour: Self.colour(c))
  }

  static func colour(_ c: (Int, Int, Int)) -> Picture.Colour {
    (UInt8(clamping: c.0), UInt8(clamping: c.1), UInt8(clamping: c.2))
  }

  /// A line 2 pixels wide, sampled every half pixel; dashed: 8 on, 5 off.
  mutating func line(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ c: (Int, Int, Int), dashed: Bool) {
    let length = max(1, ((x1 - x0) * (x1 - x0) + (y1 - y0) * (y1 - y0)).squareRoot())
    let steps = Int(length * 2)
    for s in 0...steps {
      let t = Double(s) / Double(steps)
      if dashed, Int(t * length) % 13 >= 8 { continue }
      let (x, y) = (Int(x0 + (x1 - x0) * t), Int(y0 + (y1 - y0) * t))
      set(x, y, c)
      set(x + 1, y, c)
      set(x, y + 1, c)
    }
  }

  mutating func rectangle(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double, _ c: (Int, Int, Int), dashed: Bool) {
    line(x0, y0, x1, y0, c, dashed: dashed)
    line(x1, y0, x1, y1, c, dashed: dashed)
    line(x1, y1, x0, y1, c, dashed: dashed)
    line(x0, y1, x0, y0, c, dashed: dashed)
  }

  mutating func disc(_ cx: Double, _ cy: Double, _ r: Double, _ c: (Int, Int, Int)) {
    for y in Int(cy - r)...Int(cy + r) {
      for x in Int(cx - r)...Int(cx + r)
      where (Double(x) - cx) * (Double(x) - cx) + (Double(y) - cy) * (Double(y) - cy) <= r * r {
        set(x, y, c)
      }
    }
  }

  /// Digits, '.', 'µ', 'm' and spaces in the 5×7 font, 2× scaled.
  mutating func text(_ s: String, _ x: Int, _ y: Int, _ c: (Int, Int, Int)) {
    Picture.drawText(&png, s, x: x, y: y, scale: 2, colour: Self.colour(c))
  }
}
