// Character-level language models (gg::nn::lm): Bigram, MLP (Bengio et al. 2003, as makemore),
// Recurrent (RNN, LSTM, GRU) and GPT (a decoder-only transformer), all mapping token indices [B, T]
// to next-token logits [B, T, V]; the text they learn from (a UTF-8 character vocabulary, word lists
// and prose), batches, the loss, the warmup + cosine schedule and sampling with temperature / top-k.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nn/io/safetensors.hpp>
#include <nn/layers.hpp>
#include <nn/module.hpp>
#include <nn/optim/lr_scheduler.hpp>
#include <nn/recurrent.hpp>
#include <nn/transformer.hpp>

namespace gg::nn::lm {

/// The architecture of a language model: everything needed to build it again (saved with it).
struct Config {
  std::string model = "gpt";   ///< bigram, mlp, rnn, lstm, gru or gpt
  std::int64_t vocab_size = 0; ///< tokens (characters, and the boundary token of a word list)
  std::int64_t context = 64;   ///< longest input: GPT's positions, the MLP's window of tokens
  std::int64_t embedding = 64; ///< embedding size (mlp, rnn, lstm, gru, gpt)
  std::int64_t hidden = 128;   ///< hidden size (mlp, rnn, lstm, gru); the GPT's MLP is 4 x embedding
  std::int64_t layers = 2;     ///< recurrent layers or transformer blocks
  std::int64_t heads = 4;      ///< attention heads (gpt; embedding must be divisible by it)
  double dropout = 0;          ///< in training: see each model
  DType dtype = f32;
  /// rnn, lstm, gru: each step recorded with the cell's ops rather than one op per layer (the same
  /// numbers; `lm dot` draws the unrolled graph). Not saved with a model.
  bool unrolled = false;
};

/// The model names Config::model takes, in --help's order.
inline constexpr std::string_view model_names = "bigram, mlp, rnn, lstm, gru or gpt";

/// Checks a configuration (ValueError naming the field and its value); called by every constructor.
void check(const Config& config);
/// The number of parameters of the model a configuration describes (a double: absurd sizes do not
/// overflow it), without building the model.
double parameter_count(const Config& config);
/// The configuration as safetensors metadata ("gradgraph.lm.model", "gradgraph.lm.context", ...).
std::map<std::string, std::string> to_metadata(const Config& config);
/// The configuration saved by to_metadata; ValueError naming a missing or malformed entry.
Config from_metadata(const std::map<std::string, std::string>& metadata, const std::string& source);

/// What every language model is: a Module from indices [B, T] (whole numbers in [0, vocab) held in
/// a float tensor, T <= context) to logits [B, T, vocab_size], position t predicting token t + 1
/// from tokens 0..t. Dropout masks come from the model's own generator, reseeded with
/// seed_dropout(): a training run that reseeds it at each step from (seed, step) draws the same
/// masks when it is resumed.
class LanguageModel : public Module {
public:
  explicit LanguageModel(Config config);
  const Config& config() const { return config_; }
  /// Restarts the dropout masks' generator.
  virtual void seed_dropout(std::uint64_t seed) { rng_ = Rng(seed); }

protected:
  /// x with dropout p = config().dropout in training mode; x itself otherwise.
  Var drop(const Var& x);
  /// Throws ShapeError unless x is [B, T] with 1 <= T <= context.
  void check_input(const Var& x) const;

private:
  Config config_;
  Rng rng_;
};

/// Logits of the next token from the current one alone: embedding.weight [V, V] (N(0, 1), as
/// torch.nn.Embedding).
class Bigram : public LanguageModel {
public:
  explicit Bigram(const Config& config);
  Var forward(const Var& x) override;
  std::string describe() const override;
  std::shared_ptr<Embedding> embedding;
};

/// Bengio et al. (2003) as makemore's MLP: position t sees tokens t, t-1, ..., t-context+1 (before
/// the start: an extra "blank" token, row V of embedding.weight [V + 1, E]), their embeddings
/// concatenated, then mlp = Sequential(Linear(context E, hidden), Tanh, Linear(hidden, V)).
/// Dropout applies to the concatenated embeddings.
class MLP : public LanguageModel {
public:
  explicit MLP(const Config& config);
  Var forward(const Var& x) override;
  std::string describe() const override;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<Sequential> mlp;
};

/// embedding [V, E] -> rnn (torch.nn.RNN, LSTM or GRU with batch_first, `layers` layers, hidden
/// size `hidden`, from a zero state) -> head Linear(hidden, V). Dropout applies to the embeddings and
/// to the recurrent layers' output (not between recurrent layers).
class Recurrent : public LanguageModel {
public:
  explicit Recurrent(const Config& config);
  Var forward(const Var& x) override;
  std::string describe() const override;
  std::shared_ptr<Embedding> embedding;
  std::shared_ptr<RNNBase> rnn;
  std::shared_ptr<Linear> head;
};

/// A pre-norm transformer block with torch.nn.TransformerEncoderLayer's names (norm_first, GELU,
/// dim_feedforward 4E, batch_first): x + drop(self_attn(norm1(x), causal)), then x +
/// drop(linear2(drop(gelu(linear1(norm2(x)))))), so PyTorch's layer loads its state dict.
class GPTBlock : public Module {
public:
  GPTBlock(const Config& config, Rng& dropout_rng);
  Var forward(const Var& x) override;
  std::string describe() const override;
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;

private:
  Var drop(const Var& x);
  double p_;
  Rng* rng_;
};

/// A decoder-only transformer (GPT): token_embedding [V, E] and position_embedding [context, E]
/// added (then dropout), `layers` GPTBlocks (blocks.0, ...), a final LayerNorm (norm), and logits
/// x W^T with W the token embedding itself (a tied output layer: one Var, its gradient the sum of
/// both uses). Initialised as GPT-2: weights N(0, 0.02), the residual projections (out_proj,
/// linear2) N(0, 0.02 / sqrt(2 layers)), biases 0.
class GPT : public LanguageModel {
public:
  explicit GPT(const Config& config);
  Var forward(const Var& x) override;
  std::string describe() const override;
  void seed_dropout(std::uint64_t seed) override;
  std::shared_ptr<Embedding> token_embedding, position_embedding;
  std::shared_ptr<Sequential> blocks;
  std::shared_ptr<LayerNorm> norm;

private:
  Rng block_rng_;
};

/// The model a configuration describes, with fresh weights drawn from the default generator
/// (nn::manual_seed).
std::shared_ptr<LanguageModel> make_model(const Config& config);

/// Mean cross-entropy of logits [B, T, V] against targets [B, T] (class ids), skipping targets of -1
/// (PyTorch's cross_entropy with ignore_index=-1 over the flattened positions).
Var loss(const Var& logits, const Tensor& targets);

/// The characters of a text, one token each, in code-point order; a word list adds the boundary
/// token (index 0, written "\n") that starts and ends every word, as makemore's ".".
class Vocabulary {
public:
  Vocabulary() = default;
  /// From the tokens' texts (each one UTF-8 character, distinct), boundary first when there is one.
  Vocabulary(std::vector<std::string> tokens, bool boundary);
  std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }
  bool has_boundary() const { return boundary_; }
  const std::vector<std::string>& tokens() const { return tokens_; }
  /// The token of one character; -1 when it is not in the vocabulary.
  std::int64_t find(std::string_view character) const;
  /// A UTF-8 text as tokens; ValueError naming the first character not in the vocabulary.
  std::vector<std::int64_t> encode(std::string_view text) const;
  /// Tokens as text (the boundary token as "\n").
  std::string decode(const std::vector<std::int64_t>& tokens) const;
  /// As JSON: {"boundary":true,"tokens":["\n","a",...]}.
  std::string to_json() const;
  /// The vocabulary to_json wrote; FormatError naming source when it is not one.
  static Vocabulary from_json(std::string_view json, const std::string& source);
  bool operator==(const Vocabulary&) const = default;

private:
  std::vector<std::string> tokens_;
  bool boundary_ = false;
};

