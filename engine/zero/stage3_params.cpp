#include "engine/zero/stage3_params.hpp"

#include <algorithm>

namespace twinspeed {

Stage3Params::Stage3Params(comm::Device& device, comm::Comm& group, LayerRunner& runner, const ModelLayout& model,
                           const ShardPlan& plan, const Buffer& shards, Stage3Options options)
    : device_(device),
      group_(group),
      runner_(runner),
      model_(model),
      plan_(plan),
      shards_(shards),
      options_(options),
      gathered_(model.params.size()),
      bound_(model.layer_count(), false),
      persistent_(model.params.size(), false) {
  std::int64_t persistent_elements = 0;
  for (std::size_t p = 0; p < model_.params.size(); ++p) {
    const std::int64_t n = model_.params[p].numel;
    if (n <= options_.persistence_threshold && persistent_elements + n <= options_.model_persistence_threshold) {
      persistent_[p] = true;
      persistent_elements += n;
    }
  }
}

Stage3Params::~Stage3Params() = default;

std::size_t Stage3Params::position(std::size_t layer, Pass pass) const {
  return pass == Pass::forward ? layer : 2 * model_.layer_count() - 1 - layer;
}

const std::vector<std::size_t>& Stage3Params::owners_at(std::size_t pos) const {
  const std::size_t layers = model_.layer_count();
  return model_.owners_used[pos < layers ? pos : 2 * layers - 1 - pos];
}

std::int64_t Stage3Params::missing_elements(std::size_t owner) const {
  std::int64_t n = 0;
  for (std::size_t p : model_.owned[owner]) {
    if (gathered_[p].full.empty()) n += plan_.shard_numel[p] * group_.size();
  }
  return n;
}

void Stage3Params::issue_gather(std::size_t p) {
  Gathered& g = gathered_[p];
  const std::int64_t shard = plan_.shard_numel[p];
  // The shards are written on the compute stream (the optimizer's update): gather after it.
  comm::Stream& stream = device_.comm_stream("zero-gather");
  stream.wait(*device_.compute_stream().record());
  g.work = group_.all_gather(shards_.view(plan_.offset[p], shard), g.full.all(), {.stream = &stream});
}

void Stage3Params::gather(std::size_t owner) {
  for (std::size_t p : model_.owned[owner]) {
    Gathered& g = gathered_[p];
    if (!g.full.empty() || model_.params[p].numel == 0) continue;
    g.full = device_.allocate(shards_.dtype(), plan_.shard_numel[p] * group_.size(), MemoryTag::params);
    live_elements_ += g.full.numel();
    issue_gather(p);
  }
}

void Stage3Params::refresh_persistent() {
  // Synchronous, as DeepSpeed's post-step all_gather of the persistent parameters: the step ends
  // when they are current.
  for (std::size_t p = 0; p < gathered_.size(); ++p) {
    Gathered& g = gathered_[p];
    if (g.full.empty()) continue;
    if (g.work) g.work->wait();
    issue_gather(p);
  }
  for (auto& g : gathered_) {
    if (g.work) {
      g.work->wait();
      g.work.reset();
    }
  }
}

void Stage3Params::wait_and_bind(std::size_t owner) {
  std::vector<BufferView> views;
  for (std::size_t p : model_.owned[owner]) {
    Gathered& g = gathered_[p];
    if (g.work) {
      g.work->wait();
      g.work.reset();
    }
    views.push_back(g.full.empty() ? BufferView{} : g.full.view(0, model_.params[p].numel));
  }
  if (!bound_[owner]) {
    runner_.bind_parameters(owner, views);
    bound_[owner] = true;
  }
}

void Stage3Params::release(std::size_t owner) {
  bool released = false;
  for (std::size_t p : model_.owned[owner]) {
    Gathered& g = gathered_[p];
    if (g.full.empty() || persistent(p)) continue;
    if (g.work) g.work->wait();  // a buffer is never freed under a collective in flight
    live_elements_ -= g.full.numel();
    g = {};
    released = true;
  }
  if (released && bound_[owner]) {
    runner_.bind_parameters(owner, {});
    bound_[owner] = false;
  }
}

void Stage3Params::prefetch(std::size_t pos) {
  std::int64_t in_flight = 0;
  for (const auto& g : gathered_) in_flight += g.work ? g.full.numel() : 0;
  for (std::size_t next = pos + 1; next < 2 * model_.layer_count(); ++next) {
    for (std::size_t owner : owners_at(next)) {
      const std::int64_t need = missing_elements(owner);
      if (need == 0) continue;
      if (in_flight + need > options_.prefetch_elements || live_elements_ + need > options_.max_live_elements) return;
      gather(owner);
      in_flight += need;
    }
  }
}

void Stage3Params::before(std::size_t layer, Pass pass) {
  const std::size_t pos = position(layer, pass);
  for (std::size_t owner : owners_at(pos)) gather(owner);
  for (std::size_t owner : owners_at(pos)) wait_and_bind(owner);
  prefetch(pos);
}

void Stage3Params::after(std::size_t layer, Pass pass) {
  const std::size_t pos = position(layer, pass);
  static const std::vector<std::size_t> kNone;
  const auto& next = pos + 1 < 2 * model_.layer_count() ? owners_at(pos + 1) : kNone;
  for (std::size_t owner : owners_at(pos)) {
    if (std::find(next.begin(), next.end(), owner) == next.end()) release(owner);
  }
}

void Stage3Params::release_all() {
  for (std::size_t owner = 0; owner < model_.layer_count(); ++owner) release(owner);
}

}  // namespace twinspeed
