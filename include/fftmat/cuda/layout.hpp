#pragma once
// The arguments the GPU backend passes to cuFFT's advanced layout and to cuBLAS's strided batched
// GEMM for one piece of t tokens, in one place, so that the device code and the host test that
// replays them in float64 (tests/cuda/test_layout.cpp) use the same numbers. Host-only, no CUDA.
//
// The frequency-major layout: `blocks * t` blocks of b reals, block k contiguous at k*b (for the
// activations, k = s*blocks + j, so the column-major dim x t matrix is exactly this), and their
// half spectra with bin f of block k at f*batch + k, batch = blocks * t. cuFFT's advanced layout
// addresses element x of transform k at k*dist + x*stride (cuFFT documentation, "Advanced Data
// Layout"), so the forward transform reads with stride 1, dist b and writes with stride batch,
// dist 1; the inverse is the mirror image. Every bin's blocks x t matrix is then contiguous and
// column-major, which one strided batched GEMM over the bins consumes without a transpose pass.
//
// It also holds how the one-token kernel (kernels.cuh, one_token_product) divides its work among
// thread blocks and lays out their shared memory, so that the same host test can replay it.

#include <cstddef>

namespace fftmat::cuda::detail {

/// cufftMakePlanMany's layout of a batched length-n real transform.
struct FftLayout {
  int n, batch;
  int istride, idist, ostride, odist;
};

/// R2C of `blocks * tokens` blocks of b reals into the frequency-major half spectra.
constexpr FftLayout forward_layout(int b, int blocks, int tokens) noexcept {
  const int batch = blocks * tokens;
  return FftLayout{b, batch, /*istride=*/1, /*idist=*/b, /*ostride=*/batch, /*odist=*/1};
}

/// C2R of frequency-major half spectra back into `blocks * tokens` contiguous blocks of b reals.
constexpr FftLayout inverse_layout(int b, int blocks, int tokens) noexcept {
  const int batch = blocks * tokens;
  return FftLayout{b, batch, /*istride=*/batch, /*idist=*/1, /*ostride=*/1, /*odist=*/b};
}

/// cublasGemmStridedBatchedEx's arguments (column-major; op(B) is always N) for the per-bin
/// products of one piece: Y_f = C_f X_f (normal) or Y_f = C_f^H X_f (adjoint), f < bins. The
/// spectra are row-major p x q per bin at f*p*q, which cuBLAS sees as C_f^T with ld q: the normal
/// product takes op(A) = T on them; the adjoint takes op(A) = N on the conjugated spectra, since
/// conj(C_f^T) = C_f^H and cuBLAS has no conjugate-without-transpose op.
struct BinProducts {
  bool transpose_a;  ///< op(A) = T (normal) or N (adjoint, on the conjugated spectra)
  int m, n, k;
  int lda;
  long long stride_a;
  int ldb;
  long long stride_b;
  int ldc;
  long long stride_c;
  int batch;
};

constexpr BinProducts bin_products(bool adjoint, int p, int q, int tokens, int bins) noexcept {
  const int rows = adjoint ? q : p, inner = adjoint ? p : q;
  return BinProducts{!adjoint,
                     rows,
                     tokens,
                     inner,
                     /*lda=*/q,
                     /*stride_a=*/static_cast<long long>(p) * q,
                     /*ldb=*/inner,
                     /*stride_b=*/static_cast<long long>(inner) * tokens,
                     /*ldc=*/rows,
                     /*stride_c=*/static_cast<long long>(rows) * tokens,
                     bins};
}

/// Shared memory a thread block may use without opting in (48 KiB on every GPU since Kepler),
/// static and dynamic together.
inline constexpr std::size_t kSharedBytes = 48 * 1024;
/// What one_token_product declares statically (a flag and a barrier, with padding); its plan's
/// dynamic shared memory stays within the rest.
inline constexpr std::size_t kOneTokenStaticSharedBytes = 64;
inline constexpr std::size_t kOneTokenDynamicSharedBytes = kSharedBytes - kOneTokenStaticSharedBytes;
/// Largest block size for the one-token kernel: its DFTs are direct sums, b/2+1 terms per output.
inline constexpr int kOneTokenMaxBlock = 512;

constexpr std::size_t align16(std::size_t bytes) noexcept { return (bytes + 15) / 16 * 16; }

/// How one_token_product computes the product of one token (y = A x, or y = A^T x) in a single
/// launch. Thread block `tile * bins + f` owns bin f of the output blocks
/// [tile * tile_blocks, min((tile + 1) * tile_blocks, out_blocks)): it computes the input's bin f
/// (in_blocks direct DFTs, so bins need no communication), multiplies by those rows of the bin's
/// spectrum and stores the tile's bin-f outputs in global scratch. The last of the tile's `bins`
/// thread blocks to finish (an arrival counter per tile) gathers every bin of the tile and
/// writes its inverse DFTs into y. Each block recomputes its bin of the input, so the input DFTs
/// cost tiles times their minimum; tiles is the fewest that still give `target_blocks` thread
/// blocks, or more where the shared memory below forces smaller tiles.
///
/// Shared memory (byte offsets, each part 16-byte aligned): the twiddle table (b complex), the
/// input's bin f (in_blocks complex), then one region used twice: the tile's rows of the bin's
/// spectrum (staged while the input DFTs run; normal product only -- the adjoint reads columns),
/// and afterwards, in the last block of the tile, the tile's outputs of every bin.
///
/// When a staged row's bytes are a multiple of 16, every tile's rows start and end on 16-byte
/// boundaries (the spectra themselves start on one: cudaMalloc aligns to 256 bytes), which is
/// what a bulk asynchronous copy (cp.async.bulk, sm_90) requires of its source, destination and
/// size; `aligned_rows` records it, and the kernel promises that alignment only then.
struct OneTokenPlan {
  int bins = 0;
  int tiles = 0;        ///< 0: the shape does not fit; products of one token take the cuFFT path
  int tile_blocks = 0;  ///< output blocks per tile (the last tile may have fewer)
  bool aligned_rows = false;  ///< staged rows 16-byte aligned in size and place
  std::size_t input_offset = 0, region_offset = 0, shared_bytes = 0;  ///< shared_bytes: dynamic

