// The chain rule on the smallest interesting graph (the cs231n example): q = x + y, f = q * z.
// Prints the forward values, each step backward takes, the gradients, and writes the graph as
// Graphviz DOT (render it with: dot -Tsvg chain_rule.dot -o chain_rule.svg).
#include <autodiff/autodiff.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include <fmt/format.h>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "chain_rule.dot";

  gg::Var x = -2.0, y = 5.0, z = -4.0;
  x.name("x"), y.name("y"), z.name("z");
  gg::Var q = (x + y).name("q");
  gg::Var f = (q * z).name("f");
  fmt::print("forward:  x = {}, y = {}, z = {}\n          q = x + y = {}\n          f = q * z = {}\n\n",
             x.item(), y.item(), z.item(), q.item(), f.item());

  // Backward walks the graph from f to the leaves: each edge multiplies the gradient arriving at a
  // node (upstream) by the node's local derivative and adds the product to the input's gradient.
  fmt::print("backward, one chain-rule step per edge:\n{}\n", gg::format_trace(gg::trace_backward(f)));

  f.backward();
  fmt::print("gradients: df/dx = {}, df/dy = {}, df/dz = {}, df/dq = {}\n", x.grad().item(), y.grad().item(),
             z.grad().item(), q.grad().item());

  // Written to a temporary file and renamed, so a reader never sees half a graph.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    gg::write_dot(out, f);
    if (!out.flush()) {
      fmt::print(stderr, "error: cannot write {}\n", tmp);
      return 1;
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    fmt::print(stderr, "error: cannot rename {} to {}\n", tmp, path);
    return 1;
  }
  fmt::print("wrote {} (render it with: dot -Tsvg {} -o chain_rule.svg)\n", path, path);
}
