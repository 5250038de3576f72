import Foundation
import TesseraCore

#if canImport(FoundationXML)
  import FoundationXML
#endif

/// BigDataViewer / BigStitcher projects: a SpimData XML plus one HDF5 file (`bdv.hdf5` loader).
///
/// Conversions happen here and nowhere else:
/// - BDV orders axes x, y, z; Tessera z, y, x (sizes, voxel sizes, affines, resolutions).
/// - A view's model is `T[0] · T[1] · … · T[n-1]` of its `ViewTransform`s (the last listed is
///   applied first) and maps level-0 voxels to BDV world units.
/// - BigStitcher's world unit is the smallest voxel size of the dataset (its `calibration` is
///   `voxelSize / minVoxelSize`), so world µm = BDV world × the smallest voxel size in µm. A file
///   whose calibration does not follow that convention (npy2bdv's default of 1,1,1 with
///   anisotropic voxels) is read as its XML says, as BigStitcher would display it, and
///   ``BDVProject/warnings`` says so.
/// - Legacy BDV HDF5 stores uint16 as int16 (no `dataType` attribute on `/sNN`): read as uint16.
/// - A dataset whose views all have one z-plane is 2D (y, x).
public enum BDVProject {
  /// Loads a SpimData XML.
  ///
  /// - Throws: ``DatasetError`` naming the file and element for a missing file, malformed XML,
  ///   an unknown image loader, missing or inconsistent HDF5 datasets, bad voxel sizes or
  ///   non-finite transforms; ``HDF5Error`` for unreadable HDF5.
  public static func load(_ xmlPath: String) throws -> (dataset: Dataset, warnings: [String]) {
    let doc = try parse(xmlPath)
    guard let root = doc.rootElement(), root.name == "SpimData" else {
      throw DatasetError(path: xmlPath, "not a SpimData XML (root element is not <SpimData>)")
    }
    var warnings: [String] = []
    let xmlDir = (xmlPath as NSString).deletingLastPathComponent
    let basePath = resolvePath(root.child("BasePath"), relativeTo: xmlDir, default: ".")
    guard let sequence = root.child("SequenceDescription") else {
      throw DatasetError(path: xmlPath, element: "SequenceDescription", "missing; is this a BigStitcher XML?")
    }
    // Image loader.
    guard let loader = sequence.child("ImageLoader") else {
      throw DatasetError(path: xmlPath, element: "ImageLoader", "missing; the XML does not say where the pixels are")
    }
    let format = loader.attribute(forName: "format")?.stringValue ?? ""
    guard format == "bdv.hdf5" else {
      throw DatasetError(
        path: xmlPath, element: "ImageLoader format=\"\(format)\"",
        "unknown image loader; Tessera reads bdv.hdf5 (re-save the project as HDF5 in BigStitcher)")
    }
    if loader.child("partition") != nil {
      throw DatasetError(
        path: xmlPath, element: "ImageLoader/partition",
        "partitioned HDF5 projects are not supported yet; merge them into one HDF5 file")
    }
    guard let h5Element = loader.child("hdf5") else {
      throw DatasetError(path: xmlPath, element: "ImageLoader/hdf5", "missing HDF5 file name")
    }
    let h5Path = resolvePath(h5Element, relativeTo: basePath, default: "")
    guard FileManager.default.fileExists(atPath: h5Path) else {
      throw DatasetError(
        path: xmlPath, element: "ImageLoader/hdf5", "HDF5 file \(h5Path) does not exist; check the path in the XML")
    }

    // View setups and their attribute entities.
    guard let setupsElement = sequence.child("ViewSetups") else {
      throw DatasetError(path: xmlPath, element: "ViewSetups", "missing")
    }
    struct Setup {
      var id: Int
      var name: String
      var sizeXYZ: [Int]
      var voxelXYZ: [Double]  // µm
      var attributes: [String: Int]
    }
    var setups: [Int: Setup] = [:]
    for e in setupsElement.children(named: "ViewSetup") {
      let id = try intValue(e.child("id"), xmlPath, "ViewSetup/id")
      let element = "ViewSetup \(id)"
      let size = try numbers(e.child("size"), xmlPath, "\(element)/size").map { Int($0) }
      guard size.count == 3, size.allSatisfy({ $0 > 0 }) else {
        throw DatasetError(path: xmlPath, element: "\(element)/size", "needs three positive numbers (x y z)")
      }
      var voxel = [1.0, 1.0, 1.0]
      if let v = e.child("voxelSize") {
        voxel = try numbers(v.child("size"), xmlPath, "\(element)/voxelSize/size")
        guard voxel.count == 3 else {
          throw DatasetError(path: xmlPath, element: "\(element)/voxelSize/size", "needs three numbers (x y z)")
        }
        let unit = v.child("unit")?.stringValue?.trimmingCharacters(in: .whitespaces) ?? ""
        let (factor, known) = micrometresPer(unit)
        if !known {
          warnings.append("\(element): unknown voxel unit \"\(unit)\", taken as micrometres")
        }
        voxel = voxel.map { $0 * factor }
      } else {
        warnings.append("\(element): no voxelSize, taken as 1 µm")
      }
      guard voxel.allSatisfy({ $0 > 0 && $0.isFinite }) else {
        throw DatasetError(
          path: xmlPath, element: "\(element)/voxelSize", "voxel sizes must be positive and finite, got \(voxel)")
      }
      var attributes: [String: Int] = [:]
      for a in e.child("attributes")?.children ?? [] {
        if let name = a.name, let text = a.stringValue, let v = Int(text.trimmingCharacters(in: .whitespaces)) {
          attributes[name] = v
        }
      }
      setups[id] = Setup(
        id: id, name: e.child("name")?.stringValue ?? "setup \(id)", sizeXYZ: size, voxelXYZ: voxel,
        attributes: attributes)
    }
    guard !setups.isEmpty else { throw DatasetError(path: xmlPath, element: "ViewSetups", "no ViewSetup") }

    let timepoints = try parseTimepoints(sequence.child("Timepoints"), xmlPath)
    var missing = Set<ViewID>()
    for m in sequence.child("MissingViews")?.children(named: "MissingView") ?? [] {
      if let t = m.attribute(forName: "timepoint")?.stringValue.flatMap({ Int($0) }),
        let s = m.attribute(forName: "setup")?.stringValue.flatMap({ Int($0) })
      {
        missing.insert(ViewID(timepoint: t, setup: s))
      }
    }

    // Registrations: model = T[0] · T[1] · … (last listed applied first), in BDV x,y,z.
    var models: [ViewID: AffineTransform] = [:]
    for r in root.child("ViewRegistrations")?.children(named: "ViewRegistration") ?? [] {
      guard let t = r.attribute(forName: "timepoint")?.stringValue.flatMap({ Int($0) }),
        let s = r.attribute(forName: "setup")?.stringValue.flatMap({ Int($0) })
      else {
        throw DatasetError(path: xmlPath, element: "ViewRegistration", "needs integer timepoint and setup attributes")
      }
      var model = AffineTransform(identity: 3)
      for vt in r.children(named: "ViewTransform") {
        let name = vt.child("Name")?.stringValue ?? "?"
        let element = "ViewRegistration t\(t) s\(s) ViewTransform \"\(name)\""
        let a = try numbers(vt.child("affine"), xmlPath, "\(element)/affine")
        guard a.count == 12 else {
          throw DatasetError(path: xmlPath, element: element, "affine needs 12 numbers, got \(a.count)")
        }
        guard a.allSatisfy(\.isFinite) else {
          throw DatasetError(path: xmlPath, element: element, "affine contains NaN or infinity")
        }
        let m = try AffineTransform(matrix: [Array(a[0..<4]), Array(a[4..<8]), Array(a[8..<12])])
        model = compose(model, m)
      }
      models[ViewID(timepoint: t, setup: s)] = model
    }

    // The HDF5 file.
    let file = try HDF5File(path: h5Path)
    let minVoxel = minimumVoxelSize(root)
    let is2D = setups.values.allSatisfy { $0.sizeXYZ[2] == 1 }
    let rank = is2D ? 2 : 3
    var views: [View] = []
    for t in timepoints {
      for setup in setups.values.sorted(by: { $0.id < $1.id }) {
        let id = ViewID(timepoint: t, setup: setup.id)
        if missing.contains(id) { continue }
        let element = "view t\(t) s\(setup.id) (\(setup.name))"
        guard let model = models[id] else {
          throw DatasetError(
            path: xmlPath, element: element,
            "has no ViewRegistration; add one or list it under MissingViews")
        }
        let setupGroup = String(format: "s%02d", setup.id)
        // Levels.
        var levelFactors: [[Double]] = [[1, 1, 1]]
        if file.isDataset("\(setupGroup)/resolutions") {
          let r = try file.dataset("\(setupGroup)/resolutions")
          if r.rank == 2, r.shape[1] == 3, r.shape[0] >= 1 {
            let values = try r.read(r.bounds, as: Double.self).storage
            levelFactors = (0..<r.shape[0]).map { Array(values[3 * $0..<3 * $0 + 3].reversed()) }  // → z,y,x
          }
        }
        var datasets: [HDF5Dataset] = []
        var levels: [ResolutionLevel] = []
        for (level, factors) in levelFactors.enumerated() {
          let path = String(format: "t%05d/%@/%d/cells", t, setupGroup, level)
          guard file.isDataset(path) else {
            if level == 0 {
              throw DatasetError(
                path: h5Path, element: path, "missing dataset for \(element); is this the right HDF5 file?")
            }
            break
          }
          let d = try file.dataset(path)
          guard d.rank == 3 else {
            throw DatasetError(path: h5Path, element: path, "expected a 3-D dataset, got rank \(d.rank)")
          }
          datasets.append(d)
          levels.append(
            ResolutionLevel(
              factors: is2D ? Array(factors.suffix(2)) : factors, shape: is2D ? Array(d.shape.suffix(2)) : d.shape))
        }
        let expected = Array(setup.sizeXYZ.reversed())
        if datasets[0].shape != expected {
          let smaller = zip(datasets[0].shape, expected).contains { $0 < $1 }
          throw DatasetError(
            path: h5Path, element: datasets[0].name,
            "shape \(datasets[0].shape) (z,y,x) "
              + (smaller ? "is smaller than" : "differs from")
              + " the XML's size \(setup.sizeXYZ.map(String.init).joined(separator: " ")) (x y z) for \(element); "
              + "the HDF5 file and the XML do not belong together")
        }
        // Element type: the dataType attribute (newer BDV), else legacy int16 holding uint16.
        let stored = datasets[0].elementType
        var elementType = stored
        if let name = file.stringAttribute("dataType", of: setupGroup) {
          guard let t = ElementType(rawValue: name.lowercased()), t.byteCount == stored.byteCount else {
            throw DatasetError(
              path: h5Path, element: "\(setupGroup)@dataType", "unsupported or inconsistent dataType \"\(name)\"")
          }
          elementType = t
        } else if stored == .int16 {
          elementType = .uint16
        }
        // viewToWorld in z,y,x µm.
        var viewToWorld = compose(AffineTransform(scale: [minVoxel, minVoxel, minVoxel]), reversedAxes(model))
        if is2D {
          guard viewToWorld[1, 0] == 0, viewToWorld[2, 0] == 0 else {
            throw DatasetError(
              path: xmlPath, element: element,
              "single-plane views whose transform mixes z into y,x cannot be treated as 2D")
          }
          viewToWorld = try AffineTransform(matrix: [
            [viewToWorld[1, 1], viewToWorld[1, 2], viewToWorld[1, 3]],
            [viewToWorld[2, 1], viewToWorld[2, 2], viewToWorld[2, 3]],
          ])
        }
        // Calibration check: BigStitcher scales voxel axes by voxelSize / minVoxelSize.
        let voxelZYX = Array(setup.voxelXYZ.reversed())
        let voxel = is2D ? Array(voxelZYX.suffix(2)) : voxelZYX
        for d in 0..<rank {
          let column = (0..<rank).map { viewToWorld[$0, d] }
          let length = column.map { $0 * $0 }.reduce(0, +).squareRoot()
          if abs(length - voxel[d]) > 0.01 * voxel[d] {
            warnings.append(
              "\(element): the XML's transforms scale axis \(["z", "y", "x"].suffix(rank)[d + (3 - rank)]) to "
                + "\(String(format: "%.4g", length)) µm per voxel but voxelSize says \(voxel[d]); "
                + "following the XML, as BigStitcher displays it")
            break
          }
        }
        views.append(
          View(
            id: id, name: setup.name, tile: setup.attributes["tile"] ?? 0, channel: setup.attributes["channel"] ?? 0,
            illumination: setup.attributes["illumination"] ?? 0, angle: setup.attributes["angle"] ?? 0,
            elementType: elementType, shape: levels[0].shape, voxelSize: voxel, viewToWorld: viewToWorld,
            levels: levels, reader: HDF5ViewReader(levels: datasets, elementType: elementType, squeezeFirstAxis: is2D)))
      }
    }
    guard !views.isEmpty else { throw DatasetError(path: xmlPath, "the XML lists no views") }
    return (Dataset(path: xmlPath, format: name, views: views), Array(Set(warnings)).sorted())
  }

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
}

