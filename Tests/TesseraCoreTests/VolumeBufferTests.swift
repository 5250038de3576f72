import Testing

@testable import TesseraCore

@Suite struct VolumeBufferTests {
  @Test func conversionRoundsClampsAndMapsNaNToZero() {
    #expect(UInt16(clamping: Float(2.5)) == 3)  // halves away from zero
    #expect(UInt16(clamping: Float(2.4999)) == 2)
    #expect(UInt16(clamping: Float(-7)) == 0)
    #expect(UInt16(clamping: Float(70000)) == 65535)
    #expect(UInt16(clamping: Float.nan) == 0)
    #expect(UInt16(clamping: Float.infinity) == 65535)
    #expect(UInt8(clamping: Float(255.4)) == 255)
    #expect(UInt8(clamping: Float(255.6)) == 255)
    #expect(UInt8(clamping: Double(-0.4)) == 0)
    #expect(Int16(clamping: Float(-2.5)) == -3)
    #expect(Int16(clamping: Float(-40000)) == -32768)
    #expect(UInt32(clamping: Float(5e9)) == UInt32.max)
    #expect(UInt32(clamping: Double(4_294_967_294.6)) == UInt32.max)
    #expect(Float(clamping: Double(0.1)) == Float(0.1))
    #expect(UInt16(40000).floatValue == 40000)
  }

  @Test func copySubBoxBetweenBuffers() throws {
    // Source holds [0,4)×[0,5) with value 10*y + x.
    var src = VolumeBuffer<UInt16>(box: Box(shape: [4, 5]))
    Box(shape: [4, 5]).forEachIndex { p in src[p] = UInt16(10 * p[0] + p[1]) }
    // Destination sits at [2,6)×[3,7): shared region [2,4)×[3,5).
    var dst = VolumeBuffer<UInt16>(box: Box(lower: [2, 3], upper: [6, 7]), repeating: 999)
    dst.copy(from: src)
    dst.box.forEachIndex { p in
      let inside = p[0] < 4 && p[1] < 5
      #expect(dst[p] == (inside ? UInt16(10 * p[0] + p[1]) : 999))
    }
    // A region restricts the copy further.
    var dst2 = VolumeBuffer<UInt16>(box: Box(shape: [4, 5]))
    dst2.copy(from: src, region: Box(lower: [1, 1], upper: [2, 3]))
    #expect(dst2.storage.filter { $0 != 0 }.count == 2)
    #expect(dst2[[1, 2]] == 12)
    // extracting and moving.
    var e = src.extracting(Box(lower: [1, 2], upper: [3, 4]))
    #expect(e.storage == [12, 13, 22, 23])
    e.move(to: [0, 0])
    #expect(e.box == Box(shape: [2, 2]))
  }

  @Test func copyConvertsBetweenTypes3D() throws {
    let box = Box(shape: [2, 3, 4])
    var f = VolumeBuffer<Float>(box: box)
    var i = 0
    box.forEachIndex { p in
      f[p] = Float(i) * 50.3 - 100
      i += 1
    }
    let u8 = f.converted(to: UInt8.self)
    let u16 = f.converted(to: UInt16.self)
    for (k, v) in f.storage.enumerated() {
      #expect(u8.storage[k] == UInt8(clamping: v))
      #expect(u16.storage[k] == UInt16(clamping: v))
    }
    let back = u16.converted(to: Float.self)
    #expect(back.storage == u16.storage.map(Float.init))
    let any = AnyVolumeBuffer(u16)
    #expect(any.elementType == .uint16)
    #expect(any.box == box)
    #expect(any.converted(to: Float.self) == back)
  }

  @Test func storageSizeIsChecked() {
    #expect(throws: GeometryError.self) { try VolumeBuffer<UInt8>(box: Box(shape: [2, 2]), storage: [1, 2, 3]) }
  }

  @Test func elementTypeNames() {
    #expect(ElementType(numpyTypeString: "<u2") == .uint16)
    #expect(ElementType(numpyTypeString: "|u1") == .uint8)
    #expect(ElementType(numpyTypeString: "float32") == .float32)
    #expect(ElementType(numpyTypeString: ">u2") == nil)
    #expect(ElementType.uint16.byteCount == 2)
  }
}

@Suite struct ConversionPropertyTests {
  /// The branch-free Float → 8/16-bit conversion equals the plain definition (round half away
  /// from zero in Double, clamp, NaN → 0) on random and edge values.
  @Test func branchFreeRoundingMatchesTheDefinition() {
    var rng = SeededRandom.forTest("Conversion.branchFree")
    var values: [Float] = [
      0, -0, 0.5, -0.5, 1.5, 2.5, -2.5, 65534.5, 65535.49, 65535.5, 70000, -70000, 127.5, -128.5, 255.5,
      32767.5, -32768.5, .nan, .infinity, -.infinity, 0.49999997, -0.49999997, 1e-30,
    ]
    for _ in 0..<100_000 { values.append(Float.random(in: -70000...70000, using: &rng)) }
    for _ in 0..<20_000 { values.append(Float(Int.random(in: -70000...70000, using: &rng)) + 0.5) }
    func reference<T: FixedWidthInteger>(_ v: Float, _: T.Type) -> T {
      if v.isNaN { return 0 }
      let r = Double(v).rounded(.toNearestOrAwayFromZero)
      return r <= Double(T.min) ? T.min : r >= Double(T.max) ? T.max : T(r)
    }
    for v in values {
      #expect(UInt16(clamping: v) == reference(v, UInt16.self), "\(v)")
      #expect(Int16(clamping: v) == reference(v, Int16.self), "\(v)")
      #expect(UInt8(clamping: v) == reference(v, UInt8.self), "\(v)")
      #expect(Int8(clamping: v) == reference(v, Int8.self), "\(v)")
    }
  }
}
