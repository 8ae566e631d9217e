// Fuzz target: the safetensors loader (gg::safetensors::parse). The input is the file's bytes.
// Anything but a gg::Error is a finding. A file that loads and holds only F32/F64 tensors must
// survive a round trip: serialize() then parse() gives the same names, shapes and bytes.
#include <nn/io/safetensors.hpp>

#include <autodiff/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace st = gg::safetensors;
  st::File file;
  try {
    file = st::parse(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
  } catch (const gg::Error&) {
    return 0;
  }
  std::string again;
  try {
    again = st::serialize(file.tensors, file.metadata);
  } catch (const gg::ValueError&) {
    return 0; // names save() refuses (an empty name) are not a round-trip failure
  }
  const st::File back = st::parse(again, "round trip");
  if (back.tensors.size() != file.tensors.size() || back.metadata != file.metadata) __builtin_trap();
  for (const auto& [name, t] : file.tensors) {
    const gg::Tensor& u = back.at(name);
    const std::size_t bytes = static_cast<std::size_t>(t.numel()) * gg::dtype_size(t.dtype());
    if (!(u.shape() == t.shape()) || u.dtype() != t.dtype() ||
        (bytes && std::memcmp(u.raw(), t.raw(), bytes) != 0))
      __builtin_trap();
  }
  return 0;
}
