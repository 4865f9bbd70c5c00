#include "threads.hpp"

#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace llama {

std::string thread_count_error(long long threads, unsigned hardware_threads) {
  const long long hardware = hardware_threads == 0 ? 1 : hardware_threads;  // 0: the count is unknown
  const long long limit = kMaxThreadsPerHardwareThread * hardware;
  if (threads >= 1 && threads <= limit) return "";
  return std::to_string(threads) + " is outside [1, " + std::to_string(limit) + "] (" +
         std::to_string(kMaxThreadsPerHardwareThread) + " x the " + std::to_string(hardware) + " hardware threads)";
}

void add_threads_option(CLI::App& command, int& threads) {
  const CLI::Validator bounded(
      [](const std::string& value) {
        long long count = 0;
        std::size_t parsed = 0;
        try {
          count = std::stoll(value, &parsed);
        } catch (const std::exception&) {
          return value + " is not a number";
        }
        if (parsed != value.size()) return value + " is not a number";
        return thread_count_error(count, std::thread::hardware_concurrency());
      },
      "1 .. " + std::to_string(kMaxThreadsPerHardwareThread) + " x hardware threads", "bounded thread count");
  command.add_option("--threads", threads, "threads to use (default: all cores)")->check(bounded);
}

void use_threads(int threads) {
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#else
  (void)threads;
#endif
}

}  // namespace llama
