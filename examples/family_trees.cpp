// The family trees of Rumelhart, Hinton & Williams (1986): two isomorphic 12-person trees (English,
// Italian), 12 relations, 104 queries "person 1, relation -> person(s) 2", and their five-layer network
// trained on 100 queries and tested on the other 4. Runs the paper's schedule as the paper states it, a
// faster one that learns here, and the paper's step size and decay continued from the learned networks.
// Usage: family_trees [RUNS (20)] [SWEEPS of the second schedule (10000)]; exit status 0 when the findings
// below still hold.
//
// What the sources say:
// * The paper, Nature 323, 533-536, https://www.nature.com/articles/323533a0 (Fig. 4's caption as public
//   transcriptions give it): trained "on 100 of the 104 possible triples" for 1500 sweeps (full batch, eq.
//   9), eps 0.005 and alpha 0.5 for the first 20 sweeps, then eps 0.01 (one transcription: 0.001) and alpha
//   0.9; "weight-decay by decrementing every weight by 0.2% after each weight change"; "the error was
//   considered to be zero if output units that should be on had activities above 0.8 and output units that
//   should be off had activities below 0.2" -- a margin in the training error, which ../shared/REFERENCES.md
//   turned into the test of a right answer; "the network generalizes correctly to the four triples on which
//   it was not trained". Not said: which four, what "correctly" means, the initial weights of this network
//   (only "small random weights"; +-0.3 is the symmetry network's, Fig. 1).
// * Hinton (1986), "Learning distributed representations of concepts", Proc. 8th Annual Conference of the
//   Cognitive Science Society, https://www.cs.toronto.edu/~hinton/absps/families.pdf: its text could not be
//   read from here, so its details (the four held-out triples, other runs) are unchecked.
// * Re-implementations: github.com/guopei/Hinton-Family-Tree-Exp-Repro (Adam, mean squared error, 2000 steps,
//   argmax: 67% of held-out queries; peiguo.me/posts/hinton-family-tree-experiment: 74% over 50 splits with
//   batch norm, AdamW, an extra layer and targets -0.1/1.1); sephiroce.com/index.php?page=58 (2016, the
//   paper's rule without biases: 2 of 4 held out right, "right" = the answer's unit above 0.5 and all others
//   below); cybertronai.github.io/hinton-problems/family-trees (tanh units, softmax and cross-entropy);
//   github.com/CompCogNeuro/sims ch4/family_trees (Leabra, not backprop). None reports the paper's result
//   with the paper's recipe.
//
// What happens here (`family_trees 100`: 100 runs, each with its own 4 held-out queries and weights):
// 1. The paper's schedule: no run leaves the plateau where every output ignores the input (E 43, no
//    training query right by the 0.5 test below). The decay, applied after each momentum step, holds the
//    weights where an L2 penalty (lambda/2)|w|^2 with lambda = decay (1 - alpha) / eps = 0.02 would, and at
//    that strength a network that knows the training set does not stay: block 3 continues the networks of
//    block 2 with the paper's eps and decay and they drift back (E 3.6 -> 12.5, training queries inside the
//    0.8/0.2 margin 29 -> 0.2 of 100). So the paper's numbers, as printed, do not reproduce its run here.
// 2. Five times the step (lambda 0.004), weights +-1, 10,000 sweeps: 98 runs of 100 get 90 training queries
//    right (median 2,335 sweeps), 97.7 of 100 on average at the end. Held out: 50% right by the 0.5 test,
//    57% by rank, 2% by the margin test (outputs trained just past 0.8 seldom pass it on new queries); all 4
//    right in 9 (0.5 test) and 15 (rank) runs of 100. Husband and wife queries are right 7 times in 78,
//    brother and sister 18 in 39, the other relations 49-83%: which 4 are held out decides much, and the
//    paper does not say which (its 4 of 4 is one run).
#include <nn/nn.hpp>

#include "rhw1986.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {

