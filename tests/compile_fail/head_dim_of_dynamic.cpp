// SPDX-License-Identifier: Apache-2.0
// Must not compile: a shape whose hidden size or heads are read at run time has no compile-time head
// size (it used to be dynamic, -1, and code that took its square root compiled).
#include <cmath>

#include "earlybert/core/shape.hpp"

int main() { return static_cast<int>(std::sqrt(earlybert::shapes::any::head_dim)); }
