import Testing

@testable import Tessera

@Suite struct FusionOptionsTests {
  /// The image is named after the output: its last component less `.zarr`, then `.ome`.
  @Test func imageNameComesFromTheOutput() {
    #expect(FusionOptions.imageName(output: "/data/fused.ome.zarr") == "fused")
    #expect(FusionOptions.imageName(output: "run 3/Brain.OME.ZARR/") == "Brain")
    #expect(FusionOptions.imageName(output: "out.zarr") == "out")
    #expect(FusionOptions.imageName(output: "volume") == "volume")
    #expect(FusionOptions.imageName(output: "stack.n5") == "stack.n5")
    #expect(FusionOptions.imageName(output: ".zarr") == nil)
    #expect(FusionOptions.imageName(output: "/") == nil)
  }
}
