// The character-level language models of nn/lm.hpp: shapes, causality (no position sees a later
// token), a few AdamW steps lowering the loss, the GPT's tied output layer (one Var whose gradient is
// the total derivative), the loss's ignored targets, the text reader (UTF-8 errors with their byte),
// the batches, the warmup + cosine schedule and reproducible sampling.
#include <nn/lm.hpp>
#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>

using gg::Tensor;
using gg::Var;
namespace lm = gg::nn::lm;

namespace {

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double d = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) d = std::max(d, std::abs(a.flat(i) - b.flat(i)));
  return d;
}

const char* const k_words = "emma\nolivia\nava\nisabella\nsophia\ncharlotte\nmia\namelia\nharper\nevelyn\n"
                            "abigail\nemily\nelizabeth\nmila\nella\navery\nsofia\ncamila\naria\nscarlett\n";

lm::Config config(const std::string& model, std::int64_t vocab, gg::DType dtype = gg::f64) {
  return {.model = model,
          .vocab_size = vocab,
          .context = 8,
          .embedding = 8,
          .hidden = 12,
          .layers = 2,
          .heads = 2,
          .dropout = 0,
          .dtype = dtype};
}

const std::vector<std::string> k_models{"bigram", "mlp", "rnn", "lstm", "gru", "gpt"};

Tensor tokens(const std::vector<double>& values, std::int64_t rows, gg::DType dtype = gg::f64) {
  return Tensor(values, {rows, static_cast<std::int64_t>(values.size()) / rows}, dtype);
}

} // namespace

TEST_CASE(
    "lm: every model maps [B, T] token indices to [B, T, V] logits and no position sees a later token") {
  for (const std::string& name : k_models) {
    INFO(name);
    gg::nn::manual_seed(1);
    auto model = lm::make_model(config(name, 7));
    const Tensor a = tokens({1, 2, 3, 4, 5, 0, 6, 2, 2, 1}, 2);
    const Tensor logits = (*model)(Var::constant(a)).value();
    CHECK(logits.shape() == gg::Shape({2, 5, 7}));
    // Changing token 3 of row 0 leaves positions 0..2 alone and changes position 3.
    Tensor b = a.clone();
    b.set_flat(3, 6);
    const Tensor other = (*model)(Var::constant(b)).value();
    for (std::int64_t t = 0; t < 5; ++t) {
      double diff = 0;
      for (std::int64_t v = 0; v < 7; ++v)
        diff = std::max(diff, std::abs(logits.flat(t * 7 + v) - other.flat(t * 7 + v)));
      if (t < 3) CHECK(diff == 0);
      if (t == 3) CHECK(diff > 0);
    }
    // Row 1 is untouched by row 0's change.
    for (std::int64_t i = 35; i < 70; ++i) CHECK(logits.flat(i) == other.flat(i));
  }
}

TEST_CASE("lm: a few AdamW steps on a word list lower every model's loss") {
  const lm::Corpus corpus = lm::parse_corpus(k_words, lm::Corpus::Mode::words, "names");
  for (const std::string& name : k_models) {
    INFO(name);
    gg::nn::manual_seed(3);
    lm::Config c = config(name, corpus.vocab.size(), gg::f32);
    c.context = lm::sequence_length(corpus, 0);
    auto model = lm::make_model(c);
    // The bigram's N(0, 1) table starts far from the answer: a larger step.
    gg::optim::AdamW opt(model->parameters(), gg::optim::AdamWOptions(name == "bigram" ? 0.1 : 0.01));
    gg::Rng rng(5);
    const lm::Batch batch = lm::sample_batch(corpus, 8, c.context, rng, gg::f32);
    double first = 0, last = 0;
    for (int step = 0; step < 25; ++step) {
      opt.zero_grad();
      const Var l = lm::loss((*model)(Var::constant(batch.x)), batch.y);
      (step == 0 ? first : last) = l.item();
      l.backward();
      opt.step();
    }
    CHECK(last < 0.8 * first);
  }
}

