// Tests of gg::safetensors: round trips, the official writer's byte layout, fixtures PyTorch wrote
// (tests/nn/data/make_safetensors_fixture.py), dtype conversion, one test per kind of malformed file
// with its message, and atomic saving (old file intact, no temporary file left) when a write fails.
#include <nn/io/safetensors.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"

using namespace gg;
namespace st = gg::safetensors;
namespace fs = std::filesystem;
using Catch::Contains;
using gg::test::read_file;
using gg::test::TempDir;
using gg::test::write_file;

namespace {

/// n as 8 little-endian bytes.
std::string le64(std::uint64_t n) {
  std::string out(8, '\0');
  for (int k = 0; k < 8; ++k) out[static_cast<std::size_t>(k)] = static_cast<char>((n >> (8 * k)) & 0xFF);
  return out;
}

/// A file: the header length, the header, then data.
std::string file_bytes(const std::string& header, const std::string& data = {}) {
  return le64(header.size()) + header + data;
}

std::string f32_bytes(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

/// The message of the E that f throws (the test fails if it throws nothing; another type propagates).
template <class E, class F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("no exception was thrown");
  return {};
}

/// The message parse() gives for bytes named "bad.safetensors".
std::string parse_error(const std::string& bytes) {
  return error_of<FormatError>([&] { st::parse(bytes, "bad.safetensors"); });
}

void require_same(const Tensor& got, const Tensor& want) {
  REQUIRE(got.dtype() == want.dtype());
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.to_vector() == want.to_vector());
}

bool has_temp_file(const TempDir& dir) {
  const auto names = dir.entries();
  return std::any_of(names.begin(), names.end(),
                     [](const std::string& n) { return n.find(".gradgraph-tmp-") != n.npos; });
}

/// One line of safetensors_values.txt: a tensor the fixture script stored, with its exact values.
struct Expected {
  std::string file, name;
  std::vector<std::int64_t> shape;
  std::vector<double> values;
};

std::vector<Expected> fixture_values() {
  std::ifstream in(std::string(GG_TEST_DATA) + "/safetensors_values.txt");
  REQUIRE(in);
  std::vector<Expected> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    Expected e;
    std::string shape;
    is >> e.file >> e.name >> shape;
    REQUIRE(shape.size() >= 2);
    std::istringstream dims(shape.substr(1, shape.size() - 2));
    for (std::string d; std::getline(dims, d, ',');) e.shape.push_back(std::stoll(d));
    for (std::string v; is >> v;) e.values.push_back(std::strtod(v.c_str(), nullptr));
    out.push_back(std::move(e));
  }
  return out;
}

} // namespace

TEST_CASE("safetensors: float64 and float32 tensors of ranks 0 to 4 round-trip with metadata") {
  TempDir dir("safetensors");
  Rng rng(7);
  std::vector<std::pair<std::string, Tensor>> tensors;
  const std::vector<Shape> shapes{Shape{}, Shape{5}, Shape{2, 3}, Shape{2, 1, 4}, Shape{3, 2, 2, 2}};
  for (std::size_t r = 0; r < shapes.size(); ++r) {
    tensors.emplace_back(fmt::format("layer{}.f64", r), Tensor::randn(shapes[r], rng, f64));
    tensors.emplace_back(fmt::format("layer{}.f32", r), Tensor::randn(shapes[r], rng, f32));
  }
  tensors.emplace_back("empty", Tensor::zeros(Shape{0, 3}, f32));
  tensors.emplace_back("special", Tensor({1e308, -0.0, 5e-324, std::numeric_limits<double>::infinity(),
                                          std::numeric_limits<double>::quiet_NaN()},
                                         {5}));
  tensors.emplace_back("na\"me\\ with \n odd \x01 characters é", Tensor::scalar(3, f32));
  const std::map<std::string, std::string> metadata{
      {"format", "pt"}, {"quote\"back\\slash", "line\nbreak\ttab\x1f é 😀"}, {"", ""}};

  const std::string path = dir / "model.safetensors";
  st::save(path, tensors, metadata);
  REQUIRE(dir.entries() == std::vector<std::string>{"model.safetensors"});
  REQUIRE(read_file(path) == st::serialize(tensors, metadata));

  const st::File file = st::load(path);
  REQUIRE(file.path == path);
  REQUIRE(file.metadata == metadata);
  REQUIRE(file.tensors.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    INFO(name);
    REQUIRE(file.contains(name));
    const Tensor& got = file.at(name);
    REQUIRE(got.dtype() == t.dtype());
    REQUIRE(got.shape() == t.shape());
    const auto a = got.to_vector(), b = t.to_vector();
    for (std::size_t k = 0; k < a.size(); ++k) {
      if (std::isnan(b[k]))
        REQUIRE(std::isnan(a[k]));
      else
        REQUIRE(std::memcmp(&a[k], &b[k], sizeof(double)) == 0); // bit-exact, -0.0 included
    }
  }

  SECTION("an empty list of tensors") {
    st::save(path, {});
    const st::File empty = st::load(path);
    REQUIRE(empty.tensors.empty());
    REQUIRE(empty.metadata.empty());
  }
}

