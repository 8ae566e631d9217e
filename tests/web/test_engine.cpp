// The page's engine natively (the same C++ the page runs as WebAssembly): explain replies agree with
// `gradgraph explain --json --check`, steps carry the chain rule's numbers, errors carry the CLI's
// messages and positions, sizes are refused, and the playground trains, draws regions and explains
// one sample with the model's own weights.
#include <catch2/catch.hpp>

#include <web/engine/engine.hpp>
#include <web/engine/explorer.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../cli/cli_test.hpp"
#include <cli/src/json.hpp>
#include <cli/src/optimizers.hpp>

using gg::cli::json::Value;

namespace {

Value call(const std::string& method, const Value& request) {
  return Value::parse(gg::web::call(method, gg::cli::json::dump(request)));
}

/// A number of a reply ([full, short]) or of --json (a number or "nan"/"inf"/"-inf") as a double.
double as_double(const Value& v) {
  if (v.is_array()) return as_double(v[0]);
  if (v.is_string()) return std::stod(v.get<std::string>());
  return v.get<double>();
}

bool same(double a, double b) {
  return a == b || (std::isnan(a) && std::isnan(b));
}

struct Example {
  std::string program;
  std::vector<std::pair<std::string, std::string>> inputs;
};

const std::vector<Example>& examples() {
  static const std::vector<Example> list{
      {"q = x + y; f = q * z", {{"x", "-2"}, {"y", "5"}, {"z", "-4"}}},
      {"a = x * y; f = a + x", {{"x", "3"}, {"y", "2"}}},
      {"z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x", {{"x", "-4"}}},
      {"n = x1*w1 + x2*w2 + b; o = tanh(n)",
       {{"x1", "2"}, {"x2", "0"}, {"w1", "-3"}, {"w2", "1"}, {"b", "6.8813735870195432"}}},
      {"d = w0 + w1*x1 + w2*x2; p = sigmoid(d); loss = -log(p)",
       {{"w0", "-1"}, {"w1", "2"}, {"w2", "-1"}, {"x1", "0.5"}, {"x2", "0.25"}}},
  };
  return list;
}

Value explain_request(const Example& x) {
  Value inputs = Value::object();
  for (const auto& [name, text] : x.inputs) inputs[name] = text;
  return {{"program", x.program}, {"inputs", inputs}, {"check", true}};
}

} // namespace

TEST_CASE("explain: every value, gradient and check is the one explain --json --check prints") {
  for (const Example& x : examples()) {
    INFO(x.program);
    std::vector<std::string> args{"explain", "--json", "--check", x.program};
    for (const auto& [name, text] : x.inputs) args.push_back(name + "=" + text);
    const gg::cli::test::Result cli = gg::cli::test::run(args);
    REQUIRE(cli.code == 0);
    const Value expected = Value::parse(cli.out);
    const Value r = call("explain", explain_request(x));
    REQUIRE_FALSE(r.contains("error"));
    CHECK(r["output"] == expected["output"]);
    REQUIRE(r["names"].size() == expected["values"].size());
    for (const Value& n : r["names"]) {
      const std::string name = r["nodes"][n["node"].get<std::size_t>()]["name"];
      INFO(name);
      CHECK(n["value"][0].get<std::string>() == gg::cli::json::dump(expected["values"][name]));
      CHECK(n["grad"][0].get<std::string>() == gg::cli::json::dump(expected["grads"][name]));
      CHECK(n["check"][0].get<std::string>() == gg::cli::json::dump(expected["check"][name]));
      CHECK(n["agrees"] == true);
    }
  }
}

