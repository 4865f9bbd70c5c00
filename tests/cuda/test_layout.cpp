// The cuFFT layouts and cuBLAS arguments of the GPU products (fftmat/cuda/layout.hpp), replayed on
// the host in float64 by following each library's documented addressing, piece by piece as the
// GPU runs them, and compared with the dense reference of tests/reference.hpp. No device needed.
#include <doctest/doctest.h>

#include <fftmat/block_circulant.hpp>
#include <fftmat/cuda/layout.hpp>
#include <fftmat/cuda/stream_context.hpp>

#include <cmath>
#include <complex>
#include <cstddef>
#include <vector>

#include "../reference.hpp"
#include "../shapes.hpp"

namespace {

using Complex = std::complex<double>;
using fftmat::cuda::detail::BinProducts;
using fftmat::cuda::detail::FftLayout;
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