/// The 24 people, the English tree then the Italian one, each person at the same place in both
/// (Christopher's counterpart is Roberto, Colin's is Alfonso, ...).
const std::array<std::string, 24> people{
    "Christopher", "Penelope", "Andrew", "Christine", "Margaret", "Arthur", "Victoria", "James",
    "Jennifer",    "Charles",  "Colin",  "Charlotte", "Roberto",  "Maria",  "Pierro",   "Francesca",
    "Gina",        "Emilio",   "Lucia",  "Marco",     "Angela",   "Tomaso", "Alfonso",  "Sophia"};
const std::array<std::string, 12> relations{"father", "mother", "husband", "wife",   "son",    "daughter",
                                            "uncle",  "aunt",   "brother", "sister", "nephew", "niece"};

/// Position of name in list (a FormatError naming file and line when it is not there).
template <std::size_t N>
std::int64_t index_of(const std::array<std::string, N>& list, const std::string& name,
                      const std::string& where) {
  const auto it = std::find(list.begin(), list.end(), name);
  if (it == list.end()) throw gg::FormatError(fmt::format("{}: unknown name \"{}\"", where, name));
  return it - list.begin();
}

/// One query: person 1 and relation, and every person 2 that answers it.
struct Query {
  std::int64_t person = 0, relation = 0;
  std::vector<std::int64_t> answers;
};

/// Reads the triples "tree,person1,relation,person2" and groups them into queries.
std::vector<Query> read_queries(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw gg::IOError(fmt::format("{}: cannot open", path));
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::int64_t>> answers;
  std::string line;
  std::getline(in, line); // the header
  for (int number = 2; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back(); // CRLF line endings
    if (line.empty()) continue;
    std::vector<std::string> fields;
    std::stringstream s(line);
    for (std::string f; std::getline(s, f, ',');) fields.push_back(f);
    const std::string where = fmt::format("{}:{}", path, number);
    if (fields.size() != 4)
      throw gg::FormatError(fmt::format("{}: expected 4 fields, got {}", where, fields.size()));
    answers[{index_of(people, fields[1], where), index_of(relations, fields[2], where)}].push_back(
        index_of(people, fields[3], where));
  }
  std::vector<Query> queries;
  for (auto& [key, who] : answers) queries.push_back({key.first, key.second, who});
  return queries;
}

/// Throws a FormatError naming `path` unless the two trees are isomorphic in its queries: each English query,
/// with every person replaced by the Italian one at the same place, is an Italian query with the same
/// answers, and the other way round.
void check_isomorphic(const std::vector<Query>& queries, const std::string& path) {
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::int64_t>> answers;
  for (const Query& q : queries) answers[{q.person, q.relation}] = q.answers;
  for (const Query& q : queries) {
    const auto other = [](std::int64_t person) { return (person + 12) % 24; };
    std::vector<std::int64_t> expected;
    for (std::int64_t a : q.answers) expected.push_back(other(a));
    const auto it = answers.find({other(q.person), q.relation});
    if (it == answers.end() ||
        !std::is_permutation(expected.begin(), expected.end(), it->second.begin(), it->second.end()))
      throw gg::FormatError(fmt::format(
          "{}: the trees are not isomorphic: {} {} does not have the answers of {} {} in the other tree",
          path, people[static_cast<std::size_t>(other(q.person))],
          relations[static_cast<std::size_t>(q.relation)], people[static_cast<std::size_t>(q.person)],
          relations[static_cast<std::size_t>(q.relation)]));
  }
}