TEST_CASE("safetensors: the writer lays bytes out exactly as the official writer does") {
  // The byte strings of the official implementation's own unit tests (safetensors/src/tensor.rs).
  const std::string data = f32_bytes({0, 1, 2, 3, 4, 5});
  const Tensor t({0, 1, 2, 3, 4, 5}, {1, 2, 3}, f32);
  REQUIRE(st::serialize({{"attn.0", t}}) ==
          le64(64) + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" + data);
  REQUIRE(st::serialize({{"attn0", t.reshape({1, 1, 2, 3})}}) ==
          le64(72) + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" + "       " +
              data);
  REQUIRE(st::serialize({}) == le64(8) + "{}      ");
  REQUIRE(st::serialize({}, {{"framework", "pt"}}) ==
          le64(40) + R"({"__metadata__":{"framework":"pt"}})" + "     ");

  // Larger alignment first, then by name, whatever order the caller gives.
  const std::string mixed = st::serialize({{"b", Tensor::scalar(1, f32)},
                                           {"z", Tensor::scalar(2)},
                                           {"a", Tensor::scalar(3, f32)},
                                           {"c", Tensor::scalar(4)}});
  const std::string header = mixed.substr(8, mixed.find('}', mixed.find("\"a\"")) + 2 - 8);
  REQUIRE(mixed.find("\"c\"") < mixed.find("\"z\""));
  REQUIRE(mixed.find("\"z\"") < mixed.find("\"a\""));
  REQUIRE(mixed.find("\"a\"") < mixed.find("\"b\""));
  REQUIRE_FALSE(header.empty());

  // The fixture the script laid out the official way comes back byte for byte.
  const std::string path = std::string(GG_TEST_DATA) + "/sequential_f32.safetensors";
  const st::File f = st::load(path);
  REQUIRE(st::serialize(f.tensors, f.metadata) == read_file(path));
}

TEST_CASE("safetensors: reads exactly the values PyTorch stored in the fixtures") {
  const std::vector<Expected> expected = fixture_values();
  REQUIRE(expected.size() == 18);
  std::map<std::string, st::File> files;
  for (const char* name : {"sequential_f32.safetensors", "sequential_f64.safetensors", "dtypes.safetensors"})
    files.emplace(name, st::load(std::string(GG_TEST_DATA) + "/" + name));

  for (const Expected& e : expected) {
    INFO(e.file << " " << e.name);
    const Tensor& t = files.at(e.file).at(e.name);
    REQUIRE(t.shape() == Shape(e.shape));
    REQUIRE(t.to_vector() == e.values);
  }

  const st::File& f32_file = files.at("sequential_f32.safetensors");
  const st::File& f64_file = files.at("sequential_f64.safetensors");
  REQUIRE(f32_file.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(f64_file.metadata ==
          std::map<std::string, std::string>{{"format", "pt"}, {"note", "written by hand, \"quoted\" é"}});
  for (const auto& [name, t] : f32_file.tensors) REQUIRE(t.dtype() == f32);
  for (const auto& [name, t] : f64_file.tensors) REQUIRE(t.dtype() == f64);
  // Tensors come in the order of their data, whatever the header's key order.
  std::vector<std::string> order;
  for (const auto& [name, t] : f64_file.tensors) order.push_back(name);
  REQUIRE(order == std::vector<std::string>{"2.bias", "0.weight", "2.weight", "0.bias"});
  // PyTorch's layout: Linear weight [out, in].
  REQUIRE(f32_file.at("0.weight").shape() == Shape{3, 2});
  REQUIRE(f32_file.at("2.weight").shape() == Shape{2, 3});
}

TEST_CASE("safetensors: F16 and BF16 load as float32, integers and BOOL as float64") {
  const st::File f = st::load(std::string(GG_TEST_DATA) + "/dtypes.safetensors");
  for (const char* name : {"half", "brain", "empty"}) REQUIRE(f.at(name).dtype() == f32);
  for (const char* name : {"long", "int", "short", "byte", "ubyte", "mask", "num_batches_tracked"})
    REQUIRE(f.at(name).dtype() == f64);
  REQUIRE(f.at("num_batches_tracked").rank() == 0);
  REQUIRE(f.at("num_batches_tracked").item() == 7);
  REQUIRE(f.at("empty").shape() == Shape{0, 3});

  // Hand-made bytes: F16 infinities, NaN and a subnormal; BF16 of a negative number; U16, U32, U64.
  const std::string header =
      R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1],"data_offsets":[8,10]},)"
      R"("u16":{"dtype":"U16","shape":[1],"data_offsets":[10,12]},"u32":{"dtype":"U32","shape":[1],"data_offsets":[12,16]},)"
      R"("u64":{"dtype":"U64","shape":[1],"data_offsets":[16,24]}})";
  std::string data;
  for (int v : {0x7C00, 0xFC00, 0x7E00, 0x0001})
    data += {static_cast<char>(v & 0xFF), static_cast<char>(v >> 8)};
  data += {'\x80', '\xBF'};                                   // bf16 -1.0
  data += {'\xFF', '\xFF'};                                   // 65535
  data += {'\xFF', '\xFF', '\xFF', '\xFF'};                   // 4294967295
  data += std::string("\x00\x00\x00\x00\x00\x00\x00\x80", 8); // 2^63
  const st::File g = st::parse(file_bytes(header, data));
  const auto h = g.at("h").to_vector();
  REQUIRE(h[0] == std::numeric_limits<double>::infinity());
  REQUIRE(h[1] == -std::numeric_limits<double>::infinity());
  REQUIRE(std::isnan(h[2]));
  REQUIRE(h[3] == std::ldexp(1.0, -24));
  REQUIRE(g.at("b").item() == -1.0);
  REQUIRE(g.at("u16").item() == 65535.0);
  REQUIRE(g.at("u32").item() == 4294967295.0);
  REQUIRE(g.at("u64").item() == std::ldexp(1.0, 63));
}

