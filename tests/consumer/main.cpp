// Uses the installed package: differentiates f = (x + y) * z and checks the gradients.
#include <autodiff/autodiff.hpp>

#include <cstdio>

int main() {
  gg::Var x = -2.0, y = 5.0, z = -4.0;
  gg::Var f = (x + y) * z;
  f.backward();
  const bool ok = f.item() == -12 && x.grad().item() == -4 && y.grad().item() == -4 && z.grad().item() == 3;
  std::printf("consumer: f = %g, %s\n", f.item(), ok ? "gradients right" : "GRADIENTS WRONG");
  return ok ? 0 : 1;
}