/// The paper's network: a person (one of 24 units on) and a relation (one of 12) are each encoded by
/// 6 logistic units; both codes feed 12 central units, then 6, then 24 outputs, one per person.
class FamilyTrees : public nn::Module {
public:
  FamilyTrees()
      : person(register_module("person", std::make_shared<nn::Linear>(24, 6))),
        relation(register_module("relation", std::make_shared<nn::Linear>(12, 6))),
        central(register_module("central", std::make_shared<nn::Linear>(12, 12))),
        decode(register_module("decode", std::make_shared<nn::Linear>(12, 6))),
        out(register_module("out", std::make_shared<nn::Linear>(6, 24))) {}
  /// Output activities [n, 24] for one-hot persons [n, 24] and relations [n, 12].
  Var operator()(const Var& p, const Var& r) {
    const Var codes = gg::concat({gg::sigmoid((*person)(p)), gg::sigmoid((*relation)(r))}, 1);
    return gg::sigmoid((*out)(gg::sigmoid((*decode)(gg::sigmoid((*central)(codes))))));
  }
  std::shared_ptr<nn::Linear> person, relation, central, decode, out;
};

/// Inputs and targets of some queries: one-hot persons and relations, and the answers' units on.
struct Batch {
  Tensor persons, relations, targets;
};

Batch encode(const std::vector<Query>& queries) {
  const auto n = static_cast<std::int64_t>(queries.size());
  Batch b{Tensor::zeros({n, 24}), Tensor::zeros({n, 12}), Tensor::zeros({n, 24})};
  for (std::int64_t i = 0; i < n; ++i) {
    const Query& q = queries[static_cast<std::size_t>(i)];
    b.persons.set_flat(24 * i + q.person, 1);
    b.relations.set_flat(12 * i + q.relation, 1);
    for (std::int64_t a : q.answers) b.targets.set_flat(24 * i + a, 1);
  }
  return b;
}

/// The paper's margin: an output that should be on and is above 0.8, or should be off and is below
/// 0.2, counts no error. Returns 0 for those outputs and 1 for the others.
Tensor margin_mask(const Tensor& y, const Tensor& d) {
  Tensor mask = Tensor::ones(y.shape());
  const double *yp = y.data<double>(), *dp = d.data<double>();
  double* m = mask.data<double>();
  for (std::int64_t i = 0; i < y.numel(); ++i)
    if (dp[i] > 0.5 ? yp[i] > 0.8 : yp[i] < 0.2) m[i] = 0;
  return mask;
}

/// Whether each query's answer is right by three tests: "margin", every unit that should be on above
/// 0.8 and every other one below 0.2 (the paper's error margin, which REFERENCES.md reads as its test);
/// "0.5", the same with 0.5 for both; "rank", the k answers of the query are the k largest outputs.
struct Right {
  std::vector<bool> margin, half, rank;
};

Right right_answers(FamilyTrees& net, const Batch& b) {
  gg::NoGrad no_grad;
  const Tensor y = net(Var::constant(b.persons), Var::constant(b.relations)).value();
  const double *yp = y.data<double>(), *dp = b.targets.data<double>();
  Right right;
  for (std::int64_t i = 0; i < y.shape()[0]; ++i) {
    double lowest_on = 1, highest_off = 0;
    for (std::int64_t k = 24 * i; k < 24 * i + 24; ++k)
      if (dp[k] > 0.5)
        lowest_on = std::min(lowest_on, yp[k]);
      else
        highest_off = std::max(highest_off, yp[k]);
    right.margin.push_back(lowest_on > 0.8 && highest_off < 0.2);
    right.half.push_back(lowest_on > 0.5 && highest_off < 0.5);
    right.rank.push_back(lowest_on > highest_off);
  }
  return right;
}

int count(const std::vector<bool>& v) {
  return static_cast<int>(std::count(v.begin(), v.end(), true));
}