TEST_CASE("explain: the forward steps substitute the operands' values, the backward steps chain them") {
  const Value r = call("explain", explain_request(examples()[0])); // q = x + y; f = q * z
  const Value& nodes = r["nodes"];
  REQUIRE(nodes.size() == 5); // x, y, z, q, f
  CHECK(nodes[3]["name"] == "q");
  CHECK(nodes[3]["definition"] == "x + y");
  CHECK(nodes[3]["substituted"] == "-2 + 5");
  CHECK(nodes[3]["value"][0] == "3");
  CHECK(nodes[4]["substituted"] == "3 * (-4)");
  CHECK(nodes[4]["value"][0] == "-12");
  // backward: f first (upstream 1), then q
  const Value& back = r["backward"];
  REQUIRE(back.size() == 2);
  CHECK(nodes[back[0]["node"].get<std::size_t>()]["name"] == "f");
  CHECK(back[0]["upstream"][0] == "1");
  for (const Value& step : back)
    for (const Value& e : step["edges"]) {
      CHECK(same(as_double(e["product"]), as_double(e["upstream"]) * as_double(e["local"])));
      CHECK(same(as_double(e["accumulated"]), as_double(e["previous"]) + as_double(e["product"])));
      CHECK(r["edges"][e["edge"].get<std::size_t>()]["to"] == step["node"]);
    }
  // d f/d q = z = -4 on the edge q -> f
  bool found = false;
  for (const Value& e : r["edges"])
    if (e["from"] == 3 && e["to"] == 4) {
      CHECK(e["formula"] == "z");
      CHECK(e["local"][0] == "-4");
      found = true;
    }
  CHECK(found);
  CHECK(r["dot"].get<std::string>().find("digraph") != std::string::npos);
}

TEST_CASE("explain: at a fan-out the gradient is the running sum of its contributions") {
  const Value r = call("explain", explain_request(examples()[1])); // a = x * y; f = a + x
  std::vector<Value> into_x;
  for (const Value& step : r["backward"])
    for (const Value& e : step["edges"])
      if (r["nodes"][e["input"].get<std::size_t>()]["name"] == "x") into_x.push_back(e);
  REQUIRE(into_x.size() == 2);
  CHECK(into_x[0]["contribution"] == 1);
  CHECK(into_x[1]["contribution"] == 2);
  CHECK(into_x[1]["contributions"] == 2);
  CHECK(into_x[1]["previous"][0] == into_x[0]["accumulated"][0]);
  CHECK(into_x[1]["accumulated"][0] == "3"); // 1 + y
}

TEST_CASE("explain: the first value and gradient that are not finite are named") {
  const Value r =
      call("explain", {{"program", "a = log(x); f = a * y"}, {"inputs", {{"x", "0"}, {"y", "2"}}}});
  REQUIRE_FALSE(r.contains("error"));
  const Value& bad = r["nonfinite"]["value"];
  REQUIRE(bad.is_object());
  CHECK(r["nodes"][bad["node"].get<std::size_t>()]["name"] == "a");
  CHECK(r["nonfinite"]["grad"].is_object());
}

TEST_CASE("explain: errors are the CLI's, with the position the editor marks") {
  const Value r = call("explain", {{"program", "q = x + ; f = q"}});
  REQUIRE(r.contains("error"));
  const gg::cli::test::Result cli = gg::cli::test::run({"explain", "q = x + ; f = q", "x=1"});
  CHECK(r["error"]["exit_code"] == cli.code);
  CHECK(r["error"]["kind"] == "format");
  CHECK(cli.err == "gradgraph explain: " + r["error"]["message"].get<std::string>() + "\n");
  CHECK(r["error"]["line"] == 1);
  CHECK(r["error"]["column"] == 9);

  const Value two = call("explain", {{"program", "a = x;\nb = a +* 2"}});
  CHECK(two["error"]["line"] == 2);
  CHECK(two["error"]["column"] == 8);

  const Value value = call("explain", {{"program", "f = x * 2"}, {"inputs", {{"x", "0,5"}}}});
  CHECK(value["error"]["kind"] == "usage");
  CHECK(value["error"]["message"].get<std::string>().find("use a dot for decimals") != std::string::npos);

  CHECK(call("explain", {{"program", "f = nosuch(x)"}})["error"]["kind"] == "value");
  CHECK(call("nosuch", Value::object())["error"]["kind"] == "usage");
  CHECK(Value::parse(gg::web::call("explain", "not json"))["error"]["kind"] == "format");
}

