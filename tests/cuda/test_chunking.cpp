// How products are cut into pieces (fftmat/cuda/stream_context.hpp), on the host only.
#include <doctest/doctest.h>

#include <fftmat/cuda/stream_context.hpp>

#include <cstddef>
#include <set>

using fftmat::cuda::detail::next_piece;

TEST_CASE("pieces cover every T exactly, each a power of two no larger than the chunk") {
  for (std::ptrdiff_t chunk : {1, 2, 4, 256}) {
    std::set<std::ptrdiff_t> sizes;
    for (std::ptrdiff_t T = 1; T <= 3000; ++T) {
      std::ptrdiff_t done = 0, pieces = 0;
      bool valid = true;
      while (done < T && valid) {
        const std::ptrdiff_t piece = next_piece(T - done, chunk);
        valid = piece >= 1 && piece <= chunk && piece <= T - done && (piece & (piece - 1)) == 0;
        sizes.insert(piece);
        done += piece;
        ++pieces;
      }
      CAPTURE(chunk);
      CAPTURE(T);
      REQUIRE(valid);
      CHECK(done == T);
      // Full chunks, then one piece per binary digit of the remainder.
      std::ptrdiff_t digits = 0;
      for (std::ptrdiff_t r = T % chunk; r != 0; r &= r - 1) ++digits;
      CHECK(pieces == T / chunk + digits);
    }
    // One plan pair per piece size serves every T: log2(chunk) + 1 sizes.
    std::ptrdiff_t log2_chunk = 0;
    while ((std::ptrdiff_t(1) << log2_chunk) < chunk) ++log2_chunk;
    CHECK(static_cast<std::ptrdiff_t>(sizes.size()) == log2_chunk + 1);
  }
}