/// A training schedule; the defaults are the paper's.
struct Schedule {
  int sweeps = 1500, warmup = 20; ///< warmup: sweeps at warmup_lr and warmup_momentum (0: none)
  double warmup_lr = 0.005, warmup_momentum = 0.5, lr = 0.01, momentum = 0.9;
  double decay = 0.002;    ///< every weight shrinks by this fraction after each update
  double init_range = 0.3; ///< initial weights uniform in [-init_range, init_range]
  bool margin = true;      ///< the paper's 0.8/0.2 margin in the error
  /// The L2 penalty (lambda/2)|w|^2 whose gradient, with momentum alpha and step eps, balances the same
  /// weights as the decay: at a fixed point eps/(1 - alpha) dE/dw = -decay w.
  double equivalent_l2() const { return decay * (1 - momentum) / lr; }
  /// The schedule in words, in lines of at most about 100 characters; the initial weights unless
  /// `continued` (training goes on from weights already there).
  std::string describe(bool continued = false) const {
    const std::string warm = warmup ? fmt::format("eps {} and alpha {} for the first {}, then ", warmup_lr,
                                                  warmup_momentum, warmup)
                                    : "";
    const std::string init =
        continued ? "" : fmt::format("weights uniform in [-{}, {}]; ", init_range, init_range);
    return fmt::format("  {}{} sweeps, {}eps {} and alpha {};\n"
                       "  every weight decremented by {}% after each update (at equilibrium an L2 penalty "
                       "with lambda = {:.3g});\n"
                       "  E = 1/2 sum (y - d)^2{}",
                       init, sweeps, warm, lr, momentum, 100 * decay, equivalent_l2(),
                       margin ? ", no error beyond 0.8 / 0.2" : "");
  }
};

/// SGD with step lr and momentum alpha continuing from `old` (step old_lr): SGD's buffer b gives
/// dw = -lr b, so dw(t) = -lr' g + alpha' dw(t-1) carries on exactly when b is rescaled by old_lr/lr'
/// (changing lr alone would scale the carried-over dw by lr'/old_lr).
std::unique_ptr<gg::optim::SGD> switch_step(const gg::optim::SGD& old, double old_lr, FamilyTrees& net,
                                            double lr, double alpha) {
  gg::optim::StateList state = old.state();
  for (auto& [name, t] : state)
    t = name == "lr" ? Tensor::scalar(lr)
                     : gg::kernel::binary_scalar(gg::kernel::Binary::mul, t, old_lr / lr);
  auto opt = std::make_unique<gg::optim::SGD>(net.parameters(), gg::optim::SGDOptions(lr).momentum(alpha));
  opt->load_state(state);
  return opt;
}

/// What a training run did: E after the last sweep, and the first sweep (a multiple of 10) after which
/// 90 of the 100 training queries were right by the 0.5 test.
struct Trace {
  double error = 0;
  std::optional<int> learned;
};

/// Trains on `train` with schedule s, one update per sweep through all of it (the paper's rule,
/// dw(t) = -eps dE/dw + alpha dw(t-1), then w <- (1 - decay) w).
Trace train(FamilyTrees& net, const Batch& train, const Schedule& s) {
  using gg::optim::SGD, gg::optim::SGDOptions;
  auto opt =
      s.warmup ? std::make_unique<SGD>(net.parameters(), SGDOptions(s.warmup_lr).momentum(s.warmup_momentum))
               : std::make_unique<SGD>(net.parameters(), SGDOptions(s.lr).momentum(s.momentum));
  const Var p = Var::constant(train.persons), r = Var::constant(train.relations),
            d = Var::constant(train.targets);
  const auto n = train.targets.shape()[0];
  Trace trace;
  for (int sweep = 0; sweep < s.sweeps; ++sweep) {
    if (sweep == s.warmup && s.warmup) opt = switch_step(*opt, s.warmup_lr, net, s.lr, s.momentum);
    opt->zero_grad();
    const Var y = net(p, r);
    Var e = y - d;
    if (s.margin) e = e * Var::constant(margin_mask(y.value(), train.targets));
    const Var error = 0.5 * gg::sum(e * e);
    trace.error = error.item();
    error.backward();
    opt->step();
    for (Var& w : net.parameters()) // the paper's decay: w <- (1 - decay) w after each update
      w.set_value(gg::kernel::binary_scalar(gg::kernel::Binary::mul, w.value(), 1 - s.decay));
    if (!trace.learned && (sweep + 1) % 10 == 0 && 10 * count(right_answers(net, train).half) >= 9 * n)
      trace.learned = sweep + 1;
  }
  return trace;
}

