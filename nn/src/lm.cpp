// The character-level language models of nn/lm.hpp and their data: models written with nn's layers
// (so backward, DOT pictures and safetensors come for free), a UTF-8 reader that names the byte
// where a file stops being UTF-8, makemore's word batches and nanoGPT's stream windows, and sampling.
#include <nn/init.hpp>
#include <nn/io/serialize.hpp>
#include <nn/lm.hpp>
#include <nn/losses.hpp>

#include "io/byte_source.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace gg::nn::lm {

namespace {

const std::set<std::string_view> k_models{"bigram", "mlp", "rnn", "lstm", "gru", "gpt"};

/// Draws every weight matrix of a GPT as GPT-2 does.
void normal_init(Var& p, double std) {
  Tensor v = p.value();
  init::normal(v, 0, std);
  p.set_value(v);
}

} // namespace

void check(const Config& c) {
  if (!k_models.count(c.model)) throw ValueError(fmt::format("model '{}': use {}", c.model, model_names));
  const auto positive = [](const char* name, std::int64_t v, std::int64_t most) {
    if (v < 1 || v > most) throw ValueError(fmt::format("{} {}: use 1 to {}", name, v, most));
  };
  positive("vocabulary size", c.vocab_size, 1'114'112 + 1);
  positive("context", c.context, 1 << 16);
  positive("embedding size", c.embedding, 1 << 16);
  positive("hidden size", c.hidden, 1 << 16);
  positive("layers", c.layers, 1024);
  positive("heads", c.heads, 1024);
  if (c.model == "gpt" && c.embedding % c.heads != 0)
    throw ValueError(
        fmt::format("embedding size {} is not divisible by {} heads (each head takes embedding / heads)",
                    c.embedding, c.heads));
  if (!(c.dropout >= 0 && c.dropout < 1)) throw ValueError(fmt::format("dropout {}: use [0, 1)", c.dropout));
}

std::map<std::string, std::string> to_metadata(const Config& c) {
  return {{"gradgraph.lm.model", c.model},
          {"gradgraph.lm.vocab_size", std::to_string(c.vocab_size)},
          {"gradgraph.lm.context", std::to_string(c.context)},
          {"gradgraph.lm.embedding", std::to_string(c.embedding)},
          {"gradgraph.lm.hidden", std::to_string(c.hidden)},
          {"gradgraph.lm.layers", std::to_string(c.layers)},
          {"gradgraph.lm.heads", std::to_string(c.heads)},
          {"gradgraph.lm.dropout", fmt::format("{}", c.dropout)},
          {"gradgraph.lm.dtype", std::string(dtype_name(c.dtype))}};
}

double parameter_count(const Config& c) {
  const double v = static_cast<double>(c.vocab_size), e = static_cast<double>(c.embedding),
               h = static_cast<double>(c.hidden), k = static_cast<double>(c.context),
               layers = static_cast<double>(c.layers);
  if (c.model == "bigram") return v * v;
  if (c.model == "mlp") return (v + 1) * e + k * e * h + h + h * v + v;
  if (c.model == "gpt") return v * e + k * e + layers * (12 * e * e + 13 * e) + 2 * e;
  const double gates = c.model == "lstm" ? 4 : c.model == "gru" ? 3 : 1;
  return v * e + gates * h * (e + h) + (layers - 1) * gates * h * 2 * h + layers * 2 * gates * h + h * v + v;
}

Config from_metadata(const std::map<std::string, std::string>& meta, const std::string& source) {
  const auto get = [&](const std::string& key) -> const std::string& {
    const auto it = meta.find("gradgraph.lm." + key);
    if (it == meta.end())
      throw ValueError(fmt::format("{}: not a language model of gradgraph lm (no gradgraph.lm.{} in its "
                                   "metadata)",
                                   source, key));
    return it->second;
  };
  const auto number = [&](const std::string& key) {
    const std::string& text = get(key);
    std::size_t used = 0;
    std::int64_t v = 0;
    try {
      v = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size())
      throw ValueError(fmt::format("{}: gradgraph.lm.{} '{}' is not a whole number", source, key, text));
    return v;
  };
  Config c;
  c.model = get("model");
  c.vocab_size = number("vocab_size");
  c.context = number("context");
  c.embedding = number("embedding");
  c.hidden = number("hidden");
  c.layers = number("layers");
  c.heads = number("heads");
  c.dropout = std::strtod(get("dropout").c_str(), nullptr);
  const std::string& dtype = get("dtype");
  if (dtype != "float32" && dtype != "float64")
    throw ValueError(fmt::format("{}: gradgraph.lm.dtype '{}' is not float32 or float64", source, dtype));
  c.dtype = dtype == "float32" ? f32 : f64;
  try {
    check(c);
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: its metadata describes no model: {}", source, e.what()));
  }
  return c;
}

