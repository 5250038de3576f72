import Testing

@testable import TesseraRegistration

@Suite struct FFTTests {
  @Test(arguments: [[16, 24], [6, 10, 9], [1, 8, 8]])
  func forwardInverseRoundTrip(shape: [Int]) {
    let plan = RealFFTPlan(shape: shape)
    let buffer = plan.makeBuffer()
    var original: [Float] = []
    for i in 0..<plan.count {
      let v = Float((i * 7919) % 101) / 10 - 5
      buffer.real[i] = v
      original.append(v)
    }
    plan.forward(buffer)
    // DC term is the sum.
    #expect(abs(buffer.spectrum[0].re - original.reduce(0, +)) < 1e-2)
    plan.inverse(buffer)
    let n = Float(plan.count)
    for i in 0..<plan.count { #expect(abs(buffer.real[i] / n - original[i]) < 1e-4) }
  }

  @Test func impulseHasFlatSpectrum() {
    let plan = RealFFTPlan(shape: [8, 8])
    #expect(plan.spectrumShape == [8, 5])
    let b = plan.makeBuffer()
    b.real[0] = 1
    plan.forward(b)
    for c in b.spectrum {
      #expect(abs(c.re - 1) < 1e-6 && abs(c.im) < 1e-6)
    }
  }

  @Test func plansAreSharedAndRunConcurrently() async {
    let cache = FFTPlanCache()
    #expect(cache.plan(for: [32, 32]) === cache.plan(for: [32, 32]))
    let sums = await withTaskGroup(of: Float.self) { group in
      for k in 0..<8 {
        group.addTask {
          let plan = cache.plan(for: [32, 32])
          let b = plan.makeBuffer()
          for i in 0..<plan.count { b.real[i] = Float(k) }
          plan.forward(b)
          return b.spectrum[0].re
        }
      }
      var out: [Float] = []
      for await s in group { out.append(s) }
      return out.sorted()
    }
    #expect(sums == (0..<8).map { Float($0 * 1024) })
  }
}