TEST_CASE("lm: the GPT's output layer is its token embedding: one Var, its gradient the total derivative") {
  gg::nn::manual_seed(2);
  lm::GPT gpt(config("gpt", 6));
  std::int64_t embeddings = 0;
  for (const auto& [name, p] : gpt.named_parameters()) {
    CHECK(name.find("head") == std::string::npos);
    embeddings += p.shape() == gg::Shape({6, 8});
  }
  CHECK(embeddings == 1); // the [V, E] matrix is one parameter
  // 2 embeddings, 2 blocks of (2 norms, attention, MLP), the final norm; no output matrix.
  const std::int64_t block = 2 * 16 + (3 * 64 + 24 + 64 + 8) + (8 * 32 + 32 + 32 * 8 + 8);
  CHECK(gg::nn::parameter_count(gpt) == 6 * 8 + 8 * 8 + 2 * block + 16);

  const Tensor x = tokens({1, 2, 3, 4, 0, 5}, 2), y = tokens({2, 3, 4, 0, 5, 1}, 2);
  Var w = gpt.token_embedding->weight;
  const auto loss_now = [&] { return lm::loss(gpt(Var::constant(x)), y).item(); };
  lm::loss(gpt(Var::constant(x)), y).backward();
  const Tensor g = w.grad();
  // Central differences over entries of used and unused rows: the embedding's use and the output
  // layer's use both count.
  for (std::int64_t i : {0, 9, 17, 26, 41, 47}) {
    Tensor v = w.value();
    const double keep = v.flat(i), h = 1e-6;
    v.set_flat(i, keep + h);
    w.set_value(v);
    const double up = loss_now();
    v.set_flat(i, keep - h);
    w.set_value(v);
    const double down = loss_now();
    v.set_flat(i, keep);
    w.set_value(v);
    INFO("entry " << i);
    CHECK(g.flat(i) == Approx((up - down) / (2 * h)).epsilon(1e-6).margin(1e-9));
  }
  // Row 0 (token 0 is an input and a target) has both uses; row 5's input use is only the last input.
  CHECK(std::abs(g.flat(0)) > 0);
}

TEST_CASE("lm: the loss skips targets of -1 and averages over the others, as ignore_index") {
  const Tensor logits_v = Tensor({0.1, 0.7, -0.3, 1.2, 0.0, 0.5, -1.0, 0.2, 0.3, 0.9, 0.4, -0.6}, {1, 4, 3});
  const Var logits(logits_v);
  const Tensor y = tokens({2, -1, 0, -1}, 1);
  const double want =
      (gg::nn::cross_entropy(Var::constant(Tensor({0.1, 0.7, -0.3}, {1, 3})), Tensor({2}, {1})).item() +
       gg::nn::cross_entropy(Var::constant(Tensor({-1.0, 0.2, 0.3}, {1, 3})), Tensor({0}, {1})).item()) /
      2;
  CHECK(lm::loss(logits, y).item() == Approx(want).epsilon(1e-14));
  CHECK_THROWS_AS(lm::loss(logits, tokens({-1, -1, -1, -1}, 1)), gg::ValueError);
  CHECK_THROWS_AS(lm::loss(logits, tokens({1, 1, 1}, 1)), gg::ShapeError);
}