/// Generation of each person in `people` (1: the grandparents, 3: the grandchildren).
constexpr std::array<int, 12> generation{1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3};

/// Pearson correlation of two equally long series.
double correlation(const std::vector<double>& a, const std::vector<double>& b) {
  const auto n = static_cast<double>(a.size());
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) ma += a[i] / n, mb += b[i] / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return sab / std::sqrt(saa * sbb);
}

/// The 6 units that encode a person: each person's weights to them, English next to the Italian
/// counterpart, and which unit follows nationality and which generation most closely.
void print_person_codes(FamilyTrees& net) {
  const Tensor w = net.person->weight.value(); // [6, 24]
  std::cout << "what the 6 person-encoding units learned in the first run (weight from each person):\n"
               "              unit 1 2 3 4 5 6                        unit 1 2 3 4 5 6\n";
  for (int i = 0; i < 12; ++i) {
    for (int tree = 0; tree < 2; ++tree) {
      const int k = i + 12 * tree;
      std::cout << fmt::format("  {:<11}", people[static_cast<std::size_t>(k)]);
      for (int u = 0; u < 6; ++u) std::cout << fmt::format(" {:5.1f}", w.flat(24 * u + k));
      std::cout << (tree == 0 ? "   " : "\n");
    }
  }
  std::vector<double> italian, gen;
  for (int k = 0; k < 24; ++k) {
    italian.push_back(k >= 12);
    gen.push_back(generation[static_cast<std::size_t>(k % 12)]);
  }
  // The unit whose weights follow each feature most closely (the paper found units for nationality,
  // generation and the branch of the family).
  std::cout << "the unit whose weights correlate most with\n";
  for (const auto& [feature, values] :
       {std::pair{"nationality (Italian = 1)", italian}, std::pair{"generation", gen}}) {
    int best = 0;
    double best_r = 0;
    for (int u = 0; u < 6; ++u) {
      std::vector<double> unit;
      for (int k = 0; k < 24; ++k) unit.push_back(w.flat(24 * u + k));
      const double r = correlation(unit, values);
      if (std::abs(r) > std::abs(best_r)) best = u, best_r = r;
    }
    std::cout << fmt::format("  {}: unit {} (r = {:+.2f})\n", feature, best + 1, best_r);
  }
}

/// One run: its held-out queries, training and test sets, network, and how its training went.
struct Run {
  std::vector<Query> test_queries;
  Batch train_set, test_set;
  std::unique_ptr<FamilyTrees> net;
  Trace trace;
};

/// Totals over the runs of one schedule.
struct Tally {
  int runs = 0, all_four_half = 0, all_four_rank = 0;
  double error = 0;                       ///< sum over the runs of E after the last sweep
  std::array<int, 3> train{}, held_out{}; ///< right by the margin, 0.5 and rank tests
  std::vector<int> learned;               ///< sweeps to 90 training queries right, for runs that got there
  std::array<std::array<int, 2>, 12> by_relation{}; ///< held-out queries per relation: right by 0.5, all
  /// The mean over the runs of a total.
  double mean(double total) const { return total / runs; }
};