// ---- the models

LanguageModel::LanguageModel(Config config) : config_(std::move(config)) {
  check(config_);
}

Var LanguageModel::drop(const Var& x) {
  if (!is_training() || config_.dropout == 0) return x;
  return gg::dropout(x, config_.dropout, true, rng_);
}

void LanguageModel::check_input(const Var& x) const {
  const Shape s = x.shape();
  if (s.rank() != 2 || s[1] < 1 || s[1] > config_.context)
    throw ShapeError(fmt::format("{}: expected token indices [batch, length] with 1 <= length <= {} (the "
                                 "context), got shape {}",
                                 describe(), config_.context, s.str()));
}

Bigram::Bigram(const Config& c) : LanguageModel(c) {
  embedding = register_module("embedding", std::make_shared<Embedding>(c.vocab_size, c.vocab_size, c.dtype));
}

Var Bigram::forward(const Var& x) {
  check_input(x);
  return (*embedding)(x);
}

std::string Bigram::describe() const {
  return fmt::format("Bigram(vocab={})", config().vocab_size);
}

MLP::MLP(const Config& c) : LanguageModel(c) {
  embedding =
      register_module("embedding", std::make_shared<Embedding>(c.vocab_size + 1, c.embedding, c.dtype));
  mlp = register_module("mlp", std::make_shared<Sequential>());
  mlp->push_back(std::make_shared<Linear>(c.context * c.embedding, c.hidden, true, c.dtype));
  mlp->push_back(std::make_shared<Activation>(Activation::Kind::tanh));
  mlp->push_back(std::make_shared<Linear>(c.hidden, c.vocab_size, true, c.dtype));
}

Var MLP::forward(const Var& x) {
  check_input(x);
  const Tensor t = x.value();
  const std::int64_t b = t.shape()[0], n = t.shape()[1], k = config().context;
  // Position i's window: tokens i, i-1, ..., i-k+1, the blank token V before the start.
  Tensor window = Tensor::empty({b, n, k}, t.dtype());
  for (std::int64_t r = 0; r < b; ++r)
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < k; ++j)
        window.set_flat((r * n + i) * k + j,
                        i - j >= 0 ? t.flat(r * n + i - j) : static_cast<double>(config().vocab_size));
  const Var e = (*embedding)(Var::constant(window)); // [B, T, k, E]
  return (*mlp)(drop(reshape(e, {b, n, k * config().embedding})));
}

std::string MLP::describe() const {
  return fmt::format("MLP(vocab={}, context={}, embedding={}, hidden={})", config().vocab_size,
                     config().context, config().embedding, config().hidden);
}

Recurrent::Recurrent(const Config& c) : LanguageModel(c) {
  embedding = register_module("embedding", std::make_shared<Embedding>(c.vocab_size, c.embedding, c.dtype));
  const RecurrentOptions o{
      .num_layers = c.layers, .batch_first = true, .dtype = c.dtype, .unrolled = c.unrolled};
  if (c.model == "rnn")
    rnn = std::make_shared<RNN>(c.embedding, c.hidden, o);
  else if (c.model == "lstm")
    rnn = std::make_shared<LSTM>(c.embedding, c.hidden, o);
  else if (c.model == "gru")
    rnn = std::make_shared<GRU>(c.embedding, c.hidden, o);
  else
    throw ValueError(fmt::format("Recurrent: model '{}' is not rnn, lstm or gru", c.model));
  register_module("rnn", rnn);
  head = register_module("head", std::make_shared<Linear>(c.hidden, c.vocab_size, true, c.dtype));
}

Var Recurrent::forward(const Var& x) {
  check_input(x);
  return (*head)(drop((*rnn)(drop((*embedding)(x)))));
}

std::string Recurrent::describe() const {
  return fmt::format("Recurrent({}, vocab={}, embedding={}, hidden={}, layers={})", config().model,
                     config().vocab_size, config().embedding, config().hidden, config().layers);
}

