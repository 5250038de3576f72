import Foundation
import TesseraCore

extension OMEZarrImage {
  /// Writes the OME-NGFF metadata (multiscales, omero with display windows from the coarsest
  /// level, and the `tessera` provenance block) — the last step, which makes the output a
  /// finished image.
  public func finish(provenance: [String: Any]) throws {
    let n = spec.spatialRank
    let lead = spec.leadingAxes
    var axes: [[String: Any]] = []
    if spec.timepoints > 1 { axes.append(["name": "t", "type": "time", "unit": "second"]) }
    axes.append(["name": "c", "type": "channel"])
    for name in ["z", "y", "x"].suffix(n) { axes.append(["name": name, "type": "space", "unit": "micrometer"]) }
    let leadOnes = Array(repeating: 1.0, count: lead.count)
    let leadZeros = Array(repeating: 0.0, count: lead.count)
    let datasets: [[String: Any]] = spec.levelFactors.enumerated().map { level, f in
      let scale = zip(spec.voxelSize, f).map { $0 * Double($1) }
      let translation = (0..<n).map { spec.origin[$0] + Double(f[$0] - 1) / 2 * spec.voxelSize[$0] }
      return [
        "path": "\(level)",
        "coordinateTransformations": [
          ["type": "scale", "scale": leadOnes + scale],
          ["type": "translation", "translation": leadZeros + translation],
        ],
      ]
    }
    var multiscale: [String: Any] = [
      "name": spec.name, "axes": axes, "datasets": datasets, "type": "mean",
      "metadata": ["method": "block mean, 2× in y and x per level (z while not coarser)"],
    ]
    let windows = try displayWindows()
    let channels: [[String: Any]] = spec.channels.enumerated().map { c, channel in
      [
        "label": channel.label, "color": channel.color, "active": true, "coefficient": 1.0, "family": "linear",
        "inverted": false, "window": windows[c],
      ]
    }
    var omero: [String: Any] = [
      "name": spec.name, "channels": channels,
      "rdefs": ["defaultT": 0, "defaultZ": n == 3 ? spec.shape[0] / 2 : 0, "model": "color"],
    ]
    var tessera = provenance
    tessera["status"] = "complete"
    tessera["layout"] = spec.fingerprint
    tessera["plan"] = plan.fingerprint
    switch spec.format {
    case .v2:
      multiscale["version"] = "0.4"
      omero["version"] = "0.4"
      try ZarrGroup.write(
        at: path, format: .v2, attributes: ["multiscales": [multiscale], "omero": omero, "tessera": tessera])
    case .v3:
      try ZarrGroup.write(
        at: path, format: .v3,
        attributes: ["ome": ["version": "0.5", "multiscales": [multiscale], "omero": omero], "tessera": tessera])
    }
  }
}