/// The characters of a UTF-8 text; FormatError "source: byte N: not UTF-8 (...)" at the first byte
/// that is not UTF-8 (N counted from 0), followed by "; remedy" when one is given.
std::vector<std::string> utf8_characters(std::string_view text, const std::string& source,
                                         std::string_view remedy = {});

/// A text as training data. Words: one word a line (blank lines and surrounding spaces ignored),
/// each a sequence boundary, characters, boundary; every stride-th word (stride = max(10,
/// ceil(words / 1000))) validates: at most 1000 words spread over the list, as makemore holds out
/// min(1000, 10%), by a rule any program can repeat. Stream: the whole text as one sequence
/// of characters; the first 90% train, the last 10% validation.
struct Corpus {
  enum class Mode { words, stream };
  Mode mode = Mode::stream;
  std::string source;
  Vocabulary vocab;
  std::vector<std::vector<std::int64_t>> train_words, val_words; ///< words mode, without boundaries
  std::vector<std::int64_t> train_stream, val_stream;            ///< stream mode
  std::int64_t longest_word = 0;                                 ///< in characters (words mode)
  std::string fingerprint; ///< of the text, to tell whether a checkpoint was made on it
};
/// "words" or "stream".
std::string_view mode_name(Corpus::Mode mode);
/// "1 character", "2 characters": n and the noun, singular for one (lm's messages and the CLI's).
std::string count_of(std::size_t n, std::string_view noun);
/// Reads a UTF-8 file (IOError when it cannot be read, FormatError with the byte offset when it is not
/// UTF-8; ValueError when it is empty or has fewer than ten words (every 10th validates) / too little text to
/// split).
Corpus read_corpus(const std::string& path, Corpus::Mode mode);
/// The same from text in memory (source names it in errors).
Corpus parse_corpus(std::string_view text, Corpus::Mode mode, const std::string& source);

