#pragma once
// Where a real (multi-process) rank finds its place in the world: the environment its launcher
// set. Read in this order, the first source present wins:
//
//   torchrun / `twinspeed launch`  RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
//                                  MASTER_PORT
//   OpenMPI (mpirun)               OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE; the
//                                  master must come from MASTER_ADDR (DeepSpeed asks MPI for rank
//                                  0's hostname; twinspeed does not link MPI)
//   SLURM (srun)                   SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID,
//                                  SLURM_NTASKS_PER_NODE (else SLURM_TASKS_PER_NODE's first
//                                  count); MASTER_ADDR defaults to the first host of
//                                  SLURM_JOB_NODELIST (SLURM_NODELIST), expanded
//
// MASTER_ADDR defaults to 127.0.0.1 for torchrun's variables, MASTER_PORT to 29500 (torchrun's),
// both overridable in every source. A value that is present but unusable (not an integer, a rank
// outside the world) is a ConfigError naming the variable.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twinspeed::comm {

inline constexpr int kDefaultMasterPort = 29500;

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = kDefaultMasterPort;
  std::string source;  // "torchrun", "openmpi", "slurm"
};

// Looks a variable up; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(std::string_view)>;

// The process environment (getenv).
EnvLookup process_env();

// The first source present in `env`, nullopt when none is.
std::optional<DistEnv> discover_dist_env(const EnvLookup& env);

// SLURM's compressed host list, expanded in order: "gpu[01-03,7],login" -> gpu01 gpu02 gpu03
// gpu7 login (zero padding kept). Throws ConfigError (path SLURM_JOB_NODELIST) on a malformed list.
std::vector<std::string> expand_slurm_nodelist(std::string_view list);

}  // namespace twinspeed::comm
