#pragma once
// The block-circulant shapes that every backend's tests cover: b = 1 (dense), b = n (one circulant),
// odd and non-power-of-two b, m != n both ways.

#include <Eigen/Core>

#include <vector>

namespace fftmat::test {

struct Shape {
  Eigen::Index m, n, b;
};

inline const std::vector<Shape> kCommonShapes = {{8, 8, 1},    {5, 7, 1},    {8, 8, 8},    {6, 6, 6},  {5, 5, 5},
                                                 {12, 8, 4},   {8, 12, 4},   {15, 9, 3},   {10, 14, 2}, {21, 14, 7},
                                                 {64, 32, 16}, {24, 72, 12}, {45, 30, 15}, {96, 96, 32}};

}  // namespace fftmat::test