/// Scores the runs' networks, printing a line per run when `per_run`.
Tally score(std::vector<Run>& runs, bool per_run) {
  Tally t;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    Run& run = runs[i];
    const Right tr = right_answers(*run.net, run.train_set), te = right_answers(*run.net, run.test_set);
    std::string held_out;
    for (std::size_t q = 0; q < te.half.size(); ++q) {
      const Query& query = run.test_queries[q];
      held_out += fmt::format("{}{} {} {}", q ? ", " : "", people[static_cast<std::size_t>(query.person)],
                              relations[static_cast<std::size_t>(query.relation)],
                              te.margin[q] ? "+"
                              : te.half[q] ? "o"
                              : te.rank[q] ? "~"
                                           : "x");
      auto& rel = t.by_relation[static_cast<std::size_t>(query.relation)];
      rel[0] += te.half[q] ? 1 : 0, rel[1] += 1;
    }
    const std::array<int, 3> train{count(tr.margin), count(tr.half), count(tr.rank)},
        test{count(te.margin), count(te.half), count(te.rank)};
    const std::optional<int> learned = run.trace.learned;
    if (per_run)
      std::cout << fmt::format(
          "  run {:2d}: E {:5.2f}, 90% at {:>5}, training {:3d} {:3d} {:3d}, held out {} {} {} "
          "({})\n",
          i + 1, run.trace.error, learned ? std::to_string(*learned) : "-", train[0], train[1], train[2],
          test[0], test[1], test[2], held_out);
    t.runs += 1;
    t.error += run.trace.error;
    for (std::size_t k = 0; k < 3; ++k) t.train[k] += train[k], t.held_out[k] += test[k];
    t.all_four_half += test[1] == 4;
    t.all_four_rank += test[2] == 4;
    if (learned) t.learned.push_back(*learned);
  }
  return t;
}

/// The means over the runs: E, training and held-out queries right by the three tests.
std::string summary(const Tally& t) {
  return fmt::format(
      "mean E {:.2f}; training queries right {:.1f} {:.1f} {:.1f} of 100; held-out answers right "
      "{:.0f}% {:.0f}% {:.0f}% of {}",
      t.mean(t.error), t.mean(t.train[0]), t.mean(t.train[1]), t.mean(t.train[2]),
      100 * t.mean(t.held_out[0]) / 4, 100 * t.mean(t.held_out[1]) / 4, 100 * t.mean(t.held_out[2]) / 4,
      4 * t.runs);
}

/// Trains a fresh network per run with schedule s (run i holds out the first 4 of a permutation seeded
/// with i, and draws its initial weights from the same generator), prints a line per run and the totals.
std::vector<Run> run_schedule(const std::vector<Query>& queries, const Schedule& s, int runs, Tally& tally) {
  std::vector<Run> out;
  for (int seed = 1; seed <= runs; ++seed) {
    gg::Rng rng(static_cast<std::uint64_t>(seed));
    const std::vector<std::int64_t> order =
        gg::data::permutation(static_cast<std::int64_t>(queries.size()), rng);
    Run run;
    std::vector<Query> train_queries;
    for (std::size_t i = 0; i < order.size(); ++i)
      (i < 4 ? run.test_queries : train_queries).push_back(queries[static_cast<std::size_t>(order[i])]);
    run.train_set = encode(train_queries);
    run.test_set = encode(run.test_queries);
    run.net = std::make_unique<FamilyTrees>();
    rhw1986::init_uniform(*run.net, s.init_range, rng);
    run.trace = train(*run.net, run.train_set, s);
    out.push_back(std::move(run));
  }
  tally = score(out, true);
  std::cout << fmt::format(
      "  {}\n  90% of the training queries right: {}; all 4 held out right in {} (0.5) and {} "
      "(rank) of {} runs\n",
      summary(tally), rhw1986::sweeps_summary(tally.learned, out.size()), tally.all_four_half,
      tally.all_four_rank, tally.runs);
  return out;
}

/// Held-out answers right by the 0.5 test, per relation, over all runs.
void print_by_relation(const Tally& t) {
  std::cout << "  held out, right by the 0.5 test, per relation:";
  for (std::size_t r = 0; r < 12; ++r)
    if (t.by_relation[r][1])
      std::cout << fmt::format(" {} {}/{}", relations[r], t.by_relation[r][0], t.by_relation[r][1]);
  std::cout << "\n";
}

/// A check of what the header comment says; false (and a line on stderr) when it does not hold.
bool check(bool ok, const std::string& claim) {
  if (!ok) std::cerr << "family_trees: no longer true: " << claim << "\n";
  return ok;
}

