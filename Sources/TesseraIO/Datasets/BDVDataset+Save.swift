import Foundation
import TesseraCore

#if canImport(FoundationXML)
  import FoundationXML
#endif

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
}
