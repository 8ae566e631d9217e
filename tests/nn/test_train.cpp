// gg::train::Trainer: fit() takes exactly the steps of a hand-written loop, a checkpoint taken
// mid-epoch resumes bit-exact (schedulers and early stopping included), early stopping, clipping,
// non-finite losses and weights, the JSON-lines log and its failures, checkpoints that fall back
// when the disk fails, signals, and the progress output.
#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include <fmt/format.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <sstream>

#include <unistd.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;
namespace optim = gg::optim;
namespace train = gg::train;
using Catch::Matchers::Contains;

namespace {

/// name in this process's folder of the tests' files, removed at exit.
std::string train_path(const std::string& name) {
  static const gg::test::TempDir dir("test_train");
  return dir / name;
}

std::shared_ptr<nn::Sequential> make_model(std::uint64_t seed) {
  nn::manual_seed(seed);
  return std::make_shared<nn::Sequential>(nn::Linear(2, 6), nn::Tanh(), nn::Linear(6, 2));
}

Var ce(const Var& out, const Tensor& y) {
  return nn::cross_entropy(out, y);
}

std::vector<std::vector<double>> weights(const nn::Module& m) {
  std::vector<std::vector<double>> w;
  for (const auto& [name, t] : m.state_dict()) w.push_back(t.to_vector());
  return w;
}

/// Records every step's loss.
struct Losses : train::Callback {
  std::vector<double> values;
  void on_batch_end(train::Trainer&, const train::StepInfo& s) override { values.push_back(s.loss); }
};

/// Asks for a stop before step `at` (as a signal would).
struct StopAt : train::Callback {
  std::int64_t at;
  explicit StopAt(std::int64_t step) : at(step) {}
  void on_batch_begin(train::Trainer& t, const train::Position& p) override {
    if (p.step == at) t.stop();
  }
};

const gg::data::Dataset& moons() {
  static const gg::data::Dataset d = gg::data::two_moons(90, 0.2, 3);
  return d;
}

} // namespace

TEST_CASE("train: fit takes the steps of a hand-written loop, with clipping, bit for bit") {
  const auto& d = moons();
  auto a = make_model(1), b = make_model(1);
  optim::Adam opt_a(a->parameters(), optim::AdamOptions(0.05)),
      opt_b(b->parameters(), optim::AdamOptions(0.05));
  gg::data::DataLoader la(d.x, d.y, {.batch_size = 16, .shuffle = true, .seed = 4}),
      lb(d.x, d.y, {.batch_size = 16, .shuffle = true, .seed = 4});
  std::vector<double> by_hand;
  for (int epoch = 0; epoch < 3; ++epoch)
    for (const gg::data::Batch& batch : la) {
      opt_a.zero_grad();
      const Var loss = ce((*a)(Var::constant(batch.x)), batch.y);
      by_hand.push_back(loss.item());
      loss.backward();
      optim::clip_grad_norm(a->parameters(), 0.5);
      opt_a.step();
    }
  train::Trainer trainer(*b, opt_b, ce, {.epochs = 3, .clip_grad_norm = 0.5});
  trainer.add_metric("accuracy", gg::metrics::accuracy);
  Losses losses;
  train::History history;
  trainer.add_callback(losses).add_callback(history);
  const train::FitResult r = trainer.fit(lb, d.x, d.y);
  CHECK(r.reason == train::StopReason::finished);
  CHECK(r.epochs_run == 3);
  CHECK(r.position.epoch == 4);
  CHECK(r.position.step == 18);
  CHECK(losses.values == by_hand);
  CHECK(weights(*a) == weights(*b));
  // The epoch logs: the training set's loss and accuracy, then the validation set's.
  REQUIRE(r.logs.size() == 4);
  CHECK(r.logs[0].first == "train_loss");
  CHECK(r.logs[1].first == "train_accuracy");
  CHECK(r.logs[2].first == "test_loss");
  CHECK(*train::find(r.logs, "test_loss") == Approx(ce((*a)(Var::constant(d.x)), d.y).item()));
  CHECK(history.epochs() == std::vector<double>{1, 2, 3});
  CHECK(history.series("train_accuracy").size() == 3);
  CHECK(std::isnan(history.series("no_such")[0]));
  // Batched evaluation gives the whole set's numbers.
  train::Trainer batched(*b, opt_b, ce, {.eval_batch_size = 7});
  batched.add_metric("accuracy", gg::metrics::accuracy);
  const train::Logs whole = trainer.evaluate(d.x, d.y), parts = batched.evaluate(d.x, d.y);
  CHECK(parts[0].second == Approx(whole[0].second).epsilon(1e-12));
  CHECK(parts[1].second == whole[1].second);
}