TEST_CASE("safetensors: the reader accepts any valid order, whitespace, escapes and unknown fields") {
  const std::string data = f32_bytes({1, 2, 3});
  const std::string header = "\n {\r\n\t\"\\u0062\\u00e9\" : { \"data_offsets\" : [ 4 , 12 ] , \"extra\" : "
                             "{\"x\": [1, -2.5e3, true, false, null, \"s\", {}]}, \"shape\" : [2], "
                             "\"dtype\" : \"F32\" }, \"__metadata__\": null, \"a\":{\"dtype\":\"F32\","
                             "\"shape\":[],\"data_offsets\":[0,4]}}   ";
  const st::File f = st::parse(file_bytes(header, data));
  REQUIRE(f.tensors.size() == 2);
  REQUIRE(f.tensors[0].first == "a");
  REQUIRE(f.tensors[1].first == "bé");
  REQUIRE(f.at("a").item() == 1);
  REQUIRE(f.at("bé").to_vector() == std::vector<double>{2, 3});
  REQUIRE(f.metadata.empty());
  // Empty tensors may share an offset; ties keep the header's order.
  const st::File e = st::parse(file_bytes(R"({"z":{"dtype":"F64","shape":[0],"data_offsets":[0,0]},)"
                                          R"("y":{"dtype":"F32","shape":[2,0],"data_offsets":[0,0]},)"
                                          R"("x":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})",
                                          f32_bytes({7})));
  REQUIRE(e.tensors.size() == 3);
  REQUIRE(e.tensors[0].first == "z");
  REQUIRE(e.tensors[1].first == "y");
  REQUIRE(e.tensors[1].second.shape() == Shape{2, 0});
  REQUIRE(e.at("x").item() == 7);
  // A surrogate pair becomes one 4-byte UTF-8 character.
  const st::File g = st::parse(file_bytes(R"({"__metadata__":{"k":"\ud83d\ude00"}})"));
  REQUIRE(g.metadata.at("k") == "😀");
}

