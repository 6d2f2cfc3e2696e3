// SPDX-License-Identifier: Apache-2.0
// Per-op benchmarks at a model shape's sizes (batch 32 x seq 128 by default), and the machine's GEMM
// ceiling measured in the same run.
//
//   ceiling          a large square GEMM (2048^3) split across the threads as the library splits
//                    its GEMMs (core/threading.hpp): the rate every other line is a fraction of
//   gemm ...         the encoder's and the masked-LM decoder's products, forward (x W^T) and both
//                    backward products (dy W, dy^T x), through the library's affine/matmul GEMMs
//   attention        scores, masked softmax, probabilities x values for every (sequence, head),
//                    forward, and forward + backward
//   layer_norm, softmax, gelu, dropout
//                    forward, and forward + backward (the backward seeded by a sum)
//   embedding        gather of the word vectors, forward + backward (the scatter-add into the table)
//   adamw            one AdamW step over the model's parameter count (with the gradient norm)
// Each line is the median of --rounds repeats after one warm-up.
//
// Usage: op_benchmarks [--shape tiny|mini|small|medium|base] [--batch B] [--seq L] [--threads T] [--rounds R] [--json]

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <earlybert/earlybert.hpp>

#include "timing.hpp"

namespace eb = earlybert;
using eb::index_t;

namespace {

double median_ms(int rounds, const std::function<void()>& f) {
  f();  // warm-up: the arena grows, caches fill
  std::vector<double> ms;
  for (int r = 0; r < rounds; ++r) ms.push_back(1e3 * eb::bench::seconds(f));
  return eb::bench::median(ms);
}

eb::parameter<float> random_parameter(const char* name, index_t rows, index_t cols, unsigned seed) {
  eb::parameter<float> p(name, rows, cols);
  std::srand(seed);
  p.value = eb::matrix<float>::Random(rows, cols);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shape = "mini";
  index_t batch = 32, seq = 128;
  int threads = 2, rounds = 9;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--json") json = true;
    else if (flag == "--shape" && has_value) shape = argv[++i];
    else if (flag == "--batch" && has_value) batch = std::atol(argv[++i]);
    else if (flag == "--seq" && has_value) seq = std::atol(argv[++i]);
    else if (flag == "--threads" && has_value) threads = std::atoi(argv[++i]);
    else if (flag == "--rounds" && has_value) rounds = std::atoi(argv[++i]);
    else {
      fmt::print(stderr, "error: op_benchmarks: unknown or incomplete argument '{}'\n", flag);
      return 2;
    }
  }
  const bool named = std::any_of(eb::named_shapes.begin(), eb::named_shapes.end(), [&](const auto& n) { return n.name == shape; });
  if (!named || batch < 1 || seq < 2 || threads < 1 || rounds < 1) {
    fmt::print(stderr, "error: op_benchmarks: --shape must be a named shape ({}); --batch, --threads, --rounds at least 1, --seq at least 2\n", eb::named_shape_list());
    return 2;
  }
  const eb::bert_config d = eb::named_shape_config(shape, 30522);
  eb::set_num_threads(threads);
  const index_t tokens = batch * seq, vocab = 30522, masked = tokens * 15 / 100, head_dim = d.hidden / d.heads;

  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  double ceiling = 0;
  const auto report = [&](const std::string& name, double ms, double flops) {
    nlohmann::ordered_json r{{"op", name}, {"ms", ms}};
    if (flops > 0) {
      r["gflops"] = flops / ms / 1e6;
      if (ceiling > 0) r["of_ceiling"] = r["gflops"].get<double>() / ceiling;
    }
    if (!json) {
      fmt::print("{:34} {:9.3f} ms", name, ms);
      if (flops > 0) fmt::print("  {:6.1f} GFLOP/s", r["gflops"].get<double>());
      if (r.contains("of_ceiling")) fmt::print("  {:4.0f}% of ceiling", 100 * r["of_ceiling"].get<double>());
      fmt::print("\n");
    }
    results.push_back(r);
  };

  // The ceiling: one large GEMM, split into panels as the library splits its own.
  {
    const index_t n = 2048;
    const eb::matrix<float> a = eb::matrix<float>::Random(n, n), b = eb::matrix<float>::Random(n, n);
    eb::matrix<float> c(n, n);
    const double ms = median_ms(std::max(3, rounds / 3), [&] {
      eb::detail::gemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    });
    report("gemm ceiling 2048^3", ms, 2.0 * n * n * n);
    ceiling = results.back()["gflops"].get<double>();
  }