GPTBlock::GPTBlock(const Config& c, Rng& dropout_rng) : p_(c.dropout), rng_(&dropout_rng) {
  const std::int64_t e = c.embedding;
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(e, 1e-5, true, c.dtype));
  self_attn =
      register_module("self_attn", std::make_shared<MultiheadAttention>(e, c.heads, 0.0, true,
                                                                        /*batch_first=*/true, c.dtype));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(e, 1e-5, true, c.dtype));
  linear1 = register_module("linear1", std::make_shared<Linear>(e, 4 * e, true, c.dtype));
  linear2 = register_module("linear2", std::make_shared<Linear>(4 * e, e, true, c.dtype));
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(c.layers));
  normal_init(self_attn->in_proj_weight, 0.02);
  normal_init(self_attn->out_proj->weight, residual_std);
  normal_init(linear1->weight, 0.02);
  normal_init(linear2->weight, residual_std);
  for (Var* b : {&self_attn->out_proj->bias, &linear1->bias, &linear2->bias}) b->value().fill(0);
}

Var GPTBlock::drop(const Var& x) {
  return gg::dropout(x, p_, is_training(), *rng_);
}

Var GPTBlock::forward(const Var& x) {
  const Var h = (*norm1)(x);
  // is_causal without a mask tensor: the fused attention's causal flag, which skips the masked half
  // of each row of scores instead of adding -inf to it.
  const AttentionArgs causal{.need_weights = false, .is_causal = true};
  const Var a = x + drop((*self_attn)(h, h, h, causal).first);
  return a + drop((*linear2)(drop(gelu((*linear1)((*norm2)(a))))));
}

std::string GPTBlock::describe() const {
  return fmt::format("GPTBlock(embedding={}, heads={})", self_attn->embed_dim, self_attn->num_heads);
}

GPT::GPT(const Config& c) : LanguageModel(c) {
  token_embedding =
      register_module("token_embedding", std::make_shared<Embedding>(c.vocab_size, c.embedding, c.dtype));
  position_embedding =
      register_module("position_embedding", std::make_shared<Embedding>(c.context, c.embedding, c.dtype));
  normal_init(token_embedding->weight, 0.02);
  normal_init(position_embedding->weight, 0.02);
  blocks = register_module("blocks", std::make_shared<Sequential>());
  for (std::int64_t i = 0; i < c.layers; ++i) blocks->push_back(std::make_shared<GPTBlock>(c, block_rng_));
  norm = register_module("norm", std::make_shared<LayerNorm>(c.embedding, 1e-5, true, c.dtype));
}

void GPT::seed_dropout(std::uint64_t seed) {
  LanguageModel::seed_dropout(seed);
  block_rng_ = Rng(seed ^ 0x9E3779B97F4A7C15ull);
}

Var GPT::forward(const Var& x) {
  check_input(x);
  const std::int64_t n = x.shape()[1];
  const Var positions =
      (*position_embedding)(Var::constant(Tensor::arange(0, static_cast<double>(n), 1, x.dtype())));
  const Var h = (*norm)((*blocks)(drop((*token_embedding)(x) + positions)));
  // The output layer is the token embedding itself: one Var used twice, its gradients summed.
  return linear(h, token_embedding->weight);
}

std::string GPT::describe() const {
  return fmt::format("GPT(vocab={}, context={}, embedding={}, heads={}, layers={})", config().vocab_size,
                     config().context, config().embedding, config().heads, config().layers);
}

std::shared_ptr<LanguageModel> make_model(const Config& c) {
  check(c);
  if (c.model == "bigram") return std::make_shared<Bigram>(c);
  if (c.model == "mlp") return std::make_shared<MLP>(c);
  if (c.model == "gpt") return std::make_shared<GPT>(c);
  return std::make_shared<Recurrent>(c);
}

Var loss(const Var& logits, const Tensor& targets) {
  const Shape s = logits.shape();
  if (s.rank() != 3 || targets.shape().rank() != 2 || targets.shape()[0] != s[0] ||
      targets.shape()[1] != s[1])
    throw ShapeError(fmt::format("lm::loss: logits {} and targets {} must be [B, T, V] and [B, T]", s.str(),
                                 targets.shape().str()));
  const Var flat = reshape(logits, {s[0] * s[1], s[2]});
  std::vector<std::int64_t> rows;
  std::vector<double> kept;
  for (std::int64_t i = 0; i < targets.numel(); ++i)
    if (targets.flat(i) != -1) rows.push_back(i), kept.push_back(targets.flat(i));
  if (rows.empty()) throw ValueError("lm::loss: every target is -1 (ignored): nothing to learn from");
  if (static_cast<std::int64_t>(rows.size()) == targets.numel())
    return cross_entropy(flat, targets.reshape({targets.numel()}));
  const std::int64_t n = static_cast<std::int64_t>(rows.size());
  return cross_entropy(index_select(flat, 0, rows), Tensor(std::move(kept), {n}));
}

