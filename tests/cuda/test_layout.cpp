// The cuFFT layouts and cuBLAS arguments of the GPU products (fftmat/cuda/layout.hpp), replayed on
// the host in float64 by following each library's documented addressing, piece by piece as the
// GPU runs them, and compared with the dense reference of tests/reference.hpp; and the one-token
// kernel's division of work (OneTokenPlan), replayed thread block by thread block with the
// kernel's formulas. No device needed.
#include <doctest/doctest.h>

#include <fftmat/block_circulant.hpp>
#include <fftmat/cuda/layout.hpp>
#include <fftmat/cuda/stream_context.hpp>

#include <algorithm>
#include <cmath>
#include <complex>
#include <utility>
#include <cstddef>
#include <vector>

#include "../reference.hpp"
#include "../shapes.hpp"

namespace {

using Complex = std::complex<double>;
using fftmat::cuda::detail::BinProducts;
using fftmat::cuda::detail::FftLayout;
using fftmat::cuda::detail::OneTokenPlan;
using fftmat::test::Index;
const double kPi = 3.14159265358979323846;

/// cufftExecD2Z as documented: transform k reads in[k*idist + x*istride] (x < n) and writes the
/// unnormalised half spectrum sum_x in[x] e^{-2 pi i f x / n} to out[k*odist + f*ostride].
std::vector<Complex> r2c(const FftLayout& L, const double* in) {
  const int bins = L.n / 2 + 1;
  std::vector<Complex> out(static_cast<std::size_t>(L.batch) * bins);
  for (int k = 0; k < L.batch; ++k)
    for (int f = 0; f < bins; ++f) {
      Complex sum = 0;
      for (int x = 0; x < L.n; ++x) sum += in[k * L.idist + x * L.istride] * std::polar(1.0, -2 * kPi * f * x / L.n);
      out[static_cast<std::size_t>(k * L.odist + f * L.ostride)] = sum;
    }
  return out;
}

/// cufftExecZ2D as documented: the Hermitian extension of the half spectrum at
/// in[k*idist + f*istride], transformed back unnormalised, real part to out[k*odist + x*ostride].
void c2r(const FftLayout& L, const std::vector<Complex>& in, double* out) {
  const int bins = L.n / 2 + 1;
  for (int k = 0; k < L.batch; ++k)
    for (int x = 0; x < L.n; ++x) {
      Complex sum = 0;
      for (int f = 0; f < L.n; ++f) {
        const Complex value = f < bins ? in[static_cast<std::size_t>(k * L.idist + f * L.istride)]
                                       : std::conj(in[static_cast<std::size_t>(k * L.idist + (L.n - f) * L.istride)]);
        sum += value * std::polar(1.0, 2 * kPi * f * x / L.n);
      }
      out[k * L.odist + x * L.ostride] = sum.real();
    }
}

/// cublasGemmStridedBatchedEx as documented (column-major, alpha 1, beta 0, op(B) = N).
std::vector<Complex> gemm(const BinProducts& g, const Complex* A, const std::vector<Complex>& B) {
  std::vector<Complex> C(static_cast<std::size_t>(g.stride_c * g.batch));
  for (int batch = 0; batch < g.batch; ++batch)
    for (int j = 0; j < g.n; ++j)
      for (int i = 0; i < g.m; ++i) {
        Complex sum = 0;
        for (int l = 0; l < g.k; ++l) {
          const Complex* bin = A + batch * g.stride_a;
          const Complex a = g.transpose_a ? bin[l + i * g.lda] : bin[i + l * g.lda];
          sum += a * B[static_cast<std::size_t>(batch * g.stride_b + l + j * g.ldb)];
        }
        C[static_cast<std::size_t>(batch * g.stride_c + i + j * g.ldc)] = sum;
      }
  return C;
}

/// Y = A X (or A^T X) as the GPU computes a product of pieces of more than one token: R2C,
/// per-bin products on the uploaded spectra (conjugated for the transpose), C2R.
Eigen::MatrixXd replay(const fftmat::BlockCirculant<double>& A, const Eigen::MatrixXd& X, bool adjoint,
                       Index chunk) {
  const int b = static_cast<int>(A.block_size()), p = static_cast<int>(A.block_rows());
  const int q = static_cast<int>(A.block_cols()), bins = static_cast<int>(A.bins());
  const int in_blocks = adjoint ? p : q, out_blocks = adjoint ? q : p;
  std::vector<Complex> spectra(A.spectra(), A.spectra() + bins * p * q);
  if (adjoint) {
    for (Complex& value : spectra) value = std::conj(value);
  }
  Eigen::MatrixXd Y(out_blocks * b, X.cols());
  for (Index done = 0; done < X.cols();) {
    const int t = static_cast<int>(fftmat::cuda::detail::next_piece(X.cols() - done, chunk));
    const std::vector<Complex> x_hat = r2c(fftmat::cuda::detail::forward_layout(b, in_blocks, t), X.col(done).data());
    const std::vector<Complex> y_hat = gemm(fftmat::cuda::detail::bin_products(adjoint, p, q, t, bins),
                                            spectra.data(), x_hat);
    c2r(fftmat::cuda::detail::inverse_layout(b, out_blocks, t), y_hat, Y.col(done).data());
    done += t;
  }
  return Y;
}

/// y = A x (or A^T x) for one token as one_token_product computes it under `plan`: thread block
/// (tile, f) takes the input's bin f by direct DFT (the twiddle index walked as the kernel walks
/// it), the products of its rows (columns) of bin f into scratch, and the tile's last block the
/// inverse DFTs with weights 1 for the real bins and 2 otherwise. Every output element must be
/// written exactly once.
Eigen::VectorXd replay_one_token(const fftmat::BlockCirculant<double>& A, const Eigen::VectorXd& x, bool adjoint,
                                 const OneTokenPlan& plan) {
  const int b = static_cast<int>(A.block_size()), p = static_cast<int>(A.block_rows());
  const int q = static_cast<int>(A.block_cols()), bins = plan.bins;
  const int in_blocks = adjoint ? p : q, out_blocks = adjoint ? q : p;
  std::vector<Complex> twiddles(static_cast<std::size_t>(b));
  for (int m = 0; m < b; ++m) twiddles[static_cast<std::size_t>(m)] = std::polar(1.0, 2 * kPi * m / b);
  std::vector<Complex> partial(static_cast<std::size_t>(bins * out_blocks));
  std::vector<int> arrivals(static_cast<std::size_t>(plan.tiles), 0);
  Eigen::VectorXd y = Eigen::VectorXd::Constant(out_blocks * b, std::nan(""));
  std::vector<int> writes(static_cast<std::size_t>(out_blocks * b), 0);
  for (int block = 0; block < plan.grid(); ++block) {
    const int tile = block / bins, f = block % bins;
    const int first = tile * plan.tile_blocks, count = std::min(plan.tile_blocks, out_blocks - first);
    REQUIRE(count >= 1);
    const Complex* bin = A.spectra() + static_cast<std::ptrdiff_t>(f) * p * q;
    // The input's bin f, lane by lane as the kernel walks it: lane l's twiddle index starts at
    // f*l mod b and steps by f*32 mod b.
    std::vector<Complex> input(static_cast<std::size_t>(in_blocks));
    for (int j = 0; j < in_blocks; ++j) {
      for (int lane = 0; lane < 32; ++lane) {
        int m = (f * lane) % b;
        for (int k = lane; k < b; k += 32) {
          input[static_cast<std::size_t>(j)] += x[j * b + k] * std::conj(twiddles[static_cast<std::size_t>(m)]);
          m += (f * 32) % b;
          if (m >= b) m -= b;
        }
      }
    }
    for (int o = 0; o < count; ++o) {
      const int out = first + o;
      Complex sum = 0;
      for (int l = 0; l < in_blocks; ++l) {
        sum += (adjoint ? std::conj(bin[l * q + out]) : bin[out * q + l]) * input[static_cast<std::size_t>(l)];
      }
      partial[static_cast<std::size_t>(f * out_blocks + out)] = sum;
    }
    if (++arrivals[static_cast<std::size_t>(tile)] != bins) continue;
    for (int o = 0; o < count; ++o) {
      const int out = first + o;
      for (int r = 0; r < b; ++r) {
        double sum = 0;
        for (int g = 0; g < bins; ++g) {
          const double term = (partial[static_cast<std::size_t>(g * out_blocks + out)] *
                               twiddles[static_cast<std::size_t>((g * r) % b)]).real();
          sum += fftmat::detail::is_real_bin(g, b) ? term : 2 * term;
        }
        y[out * b + r] = sum;
        ++writes[static_cast<std::size_t>(out * b + r)];
      }
    }
  }
  for (int w : writes) REQUIRE(w == 1);
  return y;
}

}  // namespace

