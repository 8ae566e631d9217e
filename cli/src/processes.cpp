// The processes of a data-parallel command (processes.hpp): MPI's rank and world through
// gg::distributed when the build has it (GG_CLI_MPI), one process otherwise.
#include "processes.hpp"

#include <cli/cli.hpp>

#include <csignal>
#include <new>

#include <fmt/format.h>

#include "options.hpp"

#ifdef GG_CLI_MPI
#include <distributed/data_parallel.hpp>
#endif

namespace gg::cli {

Processes processes() {
#ifdef GG_CLI_MPI
  return {distributed::rank(), distributed::world_size()};
#else
  return {};
#endif
}

void check_same_on_every_rank([[maybe_unused]] const std::string& text, [[maybe_unused]] const char* what) {
#ifdef GG_CLI_MPI
  distributed::check_same(text, what);
#endif
}

std::string options_text(const std::vector<std::string>& args, const std::set<std::string>& paths) {
  std::string text;
  bool path_next = false;
  for (const std::string& a : args) {
    const std::string name = a.substr(0, a.find('='));
    text += path_next ? "<path>" : paths.count(name) ? name : a;
    text += '\n';
    path_next = !path_next && paths.count(name) && a.find('=') == std::string::npos;
  }
  return text;
}

void check_batch_splits(std::int64_t batch_size, int world) {
  if (world > 1 && batch_size % world != 0)
    throw UsageError(fmt::format("--batch-size {}: the global batch is split evenly over the {} processes: "
                                 "give a multiple of {}",
                                 batch_size, world, world));
}

std::unique_ptr<train::DataParallel> data_parallel([[maybe_unused]] nn::Module& model) {
#ifdef GG_CLI_MPI
  if (distributed::launched()) return std::make_unique<distributed::DistributedDataParallel>(model);
#endif
  return nullptr;
}

int run_on_every_rank([[maybe_unused]] const char* name, const std::function<int()>& command) {
#ifdef GG_CLI_MPI
  static int argc = 0;
  static char** argv = nullptr;
  static const distributed::Environment environment(argc, argv);
  if (distributed::world_size() > 1) {
    try {
      return command();
    } catch (std::exception& e) {
      distributed::abort_all(fmt::format("{}: {}", name, error_message(e)), exit_code_of(e));
    }
  }
#endif
  return command();
}

InjectFault::InjectFault(const std::string& spec, bool last_rank) : last_(last_rank) {
  if (spec.empty()) return;
  const auto colon = spec.find(':');
  kind_ = spec.substr(0, colon);
  if ((kind_ != "kill" && kind_ != "oom") || colon == std::string::npos)
    throw UsageError(fmt::format("--test-fault '{}': use kill:STEP or oom:STEP", spec));
  step_ = parse_number<std::int64_t>("--test-fault", spec.substr(colon + 1));
}

void InjectFault::on_batch_begin(train::Trainer&, const train::Position& p) {
  if (!last_ || kind_.empty() || p.step != step_) return;
  if (kind_ == "kill") std::raise(SIGKILL);
  throw std::bad_alloc();
}

} // namespace gg::cli
