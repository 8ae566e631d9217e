// Internal to gg::optim: the floating-point mode of its source files. Include it FIRST (before any
// other header), so every function of the file, inlined library code included, is compiled alike.
#pragma once

// PyTorch rounds each multiply and each add separately, except where its kernels call an FMA
// (update.hpp mirrors those with std::fma). GCC fuses a*b + c into an FMA on its own in C++ (its
// default is -ffp-contract=fast outside ISO C), which changes last bits: off here, so updates,
// schedules and norms round exactly as PyTorch's do (tested bit for bit).
// The update loops are branch-free so they vectorize, but GCC vectorizes std::sqrt only under
// -fno-math-errno, which a pragma cannot set: the build should pass it (it changes no result).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