TEST_CASE("safetensors: File::at names the file and the missing tensor") {
  const st::File f = st::load(std::string(GG_TEST_DATA) + "/sequential_f32.safetensors");
  const std::string msg = error_of<ValueError>([&] { f.at("1.weight"); });
  REQUIRE_THAT(msg,
               Contains("sequential_f32.safetensors") && Contains("'1.weight'") && Contains("'0.weight'"));
  REQUIRE_FALSE(f.contains("1.weight"));
}

TEST_CASE("safetensors: save rejects empty, duplicate and reserved names and writes nothing") {
  TempDir dir("safetensors");
  const std::string path = dir / "x.safetensors";
  const Tensor t = Tensor::scalar(1);
  REQUIRE_THAT(error_of<ValueError>([&] { st::save(path, {{"", t}}); }), Contains("empty name"));
  REQUIRE_THAT(error_of<ValueError>([&] {
                 st::save(path, {{"w", t}, {"b", t}, {"w", t}});
               }),
               Contains("two tensors are named 'w'"));
  REQUIRE_THAT(error_of<ValueError>([&] { st::save(path, {{"__metadata__", t}}); }), Contains("reserved"));
  REQUIRE_THAT(error_of<ValueError>([&] {
                 st::save(path, {{"w", Tensor()}});
               }),
               Contains("'w' is undefined"));
  REQUIRE_THAT(error_of<ValueError>([&] { st::save(path, {{"bad\xff", t}}); }), Contains("not UTF-8"));
  REQUIRE_THAT(error_of<ValueError>([&] {
                 st::save(path, {{"w", t}}, {{"k", "\xc3"}});
               }),
               Contains("not UTF-8"));
  REQUIRE(dir.entries().empty());
}