namespace {
/// A run of SGD with momentum, a StepLR schedule and early stopping's counters on the moons.
struct Resumable {
  std::shared_ptr<nn::Sequential> model;
  optim::SGD opt;
  optim::StepLR sched;
  train::EarlyStopping stop;
  train::Trainer trainer;
  Losses losses;
  explicit Resumable(std::uint64_t seed)
      : model(make_model(seed)), opt(model->parameters(), optim::SGDOptions(0.1).momentum(0.9)),
        sched(opt, 2, 0.5), stop({.monitor = "train_loss", .patience = 100}),
        trainer(*model, opt, ce, {.epochs = 5}) {
    trainer.add_scheduler(sched).add_callback(stop).add_callback(losses);
  }
  train::FitResult fit() {
    gg::data::DataLoader loader(moons().x, moons().y, {.batch_size = 20, .shuffle = true, .seed = 9});
    return trainer.fit(loader);
  }
};
} // namespace

TEST_CASE("train: a checkpoint taken mid-epoch resumes bit-exact, schedulers and early stopping included") {
  const std::string path = train_path("resume.safetensors");
  Resumable whole(2);
  whole.fit();
  // Stopped before step 13 (in epoch 3), saved, and resumed by new objects with a fresh loader.
  Resumable part(2);
  StopAt at(13);
  part.trainer.add_callback(at);
  const train::FitResult stopped = part.fit();
  CHECK(stopped.reason == train::StopReason::requested);
  CHECK(stopped.position.epoch == 3);
  CHECK(stopped.position.batch == 3);
  part.trainer.save_checkpoint(path, {{"note", "mine"}});
  Resumable resumed(99); // other initial weights: the checkpoint must replace them
  CHECK(resumed.trainer.load_checkpoint(path).at("note") == "mine");
  CHECK(resumed.trainer.position().step == 13);
  CHECK(resumed.stop.best() == part.stop.best());
  resumed.fit();
  std::vector<double> both = part.losses.values;
  both.insert(both.end(), resumed.losses.values.begin(), resumed.losses.values.end());
  CHECK(both == whole.losses.values);
  CHECK(weights(*resumed.model) == weights(*whole.model));
  CHECK(resumed.opt.lr() == whole.opt.lr());
  CHECK(resumed.sched.last_epoch() == whole.sched.last_epoch());
  CHECK(resumed.stop.best() == whole.stop.best());

  // A checkpoint of another model is refused and changes nothing.
  nn::Sequential other(nn::Linear(2, 3), nn::Tanh(), nn::Linear(3, 2));
  optim::SGD opt4(other.parameters(), optim::SGDOptions(0.1).momentum(0.9));
  train::Trainer t4(other, opt4, ce);
  const auto before = weights(other);
  CHECK_THROWS_AS(t4.load_checkpoint(path), gg::ShapeError);
  CHECK(weights(other) == before);
  CHECK(t4.position().step == 0);
  std::filesystem::remove(path);
}