  // The model's products: forward y = x W^T, backward dx = dy W and dW = dy^T x.
  struct product {
    std::string name;
    index_t m, n, k;  // y [m, n] = x [m, k] W^T, W [n, k]
  };
  const std::vector<product> products = {
      {"attention projection", tokens, d.hidden, d.hidden},
      {"ffn intermediate", tokens, d.ffn, d.hidden},
      {"ffn output", tokens, d.hidden, d.ffn},
      {"mlm decoder", masked, vocab, d.hidden},
  };
  for (const auto& p : products) {
    const eb::matrix<float> x = eb::matrix<float>::Random(p.m, p.k), w = eb::matrix<float>::Random(p.n, p.k),
                            dy = eb::matrix<float>::Random(p.m, p.n);
    eb::matrix<float> y(p.m, p.n), dx(p.m, p.k), dw(p.n, p.k);
    const double flops = 2.0 * static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
    report(fmt::format("gemm {} fwd [{}x{}]x[{}x{}]^T", p.name, p.m, p.k, p.n, p.k),
           median_ms(rounds, [&] { eb::detail::gemm(false, true, p.m, p.n, p.k, 1.0f, x.data(), p.k, w.data(), p.k, 0.0f, y.data(), p.n); }),
           flops);
    report(fmt::format("gemm {} dx", p.name),
           median_ms(rounds, [&] { eb::detail::gemm(false, false, p.m, p.k, p.n, 1.0f, dy.data(), p.n, w.data(), p.k, 1.0f, dx.data(), p.k); }),
           flops);
    report(fmt::format("gemm {} dW", p.name),
           median_ms(rounds, [&] { eb::detail::gemm(true, false, p.n, p.k, p.m, 1.0f, dy.data(), p.n, x.data(), p.k, 1.0f, dw.data(), p.k); }),
           flops);
  }

  eb::tape<float> t;
  // Tape-based ops: forward alone, then forward + backward seeded by a sum.
  const auto time_op = [&](const std::string& name, const std::function<eb::var<float>()>& forward, double flops) {
    report(name + " fwd", median_ms(rounds, [&] {
             t.rewind();
             (void)forward();
           }), flops);
    report(name + " fwd+bwd", median_ms(rounds, [&] {
             t.rewind();
             t.backward(eb::sum(t, forward()));
           }), 3 * flops);
  };

  auto hidden = random_parameter("hidden", tokens, d.hidden, 1);
  auto wide = random_parameter("wide", tokens, d.ffn, 2);
  auto gamma = random_parameter("gamma", 1, d.hidden, 3), beta = random_parameter("beta", 1, d.hidden, 4);
  auto q = random_parameter("q", batch * d.heads * seq, head_dim, 5), k = random_parameter("k", batch * d.heads * seq, head_dim, 6),
       v = random_parameter("v", batch * d.heads * seq, head_dim, 7);
  const eb::matrix<float> padding = eb::matrix<float>::Zero(batch, seq);
  const double attention_flops = 4.0 * static_cast<double>(batch * d.heads) * static_cast<double>(seq * seq * head_dim);

  time_op(fmt::format("attention ({} x {} heads)", batch, d.heads), [&] {
    const auto scores = eb::batched_matmul(t, t.watch(q), t.watch(k), batch * d.heads, eb::transpose::no, eb::transpose::yes);
    const auto probabilities = eb::softmax(t, eb::scale(t, scores, 1.0f / std::sqrt(static_cast<float>(head_dim))),
                                           t.constant(padding), d.heads * seq);
    return eb::batched_matmul(t, probabilities, t.watch(v), batch * d.heads);
  }, attention_flops);
  time_op(fmt::format("layer_norm [{}x{}]", tokens, d.hidden),
          [&] { return eb::layer_norm(t, t.watch(hidden), t.watch(gamma), t.watch(beta), 1e-12f); }, 0);
  auto scores = random_parameter("scores", batch * d.heads * seq, seq, 8);
  time_op(fmt::format("softmax [{}x{}]", batch * d.heads * seq, seq), [&] { return eb::softmax(t, t.watch(scores)); }, 0);
  time_op(fmt::format("gelu [{}x{}]", tokens, d.ffn), [&] { return eb::gelu(t, t.watch(wide)); }, 0);
  time_op(fmt::format("dropout 0.1 [{}x{}]", tokens, d.ffn), [&] { return eb::dropout(t, t.watch(wide), 0.1f, 7); }, 0);

  auto table = random_parameter("word_embeddings", vocab, d.hidden, 9);
  std::vector<eb::token_id> ids(static_cast<std::size_t>(tokens));
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<eb::token_id>((i * 7919) % static_cast<std::size_t>(vocab));
  time_op(fmt::format("embedding [{}x{}] rows of {}", tokens, d.hidden, vocab), [&] { return eb::embedding(t, t.watch(table), ids); }, 0);

  // AdamW over as many parameters as the model has (embeddings, encoder, masked-LM head).
  const index_t encoder = d.layers * (4 * d.hidden * d.hidden + 2 * d.hidden * d.ffn);
  auto all = random_parameter("all", 1, (vocab + 512 + 2) * d.hidden + encoder + d.hidden * d.hidden + vocab, 10);
  all.gradient = eb::matrix<float>::Random(all.value.rows(), all.value.cols());
  std::vector<eb::parameter<float>*> parameters{&all};
  eb::adamw<float> optimizer(eb::adamw_options{.weight_decay = 0.01});
  report(fmt::format("adamw + gradient norm ({:.1f}M parameters)", static_cast<double>(all.value.size()) / 1e6), median_ms(rounds, [&] {
           const double norm = eb::gradient_norm<float>(parameters);
           optimizer.step(parameters, 1e-4, eb::clip_factor(norm, 1.0));
           all.gradient.setConstant(1e-3f);  // step() clears it; the next round needs one
         }), 0);

  if (json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"shape", shape}, {"batch", batch}, {"seq", seq}, {"threads", eb::num_threads()},
                                              {"openblas_core", eb::blas_core_name()}, {"ceiling_gflops", ceiling}, {"ops", results}}
                           .dump());
  } else {
    fmt::print("({}, batch {} x seq {}, {} threads, OpenBLAS {})\n", shape, batch, seq, eb::num_threads(), eb::blas_core_name());
  }
  return 0;
}