// ---- text

std::vector<std::string> utf8_characters(std::string_view text, const std::string& source,
                                         std::string_view remedy) {
  std::vector<std::string> chars;
  chars.reserve(text.size());
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = byte(i);
    const std::size_t n = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    const auto fail = [&](std::string_view why) {
      throw FormatError(fmt::format("{}: byte {}: not UTF-8 ({}: 0x{:02x}){}{}", source, i, why, c,
                                    remedy.empty() ? "" : "; ", remedy));
    };
    if (n == 0) fail(c >= 0x80 && c < 0xC0 ? "a continuation byte with no start" : "a byte UTF-8 never uses");
    if (c > 0xF4) fail("a byte UTF-8 never uses");
    if (i + n > text.size()) fail("a character cut off by the end of the text");
    char32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (std::size_t k = 1; k < n; ++k) {
      if ((byte(i + k) & 0xC0) != 0x80) fail("a character cut short");
      cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    const char32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < least[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      fail("an overlong form, a surrogate or a code point past U+10FFFF");
    chars.emplace_back(text.substr(i, n));
    i += n;
  }
  return chars;
}

namespace {

/// The code point of one valid UTF-8 character.
unsigned code_point(std::string_view ch) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned>(static_cast<unsigned char>(ch[k])); };
  const std::size_t n = ch.size();
  unsigned cp = n == 1 ? b(0) : b(0) & (0x7Fu >> n);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (b(k) & 0x3Fu);
  return cp;
}

} // namespace

Vocabulary::Vocabulary(std::vector<std::string> tokens, bool boundary)
    : tokens_(std::move(tokens)), boundary_(boundary) {}

std::int64_t Vocabulary::find(std::string_view ch) const {
  const auto first = tokens_.begin() + (boundary_ ? 1 : 0);
  const auto it = std::lower_bound(first, tokens_.end(), ch,
                                   [](const std::string& a, std::string_view b) { return a < b; });
  return it != tokens_.end() && *it == ch ? it - tokens_.begin() : -1;
}

std::vector<std::int64_t> Vocabulary::encode(std::string_view text) const {
  std::vector<std::int64_t> out;
  for (const std::string& ch : utf8_characters(text, "text")) {
    const std::int64_t t = find(ch);
    if (t < 0)
      throw ValueError(
          fmt::format("the character '{}' (U+{:04X}) is not in the model's vocabulary", ch, code_point(ch)));
    out.push_back(t);
  }
  return out;
}

std::string Vocabulary::decode(const std::vector<std::int64_t>& tokens) const {
  std::string out;
  for (std::int64_t t : tokens) {
    if (t < 0 || t >= size()) throw ValueError(fmt::format("decode: token {} is not in [0, {})", t, size()));
    out += boundary_ && t == 0 ? "\n" : tokens_[static_cast<std::size_t>(t)];
  }
  return out;
}

std::string Vocabulary::to_json() const {
  return nlohmann::ordered_json{{"boundary", boundary_}, {"tokens", tokens_}}.dump();
}

Vocabulary Vocabulary::from_json(std::string_view json, const std::string& source) {
  const auto bad = [&](const std::string& why) {
    return FormatError(fmt::format("{}: its vocabulary (gradgraph.lm.vocab) {}", source, why));
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json);
  } catch (const nlohmann::json::exception& e) {
    throw bad(fmt::format("is not JSON: {}", e.what()));
  }
  if (!j.is_object() || !j.contains("boundary") || !j["boundary"].is_boolean() || !j.contains("tokens") ||
      !j["tokens"].is_array())
    throw bad("is not {\"boundary\": true|false, \"tokens\": [...]}");
  std::vector<std::string> tokens;
  for (const auto& t : j["tokens"]) {
    if (!t.is_string()) throw bad("holds a token that is not a string");
    tokens.push_back(t.get<std::string>());
  }
  const bool boundary = j["boundary"].get<bool>();
  for (std::size_t i = boundary ? 1 : 0; i < tokens.size(); ++i) {
    if (utf8_characters(tokens[i], source).size() != 1)
      throw bad(fmt::format("holds \"{}\", which is not one character", tokens[i]));
    if (i > (boundary ? 1u : 0u) && !(tokens[i - 1] < tokens[i])) throw bad("is not sorted and distinct");
  }
  if (tokens.empty()) throw bad("is empty");
  return Vocabulary(std::move(tokens), boundary);
}

