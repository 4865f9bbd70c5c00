#pragma once
// The one exception type of the Llama example: a file, a setting or an argument that cannot be used.
// main() prints its message after "error: " and exits non-zero.

#include <fftmat/error.hpp>

namespace llama {

class error : public fftmat::error {
 public:
  using fftmat::error::error;
};

/// Throws llama::error with the concatenated message parts unless `condition` holds.
template <class... Parts>
void check(bool condition, Parts&&... parts) {
  if (!condition) throw error(fftmat::detail::concat(std::forward<Parts>(parts)...));
}

}  // namespace llama
