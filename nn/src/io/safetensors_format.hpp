// Internal to gg::safetensors: what the reader and the writer share about the format: its dtypes
// (name, size), the little-endian byte order and the FormatError text.
#pragma once

#include <autodiff/error.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <string_view>

namespace gg::safetensors::detail {

inline constexpr bool big_endian_host = std::endian::native == std::endian::big;

/// Throws FormatError "safetensors file 'FILE': WHAT".
[[noreturn]] void format_error(std::string_view file, std::string_view what);

/// v with its bytes reversed (the format is little-endian; a big-endian host swaps).
template <class T> T byteswap_value(T v) {
  auto bytes = std::bit_cast<std::array<unsigned char, sizeof(T)>>(v);
  std::reverse(bytes.begin(), bytes.end());
  return std::bit_cast<T>(bytes);
}

/// The stored element types of the format, with their names and sizes in bytes.
enum class StoredType { f64, f32, f16, bf16, i64, i32, i16, i8, u64, u32, u16, u8, boolean };

struct StoredTypeInfo {
  std::string_view name;
  StoredType type;
  std::size_t size;
};

inline constexpr std::array<StoredTypeInfo, 13> stored_types{{{"F64", StoredType::f64, 8},
                                                              {"F32", StoredType::f32, 4},
                                                              {"F16", StoredType::f16, 2},
                                                              {"BF16", StoredType::bf16, 2},
                                                              {"I64", StoredType::i64, 8},
                                                              {"I32", StoredType::i32, 4},
                                                              {"I16", StoredType::i16, 2},
                                                              {"I8", StoredType::i8, 1},
                                                              {"U64", StoredType::u64, 8},
                                                              {"U32", StoredType::u32, 4},
                                                              {"U16", StoredType::u16, 2},
                                                              {"U8", StoredType::u8, 1},
                                                              {"BOOL", StoredType::boolean, 1}}};

/// Dtypes of the format (current and recent versions) that gradgraph does not convert.
inline constexpr std::array<std::string_view, 8> unsupported_types{"F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",
                                                                   "F6_E2M3", "F6_E3M2", "C64",     "C128"};

} // namespace gg::safetensors::detail