std::string_view mode_name(Corpus::Mode mode) {
  return mode == Corpus::Mode::words ? "words" : "stream";
}

std::string count_of(std::size_t n, std::string_view noun) {
  return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s");
}

namespace {

std::string fnv1a(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return fmt::format("{:016x}", h);
}

} // namespace

Corpus parse_corpus(std::string_view text, Corpus::Mode mode, const std::string& source) {
  Corpus c;
  c.mode = mode;
  c.source = source;
  c.fingerprint = fnv1a(text);
  const std::vector<std::string> chars = utf8_characters(text, source, "give a UTF-8 text file");
  if (mode == Corpus::Mode::stream) {
    std::vector<std::string> distinct(chars.begin(), chars.end());
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    c.vocab = Vocabulary(distinct, false);
    if (chars.size() < 20)
      throw ValueError(fmt::format("{}: {} {} too few to train on (at least 20: 10% of them are held out "
                                   "for validation)",
                                   source, count_of(chars.size(), "character"),
                                   chars.size() == 1 ? "is" : "are"));
    std::vector<std::int64_t> all;
    all.reserve(chars.size());
    for (const std::string& ch : chars) all.push_back(c.vocab.find(ch));
    const std::size_t cut = chars.size() - std::max<std::size_t>(2, chars.size() / 10);
    c.train_stream.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(cut));
    c.val_stream.assign(all.begin() + static_cast<std::ptrdiff_t>(cut), all.end());
    return c;
  }
  // Words: one a line, spaces around it dropped.
  std::vector<std::vector<std::string>> words{{}};
  for (const std::string& ch : chars) {
    if (ch == "\n") {
      words.emplace_back();
    } else if (ch != "\r") {
      words.back().push_back(ch);
    }
  }
  std::set<std::string> distinct;
  std::vector<std::vector<std::string>> kept;
  for (auto& w : words) {
    while (!w.empty() && (w.back() == " " || w.back() == "\t")) w.pop_back();
    std::size_t lead = 0;
    while (lead < w.size() && (w[lead] == " " || w[lead] == "\t")) ++lead;
    w.erase(w.begin(), w.begin() + static_cast<std::ptrdiff_t>(lead));
    if (w.empty()) continue;
    distinct.insert(w.begin(), w.end());
    kept.push_back(std::move(w));
  }
  // Every 10th word validates (below): fewer than 10 would leave none, and a validation loss of 0.
  if (kept.size() < 10)
    throw ValueError(fmt::format("{}: {} (one a line); a word list needs at least 10 (every 10th word is "
                                 "held out for validation)",
                                 source, count_of(kept.size(), "word")));
  std::vector<std::string> tokens{"\n"};
  tokens.insert(tokens.end(), distinct.begin(), distinct.end());
  c.vocab = Vocabulary(std::move(tokens), true);
  // Every stride-th word validates (stride = max(10, ceil(words / 1000))): at most 1000 words spread
  // over the whole list (makemore holds out min(1000, 10%)), the same rule in any language.
  const std::size_t stride = std::max<std::size_t>(10, (kept.size() + 999) / 1000);
  for (std::size_t k = 0; k < kept.size(); ++k) {
    std::vector<std::int64_t> w;
    for (const std::string& ch : kept[k]) w.push_back(c.vocab.find(ch));
    c.longest_word = std::max(c.longest_word, static_cast<std::int64_t>(w.size()));
    (k % stride == stride - 1 ? c.val_words : c.train_words).push_back(std::move(w));
  }
  return c;
}

Corpus read_corpus(const std::string& path, Corpus::Mode mode) {
  // As the other readers: a directory or an unreadable file is an IOError with the system's reason.
  const std::string s = gg::detail::ByteSource::file(path).read_rest();
  if (s.empty()) throw ValueError(fmt::format("{}: the file is empty", path));
  return parse_corpus(s, mode, path);
}

