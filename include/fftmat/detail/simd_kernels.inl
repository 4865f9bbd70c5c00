// Per-bin product tiles of the packed kernels, written once for any vector width. No include guard:
// detail/simd_avx2.hpp and detail/simd_avx512.hpp each include it inside their own namespace and
// compiler target region (Highway's "-inl" pattern), so the AVX2 build of this source, which every
// x86-64 development machine runs, tests the code of the AVX-512 build as well. It expects two
// structs in the including namespace:
//   Simd      complex panel columns (kPanelRows real parts, then kPanelRows imaginary parts) as
//             kColumnVectors vectors: Vec, kColumnVectors, kTokenTile, zero, broadcast, add, store,
//             load_complex_column (float and bfloat16 panels), times_i, complex_madd;
//   RealSimd  real panel columns (kPanelRows floats, one 8-lane vector): Vec, zero, broadcast, add,
//             fmadd, store, load_real_column.
// It defines Kernels, which the drivers in detail/complex_kernels.hpp call.
//
// The complex product uses y += c x = c xr + (i c) xi: with c's column held as [real | imaginary]
// planes, i c is the column [-imaginary | real] (Simd::times_i), so each (column, token) costs
// 2 * kColumnVectors FMAs into kColumnVectors accumulators, and the sums come out already in the
// [real | imaginary] order the drivers store.

/// Kernels of this instruction set, for float sums over float or bfloat16 panels.
struct Kernels {
  using Index = Eigen::Index;
  static constexpr Index kTokenTile = Simd::kTokenTile;

  /// acc[t*2R .. t*2R + 2R) = [real | imaginary] parts of sum_j C(r, j) x(j, t) for Tn tokens;
  /// x(j, t) is the interleaved complex at x + t*ldx + 2*j.
  template <int Tn, class Element>
  static void complex_tile(const Element* C, Index q, const float* x, Index ldx, float* acc) {
    constexpr int V = Simd::kColumnVectors;
    using Vec = typename Simd::Vec;
    if constexpr (Tn == 1) {
      // One token: a GEMV, bound by streaming C. Alternate columns go to two accumulator sets so
      // that the FMA latency is not on the critical path.
      Vec even[V], odd[V];
      zero_all(even);
      zero_all(odd);
      Index j = 0;
      for (; j + 1 < q; j += 2) {
        prefetch_ahead(C, j);
        madd_column(C, j, x + 2 * j, even);
        madd_column(C, j + 1, x + 2 * j + 2, odd);
      }
      if (j < q) madd_column(C, j, x + 2 * j, even);
      for (int v = 0; v < V; ++v) Simd::store(acc + v * kLanes, Simd::add(even[v], odd[v]));
    } else {
      // A panel (8 rows) is reused by all Tn tokens from registers: Tn * V accumulators.
      Vec sum[Tn][V];
      for (int t = 0; t < Tn; ++t) zero_all(sum[t]);
      for (Index j = 0; j < q; ++j) {
        prefetch_next_product(C, q, j);
        Vec c[V], ic[V];
        Simd::load_complex_column(C, j, c);
        Simd::times_i(c, ic);
        for (int t = 0; t < Tn; ++t) {
          const float* xt = x + t * ldx + 2 * j;
          Simd::complex_madd(c, ic, Simd::broadcast(xt), Simd::broadcast(xt + 1), sum[t]);
        }
      }
      for (int t = 0; t < Tn; ++t) {
        for (int v = 0; v < V; ++v) Simd::store(acc + t * 2 * kPanelRows + v * kLanes, sum[t][v]);
      }
    }
  }