TEST_CASE("safetensors: malformed sizes and lengths are FormatErrors naming the file") {
  const std::string ok_header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string ok_data = f32_bytes({1, 2});
  REQUIRE(st::parse(file_bytes(ok_header, ok_data)).at("w").to_vector() == std::vector<double>{1, 2});

  CHECK_THAT(parse_error(""),
             Contains("bad.safetensors") && Contains("0 bytes long, shorter than the 8-byte"));
  CHECK_THAT(parse_error(std::string("\x05\x00\x00", 3)), Contains("3 bytes long"));
  CHECK_THAT(parse_error(le64(1000) + "{}"),
             Contains("header length 1000 is larger than the rest of the file (2"));
  CHECK_THAT(parse_error(le64(200'000'000) + "{}"), Contains("header length 200000000 exceeds the limit"));
  CHECK_THAT(parse_error(le64(~std::uint64_t{0}) + "{}"), Contains("exceeds the limit of 100000000 bytes"));
  // Truncated data, trailing bytes, gaps and overlaps.
  CHECK_THAT(parse_error(file_bytes(ok_header, ok_data.substr(0, 5))),
             Contains("truncated") && Contains("'w'") && Contains("holds 5 bytes"));
  CHECK_THAT(parse_error(file_bytes(ok_header)), Contains("truncated"));
  CHECK_THAT(parse_error(file_bytes(ok_header, ok_data + "xyz")),
             Contains("holds 11 bytes but the tensors cover only 8") && Contains("belong to no tensor"));
  CHECK_THAT(parse_error(file_bytes("{}", "x")), Contains("holds 1 bytes but the tensors cover only 0"));
  const std::string two = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})";
  CHECK_THAT(parse_error(file_bytes(two, std::string(20, '\0'))),
             Contains("bytes [8, 12) of the data buffer belong to no tensor") && Contains("'b'"));
  const std::string overlap = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                              R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  CHECK_THAT(parse_error(file_bytes(overlap, std::string(12, '\0'))),
             Contains("tensor 'b' (data_offsets [4, 12]) overlaps tensor 'a'"));
  const std::string starts_late = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  CHECK_THAT(parse_error(file_bytes(starts_late, std::string(8, '\0'))), Contains("bytes [0, 4)"));
  // Offsets against dtype and shape.
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", ok_data)),
             Contains("tensor 'w': data_offsets [0, 4] span 4 bytes, but dtype F32 and shape [2] need 8"));
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", ok_data)),
             Contains("need 16"));
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", ok_data)),
             Contains("data_offsets [8, 0] end before they begin"));
  CHECK_THAT(parse_error(file_bytes(
                 R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", ok_data)),
             Contains("span 18446744073709551615 bytes"));
  // Shapes: negative, not integers, too large, overflowing, too many dimensions.
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", ok_data)),
             Contains("an entry of \"shape\" of tensor 'w' is negative (-2)"));
  CHECK(st::parse(file_bytes(R"({"w":{"dtype":"F32","shape":[-0],"data_offsets":[0,0]}})")).at("w").numel() ==
        0);
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F32","shape":[-2.5],"data_offsets":[0,8]}})", ok_data)),
             Contains("is negative (-2.5)"));
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F32","shape":[-],"data_offsets":[0,8]}})", ok_data)),
             Contains("invalid number; expected digit after '-'"));
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", ok_data)),
             Contains("must be an integer, not 2.0"));
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F32","shape":[1e1],"data_offsets":[0,8]}})", ok_data)),
             Contains("must be an integer, not 1e1"));
  CHECK_THAT(parse_error(file_bytes(
                 R"({"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}})", ok_data)),
             Contains("is too large (18446744073709551616)"));
  CHECK_THAT(parse_error(file_bytes(
                 R"({"w":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,8]}})", ok_data)),
             Contains("tensor 'w': the size of shape [9223372036854775808] overflows"));
  CHECK_THAT(parse_error(file_bytes(
                 R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})")),
             Contains("the size of shape [4294967296, 4294967296, 0] overflows"));
  CHECK_THAT(parse_error(file_bytes(
                 R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}})", ok_data)),
             Contains("overflows"));
  CHECK_THAT(parse_error(file_bytes(
                 R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})", ok_data)),
             Contains("tensor 'w' has rank 9; gradgraph supports at most 8"));
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F32","shape":[)" + std::string(200, '1') + "]}}")),
             Contains("invalid header"));
  std::string long_shape = R"({"w":{"dtype":"F32","shape":[1)";
  for (int k = 0; k < 100; ++k) long_shape += ",1";
  CHECK_THAT(parse_error(file_bytes(long_shape + "]}}")), Contains("has more than 64 entries"));
  // Dtypes.
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", ok_data)),
             Contains("tensor 'w' has an unknown dtype \"F33\""));
  CHECK_THAT(parse_error(file_bytes(R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", ok_data)),
             Contains("unknown dtype \"f32\""));
  CHECK_THAT(
      parse_error(file_bytes(R"({"w":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}})", ok_data)),
      Contains("tensor 'w' has dtype F8_E4M3, which gradgraph cannot load"));
}

TEST_CASE("safetensors: malformed header JSON is a FormatError saying what is wrong") {
  const std::string d = R"("dtype":"F32","shape":[1],"data_offsets":[0,4])";
  const std::string data = f32_bytes({1});
  struct Case {
    std::string header, message;
  };
  const std::vector<Case> cases{
      // Not JSON, not an object, not UTF-8.
      {"", "the header must be a JSON object"},
      {"not json", "the header must be a JSON object"},
      {"[]", "the header must be a JSON object"},
      {R"("w")", "the header must be a JSON object"},
      {"42", "the header must be a JSON object"},
      {std::string(1'000'000, '['), "the header must be a JSON object"},
      {"{", "parsing object key - unexpected end of input; expected string literal (at byte 1 of"},
      {R"({"w":{)" + d + "}", "parsing object - unexpected end of input; expected '}'"},
      {R"({"w":{)" + d + "},}", "parsing object key - unexpected '}'; expected string literal"},
      {R"({"w":{)" + d + "}} x", "invalid literal; last read: '4]}} x'; expected end of input"},
      {R"({"w":{)" + d + "}}{}", "unexpected '{'; expected end of input"},
      {std::string("{\"w\\xff\":{") + d + "}}", "forbidden character after backslash"},
      {"{\"w\xff\":{" + d + "}}", "ill-formed UTF-8 byte; last read: '\"w\\xff'"},
      {"{\"w\xc0\x80\":{" + d + "}}", "ill-formed UTF-8 byte"},
      {"{\"w\xed\xa0\x80\":{" + d + "}}", "ill-formed UTF-8 byte"},
      {std::string("{\"w\0\":{", 6) + d + "}}", "control character U+0000 (NUL) must be escaped"},
      {"{\"w\n\":{" + d + "}}", "control character U+000A (LF) must be escaped"},
      {R"({"w)", "missing closing quote"},
      {R"({"w\)", "forbidden character after backslash"},
      {R"({"\u12":{)" + d + "}}", "'\\u' must be followed by 4 hex digits"},
      {R"({"\u12)", "'\\u' must be followed by 4 hex digits"},
      {R"({"\ud800":{)" + d + "}}", "surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"},
      {R"({"\ud800\u0041":{)" + d + "}}", "surrogate U+D800..U+DBFF must be followed"},
      {R"({"\udc00":{)" + d + "}}", "surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF"},
      {R"({w:{)" + d + "}}", "invalid literal; last read: '{w'; expected string literal"},
      {R"({"w" {)" + d + "}}", "expected ':'"},
      // Wrong entries and fields.
      {R"({"w":[1]})", "the entry of tensor 'w' must be an object with dtype, shape and data_offsets"},
      {R"({"w":"F32"})", "the entry of tensor 'w' must be an object"},
      {R"({"w":{}})", "tensor 'w' has no field \"dtype\""},
      {R"({"w":{"dtype":"F32","shape":[1]}})", "tensor 'w' has no field \"data_offsets\""},
      {R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", "tensor 'w' has no field \"shape\""},
      {R"({"w":{"dtype":5,"shape":[1],"data_offsets":[0,4]}})",
       "field \"dtype\" of tensor 'w' must be a string"},
      {R"({"w":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})",
       "field \"shape\" of tensor 'w' must be an array"},
      {R"({"w":{"dtype":"F32","shape":{},"data_offsets":[0,4]}})",
       "field \"shape\" of tensor 'w' must be an array"},
      {R"({"w":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}})",
       "an entry of \"shape\" of tensor 'w' must be a non-negative integer"},
      {R"({"w":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}})", "must be a non-negative integer"},
      {R"({"w":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}})",
       "unexpected number literal; expected ']'"},
      {R"({"w":{"dtype":"F32","shape":[1,],"data_offsets":[0,4]}})",
       "unexpected ']'; expected '[', '{', or a literal"},
      {R"({"w":{"dtype":"F32","shape":[1 1],"data_offsets":[0,4]}})",
       "parsing array - unexpected number literal; expected ']'"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}})",
       "field \"data_offsets\" of tensor 'w' must hold two integers [begin, end], not 1"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", "must hold two integers"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8,12,16]}})", "has more than 3 entries"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}})",
       "field \"data_offsets\" of tensor 'w' must be an array"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,-4]}})", "is negative (-4)"},
      {R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4.5]}})", "must be an integer, not 4.5"},
      {R"({"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
       "field \"dtype\" of tensor 'w' appears twice"},
      {R"({"w":{)" + d + R"(},"w":{)" + d + "}}", "two tensors are named 'w'"},
      {R"({"w":{)" + d + " \"x\":1}}", "parsing object - unexpected string literal; expected '}'"},
      {R"({"w":{)" + d + R"(,"x":tru}})", "invalid literal"},
      {R"({"w":{)" + d + R"(,"x":-}})", "invalid number; expected digit after '-'"},
      {R"({"w":{)" + d + R"(,"x":1.}})", "invalid number; expected digit after '.'"},
      {R"({"w":{)" + d + R"(,"x":[1 2]}})", "unexpected number literal; expected ']'"},
      {R"({"w":{)" + d + R"(,"x":{"a" 1}}})", "expected ':'"},
      {R"({"w":{)" + d + R"(,"x":)" + std::string(100, '[') + std::string(100, ']') + "}}",
       "values nested deeper than 64 levels"},
      {R"({"w":{)" + d + R"(,"x":)" + std::string(5'000'000, '[') + "}}",
       "values nested deeper than 64 levels"},
      // Metadata.
      {R"({"__metadata__":5})", "\"__metadata__\" must be an object mapping strings to strings"},
      {R"({"__metadata__":["a"]})", "\"__metadata__\" must be an object"},
      {R"({"__metadata__":{"k":1}})", "metadata value 'k' must be a string"},
      {R"({"__metadata__":{"k":{"a":"b"}}})", "metadata value 'k' must be a string"},
      {R"({"__metadata__":{"k":"a","k":"b"}})", "duplicate key in \"__metadata__\""},
      {R"({"__metadata__":{},"__metadata__":{}})", "two \"__metadata__\" entries"},
      {R"({"__metadata__":{"k":"a",}})", "parsing object key - unexpected '}'; expected string literal"},
  };
  for (const Case& c : cases) {
    INFO("header: " << c.header.substr(0, 120));
    const std::string msg = parse_error(file_bytes(c.header, data));
    CHECK_THAT(msg, Contains("safetensors file 'bad.safetensors'") && Contains(c.message));
  }
}

