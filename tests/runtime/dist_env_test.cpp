// Where a real rank finds its place: torchrun's, OpenMPI's and SLURM's variables
// (engine/comm/dist_env.hpp).
#include <gtest/gtest.h>

#include <map>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "engine/comm/dist_env.hpp"
#include "engine/core/errors.hpp"

namespace twinspeed::comm {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

std::string config_error_path(const std::map<std::string, std::string>& vars) {
  try {
    discover_dist_env(env_of(vars));
  } catch (const ConfigError& e) {
    return e.path();
  }
  return "(no error)";
}

TEST(DistEnv, NoLauncherVariablesMeansNoDistributedEnvironment) {
  EXPECT_FALSE(discover_dist_env(env_of({{"HOME", "/root"}})).has_value());
}

TEST(DistEnv, TorchrunVariablesWithTorchrunsDefaults) {
  const DistEnv d = *discover_dist_env(env_of({{"RANK", "5"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                               {"LOCAL_WORLD_SIZE", "4"}, {"MASTER_ADDR", "node0"}}));
  EXPECT_EQ(d.source, "torchrun");
  EXPECT_EQ(d.rank, 5);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 4);
  EXPECT_EQ(d.master_addr, "node0");
  EXPECT_EQ(d.master_port, 29500);
  const DistEnv bare = *discover_dist_env(env_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1234"}}));
  EXPECT_EQ(bare.master_addr, "127.0.0.1");
  EXPECT_EQ(bare.master_port, 1234);
  EXPECT_EQ(bare.local_world_size, 2);
}

TEST(DistEnv, OpenMpiNeedsMasterAddrAcrossNodes) {
  const DistEnv d = *discover_dist_env(env_of({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                                               {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                                               {"MASTER_ADDR", "10.0.0.1"}}));
  EXPECT_EQ(d.source, "openmpi");
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.master_addr, "10.0.0.1");
  EXPECT_EQ(config_error_path({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                               {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}),
            "MASTER_ADDR");
  // One node: loopback.
  EXPECT_EQ(discover_dist_env(env_of({{"OMPI_COMM_WORLD_RANK", "0"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                                      {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}}))
                ->master_addr,
            "127.0.0.1");
}

TEST(DistEnv, SlurmTakesTheMasterFromTheFirstHostOfTheNodeList) {
  const DistEnv d = *discover_dist_env(env_of({{"SLURM_PROCID", "6"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "2"},
                                               {"SLURM_TASKS_PER_NODE", "4(x2)"}, {"SLURM_NODEID", "1"},
                                               {"SLURM_JOB_NODELIST", "gpu[07-08]"}}));
  EXPECT_EQ(d.source, "slurm");
  EXPECT_EQ(d.rank, 6);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 2);
  EXPECT_EQ(d.local_world_size, 4);
  EXPECT_EQ(d.master_addr, "gpu07");
  // Uneven nodes: the count of this node.
  EXPECT_EQ(discover_dist_env(env_of({{"SLURM_PROCID", "4"}, {"SLURM_NTASKS", "5"}, {"SLURM_TASKS_PER_NODE", "2(x2),1"},
                                      {"SLURM_NODEID", "2"}, {"SLURM_NODELIST", "a,b,c"}}))
                ->local_world_size,
            1);
  EXPECT_EQ(config_error_path({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}), "MASTER_ADDR");
}

TEST(DistEnv, TorchrunWinsOverTheSchedulersVariables) {
  EXPECT_EQ(discover_dist_env(env_of({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"},
                                      {"OMPI_COMM_WORLD_RANK", "0"}}))
                ->source,
            "torchrun");
}

TEST(DistEnv, UnusableValuesAreConfigErrorsNamingTheVariable) {
  EXPECT_EQ(config_error_path({{"RANK", "x"}, {"WORLD_SIZE", "2"}}), "RANK");
  EXPECT_EQ(config_error_path({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), "RANK");
  EXPECT_EQ(config_error_path({{"RANK", "0"}}), "WORLD_SIZE");
  EXPECT_EQ(config_error_path({{"RANK", "0"}, {"WORLD_SIZE", "0"}}), "WORLD_SIZE");
  EXPECT_EQ(config_error_path({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"}}),
            "LOCAL_RANK");
  EXPECT_EQ(config_error_path({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}), "MASTER_PORT");
  EXPECT_EQ(config_error_path({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500 "}}), "MASTER_PORT");
  EXPECT_EQ(config_error_path({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}, {"SLURM_TASKS_PER_NODE", "2(x"}}),
            "SLURM_TASKS_PER_NODE");
}

TEST(SlurmNodeList, ExpandsRangesListsPaddingAndSeveralBrackets) {
  EXPECT_EQ(expand_slurm_nodelist("node1"), (std::vector<std::string>{"node1"}));
  EXPECT_EQ(expand_slurm_nodelist("gpu[01-03,7],login"),
            (std::vector<std::string>{"gpu01", "gpu02", "gpu03", "gpu7", "login"}));
  EXPECT_EQ(expand_slurm_nodelist("r[1-2]n[08-09]-ib"),
            (std::vector<std::string>{"r1n08-ib", "r1n09-ib", "r2n08-ib", "r2n09-ib"}));
  for (const char* bad : {"gpu[1-", "gpu]1", "a,,b", "gpu[3-1]", "gpu[x]", "", "n[0-99999]x[0-99999]"}) {
    EXPECT_THROW(expand_slurm_nodelist(bad), ConfigError) << bad;
  }
}

RC_GTEST_PROP(SlurmNodeListProperty, AnyStringExpandsOrFailsWithAConfigErrorNeverAnythingElse, ()) {
  const std::string list = *rc::gen::container<std::string>(rc::gen::element('a', '0', '1', '9', '[', ']', ',', '-'));
  try {
    const std::vector<std::string> hosts = expand_slurm_nodelist(list);
    RC_ASSERT(!hosts.empty());
    for (const std::string& h : hosts) RC_ASSERT(h.find_first_of("[],") == std::string::npos);
  } catch (const ConfigError& e) {
    RC_ASSERT(e.path() == "SLURM_JOB_NODELIST");
  }
}

}  // namespace
}  // namespace twinspeed::comm
