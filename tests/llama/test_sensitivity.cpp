// The ranking and the greedy walk of examples/llama/sensitivity, with a made-up selection KL whose
// answer is known.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "evaluation/report.hpp"
#include "evaluation/sensitivity.hpp"
#include "test_helpers.hpp"

using namespace llama;
using llama_test::error_of;

TEST_CASE("layers are ranked from the least to the most sensitive, ties by layer") {
  CHECK(rank_by_sensitivity({0.3, 0.01, 0.2, 0.01, 5.0}) == std::vector<int>{1, 3, 2, 0, 4});
  CHECK(rank_by_sensitivity({}).empty());
  CHECK(llama_test::contains(error_of([] { rank_by_sensitivity({0.1, std::nan("")}); }), "layer 1 has a NaN"));
}

TEST_CASE("the greedy walk adds layers while the measured KL of the whole set stays within budget") {
  // A set's KL: the sum of its layers' costs, plus an interaction once layers 2 and 3 are both in.
  const std::vector<double> cost = {0.05, 0.01, 0.02, 0.03, 0.5};
  std::vector<std::vector<int>> measured;
  const auto kl = [&](const std::vector<int>& layers) {
    measured.push_back(layers);
    double total = 0;
    bool two = false, three = false;
    for (const int l : layers) {
      total += cost[std::size_t(l)];
      two = two || l == 2;
      three = three || l == 3;
    }
    return total + (two && three ? 0.02 : 0.0);
  };
  const std::vector<int> ranking = rank_by_sensitivity(cost);  // 1, 2, 3, 0, 4
  // Sets: {1} 0.01, {1,2} 0.03, {1,2,3} 0.08, {0,1,2,3} 0.13 > 0.1: stop there.
  const std::vector<GreedyStep> steps = greedy_least_sensitive(ranking, 0.1, kl);
  REQUIRE(steps.size() == 4);
  CHECK(steps[2].layers == std::vector<int>{1, 2, 3});
  CHECK(steps[2].selection_kl == doctest::Approx(0.08));
  CHECK(steps[2].within_budget);
  CHECK(steps[3].layers == std::vector<int>{0, 1, 2, 3});  // sorted
  CHECK_FALSE(steps[3].within_budget);
  CHECK(chosen_layers(steps) == std::vector<int>{1, 2, 3});
  CHECK(measured.size() == 4);  // nothing measured after the first set over budget
  // A budget every set meets takes all layers; one no layer meets takes none.
  CHECK(chosen_layers(greedy_least_sensitive(ranking, 10.0, kl)) == std::vector<int>{0, 1, 2, 3, 4});
  const std::vector<GreedyStep> none = greedy_least_sensitive(ranking, 0.001, kl);
  CHECK(none.size() == 1);
  CHECK(chosen_layers(none).empty());
  // A NaN is never within budget; a bad budget is refused before anything is measured.
  CHECK(chosen_layers(greedy_least_sensitive(ranking, 1.0, [](const std::vector<int>&) { return std::nan(""); }))
            .empty());
  measured.clear();
  CHECK(llama_test::contains(error_of([&] { greedy_least_sensitive(ranking, -1.0, kl); }), "KL budget"));
  CHECK(llama_test::contains(
      error_of([&] { greedy_least_sensitive(ranking, std::numeric_limits<double>::infinity(), kl); }), "KL budget"));
  CHECK(measured.empty());
}

TEST_CASE("grid rows 'least-sensitive:BUDGET' carry their budget; bad budgets name the line") {
  LlamaConfig c;
  c.num_hidden_layers = 8;
  c.hidden_size = 256;
  c.intermediate_size = 768;
  const std::vector<GridRow> grid =
      parse_grid("0-7 64 lowrank a\nleast-sensitive:0.25 64 sequential greedy\n", "g.txt", c);
  REQUIRE(grid.size() == 2);
  CHECK_FALSE(grid[0].least_sensitive_budget);
  REQUIRE(grid[1].least_sensitive_budget);
  CHECK(*grid[1].least_sensitive_budget == 0.25);
  CHECK(grid[1].settings.projection == Projection::sequential);
  CHECK(error_of([&] { parse_grid("least-sensitive:x 64 sequential g\n", "g.txt", c); }) ==
        "g.txt line 1: 'least-sensitive:x': the KL budget must be a number >= 0");
  CHECK(error_of([&] { parse_grid("least-sensitive:-1 64 sequential g\n", "g.txt", c); }) ==
        "g.txt line 1: 'least-sensitive:-1': the KL budget must be a number >= 0");
  CHECK(error_of([&] { parse_grid("least-sensitive:0.1 - dense g\n", "g.txt", c); }) ==
        "g.txt line 1: least-sensitive layers need a projection");
  // The default grid ends with one such row.
  const std::vector<GridRow> defaults = parse_grid(default_grid_text(), "default", c);
  CHECK(defaults.back().least_sensitive_budget.value_or(-1) == 0.1);
}
