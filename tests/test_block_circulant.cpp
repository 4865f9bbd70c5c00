#include <doctest/doctest.h>
#include <fftmat/block_circulant.hpp>

#include <cmath>
#include <complex>
#include <cstddef>
#include <vector>

#include "reference.hpp"
#include "scoped_thread_count.hpp"
#include "shapes.hpp"

using namespace fftmat;
using test::Index;
using test::ScopedThreadCount;
using test::Shape;

namespace {

const std::vector<Shape>& kShapes = test::kCommonShapes;

template <class Scalar>
BlockCirculant<Scalar> make(const Shape& s, const Eigen::VectorXd& params, Padding padding = Padding::none) {
  return BlockCirculant<Scalar>(s.m, s.n, s.b, params.cast<Scalar>(), padding);
}

Index padded_params(const Shape& s) { return ((s.m + s.b - 1) / s.b) * ((s.n + s.b - 1) / s.b) * s.b; }

// bfloat16 keeps 8 significant bits: each stored spectrum value is off by at most 2^-8 relative,
// so a product's relative error is of order 2^-8 / sqrt(3) ~ 2e-3 for random data. The lower
// bounds show that the rounded copy, not the full-precision spectra, was used.
constexpr double kBfloat16Tolerance = 5e-3;
constexpr double kBfloat16RoundingVisible = 1e-4;

}  // namespace

TEST_CASE_TEMPLATE("block-circulant apply, apply_transpose and to_dense match the dense definition", Scalar,
                   float, double) {
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  unsigned seed = 1;
  for (const Shape& s : kShapes) {
    const Eigen::VectorXd params = test::gaussian_vector(s.m * s.n / s.b, seed++);
    const Eigen::MatrixXd dense = test::dense_block_circulant(s.m, s.n, s.b, params);
    const BlockCirculant<Scalar> A = make<Scalar>(s, params);
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.b);
    CHECK(A.rows() == s.m);
    CHECK(A.cols() == s.n);
    CHECK(A.block_size() == s.b);
    CHECK(A.parameter_count() == s.m * s.n / s.b);
    CHECK(A.parameters().template cast<double>().isApprox(params, test::tolerance<Scalar>()));
    CHECK(test::relative_error(A.to_dense().template cast<double>(), dense) < test::tolerance<Scalar>());
    for (const Index T : {1, 2, 17}) {
      CAPTURE(T);
      const Eigen::MatrixXd X = test::gaussian(s.n, T, seed++);
      const Eigen::MatrixXd Xt = test::gaussian(s.m, T, seed++);
      Matrix Y(s.m, T), Yt(s.n, T);
      A.apply(X.cast<Scalar>(), Y);
      A.apply_transpose(Xt.cast<Scalar>(), Yt);
      CHECK(test::relative_error(Y.template cast<double>(), dense * X) < test::tolerance<Scalar>());
      CHECK(test::relative_error(Yt.template cast<double>(), dense.transpose() * Xt) < test::tolerance<Scalar>());
    }
  }
}

TEST_CASE_TEMPLATE("zero padding is explicit and equals the cropped padded matrix", Scalar, float, double) {
  for (const Shape& s : std::vector<Shape>{{10, 7, 4}, {7, 10, 4}, {9, 9, 5}, {3, 17, 8}}) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.b);
    const Eigen::VectorXd params = test::gaussian_vector(padded_params(s), 99);
    CHECK_THROWS_AS(make<Scalar>(s, params), invalid_argument);
    const BlockCirculant<Scalar> A = make<Scalar>(s, params, Padding::zero);
    CHECK(A.parameter_count() == padded_params(s));
    const Eigen::MatrixXd dense = test::dense_block_circulant(s.m, s.n, s.b, params);
    const Eigen::MatrixXd X = test::gaussian(s.n, 3, 5), Xt = test::gaussian(s.m, 3, 6);
    CHECK(test::relative_error(A.to_dense().template cast<double>(), dense) < test::tolerance<Scalar>());
    CHECK(test::relative_error(A.apply(X.cast<Scalar>()).template cast<double>(), dense * X) <
          test::tolerance<Scalar>());
    CHECK(test::relative_error(A.apply_transpose(Xt.cast<Scalar>()).template cast<double>(),
                               dense.transpose() * Xt) < test::tolerance<Scalar>());
  }
}