TEST_CASE("explain: a program over the page's size is refused before it is evaluated") {
  std::string program = "f = x";
  for (int i = 0; i < 100'000; ++i) program += " + x";
  const Value r = call("explain", {{"program", program}});
  REQUIRE(r.contains("error"));
  CHECK(r["error"]["kind"] == "value");
  CHECK(r["error"]["message"].get<std::string>().find(fmt::format("at most {}", gg::web::k_max_page_nodes)) !=
        std::string::npos);
}

TEST_CASE("playground: the triangle trains to at least 0.95 accuracy, with regions and one sample") {
  const Value opts = call("playground.options", Value::object());
  const Value created = call("playground.create", {{"dataset", "triangle"},
                                                   {"activation", "tanh"},
                                                   {"loss", "cross-entropy"},
                                                   {"optimizer", "adam"},
                                                   {"hidden", "8"},
                                                   {"params", {{"lr", "0.05"}}}});
  REQUIRE_FALSE(created.contains("error"));
  CHECK(created["parameters"] == 2 * 8 + 8 + 8 * 2 + 2);
  CHECK(created["points"].size() == 200);
  double accuracy = 0;
  for (int k = 0; k < 20 && accuracy < 0.95; ++k) {
    const Value t = call("playground.train", {{"steps", 50}});
    REQUIRE_FALSE(t.contains("error"));
    CHECK(t["losses"].size() == 50);
    accuracy = as_double(t["accuracy"]);
  }
  CHECK(accuracy >= 0.95);

  const Value grid = call("playground.grid", {{"size", 10}});
  CHECK(grid["classes"].size() == 100);
  CHECK(grid["confidence"].size() == 100);

  const Value s = call("playground.sample", {{"index", 3}});
  REQUIRE_FALSE(s.contains("error"));
  const Value& ex = s["explain"];
  CHECK(ex["output"] == "loss");
  for (const Value& n : ex["names"]) CHECK(n["agrees"] == true); // the graph's gradients against differences
}

TEST_CASE("playground: absurd sizes and bad values are refused with a message") {
  const Value base{{"dataset", "xor"}, {"activation", "relu"}, {"loss", "mse"}, {"optimizer", "sgd"}};
  Value wide = base;
  wide["hidden"] = "10000";
  const Value r = call("playground.create", wide);
  REQUIRE(r.contains("error"));
  CHECK(r["error"]["message"].get<std::string>().find("units per layer") != std::string::npos);
  Value bad_lr = base;
  bad_lr["params"] = {{"lr", "-1"}};
  CHECK(call("playground.create", bad_lr)["error"]["kind"] == "value");
  Value bad_noise = base;
  bad_noise["noise"] = "lots";
  CHECK(call("playground.create", bad_noise)["error"]["kind"] == "usage");
  CHECK(call("playground.train", {{"steps", 1e9}})["error"].is_object());
}

TEST_CASE("playground: the optimizers, their hyper-parameters and defaults, and the messages for bad "
          "values are gradgraph train's") {
  const Value opts = call("playground.options", Value::object());
  const auto& kinds = gg::cli::optimizer_kinds();
  REQUIRE(opts["optimizers"].size() == kinds.size());
  std::vector<std::string> names;
  for (std::size_t k = 0; k < kinds.size(); ++k) {
    const Value& o = opts["optimizers"][k];
    names.push_back(o["name"].get<std::string>());
    CHECK(names.back() == kinds[k].name);
    std::vector<std::string> params, expected;
    for (const Value& p : o["params"]) params.push_back(p["name"].get<std::string>());
    for (const gg::cli::HyperParameter& p : kinds[k].parameters) expected.emplace_back(p.name);
    if (names.back() != "gd") expected.emplace_back("batch-size"); // gd takes the whole data
    CHECK(params == expected);
    // the learning rate the page starts with is train's for a generated dataset (adam: 0.05)
    CHECK(as_double(o["params"][0]["default"]) == kinds[k].generated_lr);
  }
  for (const char* course : {"gd", "sgd", "momentum", "rmsprop", "adam", "adagrad", "adadelta", "nadam"})
    CHECK(std::count(names.begin(), names.end(), course) == 1);

  // A value typed into a field is refused with the message train gives the same option's value.
  const Value base{{"dataset", "xor"}, {"activation", "relu"}, {"loss", "cross-entropy"}, {"hidden", "4"}};
  const std::vector<std::vector<std::string>> bad{{"adam", "lr", "abc"},
                                                  {"adam", "lr", "0,5"},
                                                  {"adam", "lr", "-1"},
                                                  {"adam", "beta1", "1.5"},
                                                  {"nadam", "eps", "nan"},
                                                  {"rmsprop", "alpha", "-0.5"},
                                                  {"sgd", "momentum", "-1"},
                                                  {"adagrad", "lr-decay", "-1"},
                                                  {"adadelta", "rho", "2"},
                                                  {"adam", "weight-decay", "-1"},
                                                  {"nadam", "momentum-decay", "-1"}};
  for (const auto& b : bad) {
    Value rq = base;
    rq["optimizer"] = b[0];
    rq["params"] = {{b[1], b[2]}};
    const Value r = call("playground.create", rq);
    REQUIRE(r.contains("error"));
    const gg::cli::test::Result cli =
        gg::cli::test::run({"train", "--dataset", "xor", "--layers", "2,4,2", "--epochs", "1", "--optimizer",
                            b[0], "--" + b[1], b[2]});
    CHECK(fmt::format("gradgraph train: {}\n", r["error"]["message"].get<std::string>()) == cli.err);
    CHECK(r["error"]["exit_code"] == cli.code);
  }
  Value flag = base;
  flag["optimizer"] = "sgd";
  flag["params"] = {{"nesterov", "yes"}};
  CHECK(call("playground.create", flag)["error"]["message"] == "--nesterov 'yes': use true or false");
  flag["params"] = {{"nesterov", "true"}, {"momentum", "0.9"}};
  CHECK_FALSE(call("playground.create", flag).contains("error"));
  Value samples = base;
  samples["optimizer"] = "adam";
  samples["samples"] = "2.5";
  CHECK(call("playground.create", samples)["error"]["message"] == "--samples '2.5': not a whole number");
}

TEST_CASE("explain: in a large graph an input used by many nodes is drawn beside each of them") {
  // 64 statements reading 5 weights and 3 biases (used 12 to 22 times each) and x (once)
  std::string program;
  for (int k = 1; k <= 64; ++k)
    program += fmt::format("a{} = tanh({} * w{} + b{}); ", k, k == 1 ? "x" : fmt::format("a{}", k - 1), k % 5,
                           k % 3);
  program.resize(program.size() - 2);
  const Value r = call("explain", {{"program", program}, {"inputs", {{"x", "0.5"}}}});
  REQUIRE_FALSE(r.contains("error"));
  const std::string dot = r["dot"].get<std::string>();
  const Value& nodes = r["nodes"];
  std::size_t copies = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    std::size_t uses = 0;
    for (const Value& e : r["edges"]) uses += e["from"] == i;
    const bool shared = nodes[i]["kind"] == "input" && uses > 3;
    // a shared input: no node of its own, one copy per use, linked by their ids n<i>c<k>
    CHECK((dot.find(fmt::format("\nn{} [", i)) == std::string::npos) == shared);
    if (!shared) continue;
    for (std::size_t k = 0; k < uses; ++k)
      CHECK(dot.find(fmt::format("n{}c{} [", i, k)) != std::string::npos);
    CHECK(dot.find(fmt::format("n{}c{} [", i, uses)) == std::string::npos);
    copies += uses;
  }
  CHECK(copies == 64 * 2); // every use of the 8 weights and biases
  // every edge keeps its id (the page finds its local derivative by it)
  for (std::size_t k = 0; k < r["edges"].size(); ++k)
    CHECK(dot.find(fmt::format("[id=e{},", k)) != std::string::npos);
  // a small graph keeps one node per input (micrograd's x has four uses)
  const Value small = call("explain", explain_request(examples()[2]));
  CHECK(small["dot"].get<std::string>().find("c0 [") == std::string::npos);
}
