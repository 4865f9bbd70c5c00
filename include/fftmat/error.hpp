#pragma once
// Exceptions thrown by fftmat. Every check that guards user input stays active in release builds.

#include <initializer_list>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace fftmat {

/// Base of every exception fftmat throws.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A bad argument: a size, a shape, a parameter count, a non-finite value.
class invalid_argument : public error {
 public:
  using error::error;
};

/// A numerical failure the caller can act on (e.g. a singular Gram matrix without damping).
class numerical_error : public error {
 public:
  using error::error;
};

namespace detail {

template <class... Parts>
std::string concat(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}

/// Throws invalid_argument with the concatenated message parts unless `condition` holds.
template <class... Parts>
void require(bool condition, Parts&&... parts) {
  if (!condition) throw invalid_argument(concat(std::forward<Parts>(parts)...));
}

/// The product of the positive `factors`, checked before it is computed: throws invalid_argument
/// naming `what`, the factors and `limit` when the product would exceed `limit`.
inline long long checked_product(std::initializer_list<long long> factors, long long limit, const char* what) {
  long long product = 1;
  bool overflows = false;
  for (const long long factor : factors) {
    if (overflows || factor > limit / product) {
      overflows = true;
    } else {
      product *= factor;
    }
  }
  if (overflows) {
    std::ostringstream message;
    message << what << ": ";
    const char* separator = "";
    for (const long long factor : factors) {
      message << separator << factor;
      separator = " x ";
    }
    message << " exceeds " << limit;
    throw invalid_argument(message.str());
  }
  return product;
}

}  // namespace detail
}  // namespace fftmat