TEST_CASE_TEMPLATE("products of token chunks shared by a team of threads match the dense definition", Scalar,
                   float, double) {
  // T > 1 runs in chunks of tokens, each thread taking whole chunks through all three stages. At
  // 1024x512, b = 8 a chunk holds at most 60 tokens: T = 130 makes three chunks (44, 44, 42), so
  // with two threads one thread runs two; T = 2 and 3 give each thread one chunk or none.
  const Shape s{1024, 512, 8};
  const Eigen::VectorXd params = test::gaussian_vector(s.m * s.n / s.b, 811);
  const Eigen::MatrixXd dense = test::dense_block_circulant(s.m, s.n, s.b, params);
  for (const SpectrumPrecision precision : {SpectrumPrecision::full, SpectrumPrecision::bfloat16}) {
    const BlockCirculant<Scalar> A(s.m, s.n, s.b, params.cast<Scalar>(), Padding::none, precision);
    const double tolerance = precision == SpectrumPrecision::full ? test::tolerance<Scalar>() : kBfloat16Tolerance;
    for (const Index T : {2, 3, 130}) {
      const Eigen::MatrixXd X = test::gaussian(s.n, T, unsigned(812 + T));
      const Eigen::MatrixXd expected = dense * X;
      for (const int threads : {1, 2, 3}) {
        CAPTURE(T);
        CAPTURE(threads);
        const ScopedThreadCount team(threads);
        CHECK(test::relative_error(A.apply(X.cast<Scalar>()).template cast<double>(), expected) < tolerance);
        InputSpectrum<Scalar> spectrum;
        A.transform_input(X.cast<Scalar>(), spectrum);
        typename BlockCirculant<Scalar>::Matrix Y(s.m, T);
        A.apply_transformed(spectrum, Y);
        CHECK(test::relative_error(Y.template cast<double>(), expected) < tolerance);
      }
    }
  }
}

TEST_CASE_TEMPLATE("one-token products shared by a team of threads match the dense definition", Scalar, float,
                   double) {
  // One token runs the forward FFT, the products and the inverse FFT in one parallel region, each
  // thread taking a share of blocks and panels. These shapes are above the default parallel
  // threshold (4mn/b > 1e6 flops) yet cheap to check densely (small b); they cover zero padding of
  // both dimensions, odd and even b, odd panel counts, and fewer input blocks than one share per
  // thread (n = 14, b = 2: 7 blocks). Each thread streams its panels as two halves side by side,
  // an odd share's last panel alone: 33, 33, 27 and 2500 panels of 8 block rows here, in shares of
  // 1-3 threads (3 oversubscribes a 2-core machine); b = 7 has three complex bins, no Nyquist bin.
  const std::vector<Shape> shapes = {{1030, 1027, 4}, {1283, 1021, 5}, {1500, 1300, 7}, {40000, 14, 2}};
  unsigned seed = 700;
  for (const Shape& s : shapes) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.b);
    const Eigen::VectorXd params = test::gaussian_vector(padded_params(s), seed++);
    const Eigen::MatrixXd dense = test::dense_block_circulant(s.m, s.n, s.b, params);
    const Eigen::MatrixXd X = test::gaussian(s.n, 1, seed++);
    const Eigen::VectorXd expected = dense * X;
    for (const SpectrumPrecision precision : {SpectrumPrecision::full, SpectrumPrecision::bfloat16}) {
      const BlockCirculant<Scalar> A(s.m, s.n, s.b, params.cast<Scalar>(), Padding::zero, precision);
      const double tolerance = precision == SpectrumPrecision::full ? test::tolerance<Scalar>() : kBfloat16Tolerance;
      for (const int threads : {1, 2, 3}) {
        CAPTURE(threads);
        const ScopedThreadCount team(threads);
        CHECK(test::relative_error(A.apply(X.cast<Scalar>()).template cast<double>(), expected) < tolerance);
        InputSpectrum<Scalar> spectrum;
        A.transform_input(X.cast<Scalar>(), spectrum);
        typename BlockCirculant<Scalar>::Matrix Y(s.m, 1);
        A.apply_transformed(spectrum, Y);
        CHECK(test::relative_error(Y.template cast<double>(), expected) < tolerance);
      }
    }
  }
}

