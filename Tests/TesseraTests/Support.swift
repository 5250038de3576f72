import Foundation
import Testing

@testable import Tessera

/// A scratch directory removed when the test ends.
final class TemporaryDirectory {
  let url: URL
  init() {
    url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-test-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  }
  func path(_ name: String) -> String { url.appendingPathComponent(name).path }
  deinit { try? FileManager.default.removeItem(at: url) }
}

/// Reads the ground truth of a simulated acquisition.
func groundTruth(_ directory: TemporaryDirectory, channel: Int) throws -> VolumeBuffer<UInt16> {
  let f = try HDF5File(path: directory.path("ground_truth.h5"))
  let d = try f.dataset("ch\(channel)")
  return try d.read(d.bounds, as: UInt16.self)
}

/// Expects `body` to throw an error whose one-line description contains every fragment.
func expectError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
  do {
    try body()
    Issue.record("expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
  } catch {
    let text = "\(error)"
    #expect(!text.contains("\n"), "error is not one line: \(text)", sourceLocation: sourceLocation)
    for f in fragments {
      #expect(text.contains(f), "error \"\(text)\" does not mention \(f)", sourceLocation: sourceLocation)
    }
  }
}
