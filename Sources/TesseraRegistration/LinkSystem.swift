extension TileRegistration {
  /// Weighted least squares per axis on the link graph: minimise Σ_links w (t_j − t_i − m)²,
  /// gauge fixed by a zero mean correction in every connected component.
  ///
  /// The normal equations `L t = b` (L the weighted graph Laplacian, singular by one constant
  /// per component) are solved with one tile per component held at zero — the grounded
  /// Laplacian is positive definite — by a sparse Cholesky factorisation, then each component's
  /// mean is subtracted; the minimiser is the same, and effective resistances
  /// `R_ij = (e_j − e_i)ᵀ L⁺ (e_j − e_i)` are the grounded quadratic form. The pairs (tile
  /// indices) are fixed at the start; a factorisation takes the weights of the links present.
  struct LinkSystem {
    let tiles: Int
    let pairs: [(Int, Int)]
    let component: [Int]
    /// Tile → unknown of the grounded system (-1 for the tile held at zero).
    let unknown: [Int]
    let unknowns: Int
    let symbolic: SparseCholesky
    /// Per pair, where its tiles' values are in a ``response(_:_:_:)`` (-1: grounded, value 0).
    let slots: [(Int, Int)]
    /// Per pair, where its entries (i, i), (j, j), (i, j) are on the factor's pattern (-1: none).
    let entries: [(ii: Int, jj: Int, ij: Int)]

    init(tiles: Int, pairs: [(Int, Int)]) {
      self.tiles = tiles
      self.pairs = pairs
      var sets = DisjointSets(tiles)
      for (i, j) in pairs { sets.join(i, j) }
      component = (0..<tiles).map { sets.find($0) }
      // The first tile of each component is held at zero.
      var grounded = Set<Int>()
      var unknown = [Int](repeating: -1, count: tiles)
      var k = 0
      for t in 0..<tiles where !grounded.insert(component[t]).inserted {
        unknown[t] = k
        k += 1
      }
      self.unknown = unknown
      unknowns = k
      var adjacency = [[Int]](repeating: [], count: k)
      for (i, j) in pairs where i != j {
        let (a, b) = (unknown[i], unknown[j])
        if a >= 0, b >= 0 {
          adjacency[a].append(b)
          adjacency[b].append(a)
        }
      }
      symbolic = SparseCholesky(adjacency: adjacency)
      let position = symbolic.position
      slots = pairs.map { i, j in
        (unknown[i] >= 0 ? position[unknown[i]] : -1, unknown[j] >= 0 ? position[unknown[j]] : -1)
      }
      let symbolic = symbolic
      entries = pairs.map { i, j in
        let (a, b) = (unknown[i], unknown[j])
        guard i != j else { return (-1, -1, -1) }
        return (
          a >= 0 ? symbolic.entry(a, a) : -1, b >= 0 ? symbolic.entry(b, b) : -1,
          a >= 0 && b >= 0 ? symbolic.entry(a, b) : -1
        )
      }
    }

    /// The factorisation for the links present, (pair position, weight) each. If rounding makes
    /// a pivot non-positive (weights 10¹² apart), the diagonal is raised by 10⁻¹² of its largest
    /// entry, doubling until it factorises (at most 120 times).
    func factorise(_ present: [(Int, Double)]) -> SparseCholesky {
      var diagonal = [Double](repeating: 0, count: unknowns)
      var off: [(Int, Int, Double)] = []
      off.reserveCapacity(present.count)
      for (p, w) in present {
        let (i, j) = pairs[p]
        guard i != j else { continue }
        let (a, b) = (unknown[i], unknown[j])
        if a >= 0 { diagonal[a] += w }
        if b >= 0 { diagonal[b] += w }
        if a >= 0, b >= 0 { off.append((a, b, -w)) }
      }
      var factor = symbolic
      var shift = 1e-12 * max(diagonal.max() ?? 0, .leastNormalMagnitude)
      var d = diagonal
      // At most 120 doublings (from 10⁻¹² of the largest entry to far beyond it); the solve
      // checks its weights are finite, so this always ends positive definite.
      for _ in 0..<120 {
        if factor.factorise(diagonal: d, offDiagonal: off) { break }
        d = diagonal.map { $0 + shift }
        shift *= 2
      }
      return factor
    }

    /// Solution per tile for right-hand side `b` (per tile; sums to zero per component for a
    /// least-squares system), zero mean per component.
    func solve(_ factor: SparseCholesky, _ b: [Double]) -> [Double] {
      var reduced = [Double](repeating: 0, count: unknowns)
      for t in 0..<tiles where unknown[t] >= 0 { reduced[unknown[t]] = b[t] }
      let x = factor.solve(reduced)
      var out = (0..<tiles).map { unknown[$0] >= 0 ? x[unknown[$0]] : 0 }
      var sum = [Double](repeating: 0, count: tiles)
      var count = [Double](repeating: 0, count: tiles)
      for t in 0..<tiles {
        sum[component[t]] += out[t]
        count[component[t]] += 1
      }
      for t in 0..<tiles { out[t] -= sum[component[t]] / count[component[t]] }
      return out
    }

    /// `e_j − e_i` on the unknowns (the grounded tile left out).
    func dipole(_ i: Int, _ j: Int) -> [(Int, Double)] {
      var v: [(Int, Double)] = []
      if unknown[j] >= 0 { v.append((unknown[j], 1)) }
      if unknown[i] >= 0 { v.append((unknown[i], -1)) }
      return v
    }

    /// `A⁻¹(e_j − e_i)`: the value at tile t is `at(t, in:)` of the result.
    func response(_ factor: SparseCholesky, _ i: Int, _ j: Int) -> [Double] {
      factor.solvePermuted(sparse: dipole(i, j))
    }

    /// `g = (e_j − e_i)ᵀ x` for the pair at position p and a response x: the coupling of two links.
    func coupling(_ p: Int, _ x: [Double]) -> Double {
      let (i, j) = slots[p]
      return (j >= 0 ? x[j] : 0) - (i >= 0 ? x[i] : 0)
    }

    /// Effective resistance between the tiles of every pair (µm², for weights in µm⁻²),
    /// `R_ij = Z_ii + Z_jj − 2 Z_ij` from the inverse on the factor's pattern (a grounded
    /// tile's entries are 0).
    func resistances(_ factor: SparseCholesky) -> [Double] {
      let z = factor.inverseOnPattern()
      return entries.map { e in
        (e.ii >= 0 ? z[e.ii] : 0) + (e.jj >= 0 ? z[e.jj] : 0) - (e.ij >= 0 ? 2 * z[e.ij] : 0)
      }
    }

    /// True if dropping the accepted link at pair position `p` would split its component (the
    /// links present are `links[l].accepted` for l in `initial`, in pair order).
    func disconnects(_ p: Int, _ links: [RegistrationLink], _ initial: [Int]) -> Bool {
      var sets = DisjointSets(tiles)
      for (q, l) in initial.enumerated() where q != p && links[l].accepted { sets.join(pairs[q].0, pairs[q].1) }
      return sets.find(pairs[p].0) != sets.find(pairs[p].1)
    }
  }

  /// Union–find over `0..<n` with path halving.
  struct DisjointSets {
    var parent: [Int]
    init(_ n: Int) { parent = Array(0..<n) }
    mutating func find(_ x: Int) -> Int {
      var x = x
      while parent[x] != x {
        parent[x] = parent[parent[x]]
        x = parent[x]
      }
      return x
    }
    mutating func join(_ a: Int, _ b: Int) { parent[find(a)] = find(b) }
  }
}
