#pragma once
// twinspeed's LibTorch-free API: configuration, device mesh, the communication seam and its
// backends, optimizers, LR schedulers and the engine core. For torch modules and datasets, include
// <twinspeed/torch.hpp>.

#include "engine/comm/backend.hpp"
#include "engine/comm/registry.hpp"
#include "engine/config/config.hpp"
#include "engine/core/errors.hpp"
#include "engine/mesh/device_mesh.hpp"
#include "engine/optim/lr_scheduler.hpp"
#include "engine/optim/optimizer.hpp"
#include "engine/runtime/engine.hpp"
#include "engine/runtime/pipeline_engine.hpp"