std::int64_t sequence_length(const Corpus& c, std::int64_t context) {
  return c.mode == Corpus::Mode::words ? c.longest_word + 1 : context;
}

namespace {

/// Rows of words as makemore's CharDataset: x = boundary, w..., 0 padding; y = w..., boundary, -1.
void put_word(const std::vector<std::int64_t>& w, std::int64_t row, std::int64_t n, Tensor& x, Tensor& y) {
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t k = static_cast<std::int64_t>(w.size());
    x.set_flat(row * n + i, i == 0   ? 0.0
                            : i <= k ? static_cast<double>(w[static_cast<std::size_t>(i - 1)])
                                     : 0.0);
    y.set_flat(row * n + i, i < k    ? static_cast<double>(w[static_cast<std::size_t>(i)])
                            : i == k ? 0.0
                                     : -1.0);
  }
}

void put_window(const std::vector<std::int64_t>& s, std::size_t at, std::int64_t row, std::int64_t n,
                Tensor& x, Tensor& y) {
  for (std::int64_t i = 0; i < n; ++i) {
    x.set_flat(row * n + i, static_cast<double>(s[at + static_cast<std::size_t>(i)]));
    y.set_flat(row * n + i, static_cast<double>(s[at + static_cast<std::size_t>(i) + 1]));
  }
}

} // namespace

Batch sample_batch(const Corpus& c, std::int64_t batch, std::int64_t context, Rng& rng, DType dtype) {
  const std::int64_t n = sequence_length(c, context);
  Batch b{Tensor::empty({batch, n}, dtype), Tensor::empty({batch, n}, f64)};
  if (c.mode == Corpus::Mode::words) {
    for (std::int64_t r = 0; r < batch; ++r)
      put_word(c.train_words[rng.below(c.train_words.size())], r, n, b.x, b.y);
    return b;
  }
  if (static_cast<std::int64_t>(c.train_stream.size()) < n + 1)
    throw ValueError(fmt::format("{}: its training part has {}, fewer than the context {} + 1", c.source,
                                 count_of(c.train_stream.size(), "character"), n));
  for (std::int64_t r = 0; r < batch; ++r)
    put_window(c.train_stream, rng.below(c.train_stream.size() - static_cast<std::size_t>(n)), r, n, b.x,
               b.y);
  return b;
}

std::vector<Batch> validation_batches(const Corpus& c, std::int64_t batch, std::int64_t context, DType dtype,
                                      std::int64_t max_tokens) {
  const std::int64_t n = sequence_length(c, context);
  std::vector<Batch> out;
  const auto rows_in = [&](std::int64_t total) {
    for (std::int64_t start = 0; start < total; start += batch) {
      const std::int64_t rows = std::min(batch, total - start);
      out.push_back({Tensor::empty({rows, n}, dtype), Tensor::empty({rows, n}, f64)});
    }
  };
  if (c.mode == Corpus::Mode::words) {
    const auto total = static_cast<std::int64_t>(c.val_words.size());
    rows_in(total);
    for (std::int64_t k = 0; k < total; ++k)
      put_word(c.val_words[static_cast<std::size_t>(k)], k % batch, n,
               out[static_cast<std::size_t>(k / batch)].x, out[static_cast<std::size_t>(k / batch)].y);
    return out;
  }
  const std::int64_t windows = std::min((static_cast<std::int64_t>(c.val_stream.size()) - 1) / n,
                                        std::max<std::int64_t>(1, max_tokens / n));
  if (windows < 1)
    throw ValueError(
        fmt::format("{}: its validation part (the last 10%) has {}, fewer than the context {} + 1: "
                    "give a smaller --context or a longer text",
                    c.source, count_of(c.val_stream.size(), "character"), n));
  rows_in(windows);
  for (std::int64_t k = 0; k < windows; ++k)
    put_window(c.val_stream, static_cast<std::size_t>(k * n), k % batch, n,
               out[static_cast<std::size_t>(k / batch)].x, out[static_cast<std::size_t>(k / batch)].y);
  return out;
}

