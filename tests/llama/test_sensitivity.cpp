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

TEST_CASE("the K least sensitive layers: the first K of the ranking, sorted; K outside 1..layers is refused") {
  const std::vector<int> ranking = rank_by_sensitivity({0.3, 0.01, 0.2, 0.02, 5.0});  // 1, 3, 2, 0, 4
  CHECK(least_sensitive_layers(ranking, 1) == std::vector<int>{1});
  CHECK(least_sensitive_layers(ranking, 3) == std::vector<int>{1, 2, 3});
  CHECK(least_sensitive_layers(ranking, 5) == std::vector<int>{0, 1, 2, 3, 4});
  CHECK(error_of([&] { least_sensitive_layers(ranking, 0); }) ==
        "the number of least sensitive layers must be in 1..5, got 0");
  CHECK(error_of([&] { least_sensitive_layers(ranking, 6); }) ==
        "the number of least sensitive layers must be in 1..5, got 6");
}

TEST_CASE("grid rows 'least-sensitive-layers:K[:PROJECTION]' carry K and the ranking's projection") {
  LlamaConfig c;
  c.num_hidden_layers = 8;
  c.hidden_size = 256;
  c.intermediate_size = 768;
  const std::vector<GridRow> grid = parse_grid(
      "least-sensitive-layers:4 64 lowrank own\nleast-sensitive-layers:8:sequential 64 lowrank-sequential same\n",
      "g.txt", c);
  REQUIRE(grid.size() == 2);
  CHECK(grid[0].least_sensitive_count.value_or(-1) == 4);
  CHECK(grid[0].ranked_by == Projection::low_rank);
  CHECK_FALSE(grid[0].least_sensitive_budget);
  CHECK(grid[1].least_sensitive_count.value_or(-1) == 8);
  CHECK(grid[1].ranked_by == Projection::sequential);
  CHECK(grid[1].settings.projection == Projection::low_rank_sequential);
  const auto error_for = [&](const std::string& text) { return error_of([&] { parse_grid(text, "g.txt", c); }); };
  CHECK(error_for("least-sensitive-layers:0 64 sequential g\n") ==
        "g.txt line 1: 'least-sensitive-layers:0': the number of layers must be in 1..8 (the model's layers)");
  CHECK(error_for("least-sensitive-layers:9 64 sequential g\n") ==
        "g.txt line 1: 'least-sensitive-layers:9': the number of layers must be in 1..8 (the model's layers)");
  CHECK(error_for("least-sensitive-layers:x 64 sequential g\n") ==
        "g.txt line 1: 'least-sensitive-layers:x': the number of layers must be a whole number");
  CHECK(error_for("least-sensitive-layers: 64 sequential g\n") ==
        "g.txt line 1: 'least-sensitive-layers:': the number of layers must be a whole number");
  CHECK(error_for("least-sensitive-layers:-1 64 sequential g\n") ==
        "g.txt line 1: 'least-sensitive-layers:-1': the number of layers must be a whole number");
  CHECK(error_for("least-sensitive-layers:2: 64 sequential g\n") ==
        "g.txt line 1: 'least-sensitive-layers:2:': the ranking's projection is empty");
  CHECK(error_for("least-sensitive-layers:2:dense 64 sequential g\n") ==
        "g.txt line 1: 'least-sensitive-layers:2:dense': the ranking needs a projection, not dense");
  CHECK(llama_test::contains(error_for("least-sensitive-layers:2:bogus 64 sequential g\n"), "g.txt line 1: "));
  CHECK(llama_test::contains(error_for("least-sensitive-layers:2:bogus 64 sequential g\n"), "bogus"));
  CHECK(error_for("least-sensitive-layers:2 - dense g\n") == "g.txt line 1: least-sensitive layers need a projection");
  // A low-rank row's block size is a budget and need not divide the sizes; the block-circulant scan's must.
  CHECK(error_of([&] { parse_grid("least-sensitive-layers:2 96 lowrank g\n", "g.txt", c); }).empty());
  CHECK(error_for("least-sensitive-layers:2:sequential 96 lowrank g\n") ==
        "g.txt line 1: block size 96 does not divide hidden_size 256");
}

TEST_CASE("sweep layer choice: each scan measured once, the named projection's ranking used") {
  LlamaConfig c;
  c.num_hidden_layers = 4;
  c.hidden_size = 256;
  c.intermediate_size = 768;
  // Made-up selection KLs: sequential ranks 2, 0, 3, 1; low-rank ranks 1, 3, 0, 2; a set's KL is
  // its layers' sum.
  const std::vector<double> sequential = {0.02, 0.04, 0.01, 0.03}, low_rank = {0.3, 0.1, 0.4, 0.2};
  std::vector<PatchSettings> measured;
  SensitivityScans scans(c.num_hidden_layers, [&](const PatchSettings& p) {
    measured.push_back(p);
    const std::vector<double>& cost = p.projection == Projection::sequential ? sequential : low_rank;
    double total = 0;
    for (const int l : p.layers) total += cost[std::size_t(l)];
    return total;
  });
  const std::vector<GridRow> grid = parse_grid(
      "least-sensitive-layers:2 64 lowrank own ranking\n"
      "least-sensitive-layers:2:sequential 64 lowrank sequential ranking\n"
      "least-sensitive-layers:3:sequential 64 sequential\n"
      "least-sensitive:0.065 64 sequential greedy\n"
      "least-sensitive-layers:1:sequential 32 sequential another block size\n"
      "0,3 64 lowrank fixed\n"
      "least-sensitive-layers:4 16 sequential all four\n",
      "g.txt", c);
  CHECK(scans.layers_for(grid[0]) == std::vector<int>{1, 3});
  CHECK(measured.size() == 4);
  for (std::size_t l = 0; l < measured.size(); ++l) {
    CHECK(measured[l].layers == std::vector<int>{int(l)});  // each layer alone
    CHECK(measured[l].projection == Projection::low_rank);
    CHECK(measured[l].block_size == 64);
  }
  CHECK(scans.layers_for(grid[1]) == std::vector<int>{0, 2});
  CHECK(measured.size() == 8);
  CHECK(measured.back().projection == Projection::sequential);
  CHECK(scans.layers_for(grid[2]) == std::vector<int>{0, 2, 3});
  CHECK(measured.size() == 8);  // the sequential scan is reused
  // Greedy on the same scan: {2} 0.01, {0,2} 0.03, {0,2,3} 0.06, {0,1,2,3} 0.10 > 0.065; only the
  // sets of two or more layers are measured anew.
  CHECK(scans.layers_for(grid[3]) == std::vector<int>{0, 2, 3});
  CHECK(measured.size() == 11);
  CHECK(scans.layers_for(grid[4]) == std::vector<int>{2});
  CHECK(measured.size() == 15);  // another block size, another scan
  CHECK(measured.back().block_size == 32);
  CHECK(scans.layers_for(grid[5]) == std::vector<int>{0, 3});
  CHECK(measured.size() == 15);
  CHECK(scans.layers_for(grid[6]) == std::vector<int>{0, 1, 2, 3});
  CHECK(measured.size() == 15);  // every layer, whatever the ranking: no scan
}