TEST_CASE("safetensors: load reads files and reports unreadable ones as IOErrors") {
  TempDir dir("safetensors");
  const std::string missing = dir / "missing.safetensors";
  REQUIRE_THAT(error_of<IOError>([&] { st::load(missing); }),
               Contains(missing) && Contains("No such file or directory"));
  REQUIRE_THAT(error_of<IOError>([&] { st::load(dir.path.string()); }), Contains("Is a directory"));
  const std::string fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE_THAT(error_of<IOError>([&] { st::load(fifo); }), Contains("not a regular file"));

  // A corrupted file on disk names its path.
  const std::string bad = dir / "bad.safetensors";
  REQUIRE(write_file(bad, le64(50) + "{}"));
  REQUIRE_THAT(error_of<FormatError>([&] { st::load(bad); }),
               Contains(bad) && Contains("larger than the rest"));
  // Every proper prefix of a valid file is rejected, never crashes.
  const std::string good = read_file(std::string(GG_TEST_DATA) + "/sequential_f64.safetensors");
  for (std::size_t n = 0; n < good.size(); ++n) {
    REQUIRE(write_file(bad, good.substr(0, n)));
    REQUIRE_THROWS_AS(st::load(bad), FormatError);
  }
}

TEST_CASE("safetensors: every single-byte corruption of a file is a value or a FormatError") {
  const std::string good = read_file(std::string(GG_TEST_DATA) + "/sequential_f32.safetensors");
  const std::uint64_t header_end = 8 + 0x118;
  REQUIRE(good.substr(0, 8) == le64(0x118));
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < header_end; ++i) {
    for (const unsigned char b : {0x00, 0x22, 0x2c, 0x31, 0x5d, 0x7d, 0xff}) {
      std::string bytes = good;
      bytes[i] = static_cast<char>(b);
      try {
        st::parse(bytes);
      } catch (const FormatError&) {
        ++rejected;
      }
    }
  }
  REQUIRE(rejected > header_end);
}