TEST_CASE_TEMPLATE("aliasing, strided views and row-major inputs", Scalar, float, double) {
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  const Shape s{24, 24, 8};
  const Eigen::VectorXd params = test::gaussian_vector(s.m * s.n / s.b, 3);
  const BlockCirculant<Scalar> A = make<Scalar>(s, params);
  const Eigen::MatrixXd dense = test::dense_block_circulant(s.m, s.n, s.b, params);
  const Eigen::MatrixXd X = test::gaussian(s.n, 5, 4);

  SUBCASE("in place: Y may be X when the matrix is square") {
    Matrix Z = X.cast<Scalar>();
    A.apply(Z, Z);
    CHECK(test::relative_error(Z.template cast<double>(), dense * X) < test::tolerance<Scalar>());
    Z = X.cast<Scalar>();
    A.apply_transpose(Z, Z);
    CHECK(test::relative_error(Z.template cast<double>(), dense.transpose() * X) < test::tolerance<Scalar>());
  }
  SUBCASE("blocks of larger matrices: odd offsets give unaligned columns") {
    Matrix big = Matrix::Zero(s.n + 3, 9);
    big.block(1, 2, s.n, 5) = X.cast<Scalar>();
    Matrix out = Matrix::Constant(s.m + 5, 7, Scalar(42));
    A.apply(big.block(1, 2, s.n, 5), out.block(3, 1, s.m, 5));
    CHECK(test::relative_error(out.block(3, 1, s.m, 5).template cast<double>(), dense * X) <
          test::tolerance<Scalar>());
    CHECK(out(0, 0) == Scalar(42));  // nothing outside the output block is written
    CHECK(out(s.m + 4, 6) == Scalar(42));
  }
  SUBCASE("row-major inputs and expressions are evaluated first") {
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Xr = X.cast<Scalar>();
    CHECK(test::relative_error(A.apply(Xr).template cast<double>(), dense * X) < test::tolerance<Scalar>());
    CHECK(test::relative_error(A.apply(Scalar(2) * Xr).template cast<double>(), 2.0 * dense * X) <
          test::tolerance<Scalar>());
  }
  SUBCASE("vectors are n x 1 inputs") {
    const typename BlockCirculant<Scalar>::Vector x = X.col(0).cast<Scalar>();
    CHECK(test::relative_error(A.apply(x).template cast<double>(), dense * X.col(0)) < test::tolerance<Scalar>());
  }
}

TEST_CASE_TEMPLATE("one input spectrum serves several matrices with the same columns", Scalar, float, double) {
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  // Llama's gate and up projections: same input, different weights.
  const Index m = 48, n = 32, b = 8, T = 6;
  const Eigen::VectorXd gate_params = test::gaussian_vector(m * n / b, 21);
  const Eigen::VectorXd up_params = test::gaussian_vector(m * n / b, 22);
  const BlockCirculant<Scalar> gate(m, n, b, gate_params.cast<Scalar>());
  const BlockCirculant<Scalar> up(m, n, b, up_params.cast<Scalar>());
  const Eigen::MatrixXd X = test::gaussian(n, T, 23);
  InputSpectrum<Scalar> spectrum;
  gate.transform_input(X.cast<Scalar>(), spectrum);
  CHECK(spectrum.tokens() == T);
  Matrix G(m, T), U(m, T);
  gate.apply_transformed(spectrum, G);
  up.apply_transformed(spectrum, U);
  CHECK(test::relative_error(G.template cast<double>(), test::dense_block_circulant(m, n, b, gate_params) * X) <
        test::tolerance<Scalar>());
  CHECK(test::relative_error(U.template cast<double>(), test::dense_block_circulant(m, n, b, up_params) * X) <
        test::tolerance<Scalar>());

  const BlockCirculant<Scalar> other_block(m, n, 4, Eigen::VectorXd::Ones(m * n / 4).cast<Scalar>());
  CHECK_THROWS_AS(other_block.apply_transformed(spectrum, G), invalid_argument);
  Matrix wrong(m, T + 1);
  CHECK_THROWS_AS(up.apply_transformed(spectrum, wrong), invalid_argument);
}