  constexpr bool usable() const noexcept { return tiles > 0; }
  constexpr int grid() const noexcept { return tiles * bins; }
};

/// complex_bytes: sizeof the arithmetic complex type; spectrum_bytes: sizeof one stored spectrum
/// entry (smaller for bfloat16 spectra); stage_spectra: whether the tile's spectrum rows are staged.
constexpr OneTokenPlan one_token_plan(int b, int in_blocks, int out_blocks, bool stage_spectra,
                                      std::size_t complex_bytes, std::size_t spectrum_bytes,
                                      int target_blocks) noexcept {
  OneTokenPlan plan;
  plan.bins = b / 2 + 1;
  if (b < 1 || b > kOneTokenMaxBlock || in_blocks < 1 || out_blocks < 1) return plan;
  plan.input_offset = align16(static_cast<std::size_t>(b) * complex_bytes);
  plan.region_offset = plan.input_offset + align16(static_cast<std::size_t>(in_blocks) * complex_bytes);
  const std::size_t staged = stage_spectra ? static_cast<std::size_t>(in_blocks) * spectrum_bytes : 0;
  const std::size_t gathered = static_cast<std::size_t>(plan.bins) * complex_bytes;
  const std::size_t per_output_block = staged > gathered ? staged : gathered;
  if (plan.region_offset + per_output_block > kOneTokenDynamicSharedBytes) return plan;  // not one output block
  const std::size_t room = (kOneTokenDynamicSharedBytes - plan.region_offset) / per_output_block;

  int tiles = (target_blocks + plan.bins - 1) / plan.bins;
  tiles = tiles < 1 ? 1 : tiles > out_blocks ? out_blocks : tiles;
  int tile_blocks = (out_blocks + tiles - 1) / tiles;
  if (static_cast<std::size_t>(tile_blocks) > room) tile_blocks = static_cast<int>(room);
  plan.tile_blocks = tile_blocks;
  plan.aligned_rows = stage_spectra && staged % 16 == 0;
  plan.tiles = (out_blocks + tile_blocks - 1) / tile_blocks;
  plan.shared_bytes = plan.region_offset + align16(static_cast<std::size_t>(tile_blocks) * per_output_block);
  return plan;
}

}  // namespace fftmat::cuda::detail