TEST_CASE("safetensors: saving replaces the old file atomically and leaves no temporary file") {
  TempDir dir("safetensors");
  const std::string path = dir / "model.safetensors";
  const std::vector<std::pair<std::string, Tensor>> old_tensors{{"w", Tensor({1, 2, 3}, {3})}};
  const std::vector<std::pair<std::string, Tensor>> new_tensors{{"w", Tensor({4, 5}, {2}, f32)}};
  st::save(path, old_tensors, {{"version", "old"}});
  st::save(path, new_tensors, {{"version", "new"}});
  REQUIRE(dir.entries() == std::vector<std::string>{"model.safetensors"});
  require_same(st::load(path).at("w"), new_tensors[0].second);

  // The file gets the usual permissions (0666 less the umask), not a temporary file's 0600.
  const ::mode_t mask = ::umask(022);
  ::umask(mask);
  struct stat s {};
  REQUIRE(::stat(path.c_str(), &s) == 0);
  REQUIRE((s.st_mode & 0777) == (0666 & ~mask));

  SECTION("the target is a directory") {
    const std::string target = dir / "sub";
    fs::create_directory(target);
    REQUIRE(write_file(target + "/keep", "x"));
    const std::string msg = error_of<IOError>([&] { st::save(target, new_tensors); });
    REQUIRE_THAT(msg, Contains("'" + target + "'") && Contains("Is a directory"));
    REQUIRE(read_file(target + "/keep") == "x");
    REQUIRE_FALSE(has_temp_file(dir));
  }

  SECTION("the directory does not exist") {
    const std::string target = dir / "nowhere/model.safetensors";
    REQUIRE_THAT(error_of<IOError>([&] { st::save(target, new_tensors); }),
                 Contains(target) && Contains("No such file or directory"));
  }

  SECTION("the directory is read-only") {
    const std::string ro = dir / "ro";
    fs::create_directory(ro);
    const std::string target = ro + "/model.safetensors";
    st::save(target, old_tensors);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec);
    if (::access(ro.c_str(), W_OK) == 0) {
      WARN("running with CAP_DAC_OVERRIDE (root): a read-only directory is still writable, part skipped");
    } else {
      REQUIRE_THAT(error_of<IOError>([&] { st::save(target, new_tensors); }),
                   Contains(target) && Contains("Permission denied"));
      require_same(st::load(target).at("w"), old_tensors[0].second);
      REQUIRE(fs::directory_iterator(ro) != fs::directory_iterator());
      REQUIRE(std::distance(fs::directory_iterator(ro), fs::directory_iterator()) == 1);
    }
    fs::permissions(ro, fs::perms::owner_all);
  }

  SECTION("a write fails halfway (the file size limit is exceeded)") {
    // RLIMIT_FSIZE makes write() fail with EFBIG after the first 4 KiB, even for root.
    struct rlimit old_limit {};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old_limit;
    small.rlim_cur = 4096;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    std::string msg;
    try {
      st::save(path, {{"big", Tensor::zeros(Shape{10000})}});
    } catch (const IOError& e) {
      msg = e.what();
    }
    ::setrlimit(RLIMIT_FSIZE, &old_limit);
    std::signal(SIGXFSZ, old_handler);
    REQUIRE_THAT(msg, Contains(path) && Contains("writing the temporary file") && Contains("File too large"));
    REQUIRE(dir.entries() == std::vector<std::string>{"model.safetensors"});
    require_same(st::load(path).at("w"), new_tensors[0].second);
  }
}
