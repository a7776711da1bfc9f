// `twinspeed trace merge` and `twinspeed trace compare` (docs/CLI.md "trace"): the per-rank traces
// of a real run joined into one, and the simulation-twin check between two traces of one config.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "engine/core/trace_chrome.hpp"
#include "engine/core/trace_merge.hpp"

namespace twinspeed::cli {

namespace {

struct MergeArgs {
  std::vector<std::string> inputs;
  std::string out;
};

struct CompareArgs {
  std::string first;
  std::string second;
  int max_differences = 20;
  bool json = false;
};

void run_merge(const MergeArgs& args) {
  std::vector<TraceDocument> parts;
  int ranks = 0;
  for (const std::string& input : args.inputs) {
    parts.push_back(read_chrome_trace_file(input));
    ranks += static_cast<int>(parts.back().ranks().size());
  }
  TraceDocument merged = merge_traces(std::move(parts));
  write_chrome_trace_file(merged, args.out);
  std::printf("merged %d ranks from %zu traces into %s\n", ranks, args.inputs.size(), args.out.c_str());
}

std::string differences_text(std::int64_t n) { return fmt::format("{} difference{}", n, n == 1 ? "" : "s"); }

void run_compare(const CompareArgs& args) {
  const TraceDocument a = read_chrome_trace_file(args.first);
  const TraceDocument b = read_chrome_trace_file(args.second);
  const CollectiveComparison c = compare_collectives(a, b, static_cast<std::size_t>(args.max_differences));
  if (args.json) {
    nlohmann::ordered_json out = {{"schema", "twinspeed.trace-compare/1"},
                                  {"first", args.first},
                                  {"second", args.second},
                                  {"same", c.same()},
                                  {"collectives_compared", c.compared},
                                  {"difference_count", c.difference_count},
                                  {"differences", c.differences},
                                  {"warnings", nlohmann::ordered_json::array()}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("%s and %s: %lld collectives equal on %zu ranks", args.first.c_str(), args.second.c_str(),
                static_cast<long long>(c.compared), std::max(a.ranks().size(), b.ranks().size()));
    if (c.same()) {
      std::printf("; no differences\n");
    } else {
      std::printf("; %s:\n", differences_text(c.difference_count).c_str());
    }
    for (const std::string& line : c.differences) std::printf("  %s\n", line.c_str());
    if (c.difference_count > static_cast<std::int64_t>(c.differences.size())) {
      std::printf("  ... and %lld more\n", static_cast<long long>(c.difference_count) - static_cast<long long>(c.differences.size()));
    }
  }
  if (!c.same()) {
    throw ExitStatus(1, fmt::format("the traces issue different collectives ({}; the first: {})",
                                    differences_text(c.difference_count), c.differences.front()));
  }
}

}  // namespace

void register_trace_commands(CLI::App& app) {
  auto* trace = app.add_subcommand("trace", "Work with Chrome traces written by simulate, plan, demo and train");
  trace->require_subcommand(1);

  auto merge_args = std::make_shared<MergeArgs>();
  auto* merge = trace->add_subcommand(
      "merge",
      "Join per-rank traces (train --trace with a real backend writes out.rank<R>.json on every rank) into one.\n"
      "Rank 0 of the run already merges them at exit; this does it by hand, e.g. after copying the files\n"
      "of a multi-node run to one machine:\n"
      "  twinspeed trace merge --out run.json run.rank0.json run.rank1.json");
  merge->add_option("TRACES", merge_args->inputs, "Trace files; each rank must be in exactly one")->required()->check(CLI::ExistingFile);
  merge->add_option("--out,-o", merge_args->out, "The merged trace (written to a temporary name and renamed)")->required();
  merge->callback([merge_args] { run_merge(*merge_args); });

  auto compare_args = std::make_shared<CompareArgs>();
  auto* compare = trace->add_subcommand(
      "compare",
      "Check that two traces of the same config issue the same collectives: on every rank and group, the\n"
      "same operations with the same logical bytes and dtype, in the same order (times and lanes are not\n"
      "compared). Exit 0 when they do, 1 when not, naming the first differences. The simulation-twin check:\n"
      "  twinspeed train --backend sim --cluster local-cpu --world 2 ... --trace sim.json\n"
      "  twinspeed launch --nproc-per-node 2 -- twinspeed train --backend gloo ... --trace real.json\n"
      "  twinspeed trace compare sim.json real.json");
  compare->add_option("FIRST", compare_args->first, "A trace")->required()->check(CLI::ExistingFile);
  compare->add_option("SECOND", compare_args->second, "The trace to compare it with")->required()->check(CLI::ExistingFile);
  compare->add_option("--max-differences", compare_args->max_differences, "Differences to list")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  compare->add_flag("--json", compare_args->json, "Print the comparison as JSON (schema twinspeed.trace-compare/1)");
  compare->callback([compare_args] { run_compare(*compare_args); });
}

}  // namespace twinspeed::cli
