#pragma once
// The one exception type of the Llama example: a file, a setting or an argument that cannot be used.
// main() prints its message after "error: " and exits non-zero.

#include <fftmat/error.hpp>

#include <sstream>
#include <string>
#include <utility>

namespace llama {

class error : public fftmat::error {
 public:
  using fftmat::error::error;
};

/// The parts, each written with operator<<, one after another.
template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

/// Throws llama::error with the concatenated message parts unless `condition` holds.
template <class... Parts>
void check(bool condition, Parts&&... parts) {
  if (!condition) throw error(concat(std::forward<Parts>(parts)...));
}

}  // namespace llama