TEST_CASE_TEMPLATE("copies, moves and assignments keep working independently", Scalar, float, double) {
  // 16x8: below the packed kernels' 8 block rows; 2048x1024 at b = 8: packed spectra of 1-2 MiB,
  // which live in huge-page-aligned storage (detail/huge_page_array.hpp).
  for (const Shape& s : {Shape{16, 8, 4}, Shape{2048, 1024, 8}}) {
    CAPTURE(s.m);
    const Eigen::VectorXd params = test::gaussian_vector(s.m * s.n / s.b, 31);
    const Eigen::MatrixXd X = test::gaussian(s.n, 3, 32);
    const Eigen::MatrixXd expected = test::dense_block_circulant(s.m, s.n, s.b, params) * X;
    BlockCirculant<Scalar> original(s.m, s.n, s.b, params.cast<Scalar>());
    (void)original.apply(X.cast<Scalar>());  // warm the original's workspace pool
    const BlockCirculant<Scalar> copy = original;
    BlockCirculant<Scalar> assigned(8, 8, 8, Eigen::Matrix<Scalar, Eigen::Dynamic, 1>::Ones(8));
    assigned = copy;
    const BlockCirculant<Scalar> moved = std::move(original);
    for (const BlockCirculant<Scalar>* A : std::vector<const BlockCirculant<Scalar>*>{&copy, &assigned, &moved}) {
      CHECK(test::relative_error(A->apply(X.cast<Scalar>()).template cast<double>(), expected) <
            test::tolerance<Scalar>());
    }
  }
}

TEST_CASE_TEMPLATE("bfloat16 spectra: apply matches the dense definition to bfloat16 accuracy", Scalar, float,
                   double) {
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  // p >= 8 block rows (the packed kernels): full and partial panels, even and odd b (one or two
  // real bins), square and not.
  const std::vector<Shape> shapes = {{64, 32, 4}, {72, 40, 8}, {63, 21, 7}, {160, 96, 16}, {90, 90, 10}};
  unsigned seed = 300;
  for (const Shape& s : shapes) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.b);
    const Eigen::VectorXd params = test::gaussian_vector(s.m * s.n / s.b, seed++);
    const Eigen::MatrixXd dense = test::dense_block_circulant(s.m, s.n, s.b, params);
    const BlockCirculant<Scalar> A(s.m, s.n, s.b, params.cast<Scalar>(), Padding::none, SpectrumPrecision::bfloat16);
    CHECK(A.spectrum_precision() == SpectrumPrecision::bfloat16);
    CHECK(A.parameters().template cast<double>().isApprox(params, test::tolerance<Scalar>()));
    for (const Index T : {1, 2, 7, 13}) {
      CAPTURE(T);
      const Eigen::MatrixXd X = test::gaussian(s.n, T, seed++), Xt = test::gaussian(s.m, T, seed++);
      Matrix Y(s.m, T);
      A.apply(X.cast<Scalar>(), Y);
      const double error = test::relative_error(Y.template cast<double>(), dense * X);
      CHECK(error < kBfloat16Tolerance);
      CHECK(error > kBfloat16RoundingVisible);
      // A shared input spectrum gives the same product.
      InputSpectrum<Scalar> spectrum;
      A.transform_input(X.cast<Scalar>(), spectrum);
      Matrix Ys(s.m, T);
      A.apply_transformed(spectrum, Ys);
      CHECK(test::relative_error(Ys.template cast<double>(), dense * X) < kBfloat16Tolerance);
      // The transpose reads the full-precision spectra.
      CHECK(test::relative_error(A.apply_transpose(Xt.cast<Scalar>()).template cast<double>(),
                                 dense.transpose() * Xt) < test::tolerance<Scalar>());
    }
  }
}