  /// The same for a real bin (DC, and Nyquist for even b), where C and x are real: only real parts,
  /// imaginary parts zero.
  template <int Tn, class Element>
  static void real_tile(const Element* C, Index q, const float* x, Index ldx, float* acc) {
    using Vec = typename RealSimd::Vec;
    Vec y[Tn], y2[Tn];  // two accumulators per token against the FMA latency
    for (int t = 0; t < Tn; ++t) y[t] = y2[t] = RealSimd::zero();
    Index j = 0;
    for (; j + 1 < q; j += 2) {
      const Vec c0 = RealSimd::load_real_column(C, j), c1 = RealSimd::load_real_column(C, j + 1);
      for (int t = 0; t < Tn; ++t) {
        y[t] = RealSimd::fmadd(c0, RealSimd::broadcast(x + t * ldx + 2 * j), y[t]);
        y2[t] = RealSimd::fmadd(c1, RealSimd::broadcast(x + t * ldx + 2 * j + 2), y2[t]);
      }
    }
    for (; j < q; ++j) {
      const Vec c0 = RealSimd::load_real_column(C, j);
      for (int t = 0; t < Tn; ++t) y[t] = RealSimd::fmadd(c0, RealSimd::broadcast(x + t * ldx + 2 * j), y[t]);
    }
    for (int t = 0; t < Tn; ++t) {
      RealSimd::store(acc + t * 2 * kPanelRows, RealSimd::add(y[t], y2[t]));
      RealSimd::store(acc + t * 2 * kPanelRows + kPanelRows, RealSimd::zero());
    }
  }

  /// One token, one complex bin of two panels at once: two sequential streams keep more cache
  /// misses in flight than one (the one-token product is bound by reading the spectra), and the
  /// panels share the bin's input, so each broadcast serves both.
  template <class Element>
  static void complex_two_panels(const Element* C1, const Element* C2, const float* x, Index q, float* acc1,
                                 float* acc2) {
    constexpr int V = Simd::kColumnVectors;
    typename Simd::Vec sum1[V], sum2[V];
    zero_all(sum1);
    zero_all(sum2);
    for (Index j = 0; j < q; ++j) {
      prefetch_ahead(C1, j);
      prefetch_ahead(C2, j);
      madd_column(C1, j, x + 2 * j, sum1);
      madd_column(C2, j, x + 2 * j, sum2);
    }
    for (int v = 0; v < V; ++v) {
      Simd::store(acc1 + v * kLanes, sum1[v]);
      Simd::store(acc2 + v * kLanes, sum2[v]);
    }
  }

 private:
  static constexpr int kLanes = 2 * int(kPanelRows) / Simd::kColumnVectors;

  static void zero_all(typename Simd::Vec* v) {
    for (int k = 0; k < Simd::kColumnVectors; ++k) v[k] = Simd::zero();
  }

  /// sum += column j of C times the complex x[0] + i x[1].
  template <class Element>
  static void madd_column(const Element* C, Index j, const float* x, typename Simd::Vec* sum) {
    typename Simd::Vec c[Simd::kColumnVectors], ic[Simd::kColumnVectors];
    Simd::load_complex_column(C, j, c);
    Simd::times_i(c, ic);
    Simd::complex_madd(c, ic, Simd::broadcast(x), Simd::broadcast(x + 1), sum);
  }

  /// Asks for column j of the panel stored after this one (the next product's, in the drivers'
  /// panel-major order) while this one is computed: the tiles of a token chunk find the spectra in
  /// L3 at best, and one column's sums take long enough to hide that latency.
  template <class Element>
  static void prefetch_next_product(const Element* C, Index q, Index j) {
    _mm_prefetch(reinterpret_cast<const char*>(C + (q + j) * 2 * kPanelRows), _MM_HINT_T0);
  }

  /// Asks for the panel bytes kPrefetchBytes ahead of complex column j: one sequential stream per
  /// core does not keep enough misses in flight to saturate memory.
  template <class Element>
  static void prefetch_ahead(const Element* C, Index j) {
    _mm_prefetch(reinterpret_cast<const char*>(C + j * 2 * kPanelRows) + kPrefetchBytes, _MM_HINT_T0);
  }
};
