// gradgraph lm: a character-level language model (bigram, mlp, rnn, lstm, gru or gpt from
// nn/lm.hpp) trained on any UTF-8 text by optimizer steps on random batches (AdamW, warmup + cosine,
// gradient clipping), with a progress bar, validation every N steps, a JSONL log, checkpoints on
// Ctrl-C that --resume continues exactly, and sampling with temperature and top-k. Started by
// mpirun (a build with MPI), lm train is data-parallel: each process its share of every batch.
#include <cli/cli.hpp>

#include <nn/io/atomic_file.hpp>
#include <nn/lm.hpp>
#include <nn/nn.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "files.hpp"
#include "json.hpp"
#include "model_spec.hpp"
#include "options.hpp"
#include "processes.hpp"

namespace gg::cli {
namespace {
namespace po = boost::program_options;
namespace lm = nn::lm;

struct LmTrainOptions {
  std::string text, mode, model, dtype, save, log, checkpoint, resume, progress, test_fault;
  std::int64_t layers = 2, heads = 4, embedding = 64, hidden = 128, context = 0, batch_size = 32,
               steps = 1000, warmup = 100, eval_every = 100, stop_after = 0;
  double lr = 1e-3, min_lr = -1, weight_decay = 0.01, dropout = 0, clip = 1;
  int threads = 1;
  std::uint64_t seed = 0;
  std::set<std::string> given;
};

/// Settings as (option, value) pairs, in --help's words.
using Record = std::vector<std::pair<std::string, std::string>>;

std::string text(double v) {
  return fmt::format("{}", v);
}

const char* const k_train_usage =
    "usage: gradgraph lm train --text FILE [--mode words] [--model gpt] [options]\n\n"
    "Trains a character-level language model on a UTF-8 text: --mode stream (prose: random windows\n"
    "of --context characters; the first 90% trains, the last 10% validates) or words (one word a\n"
    "line, each between boundary tokens as makemore's names; every 10th word validates, or every\n"
    "ceil(words / 1000)-th: at most 1000). Each step is AdamW on --batch-size sequences, the\n"
    "learning rate rising over --warmup steps, then falling along a cosine to --min-lr at the last\n"
    "step. Ctrl-C saves a checkpoint that --resume continues exactly. The saved model carries its\n"
    "vocabulary and architecture: lm sample needs nothing else.\n\n"
    "Data-parallel training (a build with MPI) runs the same command as N processes, each on its\n"
    "share of every batch, rank 0 printing and writing:\n"
    "  mpirun -n 4 gradgraph lm train <options>                    (one machine)\n"
    "  mpirun -n 16 --hostfile hosts gradgraph lm train <options>  (lines 'node1 slots=8')\n"
    "--batch-size is the global batch: a multiple of N. With --dtype f64 and --dropout 0 the weights\n"
    "are those of one process within 1e-12 relative. As root (a container), Open MPI needs\n"
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 in the environment, and\n"
    "OMPI_MCA_rmaps_base_oversubscribe=1 for more processes than cores (docs/distributed.md).";

bool parse_train(const std::vector<std::string>& args, std::ostream& out, LmTrainOptions& o) {
  po::options_description desc("gradgraph lm train");
  desc.add_options()("help,h", "this help")("text", po::value(&o.text)->required(), "a UTF-8 text file")(
      "mode", po::value(&o.mode)->default_value("stream"),
      "stream (prose) or words (a word list, one a line: a word generator)")(
      "model", po::value(&o.model)->default_value("gpt"),
      "bigram, mlp (Bengio et al. 2003), rnn, lstm, gru or gpt (decoder-only transformer)")(
      "layers", number_value(&o.layers, "--layers")->default_value("2"),
      "recurrent layers or transformer blocks")(
      "heads", number_value(&o.heads, "--heads")->default_value("4"), "attention heads (gpt)")(
      "embedding", number_value(&o.embedding, "--embedding")->default_value("64"),
      "embedding size")("hidden", number_value(&o.hidden, "--hidden")->default_value("128"),
                        "hidden size (mlp, rnn, lstm, gru; gpt's MLP is 4 x embedding)")(
      "context", number_value(&o.context, "--context"),
      "context length: the characters a model sees (stream default 64; words: the longest word + 1, "
      "and no less)")("batch-size", number_value(&o.batch_size, "--batch-size")->default_value("32"),
                      "sequences per step")("steps", number_value(&o.steps, "--steps")->default_value("1000"),
                                            "optimizer steps")(
      "lr", number_value(&o.lr, "--lr")->default_value("0.001"), "peak learning rate (AdamW)")(
      "warmup", number_value(&o.warmup, "--warmup"),
      "steps of linear warmup (at most --steps; default: 100, or --steps / 10 when that is fewer)")(
      "min-lr", number_value(&o.min_lr, "--min-lr"), "learning rate at the last step (default: lr / 10)")(
      "weight-decay", number_value(&o.weight_decay, "--weight-decay")->default_value("0.01"),
      "AdamW's decoupled weight decay")("dropout", number_value(&o.dropout, "--dropout")->default_value("0"),
                                        "dropout probability in training")(
      "clip", number_value(&o.clip, "--clip")->default_value("1"),
      "clip the gradients' norm to this (0: off)")(
      "seed", number_value(&o.seed, "--seed")->default_value("0"),
      "seed of the initial weights, the batches and dropout (0 to 18446744073709551615)")(
      "eval-every", number_value(&o.eval_every, "--eval-every")->default_value("100"),
      "validation loss every N steps (and after the last)")(
      "dtype", po::value(&o.dtype)->default_value("f32"),
      "f32 or f64")("threads", number_value(&o.threads, "--threads")->default_value("1"),
                    "threads for matrix products and large elementwise kernels")(
      "progress", po::value(&o.progress)->default_value("auto"),
      "auto (a progress bar when output is a terminal), bar, or lines (a line per validation)")(
      "save", po::value(&o.save), "write the trained model here (safetensors, with its vocabulary)")(
      "log", po::value(&o.log), "write one JSON line per step and per validation here")(
      "checkpoint", po::value(&o.checkpoint)->default_value("gradgraph-lm-checkpoint.safetensors"),
      "where Ctrl-C, SIGTERM or SIGHUP saves the model, optimizer state and step (then exit code 130, 143, "
      "129)")("resume", po::value(&o.resume),
              "continue exactly where a checkpoint stopped (refused when the text or settings differ)")(
      "stop-after", number_value(&o.stop_after, "--stop-after")->default_value("0"),
      "testing: stop as Ctrl-C would after N steps")(
      "test-fault", po::value(&o.test_fault),
      "testing: the last process is killed (kill:N) or runs out of memory (oom:N) before step N + 1");
  po::variables_map vm;
  if (!parse_or_help(args, desc, k_train_usage, out, vm)) return false;
  for (const auto& [name, value] : vm)
    if (!value.defaulted()) o.given.insert(name);
  if (o.mode != "stream" && o.mode != "words")
    throw UsageError(fmt::format("--mode '{}': use stream or words", o.mode));
  if (o.dtype != "f32" && o.dtype != "f64")
    throw UsageError(fmt::format("--dtype '{}': use f32 or f64", o.dtype));
  if (o.progress != "auto" && o.progress != "bar" && o.progress != "lines")
    throw UsageError(fmt::format("--progress '{}': use auto, bar or lines", o.progress));
  const auto range = [](const char* option, std::int64_t v, std::int64_t lo, std::int64_t hi) {
    if (v < lo || v > hi) throw ValueError(fmt::format("--{} {}: use {} to {}", option, v, lo, hi));
  };
  range("batch-size", o.batch_size, 1, 1'000'000);
  range("steps", o.steps, 1, 100'000'000);
  if (!o.given.count("warmup")) o.warmup = std::min<std::int64_t>(100, o.steps / 10);
  range("warmup", o.warmup, 0, o.steps);
  range("eval-every", o.eval_every, 1, 100'000'000);
  range("threads", o.threads, 1, 1024);
  range("stop-after", o.stop_after, 0, 100'000'000);
  if (o.given.count("context")) range("context", o.context, 1, 65536);
  if (!(o.lr > 0 && std::isfinite(o.lr)))
    throw ValueError(fmt::format("--lr {}: use a positive number", o.lr));
  if (!o.given.count("min-lr")) o.min_lr = o.lr / 10;
  if (!(o.min_lr >= 0 && o.min_lr <= o.lr))
    throw ValueError(fmt::format("--min-lr {}: use 0 to --lr ({})", o.min_lr, o.lr));
  if (!(o.weight_decay >= 0 && std::isfinite(o.weight_decay)))
    throw ValueError(fmt::format("--weight-decay {}: use a finite number >= 0", o.weight_decay));
  if (!(o.clip >= 0 && std::isfinite(o.clip)))
    throw ValueError(fmt::format("--clip {}: use a finite number >= 0", o.clip));
  if (o.checkpoint.empty()) throw UsageError("--checkpoint: give a file name");
  return true;
}

/// Outputs on one file, or an output on the text, are refused before any work.
void check_paths(const LmTrainOptions& o) {
  PathList outputs{{"--checkpoint", o.checkpoint}}, inputs{{"--text", o.text}};
  if (!o.save.empty()) outputs.emplace_back("--save", o.save);
  if (!o.log.empty()) outputs.emplace_back("--log", o.log);
  if (!o.resume.empty()) inputs.emplace_back("--resume", o.resume);
  cli::check_paths(outputs, inputs);
}

/// What a checkpoint must agree on to be resumed.
Record run_record(const LmTrainOptions& o, const lm::Config& c, const lm::Corpus& corpus) {
  return {{"mode", o.mode},
          {"model", c.model},
          {"layers", std::to_string(c.layers)},
          {"heads", std::to_string(c.heads)},
          {"embedding", std::to_string(c.embedding)},
          {"hidden", std::to_string(c.hidden)},
          {"context", std::to_string(c.context)},
          {"batch-size", std::to_string(o.batch_size)},
          {"steps", std::to_string(o.steps)},
          {"lr", text(o.lr)},
          {"warmup", std::to_string(o.warmup)},
          {"min-lr", text(o.min_lr)},
          {"weight-decay", text(o.weight_decay)},
          {"dropout", text(o.dropout)},
          {"clip", text(o.clip)},
          {"seed", std::to_string(o.seed)},
          {"dtype", o.dtype},
          {"text contents", corpus.fingerprint}};
}

/// Refuses a checkpoint of another run, naming every difference.
void check_resume(const std::string& path, const std::map<std::string, std::string>& meta,
                  const Record& mine) {
  if (!meta.count("gradgraph.lm-run.seed"))
    throw ValueError(fmt::format("--resume {}: not a checkpoint of gradgraph lm train (it records no run to "
                                 "compare with)",
                                 path));
  std::string diffs;
  for (const auto& [name, value] : mine) {
    const auto it = meta.find("gradgraph.lm-run." + name);
    const std::string there = it == meta.end() ? "(none)" : it->second;
    if (there == value) continue;
    diffs += fmt::format("{}{}", diffs.empty() ? "" : "; ",
                         name == "text contents" ? "the text's contents differ"
                                                 : fmt::format("--{} {} there, {} here", name, there, value));
  }
  if (!diffs.empty())
    throw ValueError(
        fmt::format("--resume {}: it was made by a run with another text or settings: {}", path, diffs));
}

/// A step's seed: batches and dropout masks depend on (seed, step) only, so a resumed run draws
/// what the uninterrupted one drew.
std::uint64_t step_seed(std::uint64_t seed, std::int64_t step, std::uint64_t stream) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (static_cast<std::uint64_t>(step) * 2 + stream + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::string rate(double tokens_per_second) {
  return tokens_per_second >= 1e6   ? fmt::format("{:.1f}M", tokens_per_second / 1e6)
         : tokens_per_second >= 1e3 ? fmt::format("{:.1f}k", tokens_per_second / 1e3)
                                    : fmt::format("{:.0f}", tokens_per_second);
}

/// The bar's line: "step  120/1000 [=====>    ] loss 2.3456  val 2.4012  12.3k tokens/s  ETA 1m23s".
std::string step_line(std::int64_t step, std::int64_t steps, double loss, double val, double speed,
                      double eta, int width) {
  const int digits = static_cast<int>(std::to_string(steps).size());
  const std::string head = fmt::format("step {:>{}}/{} ", step, digits, steps);
  std::string tail = fmt::format(" loss {:.4f}", loss);
  if (val >= 0) tail += fmt::format("  val {:.4f}", val);
  tail += fmt::format("  {} tokens/s  ETA {}", rate(speed), train::format_duration(eta));
  const int cells = std::max(10, width - 1 - static_cast<int>(head.size() + tail.size()) - 2);
  return head + train::format_bar(static_cast<double>(step) / static_cast<double>(steps), cells) + tail;
}

std::string json_line(const train::Logs& fields) {
  json::Value line = json::Value::object();
  for (const auto& [name, value] : fields) json::append(line, name, value);
  return json::dump(line);
}

/// The targets of a batch that count (words are padded with ignored ones, -1).
std::int64_t targets_of(const Tensor& y) {
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) n += y.flat(i) != -1;
  return n;
}

/// Data-parallel: the validation batches this process evaluates (every N-th from its rank) and the
/// mean loss over all of them, each process's share weighted by its targets.
class SharedValidation {
public:
  SharedValidation(const std::vector<lm::Batch>& all, const Processes& ranks) {
    for (std::size_t k = static_cast<std::size_t>(ranks.rank); k < all.size();
         k += static_cast<std::size_t>(ranks.world)) {
      mine_.push_back(all[k]);
      targets_ += targets_of(all[k].y);
    }
  }
  double evaluate(lm::LanguageModel& model, train::DataParallel* parallel) const {
    const double mean = lm::evaluate(model, mine_);
    if (!parallel) return mean;
    std::vector<double> sums{mean * static_cast<double>(targets_), static_cast<double>(targets_)};
    parallel->all_reduce_sum(sums);
    return sums[1] > 0 ? sums[0] / sums[1] : 0;
  }

private:
  std::vector<lm::Batch> mine_;
  std::int64_t targets_ = 0;
};

int run_lm_train(const std::vector<std::string>& args, std::ostream& any_out, std::ostream& err) {
  // Data-parallel: rank 0 prints, logs and saves; the others write nothing but errors.
  const Processes ranks = processes();
  std::ostream no_out(nullptr);
  std::ostream& out = ranks.rank == 0 ? any_out : no_out;
  const bool writer = ranks.rank == 0;
  LmTrainOptions o;
  if (!parse_train(args, out, o)) return ok;
  check_same_on_every_rank(options_text(args, {"--text", "--save", "--log", "--checkpoint", "--resume"}),
                           "options (the command lines differ)");
  check_batch_splits(o.batch_size, ranks.world);
  const struct RestoreThreads {
    int n = kernel::num_threads();
    ~RestoreThreads() { kernel::set_num_threads(n); }
  } restore_threads;
  kernel::set_num_threads(o.threads);
  check_paths(o);
  const DType dtype = o.dtype == "f32" ? f32 : f64;
  const lm::Corpus corpus =
      lm::read_corpus(o.text, o.mode == "words" ? lm::Corpus::Mode::words : lm::Corpus::Mode::stream);
  lm::Config c{.model = o.model,
               .vocab_size = corpus.vocab.size(),
               .context = o.given.count("context") ? o.context : 64,
               .embedding = o.embedding,
               .hidden = o.hidden,
               .layers = o.layers,
               .heads = o.heads,
               .dropout = o.dropout,
               .dtype = dtype};
  if (corpus.mode == lm::Corpus::Mode::words) {
    const std::int64_t need = corpus.longest_word + 1;
    if (o.given.count("context") && o.context < need)
      throw ValueError(fmt::format(
          "--context {}: the longest word of {} has {}, so a word with its boundary takes {}: give "
          "--context {} or more",
          o.context, o.text, lm::count_of(static_cast<std::size_t>(corpus.longest_word), "character"), need,
          need));
    if (!o.given.count("context")) c.context = need;
  }
  lm::check(c);
  if (const double n = lm::parameter_count(c); n > static_cast<double>(max_parameters))
    throw ValueError(
        fmt::format("--model {} with these sizes has {:.3g} parameters, more than this tool builds "
                    "({}): give a smaller --embedding, --hidden, --layers or --context",
                    c.model, n, max_parameters));
  check_same_on_every_rank(corpus.fingerprint, "text (its contents differ)");
  const SharedValidation validation(lm::validation_batches(corpus, o.batch_size, c.context, dtype), ranks);
  {
    gg::Rng probe(0);
    lm::sample_batch(corpus, 1, c.context, probe, dtype); // a training part shorter than the context
  }
  nn::manual_seed(o.seed);
  const std::shared_ptr<lm::LanguageModel> model = lm::make_model(c);
  optim::AdamW opt(model->parameters(), optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  lm::WarmupCosineLR schedule(opt, o.warmup, o.steps, o.min_lr);
  // Started by mpirun: rank 0's weights everywhere, gradients averaged over the processes (each
  // process's weighted by its targets: words are padded with ignored ones).
  const std::unique_ptr<train::DataParallel> parallel = data_parallel(*model);
  train::Trainer trainer(*model, opt, [](const Var& logits, const Tensor& y) { return lm::loss(logits, y); },
                         {.epochs = 1, .clip_grad_norm = o.clip, .loss_weight = targets_of});
  trainer.add_scheduler(schedule, train::SchedulerInterval::step);
  if (parallel) trainer.set_data_parallel(*parallel);

  if (!o.save.empty() && writer) AtomicFile probe(o.save);
  if (o.given.count("checkpoint") && writer) AtomicFile probe(o.checkpoint);
  std::optional<AtomicFile> log;
  if (!o.log.empty() && writer) log.emplace(o.log, /*keep_unfinished=*/true);

  const Record record = run_record(o, c, corpus);
  std::map<std::string, std::string> checkpoint_meta = lm::to_metadata(c);
  for (const auto& [name, value] : record) checkpoint_meta["gradgraph.lm-run." + name] = value;
  checkpoint_meta["gradgraph.lm.vocab"] = corpus.vocab.to_json();
  checkpoint_meta["gradgraph.lm.mode"] = o.mode;

  const std::int64_t chars = static_cast<std::int64_t>(
      corpus.mode == lm::Corpus::Mode::words ? corpus.train_words.size() + corpus.val_words.size()
                                             : corpus.train_stream.size() + corpus.val_stream.size());
  fmt::print(out,
             "training {} ({}; {} parameters) on {} ({}: {} {}, {} tokens), {} steps of {} sequences of {}, "
             "AdamW lr {} (warmup {}, cosine to {})\n",
             c.model, model->describe(), nn::parameter_count(*model), o.text, o.mode, chars,
             o.mode == "words" ? "words" : "characters", corpus.vocab.size(), o.steps, o.batch_size,
             lm::sequence_length(corpus, c.context), o.lr, o.warmup, o.min_lr);
  if (ranks.world > 1)
    fmt::print(out, "data-parallel: {} processes, each {} sequences of every batch of {}\n", ranks.world,
               o.batch_size / ranks.world, o.batch_size);
  if (!o.resume.empty()) {
    const safetensors::File file = safetensors::load(o.resume);
    std::vector<Tensor> contents;
    for (const auto& [name, t] : file.tensors) contents.push_back(t);
    check_same_on_every_rank(train::fingerprint(contents), "--resume checkpoints (their contents differ)");
    check_resume(o.resume, file.metadata, record);
    trainer.load_checkpoint(file);
    fmt::print(out, "resuming from {}: step {}\n", o.resume, trainer.position().step);
  }

  train::StopOnSignal interrupt;
  InjectFault fault(o.test_fault, ranks.rank == ranks.world - 1);
  const bool bar_on =
      o.progress == "bar" || (o.progress == "auto" && &out == &std::cout && train::stdout_is_terminal());
  train::ProgressBar bar(out, bar_on, bar_on ? train::terminal_width() : 80);
  double last_val = -1;
  std::string log_error;
  const auto write_log = [&](const train::Logs& fields) {
    if (!log || !log_error.empty()) return;
    try {
      train::Logs line = fields; // how the run was made: 1 process, or mpirun's N
      line.emplace_back("world_size", ranks.world);
      log->write(json_line(line) + "\n");
    } catch (const IOError& e) {
      log_error = e.what();
      bar.clear();
      fmt::print(err, "gradgraph lm train: --log {}: {}; training goes on without the log\n", o.log,
                 e.what());
    }
  };
  double seconds = 0; // of training steps (validation not counted)
  const std::int64_t first = trainer.position().step;
  std::int64_t tokens = 0;
  double loss_sum = 0;
  std::int64_t loss_count = 0;
  bool stopped = false;
  for (std::int64_t step = first; step < o.steps; ++step) {
    interrupt.on_batch_begin(trainer, trainer.position()); // a signal asks the trainer to stop
    if (o.stop_after > 0 && step == o.stop_after) trainer.stop(train::StopReason::signal);
    if (trainer.agree_on_stop()) { // data-parallel: every process stops at the same step
      stopped = true;
      break;
    }
    fault.on_batch_begin(trainer, trainer.position());
    const auto step_start = std::chrono::steady_clock::now();
    // Every process draws the whole batch (the same seed) and takes its rows; its dropout masks
    // are its own (rank 0's those of one process), so only --dropout 0 gives one process's numbers.
    gg::Rng rng(step_seed(o.seed, step, 0));
    const lm::Batch b = lm::sample_batch(corpus, o.batch_size, c.context, rng, dtype);
    const auto [first_row, last_row] = train::shard_rows(o.batch_size, ranks.rank, ranks.world);
    model->seed_dropout(step_seed(o.seed, step, 1) +
                        static_cast<std::uint64_t>(ranks.rank) * 0xD1B54A32D192ED03ull);
    const double lr = opt.lr();
    double loss = 0;
    try {
      loss = ranks.world == 1 ? trainer.train_step(b.x, b.y)
                              : trainer.train_step(kernel::slice(b.x, 0, first_row, last_row),
                                                   kernel::slice(b.y, 0, first_row, last_row));
    } catch (const train::DivergedError& e) {
      bar.clear();
      if (writer) fmt::print(err, "gradgraph lm train: {}; nothing was saved as a model\n", e.what());
      return diverged;
    }
    tokens += targets_of(b.y);
    loss_sum += loss, ++loss_count;
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
    const double speed = seconds > 0 ? static_cast<double>(tokens) / seconds : 0;
    write_log({{"step", static_cast<double>(step + 1)}, {"loss", loss}, {"lr", lr}});
    const bool report = (step + 1) % o.eval_every == 0 || step + 1 == o.steps;
    if (!report && bar.enabled())
      bar.draw(
          step_line(step + 1, o.steps, loss_sum / static_cast<double>(loss_count), last_val, speed,
                    seconds / static_cast<double>(step + 1 - first) * static_cast<double>(o.steps - step - 1),
                    bar.width()));
    if (report) {
      const double val = validation.evaluate(*model, parallel.get()),
                   train_loss = loss_sum / static_cast<double>(loss_count);
      bar.clear();
      fmt::print(out, "step {:>{}}/{}  train loss {:.4f}  val loss {:.4f}  lr {:.3g}  {} tokens/s\n",
                 step + 1, std::to_string(o.steps).size(), o.steps, train_loss, val, lr, rate(speed));
      write_log({{"step", static_cast<double>(step + 1)},
                 {"train_loss", train_loss},
                 {"val_loss", val},
                 {"tokens_per_second", speed}});
      loss_sum = 0, loss_count = 0, last_val = val;
    }
  }
  bar.clear();
  int code = ok;
  std::vector<std::string> failures;
  if (stopped) {
    const train::SavedCheckpoint s =
        train::save_checkpoint_with_fallback(trainer, o.checkpoint, checkpoint_meta);
    if (!s.failure.empty()) failures.push_back(s.failure);
    fmt::print(out, "stopped after step {}: saved {} (continue with --resume {})\n", trainer.position().step,
               s.path, s.path);
    code = interrupt.signal() != 0 ? 128 + interrupt.signal() : interrupted;
  } else if (!o.save.empty() && writer) {
    try {
      lm::save(*model, corpus.vocab, corpus.mode, o.save);
      fmt::print(out, "saved {}\n", o.save);
    } catch (const IOError& e) {
      const train::SavedCheckpoint s =
          train::save_checkpoint_with_fallback(trainer, o.save + ".checkpoint.safetensors", checkpoint_meta);
      fmt::print(
          err,
          "gradgraph lm train: {}\ngradgraph lm train: the trained model is saved as a checkpoint in {} "
          "instead (lm sample reads it)\n",
          e.what(), s.path);
      code = io_error;
    }
  }
  if (log && log_error.empty()) {
    try {
      log->commit();
    } catch (const IOError& e) {
      failures.emplace_back(e.what());
    }
  } else if (!log_error.empty()) {
    failures.push_back(fmt::format("--log {}: {}", o.log, log_error));
  }
  for (const std::string& f : failures) fmt::print(err, "gradgraph lm train: {}\n", f);
  if (!failures.empty() && code == ok) code = io_error;
  return code;
}

struct LmSampleOptions {
  std::string model, prompt;
  std::int64_t count = 10, length = 0, top_k = 0;
  double temperature = 1;
  std::uint64_t seed = 0;
  std::set<std::string> given;
};

int run_lm_sample(const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
  LmSampleOptions o;
  po::options_description desc("gradgraph lm sample");
  desc.add_options()("help,h", "this help")("model", po::value(&o.model)->required(),
                                            "a model lm train saved (or its checkpoint)")(
      "count", number_value(&o.count, "--count")->default_value("10"),
      "words to make (a word list's model; each on its own line)")(
      "length", number_value(&o.length, "--length"),
      "characters to write (a stream's model; default 500); for words, the longest a word may be (default: "
      "the context)")(
      "prompt", po::value(&o.prompt),
      "text the sample continues (a stream's model; default: a newline, or the first token), or "
      "the start of every word")(
      "temperature", number_value(&o.temperature, "--temperature")->default_value("1"),
      "divide the logits by this: below 1 more likely characters, above 1 more surprising ones")(
      "top-k", number_value(&o.top_k, "--top-k")->default_value("0"),
      "draw among the k most likely only (0: all)")("seed",
                                                    number_value(&o.seed, "--seed")->default_value("0"),
                                                    "seed of the draws: the same seed, the same text");
  po::variables_map vm;
  if (!parse_or_help(args, desc,
                     "usage: gradgraph lm sample --model FILE [--count N | --length N] [--temperature T] "
                     "[--top-k K] [--seed S]\n\n"
                     "Writes text drawn from a model lm train saved: words from a word list's model, one a\n"
                     "line, or a continuation of --prompt from a stream's model.",
                     out, vm))
    return ok;
  for (const auto& [name, value] : vm)
    if (!value.defaulted()) o.given.insert(name);
  if (!(o.temperature > 0 && std::isfinite(o.temperature)))
    throw ValueError(fmt::format("--temperature {}: use a positive number", o.temperature));
  if (o.top_k < 0) throw ValueError(fmt::format("--top-k {}: use 0 (all) or more", o.top_k));
  if (o.count < 1 || o.count > 1'000'000)
    throw ValueError(fmt::format("--count {}: use 1 to 1000000", o.count));
  if (o.given.count("length") && (o.length < 1 || o.length > 10'000'000))
    throw ValueError(fmt::format("--length {}: use 1 to 10000000", o.length));
  try {
    lm::utf8_characters(o.prompt, "--prompt"); // with its byte offset, before the model is read
  } catch (const FormatError& e) {
    throw ValueError(e.what());
  }
  lm::Saved saved = lm::load(o.model);
  const lm::Config& c = saved.model->config();
  if (o.top_k > c.vocab_size)
    throw ValueError(fmt::format("--top-k {}: the model has {} tokens", o.top_k, c.vocab_size));
  std::vector<std::int64_t> prompt;
  if (!o.prompt.empty()) {
    try {
      prompt = saved.vocab.encode(o.prompt);
    } catch (const Error& e) {
      throw ValueError(fmt::format("--prompt: {} ({})", e.what(), o.model));
    }
  }
  gg::Rng rng(o.seed);
  lm::SampleOptions s{.temperature = o.temperature, .top_k = o.top_k};
  if (saved.mode == lm::Corpus::Mode::words) {
    s.stop_at_boundary = true;
    s.length = o.given.count("length") ? o.length : c.context;
    for (std::int64_t i = 0; i < o.count; ++i) {
      std::vector<std::int64_t> start{0};
      start.insert(start.end(), prompt.begin(), prompt.end());
      fmt::print(out, "{}{}\n", o.prompt, saved.vocab.decode(lm::sample(*saved.model, start, s, rng)));
    }
    return ok;
  }
  s.length = o.given.count("length") ? o.length : 500;
  if (prompt.empty()) {
    const std::int64_t newline = saved.vocab.find("\n");
    prompt.push_back(newline >= 0 ? newline : 0);
  } else {
    fmt::print(out, "{}", o.prompt);
  }
  fmt::print(out, "{}\n", saved.vocab.decode(lm::sample(*saved.model, prompt, s, rng)));
  return ok;
}

int run_lm_dot(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  lm::Config c{.model = "gpt",
               .vocab_size = 5,
               .context = 3,
               .embedding = 4,
               .hidden = 4,
               .layers = 1,
               .heads = 2,
               .dtype = f64,
               .unrolled = true}; // a recurrent layer drawn step by step
  std::string path, format, rankdir;
  bool backward = false;
  int entries = DotOptions{}.max_entries;
  std::uint64_t seed = 0;
  po::options_description desc("gradgraph lm dot");
  desc.add_options()("help,h", "this help")("model", po::value(&c.model)->default_value("gpt"),
                                            "bigram, mlp, rnn, lstm, gru or gpt")(
      "layers", number_value(&c.layers, "--layers")->default_value("1"),
      "recurrent layers or transformer blocks")(
      "heads", number_value(&c.heads, "--heads")->default_value("2"), "attention heads (gpt)")(
      "embedding", number_value(&c.embedding, "--embedding")->default_value("4"), "embedding size")(
      "hidden", number_value(&c.hidden, "--hidden")->default_value("4"), "hidden size (mlp, rnn, lstm, gru)")(
      "context", number_value(&c.context, "--context")->default_value("3"),
      "the input's length: the steps an RNN is unrolled over")(
      "vocab", number_value(&c.vocab_size, "--vocab")->default_value("5"), "tokens in the vocabulary")(
      "seed", number_value(&seed, "--seed")->default_value("0"),
      "seed of the weights")("output,o", po::value(&path)->required(), "the DOT file to write")(
      "backward", po::bool_switch(&backward),
      "also run backward (the loss of predicting each next token) and show gradients: a shared weight's "
      "gradient is the sum over the steps that use it")("render", po::value(&format),
                                                        "also run Graphviz: svg or png (at most 2000 nodes)")(
      "rankdir", po::value(&rankdir)->default_value("LR"), "layout: LR or TB")(
      "entries", number_value(&entries, "--entries")->default_value(std::to_string(entries)),
      "tensor entries shown in each node before \"…\" (0 to 1000)");
  po::variables_map vm;
  if (!parse_or_help(args, desc,
                     "usage: gradgraph lm dot --model gpt -o gpt.dot [--render svg] [--backward]\n\n"
                     "Draws a small language model's graph for the tokens 0, 1, ..., context - 1: each\n"
                     "module a cluster (a GPT block's norms, attention and MLP; an RNN's steps, its shared\n"
                     "weights one node each with an edge to every step).",
                     out, vm))
    return ok;
  if (!format.empty() && format != "svg" && format != "png")
    throw UsageError(fmt::format("--render '{}': use svg or png", format));
  check_rankdir(rankdir);
  if (entries < 0 || entries > 1000) throw UsageError(fmt::format("--entries {}: give 0 to 1000", entries));
  if (c.context > 64 || c.embedding > 256 || c.hidden > 256 || c.layers > 16 || c.vocab_size > 256)
    throw ValueError("lm dot draws small models: --context up to 64, --embedding and --hidden up to 256, "
                     "--layers up to 16, --vocab up to 256");
  nn::manual_seed(seed);
  const std::shared_ptr<lm::LanguageModel> model = lm::make_model(c);
  model->eval();
  Tensor x = Tensor::empty({1, c.context}), y = Tensor::empty({1, c.context});
  for (std::int64_t i = 0; i < c.context; ++i)
    x.set_flat(i, static_cast<double>(i % c.vocab_size)),
        y.set_flat(i, static_cast<double>((i + 1) % c.vocab_size));
  Var root = (*model)(Var::constant(x).name("tokens")).name("logits");
  if (backward) {
    root = lm::loss(root, y).name("loss");
    root.backward();
  }
  check_render_size(format, graph_stats(root).nodes);
  std::ostringstream dot;
  write_dot(dot, root, DotOptions{.rankdir = rankdir, .show_grad = backward, .max_entries = entries});
  fmt::print(out, "{}\n", save_graph("lm dot", path, dot.str(), format, err));
  return ok;
}

} // namespace

int run_lm(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  const std::string usage =
      "usage: gradgraph lm train --text FILE [options]   train a character-level language model\n"
      "       gradgraph lm sample --model FILE [options]  write text drawn from it\n"
      "       gradgraph lm dot --model gpt -o FILE        draw a small model's graph\n"
      "(gradgraph lm train --help, ... for their options)\n";
  if (args.empty()) throw UsageError("give a subcommand: train, sample or dot\n" + usage);
  if (args[0] == "--help" || args[0] == "-h") {
    fmt::print(out, "{}", usage);
    return ok;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "train")
    return run_on_every_rank("gradgraph lm train", [&] { return run_lm_train(rest, out, err); });
  if (args[0] == "sample") return run_lm_sample(rest, out, err);
  if (args[0] == "dot") return run_lm_dot(rest, out, err);
  throw UsageError(fmt::format("unknown subcommand '{}': use train, sample or dot", args[0]));
}

} // namespace gg::cli
