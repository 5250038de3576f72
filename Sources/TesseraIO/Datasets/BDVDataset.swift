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
}
