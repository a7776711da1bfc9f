#pragma once
// Shared by the LibTorch benchmarks: thread control and one whole-model micro-step.

#include <torch/torch.h>

#include "engine/model/torch_models.hpp"
#include "engine/model/torch_token_data.hpp"

// OpenBLAS runs its own thread pool, which at::set_num_threads does not reach (bench/local_cpu_bench.cpp).
extern "C" void openblas_set_num_threads(int threads) __attribute__((weak));

namespace twinspeed::bench {

// LibTorch's intra-op threads are per calling thread (OpenMP), OpenBLAS's are process-wide: call
// this on every thread that runs LibTorch (each simulated rank's too).
inline void use_threads(int threads) {
  at::set_num_threads(threads);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(threads);
}

// Forward, causal-LM loss and backward of the whole model as one autograd graph; returns the loss.
inline double whole_step(Model& model, const Batch& batch) {
  torch::Tensor x = batch.inputs;
  for (auto& layer : model.layers) x = layer.module.forward(x);
  torch::Tensor loss = model.loss_fn(x, batch.labels);
  loss.backward();
  return loss.item<double>();
}

}  // namespace twinspeed::bench