TEST_CASE("lm: text is read as UTF-8 characters, and a byte that is not UTF-8 is named with its offset") {
  CHECK(lm::utf8_characters("añ€😀", "t") == std::vector<std::string>{"a", "ñ", "€", "😀"});
  const auto error_of = [](std::string_view text) {
    try {
      lm::utf8_characters(text, "notes.txt");
    } catch (const gg::FormatError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of("abc\xff"), Catch::StartsWith("notes.txt: byte 3: not UTF-8"));
  CHECK_THAT(error_of("ab\xc3"), Catch::StartsWith("notes.txt: byte 2: not UTF-8 (a character cut off"));
  CHECK_THAT(error_of("a\xc0\xafz"), Catch::StartsWith("notes.txt: byte 1:"));   // overlong '/'
  CHECK_THAT(error_of("\xed\xa0\x80"), Catch::StartsWith("notes.txt: byte 0:")); // a surrogate
  CHECK_THAT(error_of("ok\x80"), Catch::Contains("continuation byte"));
  CHECK_THROWS_AS(lm::parse_corpus("ab\xfe", lm::Corpus::Mode::stream, "x"), gg::FormatError);
  // A file's reader says what to give; text from elsewhere (a prompt) is not called a file.
  CHECK(error_of("abc\xff") == "notes.txt: byte 3: not UTF-8 (a byte UTF-8 never uses: 0xff)");
  CHECK_THROWS_WITH(lm::parse_corpus("ab\xfe", lm::Corpus::Mode::stream, "x"),
                    "x: byte 2: not UTF-8 (a byte UTF-8 never uses: 0xfe); give a UTF-8 text file");
}

TEST_CASE("lm: a text too short names its count in the singular for one") {
  CHECK_THROWS_WITH(lm::parse_corpus("a", lm::Corpus::Mode::stream, "t"),
                    Catch::StartsWith("t: 1 character is too few to train on"));
  CHECK_THROWS_WITH(lm::parse_corpus("ab", lm::Corpus::Mode::stream, "t"),
                    Catch::StartsWith("t: 2 characters are too few to train on"));
  CHECK_THROWS_WITH(lm::parse_corpus("emma\n\n", lm::Corpus::Mode::words, "t"),
                    Catch::StartsWith("t: 1 word (one a line)"));
  CHECK_THROWS_WITH(lm::parse_corpus("\n", lm::Corpus::Mode::words, "t"), Catch::StartsWith("t: 0 words"));
}

TEST_CASE("lm: a word list has a boundary token and a fixed validation split, a stream splits 90/10") {
  const lm::Corpus w =
      lm::parse_corpus(std::string(k_words) + "\n  zoë \n", lm::Corpus::Mode::words, "names");
  CHECK(w.vocab.has_boundary());
  CHECK(w.vocab.tokens()[0] == "\n");
  CHECK(w.vocab.find("ë") > 0);
  CHECK(w.train_words.size() + w.val_words.size() == 21);
  REQUIRE(w.val_words.size() == 2); // words 10 and 20
  CHECK(w.vocab.decode(w.val_words[0]) == "evelyn");
  CHECK(w.vocab.decode(w.val_words[1]) == "scarlett");
  CHECK(w.longest_word == 9); // charlotte, isabella, elizabeth
  const lm::Corpus again =
      lm::parse_corpus(std::string(k_words) + "\n  zoë \n", lm::Corpus::Mode::words, "x");
  CHECK(again.val_words == w.val_words);
  CHECK(w.vocab.decode(w.vocab.encode("zoë")) == "zoë");
  CHECK_THROWS_WITH(w.vocab.encode("q"), Catch::Contains("'q' (U+0071) is not in the model's vocabulary"));
  CHECK(lm::Vocabulary::from_json(w.vocab.to_json(), "m") == w.vocab);
  CHECK_THROWS_AS(lm::Vocabulary::from_json("{\"boundary\": 1}", "m"), gg::FormatError);
  CHECK_THROWS_AS(lm::parse_corpus("one\n\n", lm::Corpus::Mode::words, "x"), gg::ValueError);
  // Every 10th word validates: a list of 9 would have no validation word, and is refused.
  const std::string nine = "a\nb\nc\nd\ne\nf\ng\nh\ni\n";
  CHECK_THROWS_WITH(lm::parse_corpus(nine, lm::Corpus::Mode::words, "nine.txt"),
                    "nine.txt: 9 words (one a line); a word list needs at least 10 (every 10th word is held "
                    "out for validation)");
  CHECK(lm::parse_corpus(nine + "j\n", lm::Corpus::Mode::words, "ten.txt").val_words.size() == 1);

  // A word's row: x = boundary, characters, padding; y = characters, boundary, -1.
  gg::Rng rng(1);
  const lm::Batch b = lm::sample_batch(w, 4, 0, rng, gg::f64);
  CHECK(b.x.shape() == gg::Shape({4, 10}));
  for (std::int64_t r = 0; r < 4; ++r) {
    CHECK(b.x.flat(r * 10) == 0);
    std::int64_t k = 0;
    for (; b.y.flat(r * 10 + k) != 0; ++k) CHECK(b.x.flat(r * 10 + k + 1) == b.y.flat(r * 10 + k));
    for (std::int64_t i = k + 1; i < 10; ++i) CHECK(b.y.flat(r * 10 + i) == -1);
  }
  double val_targets = 0;
  for (const lm::Batch& v : lm::validation_batches(w, 1, 0, gg::f64))
    for (std::int64_t i = 0; i < v.y.numel(); ++i) val_targets += v.y.flat(i) != -1;
  CHECK(val_targets == static_cast<double>(w.val_words[0].size() + w.val_words[1].size() + 2));

  const std::string text = "the quick brown fox jumps over the lazy dog, then sleeps.";
  const lm::Corpus s = lm::parse_corpus(text, lm::Corpus::Mode::stream, "fox");
  CHECK(!s.vocab.has_boundary());
  CHECK(s.train_stream.size() + s.val_stream.size() == text.size());
  CHECK(s.val_stream.size() == text.size() / 10);
  CHECK(s.vocab.decode(s.train_stream) + s.vocab.decode(s.val_stream) == text);
  const lm::Batch sb = lm::sample_batch(s, 3, 6, rng, gg::f64);
  for (std::int64_t r = 0; r < 3; ++r)
    for (std::int64_t i = 0; i + 1 < 6; ++i) CHECK(sb.x.flat(r * 6 + i + 1) == sb.y.flat(r * 6 + i));
  CHECK_THROWS_AS(lm::validation_batches(s, 4, 10, gg::f64), gg::ValueError); // 5 validation characters
}

TEST_CASE("lm: warmup then cosine, as nanoGPT's schedule") {
  Var p(Tensor({1.0}, {1}));
  gg::optim::SGD opt({p}, gg::optim::SGDOptions(0.1));
  lm::WarmupCosineLR s(opt, 4, 14, 0.01);
  CHECK(opt.lr() == Approx(0.025));
  std::vector<double> seen{opt.lr()};
  for (int i = 0; i < 16; ++i) s.step(), seen.push_back(opt.lr());
  CHECK(seen[3] == Approx(0.1));
  CHECK(seen[4] == Approx(0.1));
  CHECK(seen[9] == Approx(0.01 + 0.045 * (1 + std::cos(std::numbers::pi * 0.5))));
  CHECK(seen[14] == Approx(0.01));
  CHECK(seen[16] == Approx(0.01));
  CHECK_THROWS_AS(lm::WarmupCosineLR(opt, 5, 4, 0), gg::ValueError);
}

TEST_CASE("lm: sampling is reproducible with a seed, top-k 1 is the most likely token, dropout reseeds") {
  gg::nn::manual_seed(4);
  lm::Config c = config("gpt", 9);
  c.dropout = 0.3;
  auto model = lm::make_model(c);
  gg::Rng a(11), b(11), d(12);
  const lm::SampleOptions o{.temperature = 0.8, .top_k = 3, .length = 20};
  const auto first = lm::sample(*model, {1, 2}, o, a);
  CHECK(first.size() == 20);
  CHECK(lm::sample(*model, {1, 2}, o, b) == first);
  CHECK(lm::sample(*model, {1, 2}, o, d) != first);
  CHECK(model->is_training()); // sampling restores the mode

  // top_k 1: always the argmax of the last position.
  gg::Rng r(1);
  const auto greedy = lm::sample(*model, {3}, {.top_k = 1, .length = 1}, r);
  model->eval();
  const Tensor logits = (*model)(Var::constant(tokens({3}, 1))).value();
  model->train();
  std::int64_t best = 0;
  for (std::int64_t v = 1; v < 9; ++v) best = logits.flat(v) > logits.flat(best) ? v : best;
  CHECK(greedy == std::vector<std::int64_t>{best});
  CHECK_THROWS_AS(lm::sample(*model, {1}, {.temperature = 0, .length = 1}, r), gg::ValueError);
  CHECK_THROWS_AS(lm::sample(*model, {9}, {.length = 1}, r), gg::ValueError);

  // Dropout masks follow seed_dropout.
  const Var x = Var::constant(tokens({1, 2, 3}, 1));
  model->seed_dropout(5);
  const Tensor one = (*model)(x).value();
  model->seed_dropout(5);
  CHECK(max_abs_diff(one, (*model)(x).value()) == 0);
  model->seed_dropout(6);
  CHECK(max_abs_diff(one, (*model)(x).value()) > 0);

  // Each token is gg::multinomial's draw from exp(logits - max) with the caller's generator.
  Tensor weights = Tensor::empty({9}, gg::f64);
  double top = -INFINITY;
  for (std::int64_t v = 0; v < 9; ++v) top = std::max(top, logits.flat(v));
  for (std::int64_t v = 0; v < 9; ++v) weights.set_flat(v, std::exp(logits.flat(v) - top));
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    gg::Rng s1(seed), s2(seed);
    const auto drawn = lm::sample(*model, {3}, {.length = 1}, s1);
    CHECK(drawn.front() ==
          static_cast<std::int64_t>(gg::multinomial(Var::constant(weights), 1, true, s2).item()));
  }
}

