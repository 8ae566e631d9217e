// Attention's kernel: the scores of scaled dot-product attention turned into weights in one pass per
// row — scaled, masked (an additive mask and/or the causal triangle) and softmaxed, max first.
#include <cmath>
#include <limits>

#include "loops.hpp"
#include "vecmath.hpp"

namespace gg::kernel {

using detail::Index;

void scaled_masked_softmax(Tensor& scores, double scale, const Tensor& mask, bool causal) {
  const Index batch = scores.shape()[0], rows = scores.shape()[1], cols = scores.shape()[2];
  const bool per_item = mask.defined() && mask.rank() == 3; // [batch, rows, cols], else [rows, cols]
  detail::dispatch(scores.dtype(), [&](auto tag) {
    using T = decltype(tag);
    constexpr T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    T* s = scores.data<T>();
    const T* m = mask.defined() ? mask.data<T>() : nullptr;
    const T sc = static_cast<T>(scale);
    detail::parallel_range(
        batch * rows,
        [&](Index lo, Index hi) {
          for (Index r = lo; r < hi; ++r) {
            T* row = s + r * cols;
            const T* add = m ? m + (per_item ? r : r % rows) * cols : nullptr;
            const Index allowed =
                causal ? std::min(cols, r % rows + 1) : cols; // top-left aligned, as PyTorch
            T mx = -inf;
            for (Index j = 0; j < allowed; ++j) {
              T v = row[j] * sc;
              if (add) v += add[j];
              row[j] = v;
              if (v > mx || v != v) mx = v;
            }
            if (mx != mx || mx == -inf) { // NaN, or nothing to attend to: undefined, as PyTorch's softmax
              for (Index j = 0; j < cols; ++j) row[j] = nan;
              continue;
            }
            detail::vec_exp_shifted(row, mx, row, allowed); // exp(row - mx) in one pass
            const T inv = static_cast<T>(1 / detail::sum_contiguous(row, allowed));
            for (Index j = 0; j < allowed; ++j) row[j] *= inv;
            for (Index j = allowed; j < cols; ++j) row[j] = T(0);
          }
        },
        detail::k_transcendental_cost * cols);
  });
}

} // namespace gg::kernel
