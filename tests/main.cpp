#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <fftmat/planner.hpp>

int main(int argc, char** argv) {
  // Tests try many layouts once each: estimated plans keep the suite fast. The benchmarks and
  // the Llama program use measured plans (the default).
  fftmat::set_planner_effort(fftmat::PlannerEffort::estimate);
  doctest::Context context(argc, argv);
  return context.run();
}