TEST_CASE("the GPU's cuFFT layouts and cuBLAS arguments, replayed in float64, give the dense products") {
  for (const fftmat::test::Shape& s : fftmat::test::kCommonShapes) {
    const Eigen::VectorXd params = fftmat::test::gaussian_vector(s.m * s.n / s.b, 71);
    const fftmat::BlockCirculant<double> A(s.m, s.n, s.b, params);
    const Eigen::MatrixXd dense = fftmat::test::dense_block_circulant(s.m, s.n, s.b, params);
    for (Index T : {Index(2), Index(3), Index(7)}) {  // with a chunk of 4: pieces 2; 2+1; 4+2+1
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.b);
      CAPTURE(T);
      const Eigen::MatrixXd X = fftmat::test::gaussian(s.n, T, 72);
      CHECK(fftmat::test::relative_error(replay(A, X, false, 4), dense * X) < 1e-12);
      const Eigen::MatrixXd Xt = fftmat::test::gaussian(s.m, T, 73);
      CHECK(fftmat::test::relative_error(replay(A, Xt, true, 4), dense.transpose() * Xt) < 1e-12);
    }
  }
}

TEST_CASE("the one-token kernel's plan covers every output once, fits shared memory, and gives the dense products") {
  using fftmat::cuda::detail::one_token_plan;
  std::vector<fftmat::test::Shape> shapes = fftmat::test::kCommonShapes;
  // {1024, 2048, 8}: at a target of 16 blocks the tiles would need 64 KB of staged rows, so
  // shared memory sets their size.
  shapes.insert(shapes.end(), {{640, 256, 64}, {256, 640, 64}, {1024, 1024, 512}, {1320, 1056, 33}, {1024, 2048, 8}});
  for (const fftmat::test::Shape& s : shapes) {
    const Eigen::VectorXd params = fftmat::test::gaussian_vector(s.m * s.n / s.b, 74);
    const fftmat::BlockCirculant<double> A(s.m, s.n, s.b, params);
    const Eigen::MatrixXd dense = fftmat::test::dense_block_circulant(s.m, s.n, s.b, params);
    const int b = static_cast<int>(s.b), p = static_cast<int>(s.m / s.b), q = static_cast<int>(s.n / s.b);
    // 16 and 264 thread blocks wanted: a small GPU and two per SM of a 132-SM H200; float2 and
    // bfloat16 entries, as the GPU matrix asks.
    for (int target : {16, 264}) {
      for (std::size_t entry : {std::size_t(8), std::size_t(4)}) {
        CAPTURE(s.m);
        CAPTURE(s.n);
        CAPTURE(s.b);
        CAPTURE(target);
        const OneTokenPlan normal = one_token_plan(b, q, p, true, 8, entry, target);
        const OneTokenPlan adjoint = one_token_plan(b, p, q, false, 8, 8, target);
        for (const OneTokenPlan* plan : {&normal, &adjoint}) {
          REQUIRE(plan->usable());
          CHECK(plan->shared_bytes <= fftmat::cuda::detail::kOneTokenDynamicSharedBytes);
          CHECK(plan->input_offset % 16 == 0);
          CHECK(plan->region_offset % 16 == 0);
          // Enough thread blocks: at least half the target (tiles of equal size cannot hit every
          // count), unless the outputs run out first.
          const int outputs = plan == &normal ? p : q;
          CHECK(2 * plan->grid() >= std::min(target, plan->bins * outputs));
        }
        // The staged rows fit the region: tile_blocks rows of q entries.
        CHECK(normal.region_offset + static_cast<std::size_t>(normal.tile_blocks) * static_cast<std::size_t>(q) * entry <=
              normal.shared_bytes);
        // Bulk copies only where every tile's rows of every bin start and end 16-byte aligned
        // (from a 16-byte-aligned start of the spectra), as cp.async.bulk requires.
        CHECK(normal.aligned_rows == (static_cast<std::size_t>(q) * entry % 16 == 0));
        CHECK_FALSE(adjoint.aligned_rows);
        if (normal.aligned_rows) {
          for (int block = 0; block < normal.grid(); ++block) {
            const int tile = block / normal.bins, f = block % normal.bins;
            const int first = tile * normal.tile_blocks, count = std::min(normal.tile_blocks, p - first);
            const std::size_t row = static_cast<std::size_t>(f) * p + static_cast<std::size_t>(first);
            const std::size_t offset = row * static_cast<std::size_t>(q) * entry;
            REQUIRE(offset % 16 == 0);
            REQUIRE(static_cast<std::size_t>(count) * q * entry % 16 == 0);
          }
        }
        // The gathered bins fit it too.
        CHECK(adjoint.region_offset + static_cast<std::size_t>(adjoint.tile_blocks * adjoint.bins) * 8 <=
              adjoint.shared_bytes);
        const Eigen::VectorXd x = fftmat::test::gaussian(s.n, 1, 75);
        CHECK(fftmat::test::relative_error(replay_one_token(A, x, false, normal), dense * x) < 1e-12);
        const Eigen::VectorXd xt = fftmat::test::gaussian(s.m, 1, 76);
        CHECK(fftmat::test::relative_error(replay_one_token(A, xt, true, adjoint), dense.transpose() * xt) < 1e-12);
      }
    }
  }
}

TEST_CASE("the one-token plan declines what shared memory cannot hold, and blocks above 512") {
  using fftmat::cuda::detail::one_token_plan;
  CHECK_FALSE(one_token_plan(1024, 4, 4, true, 8, 8, 264).usable());
  // 6000 input blocks of float2: 48 KB for the input's bin alone.
  CHECK_FALSE(one_token_plan(64, 6000, 4, true, 8, 8, 264).usable());
  // Llama-2-7B's MLP at b = 64: usable both ways, with double too, within shared memory.
  for (std::size_t complex_bytes : {std::size_t(8), std::size_t(16)}) {
    for (int target : {16, 264}) {
      for (const auto& [in_blocks, out_blocks] : {std::pair{64, 172}, std::pair{172, 64}}) {
        const OneTokenPlan plan = one_token_plan(64, in_blocks, out_blocks, true, complex_bytes, complex_bytes, target);
        CHECK(plan.usable());
        CHECK(plan.shared_bytes <= fftmat::cuda::detail::kOneTokenDynamicSharedBytes);
        CHECK(plan.aligned_rows);  // rows of 64 or 172 entries of 8 or 16 bytes: bulk copies
        CHECK(plan.tiles * plan.tile_blocks >= out_blocks);
      }
    }
  }
}