/// Inputs and targets of a step: x [B, T] and y [B, T] (y is x shifted by one; -1 past a word's end).
struct Batch {
  Tensor x, y;
};
/// The sequence length a corpus trains with: longest word + 1 for words, the context for a stream.
std::int64_t sequence_length(const Corpus& corpus, std::int64_t context);
/// `batch` training sequences drawn with rng: random words (boundary-padded as makemore), or random
/// windows of the stream (as nanoGPT).
Batch sample_batch(const Corpus& corpus, std::int64_t batch, std::int64_t context, Rng& rng, DType dtype);
/// The validation set, fixed: every validation word, or the validation stream cut into consecutive
/// windows (at most max_tokens targets), as batches of at most `batch` rows.
std::vector<Batch> validation_batches(const Corpus& corpus, std::int64_t batch, std::int64_t context,
                                      DType dtype, std::int64_t max_tokens = 16384);
/// The mean loss over batches (eval mode, no recording), weighted by their targets.
double evaluate(LanguageModel& model, const std::vector<Batch>& batches);

/// Linear warmup from lr/warmup to lr over `warmup` steps, then a cosine from lr down to min_lr at
/// step `total`, then min_lr (nanoGPT's schedule; torch.optim.lr_scheduler.LambdaLR with the same
/// factor). Stepped once per optimizer step; its state resumes with the trainer's checkpoints.
class WarmupCosineLR : public optim::LRScheduler {
public:
  /// ValueError unless 0 <= warmup <= total, total >= 1 and 0 <= min_lr <= lr.
  WarmupCosineLR(optim::Optimizer& optimizer, std::int64_t warmup, std::int64_t total, double min_lr);
  /// The factor of the initial lr at step t.
  double lr_at(std::int64_t t) const;

protected:
  double get_lr() const override;

private:
  std::int64_t warmup_, total_;
  double min_lr_;
};

/// Writes the model's state dict with its configuration, vocabulary and corpus mode in the
/// safetensors metadata (atomically; `extra` metadata added), so that load() needs nothing else.
void save(const LanguageModel& model, const Vocabulary& vocab, Corpus::Mode mode, const std::string& path,
          const std::map<std::string, std::string>& extra = {});

/// A model read back by load().
struct Saved {
  std::shared_ptr<LanguageModel> model;
  Vocabulary vocab;
  Corpus::Mode mode = Corpus::Mode::stream;
  std::map<std::string, std::string> metadata;
};
/// Reads what save() wrote (or a trainer's checkpoint of such a model: its "model." tensors). A file
/// without the configuration or the vocabulary, a vocabulary of another size than the model's, or
/// tensors that are not those of the model the configuration describes (listing the missing and the
/// extra ones) are ValueErrors naming the file, as are sizes describing a model of more parameters
/// than the file holds numbers (a hand-edited or damaged file: refused before anything is
/// allocated); shapes that differ are ShapeErrors naming the file and the tensor.
Saved load(const std::string& path);

/// How sample() draws each token.
struct SampleOptions {
  double temperature = 1;        ///< logits divided by it (> 0); lower is more conservative
  std::int64_t top_k = 0;        ///< draw among the k most likely tokens only (0: all)
  std::int64_t length = 0;       ///< tokens to generate (words: the longest word one may have)
  bool stop_at_boundary = false; ///< end when the boundary token is drawn (a word list's words)
};
/// Continues `prompt` (at least one token) by drawing tokens one at a time from the model's
/// distribution (eval mode, no recording; the last `context` tokens as input; each token drawn by
/// gg::multinomial with rng); returns the new
/// tokens (without the boundary that stopped it). ValueError for a temperature <= 0, top_k < 0.
std::vector<std::int64_t> sample(LanguageModel& model, std::vector<std::int64_t> prompt,
                                 const SampleOptions& options, Rng& rng);

} // namespace gg::nn::lm
