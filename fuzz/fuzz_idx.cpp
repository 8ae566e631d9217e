// Fuzz target: the IDX reader (gg::data::parse_idx), plain and gzip-compressed. The first byte
// chooses float64 or float32 output; the rest is the file's bytes. Anything but a gg::Error is a
// finding; a tensor read must hold exactly the header's element count.
#include <nn/data/idx.hpp>

#include <autodiff/error.hpp>

#include <cstddef>
#include <cstdint>
#include <span>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const gg::DType dtype = data[0] % 2 ? gg::f32 : gg::f64;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  try {
    const gg::Tensor t = gg::data::parse_idx(bytes, "fuzz.idx", dtype);
    if (t.dtype() != dtype || t.rank() < 1) __builtin_trap();
  } catch (const gg::Error&) {
  }
  return 0;
}