double evaluate(LanguageModel& model, const std::vector<Batch>& batches) {
  NoGrad no_grad;
  const bool was_training = model.is_training();
  model.eval();
  double sum = 0, count = 0;
  for (const Batch& b : batches) {
    std::int64_t targets = 0;
    for (std::int64_t i = 0; i < b.y.numel(); ++i) targets += b.y.flat(i) != -1;
    if (targets == 0) continue;
    sum += loss(model(Var::constant(b.x)), b.y).item() * static_cast<double>(targets);
    count += static_cast<double>(targets);
  }
  model.train(was_training);
  return count > 0 ? sum / count : 0;
}

// ---- saving

void save(const LanguageModel& model, const Vocabulary& vocab, Corpus::Mode mode, const std::string& path,
          const std::map<std::string, std::string>& extra) {
  if (vocab.size() != model.config().vocab_size)
    throw ValueError(fmt::format("lm::save: the vocabulary has {} tokens, the model {}", vocab.size(),
                                 model.config().vocab_size));
  std::map<std::string, std::string> meta = extra;
  for (const auto& [k, v] : to_metadata(model.config())) meta[k] = v;
  meta["gradgraph.lm.vocab"] = vocab.to_json();
  meta["gradgraph.lm.mode"] = std::string(mode_name(mode));
  nn::save(model, path, meta);
}

Saved load(const std::string& path) {
  safetensors::File file = safetensors::load(path);
  Saved s;
  s.metadata = file.metadata;
  const Config c = from_metadata(file.metadata, path);
  const auto vocab = file.metadata.find("gradgraph.lm.vocab");
  if (vocab == file.metadata.end())
    throw ValueError(fmt::format("{}: it has no vocabulary (gradgraph.lm.vocab in its metadata): the model's "
                                 "tokens cannot be turned into characters",
                                 path));
  s.vocab = Vocabulary::from_json(vocab->second, path);
  if (s.vocab.size() != c.vocab_size)
    throw ValueError(
        fmt::format("{}: its vocabulary has {} tokens, but the model is made for {}: they belong "
                    "to different models",
                    path, s.vocab.size(), c.vocab_size));
  const auto mode = file.metadata.find("gradgraph.lm.mode");
  if (mode == file.metadata.end() || (mode->second != "words" && mode->second != "stream"))
    throw ValueError(fmt::format("{}: gradgraph.lm.mode is missing or not words/stream", path));
  s.mode = mode->second == "words" ? Corpus::Mode::words : Corpus::Mode::stream;
  if (s.vocab.has_boundary() != (s.mode == Corpus::Mode::words))
    throw ValueError(fmt::format("{}: a {} model's vocabulary {} a boundary token", path, mode->second,
                                 s.vocab.has_boundary() ? "has" : "lacks"));
  // A trainer's checkpoint holds the model as "model.<name>" next to the optimizer's state.
  const bool checkpoint = file.metadata.count("gradgraph.step") > 0;
  // Sizes edited by hand (or damaged) must not allocate a model the file could not fill.
  double stored = 0;
  for (const auto& [name, t] : file.tensors)
    if (!checkpoint || name.starts_with("model.")) stored += static_cast<double>(t.numel());
  if (const double n = parameter_count(c); n > stored)
    throw ValueError(
        fmt::format("{}: its metadata (gradgraph.lm.vocab_size {}, context {}, embedding {}, hidden "
                    "{}, layers {}) describes a {} of {:.4g} parameters, but the file holds {:.4g} "
                    "numbers: the metadata was edited or the file is damaged",
                    path, c.vocab_size, c.context, c.embedding, c.hidden, c.layers, c.model, n, stored));
  s.model = make_model(c);
  std::vector<std::pair<std::string, Tensor>> state;
  std::set<std::string> names;
  for (auto& [name, t] : file.tensors) {
    if (checkpoint && !name.starts_with("model.")) continue;
    names.insert(checkpoint ? name.substr(6) : name);
    state.emplace_back(checkpoint ? name.substr(6) : name, t);
  }
  std::vector<std::string> missing, extra;
  std::set<std::string> wanted;
  for (const auto& [name, t] : s.model->state_dict()) {
    wanted.insert(name);
    if (!names.count(name)) missing.push_back(name);
  }
  for (const std::string& name : names)
    if (!wanted.count(name)) extra.push_back(name);
  const auto list = [](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return std::string();
    std::string out = fmt::format("\n  {}: ", what);
    for (std::size_t i = 0; i < v.size() && i < 10; ++i) out += (i ? ", " : "") + v[i];
    return v.size() > 10 ? fmt::format("{} and {} more", out, v.size() - 10) : out;
  };
  if (!missing.empty() || !extra.empty())
    throw ValueError(fmt::format("{}: its tensors are not those of the {} its metadata describes ({}):{}{}",
                                 path, c.model, s.model->describe(), list("missing", missing),
                                 list("extra", extra)));
  try {
    s.model->load_state_dict(state);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: {}", path, e.what()));
  }
  return s;
}

