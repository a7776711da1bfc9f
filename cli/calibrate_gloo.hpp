#pragma once
// `twinspeed calibrate`'s loopback probe: real Gloo fp32 all_reduces between `ranks` processes of
// this machine, each a copy of this program started by the launcher (cli/launcher.hpp, as
// `twinspeed launch` starts ranks) running the hidden `calibrate-worker` subcommand. Rank 0 times
// every operation, in wall time and in the CPU time of its process, and prints one JSON line; the
// medians per size are the measurement.

#include <cstdio>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cli/calibration.hpp"

namespace twinspeed::cli {

inline constexpr const char* kCalibrateWorkerCommand = "calibrate-worker";

// Whether this build has a "gloo" backend (TWINSPEED_GLOO).
bool gloo_available();

// The rank side: joins the launcher's world (RANK, WORLD_SIZE, MASTER_ADDR/PORT), runs one
// untimed then `iterations` timed all_reduces of each size (nccl-tests S, bytes, multiples of 4),
// and on rank 0 writes {"all_reduce": [{"size_bytes": S, "time_s": median wall time, "cpu_time_s":
// median CPU time of the process}, ...]} as one line to out.
void run_all_reduce_probe_rank(std::span<const std::int64_t> sizes, int iterations, std::FILE* out);

// The calibrate side: launches `ranks` workers (this executable) on a free loopback port and
// returns rank 0's medians. Throws Error with the ranks' stderr as details when the launch fails.
std::vector<AllReduceTiming> measure_gloo_all_reduce(int ranks, std::span<const std::int64_t> sizes, int iterations);

}  // namespace twinspeed::cli
