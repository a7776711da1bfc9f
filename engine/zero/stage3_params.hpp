#pragma once
// ZeRO-3 parameter gathering (DeepSpeed 0.19.6 partitioned_param_coordinator.py, as twinspeed
// models it). Every rank keeps only its ceil(numel/N) shard of each parameter; a layer's parameters
// are all-gathered into full buffers before the layer runs (forward or backward) and released
// after, unless the next layer to run needs them too. The unit of gathering is the OWNER layer: a
// layer that shares another layer's parameter (a tied LM head) gathers that whole layer.
//
//  - Prefetch: after a layer's parameters are in place, the gathers of the layers that run next
//    are issued (on the "zero-gather" comm stream, overlapping compute) while the prefetched
//    elements in flight stay within stage3_prefetch_bucket_size and all gathered elements within
//    stage3_max_live_parameters.
//  - Persistence: a parameter of at most stage3_param_persistence_threshold elements is gathered
//    once and never released (its shard is kept too), while the persistent elements, counted in
//    model order, stay within stage3_model_persistence_threshold; it is gathered again after every
//    optimizer step.
//  - Not modelled: stage3_max_reuse_distance (parameters are released after use whatever the
//    distance to their next use) and the coalescing of a fetch into one collective (one all-gather
//    per parameter: the same bytes, more launches).

#include <cstdint>
#include <limits>
#include <vector>

#include "engine/comm/comm.hpp"
#include "engine/comm/device.hpp"
#include "engine/zero/flat_plan.hpp"

namespace twinspeed {

struct Stage3Options {
  std::int64_t prefetch_elements = 50'000'000;
  std::int64_t max_live_elements = 1'000'000'000;
  std::int64_t persistence_threshold = 100'000;
  std::int64_t model_persistence_threshold = std::numeric_limits<std::int64_t>::max();
};

enum class Pass { forward, backward };

class Stage3Params {
 public:
  // `shards` is the rank's shard buffer laid out by `plan` (compute dtype).
  Stage3Params(comm::Device& device, comm::Comm& group, LayerRunner& runner, const ModelLayout& model,
               const ShardPlan& plan, const Buffer& shards, Stage3Options options);
  ~Stage3Params();
  Stage3Params(const Stage3Params&) = delete;
  Stage3Params& operator=(const Stage3Params&) = delete;

  // Before `layer` runs in `pass`: gathers what it reads (waiting on the compute stream), binds
  // it, and prefetches what runs next.
  void before(std::size_t layer, Pass pass);
  // After `layer` ran in `pass`: releases what the next layer does not read.
  void after(std::size_t layer, Pass pass);
  // Releases every non-persistent parameter (end of a backward pass, or abandoning a micro-step).
  void release_all();
  // After the optimizer updated the shards: gathers the persistent parameters again (DeepSpeed
  // all-gathers them after every step), so their whole copies see the update.
  void refresh_persistent();

  // Elements gathered right now (persistent ones included).
  std::int64_t live_elements() const { return live_elements_; }
  bool persistent(std::size_t param) const { return persistent_[param]; }

 private:
  struct Gathered {
    Buffer full;  // numel padded to shard * N
    comm::WorkPtr work;
  };
  std::size_t position(std::size_t layer, Pass pass) const;
  const std::vector<std::size_t>& owners_at(std::size_t position) const;
  void issue_gather(std::size_t param);
  void gather(std::size_t owner);
  void wait_and_bind(std::size_t owner);
  void release(std::size_t owner);
  void prefetch(std::size_t position);
  std::int64_t missing_elements(std::size_t owner) const;

  comm::Device& device_;
  comm::Comm& group_;
  LayerRunner& runner_;
  const ModelLayout& model_;
  const ShardPlan& plan_;
  const Buffer& shards_;
  Stage3Options options_;
  std::vector<Gathered> gathered_;  // per parameter
  std::vector<bool> bound_;         // per owner layer
  std::vector<bool> persistent_;    // per parameter
  std::int64_t live_elements_ = 0;
};

}  // namespace twinspeed
