// SPDX-License-Identifier: Apache-2.0
#pragma once
// The umbrella header: everything a user of earlybert needs.

#include "earlybert/core/arena.hpp"
#include "earlybert/core/error.hpp"
#include "earlybert/core/parameter.hpp"
#include "earlybert/core/rng.hpp"
#include "earlybert/core/shape.hpp"
#include "earlybert/core/tape.hpp"
#include "earlybert/core/threading.hpp"
#include "earlybert/core/types.hpp"
#include "earlybert/ops/activation.hpp"
#include "earlybert/ops/arithmetic.hpp"
#include "earlybert/ops/dropout.hpp"
#include "earlybert/ops/gather.hpp"
#include "earlybert/ops/heads.hpp"
#include "earlybert/ops/layer_norm.hpp"
#include "earlybert/ops/loss.hpp"
#include "earlybert/ops/matmul.hpp"
#include "earlybert/ops/reduce.hpp"
#include "earlybert/ops/softmax.hpp"
#include "earlybert/train/adamw.hpp"
