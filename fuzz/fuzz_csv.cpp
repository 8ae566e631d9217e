// Fuzz target: the CSV dataset reader (gg::data::parse_csv). The first byte chooses the options
// (target kind, delimiter, target column by index or by name); the rest is the file's text.
// Anything but a gg::Error is a finding; a dataset read must have consistent shapes.
#include <nn/data/csv.hpp>

#include <autodiff/error.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  gg::data::CsvOptions options;
  options.target = static_cast<gg::data::Target>(mode % 3);
  constexpr char delimiters[] = {',', ';', '\t', ' '};
  options.delimiter = delimiters[(mode / 3) % 4];
  switch ((mode / 12) % 4) {
  case 0: options.target_index = -1; break;
  case 1: options.target_index = 0; break;
  case 2: options.target_index = 1; break;
  default: options.target_name = "label"; break;
  }
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const gg::data::Dataset ds = gg::data::parse_csv(text, "fuzz.csv", options);
    const auto n = ds.x.shape()[0];
    if (ds.x.shape().rank() != 2 || ds.y.shape().rank() != 1 || ds.y.shape()[0] != n || n < 1 ||
        ds.x.shape()[1] + 1 < 2 || static_cast<std::size_t>(ds.x.shape()[1]) != ds.feature_names.size())
      __builtin_trap();
    for (std::int64_t i = 0; i < ds.y.numel(); ++i) {
      const double y = ds.y.flat(i);
      if (options.target != gg::data::Target::values && (y < 0 || y >= static_cast<double>(ds.num_classes)))
        __builtin_trap();
    }
  } catch (const gg::Error&) {
  }
  return 0;
}