TEST_CASE_TEMPLATE("bfloat16 spectra keep their accuracy at any magnitude", Scalar, float, double) {
  // Block rows of magnitudes 1e-30, 1e30 and 1: bfloat16 has float's exponent range, so every
  // row keeps bfloat16 accuracy (binary16 would flush the first to zero and overflow the second).
  const Index b = 4, p = 24, q = 5, m = p * b, n = q * b, T = 3;
  Eigen::VectorXd params = test::gaussian_vector(p * q * b, 51);
  const double magnitudes[3] = {1e-30, 1e30, 1.0};
  for (Index i = 0; i < p; ++i) params.segment(i * q * b, q * b) *= magnitudes[i % 3];
  const Eigen::MatrixXd dense = test::dense_block_circulant(m, n, b, params);
  const Eigen::MatrixXd X = test::gaussian(n, T, 52);
  const BlockCirculant<Scalar> A(m, n, b, params.cast<Scalar>(), Padding::none, SpectrumPrecision::bfloat16);
  const Eigen::MatrixXd Y = A.apply(X.cast<Scalar>()).template cast<double>();
  const Eigen::MatrixXd expected = dense * X;
  for (Index i = 0; i < p; ++i) {
    CAPTURE(i);
    const double error = test::relative_error(Y.middleRows(i * b, b), expected.middleRows(i * b, b));
    CHECK(error < kBfloat16Tolerance);
    CHECK(error > kBfloat16RoundingVisible / 10);  // a single row block: fewer terms average the rounding
  }
  // An all-zero matrix stays exactly zero.
  const BlockCirculant<Scalar> Z(m, n, b, BlockCirculant<Scalar>::Vector::Zero(p * q * b), Padding::none,
                                 SpectrumPrecision::bfloat16);
  CHECK(Z.apply(X.cast<Scalar>()).isZero(0));
}

TEST_CASE("bfloat16 spectra: out-of-range values are an error; ignored below 8 block rows; kept by copies") {
  const Index m = 32, n = 8, b = 4;
  Eigen::VectorXd huge = Eigen::VectorXd::Ones(m * n / b) * 1e300;
  CHECK_THROWS_WITH_AS(BlockCirculant<double>(m, n, b, huge, Padding::none, SpectrumPrecision::bfloat16),
                       doctest::Contains("beyond the range of bfloat16"), invalid_argument);
  CHECK_NOTHROW(BlockCirculant<double>(m, n, b, huge));  // fine in full precision

  const Eigen::VectorXd small_params = test::gaussian_vector(4 * 3 * 4, 61);
  const BlockCirculant<float> small(16, 12, 4, small_params.cast<float>(), Padding::none, SpectrumPrecision::bfloat16);
  CHECK(small.spectrum_precision() == SpectrumPrecision::full);
  const Eigen::MatrixXd Xs = test::gaussian(12, 2, 62);
  CHECK(test::relative_error(small.apply(Xs.cast<float>()).cast<double>(),
                             test::dense_block_circulant(16, 12, 4, small_params) * Xs) < test::tolerance<float>());

  // 70 x 30 with b = 8: p = 9, q = 4, both dimensions padded.
  const Eigen::VectorXd params = test::gaussian_vector(9 * 4 * 8, 63);
  const Eigen::MatrixXd X = test::gaussian(30, 5, 64);
  const Eigen::MatrixXd expected = test::dense_block_circulant(70, 30, 8, params) * X;
  BlockCirculant<float> original(70, 30, 8, params.cast<float>(), Padding::zero, SpectrumPrecision::bfloat16);
  const BlockCirculant<float> copy = original;
  const BlockCirculant<float> moved = std::move(original);
  for (const BlockCirculant<float>* A : {&copy, &moved}) {
    CHECK(A->spectrum_precision() == SpectrumPrecision::bfloat16);
    const double error = test::relative_error(A->apply(X.cast<float>()).cast<double>(), expected);
    CHECK(error < kBfloat16Tolerance);
    CHECK(error > kBfloat16RoundingVisible);
  }
}

TEST_CASE("accuracy on the largest Llama-2-7B shape (11008 x 4096, b = 64) against a float64 dense product") {
  const Index m = 11008, n = 4096, b = 64, T = 4;
  const Eigen::VectorXd params = test::gaussian_vector(m * n / b, 41) / std::sqrt(double(n));
  const Eigen::MatrixXd X = test::gaussian(n, T, 42);
  // Dense reference computed block by block from the definition, in double.
  const Eigen::MatrixXd expected = test::dense_block_circulant(m, n, b, params) * X;
  const Eigen::MatrixXd Xt = test::gaussian(m, T, 43);
  const Eigen::MatrixXd expected_t = test::dense_block_circulant(m, n, b, params).transpose() * Xt;

  const BlockCirculant<float> Af(m, n, b, params.cast<float>());
  const BlockCirculant<float> Ab(m, n, b, params.cast<float>(), Padding::none, SpectrumPrecision::bfloat16);
  const BlockCirculant<double> Ad(m, n, b, params);
  const double float_error = test::relative_error(Af.apply(X.cast<float>()).cast<double>(), expected);
  const double bfloat16_error = test::relative_error(Ab.apply(X.cast<float>()).cast<double>(), expected);
  const double double_error = test::relative_error(Ad.apply(X), expected);
  const double float_error_t = test::relative_error(Af.apply_transpose(Xt.cast<float>()).cast<double>(), expected_t);
  const double double_error_t = test::relative_error(Ad.apply_transpose(Xt), expected_t);
  MESSAGE("relative error of apply, 11008x4096 b=64: float ", float_error, ", bfloat16 spectra ", bfloat16_error,
          ", double ", double_error,
          "; apply_transpose: float ", float_error_t, ", double ", double_error_t);
  CHECK(float_error < 1e-6);
  CHECK(bfloat16_error < 3e-3);
  CHECK(bfloat16_error > kBfloat16RoundingVisible);
  CHECK(double_error < 1e-14);
  CHECK(float_error_t < 1e-6);
  CHECK(double_error_t < 1e-14);
}

