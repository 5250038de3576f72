import Foundation
import Testing

@testable import TesseraRegistration

/// The report's reasons and sources print, and are written, with the exact text of earlier
/// reports, and read back.
@Suite struct RegistrationReportTests {
  /// Every reason case and its sentence.
  static let reasons: [(RegistrationLink.Reason, String)] = [
    (.noPeak, "no peak with enough overlap within the maximum shift"),
    (.lowCorrelation(0.41262, minimum: 0.6), "correlation 0.413 below --min-correlation 0.60"),
    (.unusableVoxelSize([1, .nan], rank: 2), "dropped: voxel size [1.0, nan] is not 2 positive values"),
    (.unusableVoxelSize([1], rank: 2), "dropped: voxel size [1.0] is not 2 positive values"),
    (.unusableVoxelSize([], rank: 3), "dropped: voxel size [] is not 3 positive values"),
    (.notTwoTiles, "dropped: a link joins two different tiles"),
    (.unknownTile(9), "dropped: tile 9 is not among the tiles solved for"),
    (.noFiniteShift(rank: 3), "dropped: no finite shift of 3 values"),
    (
      .inconsistent(discrepancy: 2.0049, normalized: 41.26),
      "dropped: differs from the path through the other links by 2.00 voxels (41.3 σ)"
    ),
    (
      .consistent(residual: 0.01234, discrepancy: 0.0256, normalized: 1.04),
      "kept: residual 0.012 voxels, differs from the path through the other links by 0.026 voxels (1.0 σ)"
    ),
    (.kept(residual: 1.23456, normalized: 0.76), "kept: residual 1.235 voxels (0.8 σ)"),
  ]

  @Test func reasonsPrintTheirSentences() {
    for (reason, text) in Self.reasons {
      #expect(reason.description == text)
      #expect("\(reason)" == text)
    }
  }

  /// In JSON a reason is its sentence; a sentence reads back as a reason with the same sentence.
  @Test func reasonsRoundTripThroughJSON() throws {
    for (reason, text) in Self.reasons {
      let data = try JSONEncoder().encode([reason])
      let expected = try JSONEncoder().encode([text])
      #expect(data == expected)
      let back = try JSONDecoder().decode([RegistrationLink.Reason].self, from: data)
      #expect(back[0].description == text)
    }
    #expect(throws: DecodingError.self) {
      try JSONDecoder().decode([RegistrationLink.Reason].self, from: Data(#"["kept: because"]"#.utf8))
    }
  }

  @Test func sourcesPrintTheirText() throws {
    let sources: [(TileCorrection.Source, String)] = [
      (.solved, "solved"), (.fromNeighbours, "from neighbours"), (.unchanged, "unchanged"),
    ]
    for (source, text) in sources {
      #expect("\(source)" == text)
      #expect(try JSONEncoder().encode([source]) == JSONEncoder().encode([text]))
      #expect(try JSONDecoder().decode([TileCorrection.Source].self, from: JSONEncoder().encode([text])) == [source])
    }
  }
}
