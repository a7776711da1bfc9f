#pragma once
// Streams and events with CUDA semantics. Work launched on one stream runs in order; an event
// recorded on a stream completes when everything launched before it has; waiting for an event on
// another stream orders that stream's later work after it (without blocking the host).
//
// launch() calls fn before it returns on every backend, so fn may capture by reference: on CUDA fn
// enqueues kernels on the stream; on CPU backends and in the numeric simulator fn is the work
// itself and runs after the stream's earlier work (a comm stream's pending collectives) has
// finished. On CPU backends and in the numeric simulator the compute stream is the calling thread:
// its events are complete when recorded.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/comm/types.hpp"

namespace twinspeed::comm {

class Event {
 public:
  virtual ~Event() = default;
  // True when all work before the record point has finished.
  virtual bool query() const = 0;
  // Blocks the host until query() is true.
  virtual void synchronize() = 0;
};

class Stream {
 public:
  virtual ~Stream() = default;
  // Lane name in traces: "compute", "comm-dp", "copy", ...
  virtual std::string_view name() const = 0;
  // Runs fn on this stream. The simulator charges cost to the stream's virtual clock and calls fn
  // only in numeric mode; real backends always call fn. name labels the trace slice.
  virtual void launch(std::string_view name, const ComputeCost& cost, const std::function<void()>& fn) = 0;
  // Records an event after all work launched so far.
  virtual std::shared_ptr<Event> record() = 0;
  // Orders later work on this stream after event.
  virtual void wait(const Event& event) = 0;
  // Blocks the host until everything launched on this stream has finished.
  virtual void synchronize() = 0;
};

}  // namespace twinspeed::comm
