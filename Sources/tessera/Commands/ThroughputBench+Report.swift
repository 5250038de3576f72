import Foundation
import Tessera

/// The figures: which stages are per thread, the order of the rows, the 3D/2D ratios, the
/// tables, and the machine and build they were measured on.
extension ThroughputBench {
  static let parallelStages: Set<String> = [
    "refine read+decode", Stage.phaseCorrelation.rawValue, Stage.readDecode.rawValue, Stage.resampleBlend.rawValue,
    Stage.encodeWrite.rawValue, Stage.pyramid.rawValue,
  ]

  /// The rows, in the order the jobs run them.
  static let stageOrder = [
    "refine plan", "refine read+decode", Stage.phaseCorrelation.rawValue, Stage.globalSolve.rawValue,
    "refine whole process", Stage.plan.rawValue, Stage.readDecode.rawValue, Stage.resampleBlend.rawValue,
    Stage.encodeWrite.rawValue, Stage.pyramid.rawValue, Stage.metadata.rawValue, "fuse whole process",
  ]

  /// Per stage, 3D per-voxel throughput over 2D's (seconds over seconds for stages without voxels).
  static func ratios(_ two: [String: Any], _ three: [String: Any]) -> [String: Double] {
    let a = two["stages"] as! [String: [String: Any]]
    let b = three["stages"] as! [String: [String: Any]]
    var out: [String: Double] = [:]
    for (name, x) in a {
      guard let y = b[name], let tx = x["median_seconds"] as? Double, let ty = y["median_seconds"] as? Double,
        tx > 0, ty > 0
      else { continue }
      let vx = x["voxels"] as? Int ?? 0
      let vy = y["voxels"] as? Int ?? 0
      out[name] = vx > 0 && vy > 0 ? (Double(vy) / ty) / (Double(vx) / tx) : tx / ty
    }
    return out
  }

  /// One run's table.
  static func table(_ run: [String: Any]) -> String {
    let stages = run["stages"] as! [String: [String: Any]]
    var lines = [
      "\n\(run["rank"]!)D, \(run["threads"]!) thread(s):",
      "| stage | seconds (min / median) | Mvoxel/s | Mvoxel/s per thread | peak RSS |", "|---|---|---|---|---|",
    ]
    for name in stageOrder {
      guard let s = stages[name] else { continue }
      let mv = (s["mvoxel_s"] as? Double).map { String(format: "%.1f", $0) } ?? "–"
      let pt = (s["mvoxel_s_per_thread"] as? Double).map { String(format: "%.1f", $0) } ?? "–"
      lines.append(
        "| \(name) | \(String(format: "%.3f / %.3f", s["min_seconds"] as! Double, s["median_seconds"] as! Double)) | "
          + "\(mv) | \(pt) | \(FusionJob.format(bytes: s["peak_rss_bytes"] as! Int)) |")
    }
    return lines.joined(separator: "\n")
  }

  static func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }

  static var machine: [String: Any] {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let model =
      info.split(separator: "\n").first { $0.hasPrefix("model name") }.map {
        $0.split(separator: ":", maxSplits: 1).last!.trimmingCharacters(in: .whitespaces)
      } ?? "unknown CPU"
    return [
      "cpu": model, "cores": ProcessInfo.processInfo.activeProcessorCount,
      "memory_bytes": Int(ProcessInfo.processInfo.physicalMemory),
    ]
  }

  static var build: String {
    #if DEBUG
      return "debug (figures not meaningful: use make release)"
    #elseif TESSERA_HOST_CPU
      return "release, for the host CPU (make release)"
    #elseif TESSERA_CHOSEN_CPU
      return "release, for the CPU chosen with TARGET_CPU"
    #else
      return "release, portable"
    #endif
  }
}
