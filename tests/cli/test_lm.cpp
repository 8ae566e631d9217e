// gradgraph lm train and lm sample: a short run that learns and saves a model carrying its vocabulary
// and architecture; stopped as by Ctrl-C and resumed it gives the weights of an uninterrupted run
// (with dropout); sampling reproducible with --seed; each bad input named with its exit code.
#include "cli_test.hpp"

#include "../dot_reader.hpp"
#include "../temp_dir.hpp"

#include <nn/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace {
using gg::cli::test::Result;
using gg::cli::test::run;

const char* const k_names = "emma\nolivia\nava\nisabella\nsophia\ncharlotte\nmia\namelia\nharper\nevelyn\n"
                            "abigail\nemily\nelizabeth\nmila\nella\navery\nsofia\ncamila\naria\nscarlett\n"
                            "victoria\nmadison\nluna\ngrace\nchloe\npenelope\nlayla\nriley\nzoey\nnora\n";

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string prose() {
  std::string s;
  for (int i = 0; i < 12; ++i)
    s += "The quick brown fox jumps over the lazy dog. A stitch in time saves nine. ";
  return s;
}

std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string>& more) {
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

} // namespace

TEST_CASE("lm: train on a word list learns, saves the model with its vocabulary, and sample makes words") {
  gg::test::TempDir dir("lm_words");
  write(dir / "names.txt", k_names);
  const Result r = run({"lm",           "train",
                        "--text",       dir / "names.txt",
                        "--mode",       "words",
                        "--model",      "mlp",
                        "--embedding",  "8",
                        "--hidden",     "32",
                        "--steps",      "60",
                        "--warmup",     "5",
                        "--lr",         "0.01",
                        "--eval-every", "30",
                        "--save",       dir / "m.safetensors",
                        "--log",        dir / "m.jsonl"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::StartsWith("training mlp (MLP(vocab=22, context=10, embedding=8, hidden=32)"));
  CHECK_THAT(r.out, Catch::Contains("(words: 30 words, 22 tokens)"));
  CHECK_THAT(r.out, Catch::Contains("step 30/60  train loss "));
  CHECK_THAT(r.out, Catch::Contains("tokens/s\nsaved "));
  // The loss falls between the two validations.
  const auto loss_at = [&](const std::string& what) {
    return std::stod(r.out.substr(r.out.find(what) + what.size()));
  };
  CHECK(loss_at("step 60/60  train loss ") < loss_at("step 30/60  train loss "));
  CHECK(loss_at("step 60/60  train loss ") < 2.9);
  const auto file = gg::safetensors::load(dir / "m.safetensors");
  CHECK(file.metadata.at("gradgraph.lm.model") == "mlp");
  CHECK(file.metadata.at("gradgraph.lm.mode") == "words");
  CHECK_THAT(file.metadata.at("gradgraph.lm.vocab"), Catch::StartsWith("{\"boundary\":true"));
  std::ifstream log(dir / "m.jsonl");
  std::string first;
  std::getline(log, first);
  CHECK_THAT(first, Catch::StartsWith("{\"step\": 1, \"loss\": "));
  CHECK_THAT(first,
             Catch::EndsWith(", \"world_size\": 1}")); // one process (mpirun's N: distributed/lm.cmake)

  const std::vector<std::string> sample{"lm",      "sample", "--model", dir / "m.safetensors",
                                        "--count", "5",      "--seed",  "3"};
  const Result a = run(sample), b = run(sample), c = run(with(sample, {"--seed", "4"}));
  REQUIRE(a.code == 0);
  CHECK(a.out == b.out);
  CHECK(a.out != c.out);
  CHECK(std::count(a.out.begin(), a.out.end(), '\n') == 5);
  const Result greedy = run(with(sample, {"--top-k", "1"})),
               cold = run(with(sample, {"--temperature", "0.01"}));
  REQUIRE(greedy.code == 0);
  CHECK(cold.out == greedy.out); // temperature near 0 is the most likely character
  const Result prefixed = run(with(sample, {"--prompt", "em"}));
  REQUIRE(prefixed.code == 0);
  CHECK_THAT(prefixed.out, Catch::StartsWith("em"));
}

TEST_CASE("lm: --progress bar redraws a line with the step, the loss, the last validation loss, tokens/s "
          "and the time left") {
  gg::test::TempDir dir("lm_bar");
  write(dir / "names.txt", k_names);
  const std::vector<std::string> args{
      "lm",     "train",   "--text", dir / "names.txt", "--mode", "words",        "--model",
      "bigram", "--steps", "6",      "--warmup",        "1",      "--eval-every", "3"};
  const Result bar = run(with(args, {"--progress", "bar"}));
  INFO(bar.out);
  REQUIRE(bar.code == 0);
  // Step 1 is drawn at once; the validation at step 3 clears the bar, so step 4 is drawn at once too,
  // now with that validation's loss.
  CHECK_THAT(bar.out, Catch::Contains("\rstep 1/6 [") && Catch::Contains("\rstep 4/6 ["));
  const std::string step4 = bar.out.substr(bar.out.find("\rstep 4/6 ["));
  const std::string val3 = bar.out.substr(bar.out.find("step 3/6  train loss "));
  CHECK_THAT(step4.substr(0, step4.find('\x1b')),
             Catch::Contains("] loss ") &&
                 Catch::Contains("  val " + val3.substr(val3.find("val loss ") + 9, 6)) &&
                 Catch::Contains(" tokens/s  ETA "));
  CHECK_THAT(bar.out, Catch::Contains("step 6/6  train loss "));
  // Not a terminal: auto (the default) and lines print the validation lines only.
  for (const std::string mode : {"auto", "lines"}) {
    const Result lines = run(with(args, {"--progress", mode}));
    REQUIRE(lines.code == 0);
    CHECK_THAT(lines.out, !Catch::Contains("\r") && Catch::Contains("step 3/6  train loss "));
  }
  CHECK(run(with(args, {"--progress", "fancy"})).code == gg::cli::usage_error);
}

TEST_CASE("lm: a run stopped as by Ctrl-C and resumed gives exactly the weights of an uninterrupted one") {
  gg::test::TempDir dir("lm_resume");
  write(dir / "text.txt", prose());
  for (const std::string model : {"gpt", "lstm"}) {
    INFO(model);
    const std::vector<std::string> common{"lm",           "train", "--text",       dir / "text.txt",
                                          "--model",      model,   "--embedding",  "8",
                                          "--hidden",     "8",     "--heads",      "2",
                                          "--context",    "12",    "--steps",      "12",
                                          "--warmup",     "3",     "--dropout",    "0.2",
                                          "--seed",       "5",     "--batch-size", "4",
                                          "--eval-every", "4",     "--dtype",      "f64"};
    REQUIRE(run(with(common, {"--save", dir / "whole.safetensors", "--log", dir / "whole.jsonl"})).code == 0);
    const Result stopped = run(with(
        common, {"--checkpoint", dir / "ckpt.safetensors", "--stop-after", "7", "--log", dir / "a.jsonl"}));
    CHECK(stopped.code == gg::cli::interrupted);
    CHECK_THAT(stopped.out, Catch::Contains("stopped after step 7: saved"));
    const Result resumed = run(with(common, {"--resume", dir / "ckpt.safetensors", "--save",
                                             dir / "resumed.safetensors", "--log", dir / "b.jsonl"}));
    INFO(resumed.err);
    REQUIRE(resumed.code == 0);
    CHECK_THAT(resumed.out, Catch::Contains("resuming from " + (dir / "ckpt.safetensors") + ": step 7"));
    const auto a = gg::safetensors::load(dir / "whole.safetensors"),
               b = gg::safetensors::load(dir / "resumed.safetensors");
    REQUIRE(a.tensors.size() == b.tensors.size());
    for (std::size_t i = 0; i < a.tensors.size(); ++i) {
      INFO(a.tensors[i].first);
      CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());
    }
    // The two logs' steps together are the whole run's (validation lines hold timings).
    const auto lines = [](const std::string& path) {
      std::ifstream in(path);
      std::string all, l;
      while (std::getline(in, l))
        if (l.find("\"lr\"") != std::string::npos) all += l + "\n";
      return all;
    };
    CHECK(lines(dir / "a.jsonl") + lines(dir / "b.jsonl") == lines(dir / "whole.jsonl"));
    // Another setting is refused, naming it.
    const Result other = run(with(common, {"--resume", dir / "ckpt.safetensors", "--lr", "0.01"}));
    CHECK(other.code == gg::cli::value_error);
    CHECK_THAT(other.err, Catch::Contains("--lr 0.001 there, 0.01 here"));
  }
  // A checkpoint samples as a model does.
  CHECK(run({"lm", "sample", "--model", dir / "ckpt.safetensors", "--length", "20"}).code == 0);
}