/// Trains with the paper's schedule and with one that learns here (`sweeps` long), then continues the
/// latter's networks with the paper's step size and decay; reports all three. 0 when the findings that
/// the header comment states hold.
int run(int runs, int sweeps) {
  const std::string path = GG_DATA_DIR "/family_trees.csv";
  const std::vector<Query> queries = read_queries(path);
  if (queries.size() != 104)
    throw gg::FormatError(fmt::format("expected 104 queries, got {}", queries.size()));
  check_isomorphic(queries, path);
  std::cout << fmt::format(
      "family trees: {} queries (person 1, relation) -> person(s) 2 from data/family_trees.csv; each run "
      "trains\n"
      "  on 100, full batch, and tests on the other 4. Network 24 -> 6, 12 -> 6; 12 -> 12 -> 6 -> 24, "
      "logistic.\n"
      "  Queries right are counted by three tests, in this order: margin (the answers' units > 0.8, all "
      "others\n"
      "  < 0.2), 0.5 (the same with 0.5) and rank (the answers are the largest outputs). Held-out queries: + "
      "right\n"
      "  by all three, o by 0.5 and rank, ~ by rank only, x wrong. \"90% at\": the sweep after which 90 "
      "training\n"
      "  queries were right by the 0.5 test. The paper: all 4 held-out queries right after 1500 sweeps.\n\n",
      queries.size());

  // 1. The schedule of Fig. 4's caption. The initial weights are not given for this network: +-0.3 as
  // for the symmetry network (+-1 and +-3 do no better).
  const Schedule paper;
  std::cout << "1. the paper's schedule (Fig. 4's caption)\n" << paper.describe() << "\n";
  Tally plateau;
  run_schedule(queries, paper, runs, plateau);

  // 2. Five times the step after the warm-up, and larger initial weights: everything else as the paper.
  Schedule fast = paper;
  fast.lr = 0.05;
  fast.init_range = 1;
  fast.sweeps = sweeps;
  std::cout << "\n2. a schedule that learns here: eps 5 times the paper's, initial weights +-1, more sweeps\n"
            << fast.describe() << "\n";
  Tally learned;
  std::vector<Run> trained = run_schedule(queries, fast, runs, learned);
  print_by_relation(learned);
  std::cout << "\n";
  print_person_codes(*trained.front().net);

  // 3. The networks of 2 continued with the paper's eps, alpha and decay: if the paper's numbers could hold
  // a network that answers the training queries, these would stay where they are.
  Schedule slow = paper;
  slow.warmup = 0;
  std::cout << "\n3. the networks of 2 continued with the paper's step and decay\n"
            << slow.describe(true) << "\n";
  for (Run& r : trained) r.trace = train(*r.net, r.train_set, slow);
  const Tally after = score(trained, false);
  std::cout << fmt::format("  before: {}\n  after:  {}\n", summary(learned), summary(after));

  const bool findings =
      check(plateau.train[1] == 0, "the paper's schedule leaves no training query right by the 0.5 test") &
      check(learned.train[1] >= 90 * runs && learned.held_out[2] > 0,
            "the second schedule gets 90 training queries right and some held-out ones") &
      check(after.error > 2 * learned.error && after.train[0] < learned.train[0],
            "the paper's step and decay undo what the second schedule learned");
  return findings ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 3) throw gg::UsageError("usage: family_trees [RUNS] [SWEEPS]");
    const int runs = argc > 1 ? std::stoi(argv[1]) : 20;
    const int sweeps = argc > 2 ? std::stoi(argv[2]) : 10000;
    if (runs < 1 || sweeps < 1) throw gg::UsageError("RUNS and SWEEPS must be at least 1");
    return run(runs, sweeps);
  } catch (const std::exception& e) {
    std::cerr << "family_trees: " << e.what() << "\n";
    return 2;
  }
}