// ---- schedule and sampling

WarmupCosineLR::WarmupCosineLR(optim::Optimizer& optimizer, std::int64_t warmup, std::int64_t total,
                               double min_lr)
    : LRScheduler(optimizer), warmup_(warmup), total_(total), min_lr_(min_lr) {
  if (total < 1 || warmup < 0 || warmup > total)
    throw ValueError(
        fmt::format("WarmupCosineLR: need 0 <= warmup ({}) <= total ({}) and total >= 1", warmup, total));
  if (!(min_lr >= 0 && min_lr <= base_lr()))
    throw ValueError(fmt::format("WarmupCosineLR: min_lr {} must be in [0, lr {}]", min_lr, base_lr()));
  initial_step();
}

double WarmupCosineLR::lr_at(std::int64_t t) const {
  const double lr = base_lr();
  if (t < warmup_) return lr * static_cast<double>(t + 1) / static_cast<double>(warmup_);
  if (t >= total_) return min_lr_;
  const double progress = static_cast<double>(t - warmup_) / static_cast<double>(total_ - warmup_);
  return min_lr_ + 0.5 * (lr - min_lr_) * (1 + std::cos(std::numbers::pi * progress));
}

double WarmupCosineLR::get_lr() const {
  return lr_at(last_epoch());
}

std::vector<std::int64_t> sample(LanguageModel& model, std::vector<std::int64_t> tokens,
                                 const SampleOptions& o, Rng& rng) {
  if (!(o.temperature > 0 && std::isfinite(o.temperature)))
    throw ValueError(fmt::format("sample: temperature {} must be a positive number", o.temperature));
  if (o.top_k < 0) throw ValueError(fmt::format("sample: top_k {} must be >= 0", o.top_k));
  if (tokens.empty()) throw ValueError("sample: the prompt needs at least one token");
  const Config& c = model.config();
  for (std::int64_t t : tokens)
    if (t < 0 || t >= c.vocab_size)
      throw ValueError(fmt::format("sample: token {} of the prompt is not in [0, {})", t, c.vocab_size));
  NoGrad no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<std::int64_t> made;
  Tensor p = Tensor::empty({c.vocab_size}, f64);
  for (std::int64_t step = 0; step < o.length; ++step) {
    const std::size_t n = std::min(tokens.size(), static_cast<std::size_t>(c.context));
    Tensor x = Tensor::empty({1, static_cast<std::int64_t>(n)}, c.dtype);
    for (std::size_t i = 0; i < n; ++i)
      x.set_flat(static_cast<std::int64_t>(i), static_cast<double>(tokens[tokens.size() - n + i]));
    const Tensor logits = model(Var::constant(x)).value();
    const std::int64_t base = (static_cast<std::int64_t>(n) - 1) * c.vocab_size;
    double top = -INFINITY;
    for (std::int64_t v = 0; v < c.vocab_size; ++v)
      top = std::max(top, logits.flat(base + v) / o.temperature);
    std::vector<double> z(static_cast<std::size_t>(c.vocab_size));
    for (std::int64_t v = 0; v < c.vocab_size; ++v)
      z[static_cast<std::size_t>(v)] = logits.flat(base + v) / o.temperature;
    double kth = -INFINITY;
    if (o.top_k > 0 && o.top_k < c.vocab_size) {
      std::vector<double> sorted = z;
      std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(), std::greater<>());
      kth = sorted[static_cast<std::size_t>(o.top_k - 1)];
    }
    for (std::size_t v = 0; v < z.size(); ++v)
      p.set_flat(static_cast<std::int64_t>(v), z[v] < kth ? 0.0 : std::exp(z[v] - top));
    // One draw from the unnormalised weights through the op, with the caller's generator.
    const auto next = static_cast<std::int64_t>(multinomial(Var::constant(p), 1, true, rng).value().flat(0));
    if (o.stop_at_boundary && next == 0) break;
    tokens.push_back(next);
    made.push_back(next);
  }
  model.train(was_training);
  return made;
}

} // namespace gg::nn::lm
