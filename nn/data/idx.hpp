// Reading IDX files (the MNIST format), plain or gzip-compressed, and loading MNIST-style datasets
// such as Fashion-MNIST from Debian's dataset-fashion-mnist package. The header is validated before
// any allocation; a malformed or truncated file is a gg::FormatError "FILE: what".
#pragma once

#include <nn/data/datasets.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gg::data {

/// The element type code of an IDX file (its magic number's third byte).
enum class IdxType : std::uint8_t {
  u8 = 0x08,
  i8 = 0x09,
  i16 = 0x0B,
  i32 = 0x0C,
  f32 = 0x0D,
  f64 = 0x0E,
};

/// "unsigned byte", "signed byte", "int16", "int32", "float32" or "float64".
std::string_view idx_type_name(IdxType type);

/// An IDX file's header: element type and dimensions.
struct IdxHeader {
  IdxType type = IdxType::u8;
  std::vector<std::int64_t> dims;
};

/// Reads an IDX file (gzip-compressed when it starts with the bytes 1f 8b) into a tensor of the
/// file's dimensions, values as stored, converted to dtype. A missing file is a gg::IOError; float
/// data holding NaN or infinity (or beyond float32's range, read as float32) is a FormatError
/// naming the element, as in the CSV reader.
Tensor read_idx(const std::string& path, DType dtype = f64);
/// Reads only the header of an IDX file (plain or gzip), without reading its data.
IdxHeader read_idx_header(const std::string& path);
/// Parses IDX bytes (plain or gzip) already in memory; `source_name` names them in error messages.
Tensor parse_idx(std::span<const std::byte> bytes, std::string_view source_name, DType dtype = f64);

/// Pixel values 0..255 divided by 255, giving [0, 1] (keeps the dtype).
Tensor scale_pixels(const Tensor& images);

/// Where Debian's dataset-fashion-mnist package installs its files.
inline constexpr std::string_view fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

/// The ten Fashion-MNIST class names: "T-shirt/top", "Trouser", ..., "Ankle boot".
const std::vector<std::string>& fashion_mnist_classes();

/// An IDX dataset from two files: images (or any examples) [n, ...] flattened to x = [n, features],
/// unsigned bytes scaled to [0, 1]; labels a 1-d integer array of n class ids.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path, DType dtype = f64);

/// Loads an MNIST-layout directory (train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz],
/// or the t10k-* files when train is false): x = images [n, rows*cols] scaled to [0, 1], y = labels
/// [n], num_classes = 10. Works for MNIST and Fashion-MNIST alike.
Dataset load_mnist(const std::string& dir, bool train, DType dtype = f64);

/// load_mnist on Fashion-MNIST (default: Debian's package directory), with its class names.
/// float64 training images take 60000 x 784 x 8 bytes = 376 MB; pass gg::f32 to halve that.
Dataset load_fashion_mnist(const std::string& dir = std::string(fashion_mnist_dir), bool train = true,
                           DType dtype = f64);

} // namespace gg::data