TEST_CASE("lm: bad input is named with what and where, with the command line's exit codes") {
  gg::test::TempDir dir("lm_bad");
  write(dir / "names.txt", k_names);
  write(dir / "text.txt", prose());
  write(dir / "latin1.txt", "caf\xe9 au lait\n");
  const std::string names = dir / "names.txt", text = dir / "text.txt";
  const auto train = [&](const std::vector<std::string>& more) {
    return run(
        with({"lm", "train", "--text", text, "--steps", "2", "--embedding", "8", "--context", "8"}, more));
  };
  const Result latin1 = run({"lm", "train", "--text", dir / "latin1.txt"});
  CHECK(latin1.code == gg::cli::format_error);
  CHECK_THAT(latin1.err, Catch::Contains("latin1.txt: byte 3: not UTF-8"));
  CHECK(run({"lm", "train", "--text", dir / "none.txt"}).code == gg::cli::io_error);
  const Result folder = run({"lm", "train", "--text", dir.path.string()}); // not "the file is empty"
  CHECK(folder.code == gg::cli::io_error);
  CHECK_THAT(folder.err, Catch::Contains("cannot read '" + dir.path.string() + "': Is a directory"));
  write(dir / "nine.txt", "anna\nbob\ncarla\ndave\nemma\nfrank\ngreta\nhugo\niris\n");
  const Result nine = run({"lm", "train", "--text", dir / "nine.txt", "--mode", "words"});
  CHECK(nine.code == gg::cli::value_error);
  CHECK_THAT(nine.err, Catch::Contains("nine.txt: 9 words (one a line); a word list needs at least 10"));
  CHECK(train({"--model", "transformer"}).code == gg::cli::value_error);
  CHECK_THAT(train({"--model", "transformer"}).err, Catch::Contains("model 'transformer': use bigram"));
  CHECK_THAT(train({"--heads", "3"}).err, Catch::Contains("embedding size 8 is not divisible by 3 heads"));
  CHECK(train({"--mode", "lines"}).code == gg::cli::usage_error);
  CHECK(train({"--lr", "0"}).code == gg::cli::value_error);
  CHECK(train({"--warmup", "5"}).code == gg::cli::value_error); // more than --steps
  CHECK(run({"lm", "train", "--text", text, "--steps", "-1"}).code == gg::cli::value_error);
  const Result long_context = run({"lm", "train", "--text", text, "--context", "2000"});
  CHECK(long_context.code == gg::cli::value_error);
  CHECK_THAT(long_context.err, Catch::Contains("fewer than the context"));
  const Result short_context = run({"lm", "train", "--text", names, "--mode", "words", "--context", "5"});
  CHECK(short_context.code == gg::cli::value_error);
  CHECK_THAT(short_context.err, Catch::Contains("the longest word of " + names + " has 9 characters"));
  write(dir / "letters.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
  const Result letters =
      run({"lm", "train", "--text", dir / "letters.txt", "--mode", "words", "--context", "1"});
  CHECK(letters.code == gg::cli::value_error);
  CHECK_THAT(letters.err,
             Catch::Contains("letters.txt has 1 character, so a word with its boundary takes 2"));
  CHECK(train({"--save", text}).code == gg::cli::usage_error);
  const Result huge = run({"lm", "train", "--text", text, "--model", "mlp", "--embedding", "60000",
                           "--hidden", "60000", "--context", "8"});
  CHECK(huge.code == gg::cli::value_error);
  CHECK_THAT(huge.err, Catch::Contains("--model mlp with these sizes has 2.88e+10 parameters"));
  CHECK(run({"lm"}).code == gg::cli::usage_error);
  CHECK(run({"lm", "fit"}).code == gg::cli::usage_error);
  CHECK(run({"lm", "--help"}).code == 0);
  CHECK_THAT(run({"lm", "train", "--help"}).out, Catch::Contains("--context"));
  CHECK_THAT(run({"lm", "train", "--help"}).out, Catch::Contains("mpirun -n 4 gradgraph lm train <options>"));

  // Sampling: a model without a vocabulary, with a different one, of another architecture.
  REQUIRE(train({"--model", "lstm", "--save", dir / "m.safetensors"}).code == 0);
  auto file = gg::safetensors::load(dir / "m.safetensors");
  const auto rewrite = [&](const std::string& key, const std::string& value, const std::string& to) {
    auto meta = file.metadata;
    if (value.empty())
      meta.erase(key);
    else
      meta[key] = value;
    gg::safetensors::save(dir / to, file.tensors, meta);
    return run({"lm", "sample", "--model", dir / to});
  };
  const Result no_vocab = rewrite("gradgraph.lm.vocab", "", "a.safetensors");
  CHECK(no_vocab.code == gg::cli::value_error);
  CHECK_THAT(no_vocab.err, Catch::Contains("it has no vocabulary"));
  const Result other_vocab =
      rewrite("gradgraph.lm.vocab", "{\"boundary\": false, \"tokens\": [\"a\", \"b\"]}", "b.safetensors");
  CHECK(other_vocab.code == gg::cli::value_error);
  CHECK_THAT(other_vocab.err, Catch::Contains("its vocabulary has 2 tokens, but the model is made for"));
  const Result other_model = rewrite("gradgraph.lm.model", "gpt", "c.safetensors");
  CHECK(other_model.code == gg::cli::value_error);
  CHECK_THAT(other_model.err,
             Catch::Contains("\n  missing: token_embedding.weight, position_embedding.weight, "));
  CHECK_THAT(other_model.err,
             Catch::Contains("\n  extra: embedding.weight, head.bias, head.weight, rnn.bias_hh_l0, "));
  // Sizes edited by hand: refused before a model is allocated, naming the file and the sizes.
  for (const auto& [key, value] :
       {std::pair{"embedding", "65536"}, std::pair{"layers", "1000"}, std::pair{"vocab_size", "1114113"}}) {
    INFO(key);
    const Result absurd = rewrite(std::string("gradgraph.lm.") + key, value, "d.safetensors");
    CHECK(absurd.code == gg::cli::value_error);
    CHECK_THAT(absurd.err, Catch::Contains("d.safetensors: ") && Catch::Contains(value));
    if (std::string(key) != "vocab_size") // the vocabulary's size is checked first
      CHECK_THAT(absurd.err, Catch::Contains("numbers: the metadata was edited or the file is damaged"));
  }
  const Result smaller = rewrite("gradgraph.lm.hidden", "4", "e.safetensors");
  CHECK(smaller.code == gg::cli::shape_error);
  CHECK_THAT(smaller.err, Catch::Contains("e.safetensors: load_state_dict: 'rnn.weight_ih_l0' has shape"));
  const Result mlp_file =
      run({"lm", "sample", "--model", GG_TEST_DATA "/../../nn/data/sequential_f64.safetensors"});
  CHECK(mlp_file.code == gg::cli::value_error);
  CHECK_THAT(mlp_file.err, Catch::Contains("not a language model of gradgraph lm"));
  CHECK(run({"lm", "sample", "--model", dir / "missing.safetensors"}).code == gg::cli::io_error);
  const Result prompt = run({"lm", "sample", "--model", dir / "m.safetensors", "--prompt", "Z"});
  CHECK(prompt.code == gg::cli::value_error);
  CHECK_THAT(prompt.err, Catch::Contains("'Z' (U+005A) is not in the model's vocabulary"));
  // A prompt that is not UTF-8: its byte offset, and no word of a file.
  const Result bytes = run({"lm", "sample", "--model", dir / "m.safetensors", "--prompt", "ab\xff"});
  CHECK(bytes.code == gg::cli::value_error);
  CHECK_THAT(bytes.err, Catch::Contains("--prompt: byte 2: not UTF-8 (a byte UTF-8 never uses: 0xff)") &&
                            !Catch::Contains("file"));
  CHECK(run({"lm", "sample", "--model", dir / "m.safetensors", "--temperature", "0"}).code ==
        gg::cli::value_error);
  CHECK(run({"lm", "sample", "--model", dir / "m.safetensors", "--top-k", "-2"}).code ==
        gg::cli::value_error);
}

TEST_CASE("lm: dot draws a transformer block's layers as clusters and an RNN's shared weights fanning out") {
  gg::test::TempDir dir("lm_dot");
  REQUIRE(run({"lm", "dot", "--model", "gpt", "--layers", "2", "-o", dir / "gpt.dot"}).code == 0);
  std::ifstream in(dir / "gpt.dot");
  const std::string gpt((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const gg::test::DotGraph g = gg::test::read_dot(gpt);
  std::vector<std::string> labels;
  for (const auto& c : g.clusters) labels.push_back(c.label.substr(0, c.label.find(':')));
  for (const std::string block : {"blocks/0", "blocks/1"})
    for (const std::string layer :
         {"", "/norm1", "/self_attn", "/self_attn/out_proj", "/norm2", "/linear1", "/linear2"}) {
      INFO(block + layer);
      CHECK(std::count(labels.begin(), labels.end(), block + layer) == 1);
    }
  CHECK(std::count(labels.begin(), labels.end(), "norm") == 1);
  // The tied weight: one node, used by the embedding and by the output layer.
  CHECK(g.out_degree(g.id_of("weight\\nleaf\\nshape [5, 4]")) == 2);

  REQUIRE(run({"lm", "dot", "--model", "rnn", "--context", "4", "--backward", "-o", dir / "rnn.dot"}).code ==
          0);
  std::ifstream rin(dir / "rnn.dot");
  const std::string rnn((std::istreambuf_iterator<char>(rin)), std::istreambuf_iterator<char>());
  const gg::test::DotGraph r = gg::test::read_dot(rnn);
  for (const std::string name : {"weight_ih_l0", "weight_hh_l0"}) {
    INFO(name);
    CHECK(r.out_degree(r.id_of(name + "\\n")) == 4); // one node, an edge to each of the 4 steps
  }
  CHECK(run({"lm", "dot", "--model", "gpt", "--context", "100", "-o", dir / "x.dot"}).code ==
        gg::cli::value_error);
  CHECK(run({"lm", "dot", "--model", "gpt", "--render", "gif", "-o", dir / "x.dot"}).code ==
        gg::cli::usage_error);
}
