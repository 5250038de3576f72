import Foundation
import TesseraCore

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// The XML side of BigDataViewer projects: reading the file, paths, numbers and timepoints in
/// its elements, units and the x,y,z ↔ z,y,x axis reversal, shared by loading and saving.
extension BDVProject {
  /// The transform with its axes reversed (x,y,z ↔ z,y,x), in both domain and range.
  static func reversedAxes(_ t: AffineTransform) -> AffineTransform {
    let n = t.rank
    var rows: [[Double]] = []
    for r in 0..<n {
      let source = n - 1 - r
      var row: [Double] = []
      for c in 0..<n { row.append(t[source, n - 1 - c]) }
      row.append(t[source, n])
      rows.append(row)
    }
    return try! AffineTransform(matrix: rows)  // finite by construction
  }

  /// µm per unit for a BDV unit string, and whether the unit was recognised.
  static func micrometresPer(_ unit: String) -> (Double, Bool) {
    switch unit.lowercased() {
    case "µm", "μm", "um", "micrometer", "micrometre", "micron", "microns", "micrometers": (1, true)
    case "nm", "nanometer", "nanometre", "nanometers": (0.001, true)
    case "mm", "millimeter", "millimetre", "millimeters": (1000, true)
    default: (1, false)
    }
  }

  static func parse(_ xmlPath: String) throws -> XMLDocument {
    guard FileManager.default.fileExists(atPath: xmlPath) else {
      throw DatasetError(path: xmlPath, "no such file; check the path")
    }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: xmlPath))
    } catch {
      throw DatasetError(path: xmlPath, "cannot read (\(error.localizedDescription))")
    }
    // libxml2's DOM parser recovers from errors (a truncated file parses "fine"), so check
    // well-formedness with the event parser first; it stops at the first error.
    guard data.contains(where: { $0 == UInt8(ascii: "<") }) else {
      // (Foundation's XMLDocument traps on an empty document.)
      throw DatasetError(path: xmlPath, data.isEmpty ? "the file is empty" : "not an XML document (no element)")
    }
    let checker = XMLParser(data: data)
    let parsed = checker.parse()
    if let error = checker.parserError {
      throw DatasetError(
        path: xmlPath,
        "malformed XML at line \(checker.lineNumber) (\((error as NSError).code == 5 ? "unexpected end of file" : "parse error \((error as NSError).code)")); is the file complete?"
      )
    }
    guard parsed else { throw DatasetError(path: xmlPath, "malformed XML; is the file complete?") }
    do {
      return try XMLDocument(data: data, options: [])
    } catch {
      throw DatasetError(path: xmlPath, "malformed XML (\(error.localizedDescription)); is the file complete?")
    }
  }

  /// A path from a `<BasePath>`/`<hdf5>` element with a `type` of relative (default) or absolute.
  static func resolvePath(_ element: XMLElement?, relativeTo directory: String, default fallback: String) -> String {
    let text = element?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) ?? fallback
    let type = element?.attribute(forName: "type")?.stringValue ?? "relative"
    if type == "absolute" || text.hasPrefix("/") { return (text as NSString).standardizingPath }
    return ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(text)
  }

  static func parseTimepoints(_ e: XMLElement?, _ xmlPath: String) throws -> [Int] {
    guard let e else { return [0] }
    switch e.attribute(forName: "type")?.stringValue ?? "range" {
    case "range":
      let first = try intValue(e.child("first"), xmlPath, "Timepoints/first")
      let last = try intValue(e.child("last"), xmlPath, "Timepoints/last")
      guard last >= first else { throw DatasetError(path: xmlPath, element: "Timepoints", "last < first") }
      return Array(first...last)
    case "list":
      return try e.children(named: "Timepoint").map { try intValue($0.child("id"), xmlPath, "Timepoint/id") }
    case "pattern":
      let text = e.child("integerpattern")?.stringValue ?? ""
      var out: [Int] = []
      for part in text.split(separator: ",") {
        let p = part.trimmingCharacters(in: .whitespaces)
        let range = p.split(separator: "-").compactMap { Int($0) }
        if range.count == 1 {
          out.append(range[0])
        } else if range.count == 2, range[1] >= range[0] {
          out += Array(range[0]...range[1])
        } else {
          throw DatasetError(path: xmlPath, element: "Timepoints/integerpattern", "cannot parse \"\(p)\"")
        }
      }
      return out
    case let other:
      throw DatasetError(path: xmlPath, element: "Timepoints type=\"\(other)\"", "unknown timepoint type")
    }
  }

  static func intValue(_ e: XMLElement?, _ path: String, _ element: String) throws -> Int {
    guard let text = e?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines), let v = Int(text) else {
      throw DatasetError(path: path, element: element, "missing or not an integer")
    }
    return v
  }

  static func numbers(_ e: XMLElement?, _ path: String, _ element: String) throws -> [Double] {
    guard let text = e?.stringValue else { throw DatasetError(path: path, element: element, "missing") }
    let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "," })
    let values = parts.compactMap { Double($0) }
    guard values.count == parts.count, !values.isEmpty else {
      throw DatasetError(path: path, element: element, "expected numbers, got \"\(text)\"")
    }
    guard values.allSatisfy(\.isFinite) else {
      throw DatasetError(path: path, element: element, "contains NaN or infinity")
    }
    return values
  }

  /// BigStitcher's world unit in µm: the smallest voxel size over all setups.
  static func minimumVoxelSize(_ root: XMLElement) -> Double {
    var smallest = Double.infinity
    for e in root.child("SequenceDescription")?.child("ViewSetups")?.children(named: "ViewSetup") ?? [] {
      guard let v = e.child("voxelSize"), let text = v.child("size")?.stringValue else { continue }
      let (factor, _) = micrometresPer(v.child("unit")?.stringValue?.trimmingCharacters(in: .whitespaces) ?? "")
      for x in text.split(separator: " ").compactMap({ Double($0) }) where x > 0 {
        smallest = min(smallest, x * factor)
      }
    }
    return smallest.isFinite ? smallest : 1
  }
}

extension XMLElement {
  func child(_ name: String) -> XMLElement? { elements(forName: name).first }
  func children(named name: String) -> [XMLElement] { elements(forName: name) }
}