extension XMLElement {
  func child(_ name: String) -> XMLElement? { elements(forName: name).first }
  func children(named name: String) -> [XMLElement] { elements(forName: name) }
}

extension BDVProject {
  /// Writes a copy of the project's XML at `outputPath` in which every view whose `viewToWorld`
  /// differs from the file's gains a new `ViewTransform` named `transformName` in front of its
  /// existing ones (BigStitcher's convention: new transforms are pre-concatenated), so
  /// `model_new = correction · model_old` and everything else in the XML is kept. The HDF5 path
  /// is rewritten when the new XML lives in another directory.
  ///
  /// The transforms compared with are those the dataset was opened with
  /// (``Dataset/openedTransforms``): the XML is parsed again for its text, the HDF5 file is not
  /// opened.
  ///
  /// - Throws: ``DatasetError`` when the original XML cannot be re-read or the output not written.
  public static func save(_ dataset: Dataset, to outputPath: String, transformName: String) throws {
    guard (outputPath as NSString).pathExtension.lowercased() == "xml" else {
      throw DatasetError(path: outputPath, "a BigStitcher project is written back as XML; name the output .xml")
    }
    let doc = try parse(dataset.path)
    guard let root = doc.rootElement() else { throw DatasetError(path: dataset.path, "empty XML") }
    let unit = minimumVoxelSize(root)
    let oldByID = dataset.openedTransforms
    var registrations: [ViewID: XMLElement] = [:]
    for r in root.child("ViewRegistrations")?.children(named: "ViewRegistration") ?? [] {
      if let t = r.attribute(forName: "timepoint")?.stringValue.flatMap({ Int($0) }),
        let s = r.attribute(forName: "setup")?.stringValue.flatMap({ Int($0) })
      {
        registrations[ViewID(timepoint: t, setup: s)] = r
      }
    }
    for view in dataset.views {
      guard let old = oldByID[view.id], let registration = registrations[view.id] else { continue }
      if old == view.viewToWorld { continue }
      // correction (world µm, z,y,x) = new ∘ old⁻¹; then into BDV world units and x,y,z.
      var correction = compose(view.viewToWorld, try old.inverse())
      if correction.rank == 2 {
        correction = try AffineTransform(matrix: [
          [1, 0, 0, 0], [0, correction[0, 0], correction[0, 1], correction[0, 2]],
          [0, correction[1, 0], correction[1, 1], correction[1, 2]],
        ])
      }
      let inBDV = reversedAxes(
        compose(
          AffineTransform(scale: [1 / unit, 1 / unit, 1 / unit]),
          compose(correction, AffineTransform(scale: [unit, unit, unit]))))
      let values = (0..<3).flatMap { r in (0...3).map { c in inBDV[r, c] } }
      let transform = XMLElement(name: "ViewTransform")
      transform.addAttribute(XMLNode.attribute(withName: "type", stringValue: "affine") as! XMLNode)
      transform.addChild(XMLElement(name: "Name", stringValue: transformName))
      transform.addChild(XMLElement(name: "affine", stringValue: values.map { "\($0)" }.joined(separator: " ")))
      registration.insertChild(transform, at: 0)
    }
    // Keep the HDF5 reference valid from the new location.
    let oldDir = URL(fileURLWithPath: (dataset.path as NSString).deletingLastPathComponent).standardizedFileURL
    let newDir = URL(fileURLWithPath: (outputPath as NSString).deletingLastPathComponent).standardizedFileURL
    if oldDir != newDir, let sequence = root.child("SequenceDescription"), let loader = sequence.child("ImageLoader"),
      let h5 = loader.child("hdf5")
    {
      let basePath = resolvePath(root.child("BasePath"), relativeTo: oldDir.path, default: ".")
      let absolute = URL(fileURLWithPath: resolvePath(h5, relativeTo: basePath, default: "")).standardizedFileURL.path
      let newBase = resolvePath(root.child("BasePath"), relativeTo: newDir.path, default: ".")
      let newBaseDir = URL(fileURLWithPath: newBase).standardizedFileURL.path
      if absolute.hasPrefix(newBaseDir + "/") {
        h5.stringValue = String(absolute.dropFirst(newBaseDir.count + 1))
        h5.attribute(forName: "type")?.stringValue = "relative"
      } else {
        h5.stringValue = absolute
        if let type = h5.attribute(forName: "type") {
          type.stringValue = "absolute"
        } else {
          h5.addAttribute(XMLNode.attribute(withName: "type", stringValue: "absolute") as! XMLNode)
        }
      }
    }
    try AtomicFile.write(doc.xmlData(options: [.nodePrettyPrint]), to: outputPath)
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