TEST_CASE("train: early stopping waits `patience` epochs and can restore the best weights") {
  const auto& d = moons();
  auto m = make_model(3);
  // An lr this large makes the loss jump about: it stops improving quickly.
  optim::SGD opt(m->parameters(), optim::SGDOptions(40));
  train::EarlyStopping stop({.monitor = "test_loss", .patience = 2, .restore_best_weights = true});
  train::Trainer t(*m, opt, ce, {.epochs = 200, .check_finite = false});
  train::History h;
  t.add_callback(h).add_callback(stop);
  gg::data::DataLoader loader(d.x, d.y, {.batch_size = 90});
  const train::FitResult r = t.fit(loader, d.x, d.y);
  REQUIRE(r.reason == train::StopReason::early_stopping);
  CHECK(stop.stopped_epoch() == stop.best_epoch() + 2);
  CHECK(r.epochs_run == stop.stopped_epoch());
  // The restored weights give the best epoch's loss.
  CHECK(t.evaluate(d.x, d.y)[0].second == Approx(stop.best()).epsilon(1e-12));
  CHECK_THROWS_AS(train::EarlyStopping({.patience = -1}), gg::ValueError);
  // A monitor the logs do not have is named.
  train::EarlyStopping missing({.monitor = "val_loss"});
  train::Trainer t2(*m, opt, ce);
  t2.add_callback(missing);
  gg::data::DataLoader l2(d.x, d.y, {.batch_size = 90});
  CHECK_THROWS_WITH(t2.fit(l2), Contains("val_loss") && Contains("train_loss"));
}

TEST_CASE("train: a non-finite loss stops training with the epoch and step, before the update") {
  const auto& d = moons();
  auto m = make_model(4);
  optim::SGD opt(m->parameters(), optim::SGDOptions(INFINITY));
  train::Trainer t(*m, opt, ce, {.epochs = 3});
  gg::data::DataLoader loader(d.x, d.y, {.batch_size = 30});
  try {
    t.fit(loader);
    FAIL("no DivergedError");
  } catch (const train::DivergedError& e) {
    CHECK_THAT(e.what(), Contains("the loss is nan at epoch 1, step 2"));
  }
  CHECK(t.position().step == 1);
  CHECK(train::first_non_finite(*m).has_value());
  // Weights that stop being finite without the loss showing it are caught at the epoch end.
  auto relu = std::make_shared<nn::Sequential>(nn::Linear(2, 3), nn::ReLU(), nn::Linear(3, 2));
  optim::SGD o2(relu->parameters(), optim::SGDOptions(0.1));
  train::Trainer t2(*relu, o2, ce, {.epochs = 1});
  struct Poison : train::Callback {
    void on_batch_end(train::Trainer& t, const train::StepInfo&) override {
      t.model().parameters()[0].value().set_flat(0, NAN);
    }
  } poison;
  t2.add_callback(poison);
  gg::data::DataLoader l2(d.x, d.y, {.batch_size = 90});
  CHECK_THROWS_WITH(t2.fit(l2), Contains("'0.weight'") && Contains("end of epoch 1"));
  CHECK(train::first_non_finite(*relu) == std::optional<std::string>("0.weight"));
}

TEST_CASE("train: the JSON-lines log writes steps and epochs, and a failing write never stops training") {
  const auto& d = moons();
  auto m = make_model(5);
  optim::Adam opt(m->parameters(), optim::AdamOptions(0.01));
  std::string text;
  train::JsonLinesLogger log([&](std::string_view line) { text += line; });
  int writes = 0;
  std::string reported;
  train::JsonLinesLogger failing(
      [&](std::string_view) {
        if (++writes == 3) throw gg::IOError("disk full");
      },
      {.on_error = [&](const std::string& e) { reported = e; }});
  train::Trainer t(*m, opt, ce, {.epochs = 2});
  t.add_metric("accuracy", gg::metrics::accuracy).add_callback(log).add_callback(failing);
  gg::data::DataLoader loader(d.x, d.y, {.batch_size = 45});
  CHECK(t.fit(loader).reason == train::StopReason::finished);
  std::istringstream lines(text);
  std::vector<std::string> all;
  for (std::string l; std::getline(lines, l);) all.push_back(l);
  REQUIRE(all.size() == 6);
  CHECK_THAT(all[0], Catch::StartsWith("{\"step\": 1, \"epoch\": 1, \"loss\": "));
  CHECK_THAT(all[2],
             Catch::StartsWith("{\"epoch\": 1, \"train_loss\": ") && Contains("\"train_accuracy\": "));
  CHECK(reported == "disk full");
  CHECK(failing.error() == "disk full");
  CHECK(writes == 3); // nothing written after the failure
  CHECK(train::json_number(NAN) == "\"nan\"");
  CHECK(train::json_number(-INFINITY) == "\"-inf\"");
  CHECK(train::json_number(0.1) == "0.1");
  CHECK(train::json_string("a\"b\\\n") == "\"a\\\"b\\\\\\u000a\"");
}