TEST_CASE_TEMPLATE("applied_spectrum_bytes counts what A X streams: packed panels, bfloat16 or full", Scalar, float,
                   double) {
  // Counted from the packing rules (detail/complex_kernels.hpp): rows in panels of 8, zero-padded;
  // per panel and block column 8 values for each real bin (DC, and Nyquist for even b) and 16 for
  // each complex bin. Fewer than 8 block rows: the full complex spectra, (b/2 + 1) p q values.
  struct Case {
    Index m, n, b;
  };
  for (const Case c : {Case{72, 24, 8}, Case{45, 20, 5}, Case{64, 32, 1}, Case{24, 32, 8}}) {
    const Index p = c.m / c.b, q = c.n / c.b, bins = c.b / 2 + 1;
    const Index real_bins = c.b % 2 == 0 && c.b > 1 ? 2 : 1, complex_bins = bins - real_bins;
    const Index padded_rows = (p + 7) / 8 * 8;
    const Eigen::VectorXd params = test::gaussian_vector(c.m * c.n / c.b, 77);
    const BlockCirculant<Scalar> full(c.m, c.n, c.b, params.cast<Scalar>());
    const BlockCirculant<Scalar> bf16(c.m, c.n, c.b, params.cast<Scalar>(), Padding::none,
                                      SpectrumPrecision::bfloat16);
    CAPTURE(c.m);
    CAPTURE(c.b);
    if (p >= 8) {
      const std::size_t values = std::size_t(padded_rows * q * (real_bins + 2 * complex_bins));
      CHECK(full.applied_spectrum_bytes() == values * sizeof(Scalar));
      CHECK(bf16.applied_spectrum_bytes() == values * 2);
    } else {
      const std::size_t full_bytes = std::size_t(bins * p * q) * sizeof(std::complex<Scalar>);
      CHECK(full.applied_spectrum_bytes() == full_bytes);
      CHECK(bf16.applied_spectrum_bytes() == full_bytes);  // bfloat16 is ignored below 8 block rows
    }
  }
}

TEST_CASE_TEMPLATE("block_dfts are the unnormalised DFTs of the first columns", Scalar, float, double) {
  const Index m = 16, n = 12, b = 4, p = m / b, q = n / b;
  const Eigen::VectorXd params = test::gaussian_vector(m * n / b, 78);
  const BlockCirculant<Scalar> A(m, n, b, params.cast<Scalar>());
  const double pi = std::acos(-1.0);
  for (Index f = 0; f <= b / 2; ++f) {
    const Eigen::MatrixXcd C = A.block_dfts(f);
    REQUIRE(C.rows() == p);
    REQUIRE(C.cols() == q);
    for (Index i = 0; i < p; ++i)
      for (Index j = 0; j < q; ++j) {
        std::complex<double> dft = 0;  // sum_d c_ij[d] e^{-2 pi i f d / b}, c_ij rounded to Scalar
        for (Index d = 0; d < b; ++d)
          dft += double(Scalar(params[(i * q + j) * b + d])) * std::polar(1.0, -2 * pi * double(f * d) / double(b));
        CHECK(std::abs(C(i, j) - dft) < 10 * test::tolerance<Scalar>() * (1 + std::abs(dft)));
      }
  }
  CHECK_THROWS_AS(A.block_dfts(b / 2 + 1), invalid_argument);
}