TEST_CASE("lm: a configuration is checked, and survives safetensors metadata") {
  lm::Config c = config("gpt", 10);
  c.heads = 3;
  CHECK_THROWS_WITH(lm::check(c), Catch::Contains("not divisible by 3 heads"));
  c = config("transformer", 10);
  CHECK_THROWS_WITH(lm::check(c), Catch::Contains("model 'transformer': use bigram"));
  c = config("lstm", 10);
  c.dropout = 0.25;
  const lm::Config back = lm::from_metadata(lm::to_metadata(c), "m");
  CHECK(back.model == "lstm");
  CHECK(back.dropout == 0.25);
  CHECK(back.dtype == gg::f64);
  auto meta = lm::to_metadata(c);
  meta.erase("gradgraph.lm.hidden");
  CHECK_THROWS_WITH(lm::from_metadata(meta, "m.safetensors"), Catch::Contains("no gradgraph.lm.hidden"));
  gg::nn::manual_seed(1);
  auto model = lm::make_model(config("gru", 5));
  // Input of the wrong rank or length names the model and both shapes.
  CHECK_THROWS_WITH((*model)(Var::constant(Tensor::zeros({1, 9}))), // past the context
                    Catch::StartsWith("Recurrent(gru, vocab=5") && Catch::Contains("1 <= length <= 8") &&
                        Catch::Contains("got shape [1, 9]"));
  CHECK_THROWS_WITH((*model)(Var::constant(Tensor::zeros({4}))),
                    Catch::StartsWith("Recurrent(gru") && Catch::Contains("got shape [4]"));
  auto gpt = lm::make_model(config("gpt", 5));
  CHECK_THROWS_WITH((*gpt)(Var::constant(Tensor::zeros({2, 3, 4}))),
                    Catch::StartsWith("GPT(vocab=5") && Catch::Contains("[batch, length]") &&
                        Catch::Contains("got shape [2, 3, 4]"));
  CHECK_THROWS_WITH((*gpt)(Var::constant(Tensor::full({1, 2}, 7))),
                    Catch::Contains("token_embedding") || Catch::Contains("Embedding(5"));
}