TEST_CASE("train: a checkpoint that cannot be written where asked goes beside it or to the temp folder") {
  const auto& d = moons();
  auto m = make_model(6);
  optim::SGD opt(m->parameters(), optim::SGDOptions(0.1));
  train::Trainer t(*m, opt, ce);
  gg::data::DataLoader loader(d.x, d.y, {.batch_size = 90});
  t.fit(loader);
  // A folder that does not exist: beside it fails too, the temp folder works.
  const std::string missing = train_path("no_such_dir/ck.safetensors");
  const train::SavedCheckpoint s = train::save_checkpoint_with_fallback(t, missing, {{"k", "v"}});
  CHECK(s.path.rfind(std::filesystem::temp_directory_path().string(), 0) == 0);
  CHECK_THAT(s.path, Contains("gradgraph-rescue-"));
  CHECK_THAT(s.failure, Contains("no_such_dir"));
  auto back = make_model(7);
  optim::SGD opt2(back->parameters(), optim::SGDOptions(0.1));
  train::Trainer t2(*back, opt2, ce);
  CHECK(t2.load_checkpoint(s.path).at("k") == "v");
  CHECK(weights(*back) == weights(*m));
  std::filesystem::remove(s.path);
  // A path that is a folder: the file beside it is written.
  const std::string dir = train_path("folder_target");
  std::filesystem::create_directories(dir);
  const train::SavedCheckpoint beside = train::save_checkpoint_with_fallback(t, dir);
  CHECK_THAT(beside.path,
             Catch::StartsWith((std::filesystem::path(dir).parent_path() / "gradgraph-rescue-").string()));
  std::filesystem::remove(beside.path);
  std::filesystem::remove_all(dir);
  // ModelCheckpoint saves every n epochs at the next epoch's start.
  const std::string every = train_path("every.safetensors");
  train::ModelCheckpoint ck({.path = every, .every_epochs = 2});
  train::Trainer t3(*m, opt, ce, {.epochs = 3});
  t3.add_callback(ck);
  gg::data::DataLoader l3(d.x, d.y, {.batch_size = 45});
  t3.fit(l3);
  CHECK(ck.last().path == every);
  CHECK(gg::safetensors::load(every).metadata.at("gradgraph.epoch") == "3");
  std::filesystem::remove(every);
}

TEST_CASE("train: SIGTERM, SIGHUP and SIGINT stop before the next step, and the handlers are restored") {
  for (int sig : {SIGTERM, SIGHUP, SIGINT}) {
    INFO(sig);
    const auto& d = moons();
    auto m = make_model(8);
    optim::SGD opt(m->parameters(), optim::SGDOptions(0.1));
    train::Trainer t(*m, opt, ce, {.epochs = 4});
    struct Raise : train::Callback {
      int sig;
      void on_batch_end(train::Trainer&, const train::StepInfo& s) override {
        if (s.step == 5) std::raise(sig);
      }
    } raise;
    raise.sig = sig;
    const auto before = std::signal(sig, SIG_IGN);
    {
      train::StopOnSignal on_signal;
      t.add_callback(on_signal).add_callback(raise);
      gg::data::DataLoader loader(d.x, d.y, {.batch_size = 30});
      const train::FitResult r = t.fit(loader);
      CHECK(r.reason == train::StopReason::signal);
      CHECK(r.position.step == 5);
      CHECK(on_signal.signal() == sig);
    }
    CHECK(std::signal(sig, before) == SIG_IGN);
  }
}

