// One training micro-step (forward, causal-LM loss, backward) of a model-zoo model, driven layer
// by layer through TorchLayerRunner (as the engine drives it) and as one plain LibTorch autograd
// graph, at the same thread count: what the layer-by-layer cut costs.
//
//   build/bench/model_zoo_bench --benchmark_counters_tabular=true
//
//   BM_Step/<mode>/<threads>  gpt-bench (configs/models/gpt-bench.json: 6 layers, hidden 512, 8 heads,
//                             vocab 8192) at micro-batch 4, seq 256, dropout on. Modes: runner_fp32,
//                             whole_fp32, runner_bf16, runner_fp16 (fp32-emulated with recompute).
//                             FLOP/s counts the specs' model FLOPs (forward + backward, no recompute).
// Parameters stay in the modules (no engine binding); gradients accumulate across iterations in
// both paths alike.

#include <benchmark/benchmark.h>

#include "bench/torch_bench_support.hpp"

namespace twinspeed {
namespace {

using bench::use_threads;
using bench::whole_step;

constexpr std::int64_t kMicroBatch = 4;

enum class Mode { runner_fp32, whole_fp32, runner_bf16, runner_fp16 };

// Module parameters copied to `dtype` storage the runner binds (what the engine's Buffers are).
struct Storage {
  struct NoOwner final : BufferOwner {
    void release(Buffer&) noexcept override {}
  } owner;  // declared first: outlives the buffers that report to it
  std::vector<torch::Tensor> tensors;
  std::vector<Buffer> buffers;
};

DType dtype_of(Mode mode) { return mode == Mode::runner_bf16 ? DType::bf16 : DType::f16; }

void bind(TorchLayerRunner& runner, Mode mode, Storage& storage) {
  if (mode == Mode::runner_fp32 || mode == Mode::whole_fp32) return;
  const DType dtype = dtype_of(mode);
  const auto scalar = dtype == DType::bf16 ? torch::kBFloat16 : torch::kFloat16;
  storage.buffers.reserve(2 * runner.layer_count());
  for (std::size_t l = 0; l < runner.layer_count(); ++l) {
    std::int64_t numel = 0;
    for (const auto& p : runner.parameters(l)) numel += p.numel();
    std::vector<BufferView> views[2];
    for (int kind = 0; kind < 2; ++kind) {
      storage.tensors.push_back(torch::zeros({std::max<std::int64_t>(numel, 1)}, scalar));
      storage.buffers.emplace_back(&storage.owner, kind == 0 ? MemoryTag::params : MemoryTag::grads, dtype, numel,
                                   storage.tensors.back().data_ptr(), 0);
      std::int64_t at = 0;
      for (const auto& p : runner.parameters(l)) {
        views[kind].push_back(storage.buffers.back().view(at, p.numel()));
        at += p.numel();
      }
    }
    runner.initial_parameters(l, views[0]);
    runner.bind_parameters(l, views[0]);
    runner.bind_gradients(l, views[1]);
  }
}

double runner_step(TorchLayerRunner& runner, const Batch& batch) {
  Activation x = wrap_tensor(batch.inputs);
  for (std::size_t l = 0; l < runner.layer_count(); ++l) x = runner.forward(l, x);
  Activation loss = runner.loss(x, wrap_tensor(batch.labels));
  Activation grad = runner.loss_backward(loss, 1.0);
  for (std::size_t l = runner.layer_count(); l-- > 0;) grad = runner.backward(l, grad);
  runner.release_saved();
  return runner.scalar(loss);
}

void BM_Step(benchmark::State& state, Mode mode) {
  use_threads(static_cast<int>(state.range(0)));
  const ModelConfig config = load_model_preset("gpt-bench");
  const std::int64_t seq = default_seq_len(config);
  const Batch batch = SyntheticTokenDataset(64, seq, config.vocab_size, 1).micro_batch(0, 0, 1, kMicroBatch);
  Model model = build_torch_model(config);
  std::shared_ptr<TorchLayerRunner> runner;
  Storage storage;
  if (mode != Mode::whole_fp32) {
    runner = std::make_shared<TorchLayerRunner>(model.layers, model.loss_fn);
    bind(*runner, mode, storage);
  }
  auto step = [&] { return runner ? runner_step(*runner, batch) : whole_step(model, batch); };
  benchmark::DoNotOptimize(step());  // warm-up: gradient tensors, allocator
  for (auto _ : state) benchmark::DoNotOptimize(step());
  double flops = 0;
  for (const auto& spec : build_layer_specs(config, {.micro_batch = kMicroBatch, .seq_len = seq})) {
    flops += static_cast<double>(spec.forward_flops + spec.backward_flops);
  }
  state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["threads"] = static_cast<double>(at::get_num_threads());
}

BENCHMARK_CAPTURE(BM_Step, runner_fp32, Mode::runner_fp32)->Arg(1)->Arg(2)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Step, whole_fp32, Mode::whole_fp32)->Arg(1)->Arg(2)->Iterations(3)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Step, runner_bf16, Mode::runner_bf16)->Arg(2)->Iterations(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Step, runner_fp16, Mode::runner_fp16)->Arg(2)->Iterations(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace twinspeed

BENCHMARK_MAIN();