TEST_CASE("train: the progress output: a bar on terminals, a line per reported epoch, logs as text") {
  CHECK(train::format_logs({{"train_loss", 0.123456789}, {"train_accuracy", 0.5}, {"test_loss", 2}}) ==
        "train loss 0.123457  accuracy 0.5000  test loss 2");
  const auto& d = moons();
  auto m = make_model(9);
  optim::Adam opt(m->parameters(), optim::AdamOptions(0.01));
  std::ostringstream lines, bar;
  train::ProgressLogger by_line(lines, {.every = 2}),
      with_bar(bar, {.bar = true, .width = 90, .lines = false});
  train::Trainer t(*m, opt, ce, {.epochs = 5});
  t.add_metric("accuracy", gg::metrics::accuracy).add_callback(by_line).add_callback(with_bar);
  gg::data::DataLoader loader(d.x, d.y, {.batch_size = 30});
  t.fit(loader);
  // Epochs 1 (the first), 2, 4 (every 2nd) and 5 (the last).
  CHECK_THAT(lines.str(), Catch::StartsWith("epoch    1  train loss ") && Contains("\nepoch    2  ") &&
                              Contains("\nepoch    4  ") && Contains("\nepoch    5  ") &&
                              !Contains("epoch    3"));
  CHECK_THAT(lines.str(), Contains("samples/s\n"));
  CHECK_THAT(bar.str(), Contains("\repoch 5/5 [") && Contains("3/3  loss ") && Contains("acc "));
  CHECK_THAT(bar.str(), Catch::EndsWith("\r\x1b[K")); // erased at the end
}

TEST_CASE("train: the progress bar's loss and accuracy are means over examples, samples count real batches") {
  // 5 rows in batches of 4 and 1; a model that always predicts class 1 (logits [0, 1]) and never
  // moves (lr 0). The first batch (targets 1, 1, 0, 0) scores 0.5, the second (target 1) 1: over the
  // examples that is 3/5 = 0.6000 (the mean of the batch means, 0.75, is no accuracy 5 rows can have).
  nn::Linear top(1, 2);
  top.load_state_dict({{"weight", Tensor::zeros({2, 1})}, {"bias", Tensor({0.0, 1.0}, {2})}});
  optim::SGD opt(top.parameters(), optim::SGDOptions(0));
  const Tensor x = Tensor::zeros({5, 1}), y({1, 1, 0, 0, 1}, {5});
  std::ostringstream bar;
  train::ProgressLogger progress(bar, {.bar = true, .width = 100, .lines = false});
  train::Trainer t(top, opt, ce, {.epochs = 2});
  t.add_metric("accuracy", gg::metrics::accuracy).add_callback(progress);
  gg::data::DataLoader loader(x, y, {.batch_size = 4});
  t.fit(loader);
  // Cross-entropy of logits [0, 1]: -log σ(1) = 0.3133 for class 1, 1.3133 for class 0; over the
  // examples (3 × 0.3133 + 2 × 1.3133) / 5 = 0.7133 (the batch means' mean would be 0.5633).
  const double right = std::log1p(std::exp(-1.0)), wrong = 1 + right;
  CHECK_THAT(bar.str(), Contains(fmt::format("2/2  loss {:.4f}  acc 0.6000", (3 * right + 2 * wrong) / 5)));
  CHECK_THAT(bar.str(), Contains("1/2  loss") && Contains("acc 0.5000"));
  CHECK(progress.samples() == 10); // 2 epochs of 4 + 1 rows
}

TEST_CASE("train: fingerprint changes with any value, shape or dtype of the data, and only then") {
  Tensor x = Tensor::arange(0, 103).reshape({103, 1}), y = Tensor::zeros({103});
  const std::string base = train::fingerprint({x, y});
  CHECK(base.size() == 16);
  CHECK(train::fingerprint({x.clone(), y.clone()}) == base);
  Tensor changed = x.clone();
  changed.set_flat(101, 7); // in the tail bytes beyond the last 32-byte block
  CHECK(train::fingerprint({changed, y}) != base);
  changed = x.clone();
  changed.set_flat(0, 1e-300);
  CHECK(train::fingerprint({changed, y}) != base);
  CHECK(train::fingerprint({x.reshape({1, 103}), y}) != base);
  CHECK(train::fingerprint({x.to(gg::f32), y}) != base);
  CHECK(train::fingerprint({y, x}) != base);
  CHECK(train::fingerprint({x, y, Tensor()}) != base);
}
