// Tests of gg::data and gg::metrics: the CSV and IDX readers on fixtures and on files generated here
// (gzip ones through zlib, truncated and corrupted ones), every error message's file/line/column,
// the DataLoader, train_test_split, Standardizer, the synthetic datasets and the metrics.
#include <nn/data/data.hpp>
#include <nn/metrics.hpp>

#include <autodiff/kernel.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

using namespace gg;
using namespace gg::data;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::string fixtures = GG_TEST_DATA;

/// Matches an exception whose what() satisfies a string matcher: CHECK_THROWS_MATCHES(expr, Type,
/// What(Contains("...") && Contains("..."))) checks the type and the message at once.
template <class M> class WhatMatcher : public Catch::MatcherBase<std::exception> {
public:
  explicit WhatMatcher(M m) : m_(std::move(m)) {}
  bool match(const std::exception& e) const override { return m_.match(e.what()); }
  std::string describe() const override { return "message " + m_.toString(); }

private:
  M m_;
};
template <class M> WhatMatcher<M> What(M m) {
  return WhatMatcher<M>(std::move(m));
}

using Bytes = std::vector<unsigned char>;

void write_bytes(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Writes bytes as one gzip member (appended as a further member when append is true).
void write_gzip(const std::string& path, const Bytes& bytes, bool append = false) {
  gzFile f = gzopen(path.c_str(), append ? "ab" : "wb");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

/// An IDX header: 0, 0, type code, rank, then each dimension as a big-endian uint32.
Bytes idx_header(std::uint8_t type, const std::vector<std::uint32_t>& dims) {
  Bytes b{0, 0, type, static_cast<unsigned char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(d >> s));
  return b;
}

Bytes concat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// Pseudo-random bytes: incompressible, so a truncated .gz holds about the same share of the data.
Bytes noise_bytes(std::size_t n, std::uint64_t seed) {
  Rng rng(seed);
  Bytes b(n);
  for (auto& c : b) c = static_cast<unsigned char>(rng.below(256));
  return b;
}

void check_values(const Tensor& t, const std::vector<double>& expected, double eps = 1e-12) {
  const std::vector<double> got = t.to_vector();
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("index " << i);
    CHECK(got[i] == Approx(expected[i]).margin(eps));
  }
}

/// parse_csv of text named "bad.csv" must throw a FormatError whose message contains both parts.
void csv_error(const std::string& text, const std::string& where, const std::string& what,
               const CsvOptions& options = {}) {
  INFO("CSV text: " << text);
  CHECK_THROWS_MATCHES(parse_csv(text, "bad.csv", options), FormatError,
                       What(Contains(where) && Contains(what)));
}

std::string idx_error(const std::string& path) {
  try {
    read_idx(path);
  } catch (const FormatError& e) {
    return e.what();
  }
  FAIL("no FormatError for " << path);
  return {};
}

} // namespace

// ---------------------------------------------------------------------------------------------
// CSV

TEST_CASE("data: csv reads features, class ids, feature names and the class count") {
  const Dataset ds = read_csv(fixtures + "/iris_small.csv");
  CHECK(ds.x.shape() == Shape{9, 4});
  CHECK(ds.x.dtype() == f64);
  CHECK(ds.y.shape() == Shape{9});
  CHECK(ds.num_classes == 3);
  CHECK(ds.feature_names ==
        std::vector<std::string>{"sepal_length", "sepal_width", "petal_length", "petal_width"});
  CHECK(ds.class_names.empty());
  check_values(kernel::slice(ds.x, 0, 0, 2), {5.1, 3.5, 1.4, 0.2, 4.9, 3.0, 1.4, 0.2});
  check_values(ds.y, {0, 0, 0, 1, 1, 1, 2, 2, 2});
  const Tensor x32 = ds.x.to(f32);
  CHECK(x32.dtype() == f32);
  CHECK(x32.flat(0) == Approx(5.1).epsilon(1e-6));
}

TEST_CASE("data: csv chooses the target by name or index, for classes, class names or regression") {
  const std::string text = "a,b,c\n1,2,3\n4,5,6\n";
  SECTION("by name") {
    const Dataset ds = parse_csv(text, "t.csv", {.target_name = "a", .target = Target::values});
    CHECK(ds.feature_names == std::vector<std::string>{"b", "c"});
    check_values(ds.x, {2, 3, 5, 6});
    check_values(ds.y, {1, 4});
    CHECK(ds.num_classes == 0);
  }
  SECTION("by index, negative from the end") {
    const Dataset first = parse_csv(text, "t.csv", {.target_index = 0, .target = Target::values});
    check_values(first.y, {1, 4});
    const Dataset middle = parse_csv(text, "t.csv", {.target_index = -2, .target = Target::values});
    check_values(middle.y, {2, 5});
    check_values(middle.x, {1, 3, 4, 6});
  }
  SECTION("class ids") {
    const Dataset ds = parse_csv(text, "t.csv");
    check_values(ds.y, {3, 6});
    CHECK(ds.num_classes == 7);
  }
  SECTION("class names, numbered in sorted order") {
    const Dataset ds = read_csv(fixtures + "/iris_names.csv", {.target = Target::class_names});
    CHECK(ds.feature_names ==
          std::vector<std::string>{"sepal.length", "sepal.width", "petal.length", "petal.width"});
    CHECK(ds.class_names == std::vector<std::string>{"Setosa", "Versicolor", "Virginica"});
    CHECK(ds.num_classes == 3);
    check_values(ds.y, {0, 1, 2, 0});
    check_values(kernel::slice(ds.x, 0, 0, 1), {5.1, 3.5, 1.4, 0.2});
  }
  SECTION("regression values and a tab delimiter") {
    const Dataset ds =
        parse_csv("x\ty\n1\t-2.5e-3\n2\t+7\n", "t.tsv", {.target = Target::values, .delimiter = '\t'});
    check_values(ds.y, {-2.5e-3, 7});
    check_values(ds.x, {1, 2});
  }
}

TEST_CASE("data: csv reads several target columns as [n, k] values, in the order given") {
  const std::string text = "a,b,c,d\n1,2,3,4\n5,6,7,8\n";
  const Dataset ds = parse_csv(text, "t.csv", {.target = Target::values, .target_names = {"d", "b"}});
  CHECK(ds.feature_names == std::vector<std::string>{"a", "c"});
  CHECK(ds.y.shape() == Shape{2, 2});
  check_values(ds.y, {4, 2, 8, 6});
  check_values(ds.x, {1, 3, 5, 7});
  CHECK(ds.num_classes == 0);
  CHECK_THROWS_WITH(parse_csv(text, "t.csv", {.target = Target::values, .target_names = {"d", "e"}}),
                    Contains("t.csv:1:1: no column named 'e'"));
  CHECK_THROWS_WITH(parse_csv(text, "t.csv", {.target = Target::values, .target_names = {"d", "d"}}),
                    Contains("named twice"));
  CHECK_THROWS_WITH(parse_csv("a,b\n1,2\n", "t.csv", {.target = Target::values, .target_names = {"a", "b"}}),
                    Contains("at least one feature column"));
  CHECK_THROWS_AS(parse_csv(text, "t.csv", {.target_names = {"a", "b"}}), ValueError); // classes: one column
}

TEST_CASE("data: csv accepts CRLF, a byte-order mark, blank lines, spaces, quotes and no final newline") {
  const std::vector<std::string> texts = {
      "a,b,y\r\n1,2,0\r\n3,4,1\r\n",
      "\xEF\xBB\xBF"
      "a,b,y\n1,2,0\n3,4,1",
      "\n a , b ,y\n\n1, 2 ,0\n\n3,4,1\n\n\n",
      "\"a\",\"b\",\"y\"\n\"1\",2,\"0\"\r\n3,\" 4\",1\n",
  };
  for (const std::string& text : texts) {
    INFO("CSV text: " << text);
    const Dataset ds = parse_csv(text, "ok.csv");
    CHECK(ds.feature_names == std::vector<std::string>{"a", "b"});
    check_values(ds.x, {1, 2, 3, 4});
    check_values(ds.y, {0, 1});
    CHECK(ds.num_classes == 2);
  }
  const Dataset quoted = parse_csv("\"x, \"\"the\"\" first\",y\n1,0\n", "q.csv");
  CHECK(quoted.feature_names == std::vector<std::string>{"x, \"the\" first"});
  // Numbers in any spelling from_chars accepts; underflow to zero is fine, -0 is class 0.
  const Dataset spelled = parse_csv("a,y\n.5,-0\n5.,1.0\n1e-400,2\n", "n.csv");
  check_values(spelled.x, {0.5, 5, 0});
  check_values(spelled.y, {0, 1, 2});
}

TEST_CASE("data: csv errors name the file, the line and the column") {
  csv_error("a,b,y\n1,2,0\n3,abc,1\n", "bad.csv:3:2:", "'abc' is not a number");
  csv_error("a,b,y\n1,2,0\n3,4\n", "bad.csv:3:3:", "expected 3 fields, found 2");
  csv_error("a,b,y\n1,2,0,9\n", "bad.csv:2:4:", "expected 3 fields, found 4");
  csv_error("", "bad.csv:1:1:", "empty file");
  csv_error("\r\n\n  \n", "bad.csv:1:1:", "empty file");
  csv_error("1,2,0\n3,4,1\n", "bad.csv:1:1:", "missing header row");
  csv_error("a,b,y\n", "bad.csv:2:1:", "no data rows");
  csv_error("a\n1\n", "bad.csv:1:1:", "need at least 2 columns");
  csv_error("a,b,y\n1,2,0\n", "bad.csv:1:1:", "no column named 'z'; the columns are 'a', 'b', 'y'",
            {.target_name = "z"});
  csv_error("a,y,y\n1,2,0\n", "bad.csv:1:3:", "ambiguous", {.target_name = "y"});
  csv_error("a,b,y\n1,2,0\n", "bad.csv:1:1:", "target column index 3 is out of range for 3 columns",
            {.target_index = 3});
  csv_error("a,b,y\n1,2,0\n1,2,1.5\n", "bad.csv:3:3:", "'1.5' is not an integer class id");
  csv_error("a,b,y\n1,2,-1\n", "bad.csv:2:3:", "'-1' is a negative class id");
  csv_error("a,b,y\n1,2,1e9\n", "bad.csv:2:3:", "too large");
  csv_error("a,b,y\nnan,2,0\n", "bad.csv:2:1:", "'nan' is not a finite number");
  csv_error("a,b,y\n1,-Infinity,0\n", "bad.csv:2:2:", "'-Infinity' is not a finite number");
  csv_error("a,b,y\n1,2,inf\n", "bad.csv:2:3:", "'inf' is not a finite number", {.target = Target::values});
  csv_error("a,b,y\n1,1e999,0\n", "bad.csv:2:2:", "'1e999' is out of the float64 range");
  csv_error("a,b,y\n1,,0\n", "bad.csv:2:2:", "empty field");
  csv_error("a,b,y\n1,2,\n", "bad.csv:2:3:", "empty field (missing class name)",
            {.target = Target::class_names});
  csv_error("a,b,y\n1,0x10,0\n", "bad.csv:2:2:", "'0x10' is not a number");
  csv_error("a,b,y\n1,2 3,0\n", "bad.csv:2:2:", "'2 3' is not a number");
  csv_error("a,b,y\n\"1,2,0\n", "bad.csv:2:1:", "unterminated quoted field");
  csv_error("a,b,y\n\"1\"x,2,0\n", "bad.csv:2:1:", "unexpected 'x' after a closing quote");
  csv_error("a,b,y\n1,2\"3,0\n", "bad.csv:2:2:", "quote character inside an unquoted field");
  csv_error("a,b\n\x01\x02,1\n", "bad.csv:2:1:", "'\\x01\\x02' is not a number");
  // Line numbers count every physical line: CRLF endings and skipped blank lines included.
  csv_error("a,b,y\r\n1,2,0\r\n3,x,1\r\n", "bad.csv:3:2:", "'x' is not a number");
  csv_error("a,b,y\n\n1,2,0\n\nx,2,0\n", "bad.csv:5:1:", "'x' is not a number");
  // A message shows at most 40 characters of a field.
  csv_error("a,y\n" + std::string(100, 'q') + ",0\n", "bad.csv:2:1:", "'" + std::string(40, 'q') + "...'");
}

TEST_CASE("data: csv refuses a row of more than a million columns before storing it") {
  std::string header;
  header.reserve(2'000'010);
  for (int i = 0; i < 1'000'001; ++i) header += i ? ",c" : "c";
  csv_error(header + "\n", "bad.csv:1:1000001:", "too many columns: a row may have at most 1000000");
  std::string row(2'000'001, ',');
  csv_error("a,y\n" + row + "\n", "bad.csv:2:1000001:", "too many columns");
}

TEST_CASE("data: csv files that are missing are an IOError with the reason") {
  CHECK_THROWS_MATCHES(read_csv("/nonexistent/gg/iris.csv"), IOError,
                       What(Contains("/nonexistent/gg/iris.csv") && Contains("No such file or directory")));
  const gg::test::TempDir dir("test_data");
  CHECK_THROWS_MATCHES(read_csv(dir.path.string()), IOError, What(Contains("Is a directory")));
  // A file with an error: the message names the file as given.
  const std::string path = dir / "broken.csv";
  write_bytes(path, Bytes{'a', ',', 'y', '\n', '1', ',', 'x', '\n'});
  CHECK_THROWS_MATCHES(read_csv(path), FormatError, What(Contains(path + ":2:2: 'x' is not a number")));
  // Every error is a gg::Error.
  CHECK_THROWS_AS(read_csv(path), gg::Error);
}

TEST_CASE("data: csv and idx files are read from a pipe too, whose size is unknown") {
  const gg::test::TempDir dir("test_data");
  const std::string fifo = dir / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // A writer thread feeds the FIFO; the reader cannot know the size in advance.
  auto through_pipe = [&](const Bytes& bytes, auto read) {
    std::thread writer([&] { write_bytes(fifo, bytes); });
    struct Join {
      std::thread& t;
      ~Join() { t.join(); }
    } join{writer};
    return read(fifo);
  };
  const std::string csv = "a,b,y\n1,2,0\n3,4,1\n";
  const Dataset d =
      through_pipe(Bytes(csv.begin(), csv.end()), [](const std::string& p) { return read_csv(p); });
  check_values(d.x, {1, 2, 3, 4});
  check_values(d.y, {0, 1});
  const Tensor t = through_pipe(concat(idx_header(0x08, {2, 2}), {1, 2, 3, 4}),
                                [](const std::string& p) { return read_idx(p); });
  check_values(t, {1, 2, 3, 4});
  // Without a size to compare, a short or long data part is still found while reading.
  CHECK_THROWS_MATCHES(through_pipe(concat(idx_header(0x08, {2, 2}), {1, 2, 3}),
                                    [](const std::string& p) { return read_idx(p); }),
                       FormatError, What(Contains("truncated: expected 4 bytes of data, found 3")));
  CHECK_THROWS_MATCHES(through_pipe(concat(idx_header(0x08, {2, 2}), {1, 2, 3, 4, 5}),
                                    [](const std::string& p) { return read_idx(p); }),
                       FormatError, What(Contains("more data than the header's dimensions [2, 2]")));
}

// ---------------------------------------------------------------------------------------------
// IDX

TEST_CASE("data: idx reads every element type, big-endian, plain and gzip") {
  const gg::test::TempDir dir("test_data");
  struct Case {
    std::uint8_t type;
    Bytes payload;
    std::vector<double> values;
  };
  const std::vector<Case> cases = {
      {0x08, {0, 1, 127, 128, 255, 7}, {0, 1, 127, 128, 255, 7}},
      {0x09, {0, 1, 127, 128, 255, 0xfe}, {0, 1, 127, -128, -1, -2}},
      {0x0B, {0xfe, 0xd4, 0x01, 0x00, 0x7f, 0xff, 0x80, 0x00, 0, 0, 0, 1}, {-300, 256, 32767, -32768, 0, 1}},
      {0x0C,
       {0xff, 0xfe, 0xee, 0x90, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0},
       {-70000, 1, 2147483647, -2147483648.0, 256, 0}},
      {0x0D,
       {0x3f, 0xc0, 0, 0, 0xc0, 0x10, 0, 0, 0, 0, 0, 0, 0x3f, 0x80, 0, 0, 0x42, 0x28, 0, 0, 0xbf, 0, 0, 0},
       {1.5, -2.25, 0, 1, 42, -0.5}},
  };
  for (const Case& c : cases) {
    INFO("type 0x" << std::hex << int(c.type));
    const Bytes file = concat(idx_header(c.type, {2, 3}), c.payload);
    write_bytes(dir / "plain.idx", file);
    write_gzip(dir / "packed.idx.gz", file);
    for (const std::string name : {"plain.idx", "packed.idx.gz"}) {
      const Tensor t = read_idx(dir / name);
      CHECK(t.shape() == Shape{2, 3});
      CHECK(t.dtype() == f64);
      check_values(t, c.values);
      CHECK(read_idx(dir / name, f32).dtype() == f32);
      const IdxHeader h = read_idx_header(dir / name);
      CHECK(h.type == static_cast<IdxType>(c.type));
      CHECK(h.dims == std::vector<std::int64_t>{2, 3});
    }
    // From memory, plain and gzip alike.
    for (const std::string name : {"plain.idx", "packed.idx.gz"}) {
      const Bytes bytes = read_bytes(dir / name);
      check_values(parse_idx(std::as_bytes(std::span(bytes)), name), c.values);
    }
  }
  // float64, 1-d and 4-d shapes, an empty dimension.
  Bytes f64_file = idx_header(0x0E, {2});
  for (double v : {3.25, -1e300}) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, 8);
    for (int s = 56; s >= 0; s -= 8) f64_file.push_back(static_cast<unsigned char>(bits >> s));
  }
  write_bytes(dir / "f64.idx", f64_file);
  check_values(read_idx(dir / "f64.idx"), {3.25, -1e300});
  write_bytes(dir / "4d.idx", concat(idx_header(0x08, {1, 2, 1, 2}), {1, 2, 3, 4}));
  CHECK(read_idx(dir / "4d.idx").shape() == Shape{1, 2, 1, 2});
  write_bytes(dir / "empty.idx", idx_header(0x08, {0, 28, 28}));
  CHECK(read_idx(dir / "empty.idx").shape() == Shape{0, 28, 28});
  // Concatenated gzip members read as one stream, as gzip -d does.
  const Bytes file = concat(idx_header(0x08, {4}), {9, 8, 7, 6});
  write_gzip(dir / "two.gz", Bytes(file.begin(), file.begin() + 6));
  write_gzip(dir / "two.gz", Bytes(file.begin() + 6, file.end()), true);
  check_values(read_idx(dir / "two.gz"), {9, 8, 7, 6});
}

TEST_CASE("data: idx refuses NaN and infinity in float data, naming the file and the element") {
  const gg::test::TempDir dir("test_data");
  auto f32_file = [](const std::vector<float>& values, const std::vector<std::uint32_t>& dims) {
    Bytes b = idx_header(0x0D, dims);
    for (const float v : values) {
      std::uint32_t bits = 0;
      std::memcpy(&bits, &v, 4);
      for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(bits >> s));
    }
    return b;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::string plain = dir / "nan.idx", gz = dir / "nan.idx.gz";
  const Bytes with_nan = f32_file({0, 1, 2, 3, nan, 5}, {2, 3});
  write_bytes(plain, with_nan);
  write_gzip(gz, with_nan);
  for (const std::string& path : {plain, gz})
    for (const DType dtype : {f64, f32})
      CHECK_THROWS_MATCHES(
          read_idx(path, dtype), FormatError,
          What(Contains(path + ": element 4 (index [1, 1] of dimensions [2, 3]): nan is not a finite number "
                               "(NaN and infinity are refused)")));
  const Bytes with_inf = f32_file({-inf, 1}, {2});
  CHECK_THROWS_MATCHES(
      parse_idx(std::as_bytes(std::span(with_inf)), "mem.idx"), FormatError,
      What(Contains("mem.idx: element 0 (index [0] of dimensions [2]): -inf is not a finite")));
  // float64 data beyond float32's range, read as float32.
  Bytes big = idx_header(0x0E, {1, 2});
  for (double v : {1.0, 1e300}) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &v, 8);
    for (int s = 56; s >= 0; s -= 8) big.push_back(static_cast<unsigned char>(bits >> s));
  }
  write_bytes(dir / "big.idx", big);
  check_values(read_idx(dir / "big.idx"), {1, 1e300});
  CHECK_THROWS_MATCHES(
      read_idx(dir / "big.idx", f32), FormatError,
      What(Contains("element 1 (index [0, 1] of dimensions [1, 2]): 1e+300 is out of the float32 "
                    "range")));
}

TEST_CASE("data: idx refuses truncated, corrupted and absurd files with the file name and the cause") {
  const gg::test::TempDir dir("test_data");
  const Bytes payload = noise_bytes(4000, 1);
  const Bytes file = concat(idx_header(0x08, {4, 1000}), payload);
  const std::string plain = dir / "t.idx", gz = dir / "t.idx.gz";

  SECTION("plain: truncated or too long, checked against the file size before reading") {
    write_bytes(plain, Bytes(file.begin(), file.begin() + 2012));
    CHECK_THAT(idx_error(plain), Contains(plain + ": truncated: expected 4000 bytes of data, found 2000"));
    write_bytes(plain, concat(file, {0}));
    CHECK_THAT(idx_error(plain),
               Contains(plain + ": 4001 bytes of data, but the header's dimensions [4, 1000]"));
  }
  SECTION("gzip: truncated data, a missing trailer, a bad checksum, corrupt data, trailing bytes") {
    write_gzip(gz, file);
    const Bytes packed = read_bytes(gz);
    write_bytes(gz, Bytes(packed.begin(), packed.begin() + static_cast<std::ptrdiff_t>(packed.size() / 2)));
    const std::string half = idx_error(gz);
    CHECK_THAT(half, Contains(gz + ": truncated: expected 4000 bytes of data, found "));
    write_bytes(gz, Bytes(packed.begin(), packed.end() - 4));
    CHECK_THAT(idx_error(gz), Contains(gz + ": truncated gzip stream"));
    Bytes bad_crc = packed;
    bad_crc[bad_crc.size() - 8] ^= 0xff;
    write_bytes(gz, bad_crc);
    CHECK_THAT(idx_error(gz), Contains(gz + ": corrupt gzip data (incorrect data check)"));
    Bytes garbage = packed;
    for (std::size_t i = 10; i < 40; ++i) garbage[i] = 0xff;
    write_bytes(gz, garbage);
    CHECK_THAT(idx_error(gz), Contains(gz + ": corrupt gzip data"));
    write_bytes(gz, concat(packed, {'x', 'y', 'z'}));
    CHECK_THAT(idx_error(gz), Contains(gz + ": unexpected bytes after the end of the gzip stream"));
    write_gzip(gz, concat(file, {1}));
    CHECK_THAT(idx_error(gz),
               Contains(gz + ": more data than the header's dimensions [4, 1000] of unsigned byte need"));
    write_bytes(gz, Bytes{0x1f, 0x8b});
    CHECK_THAT(idx_error(gz), Contains(gz + ": "));
  }
  SECTION("bad headers") {
    write_bytes(plain, {});
    CHECK_THAT(idx_error(plain), Contains(plain + ": empty file"));
    write_bytes(plain, {0, 0, 8});
    CHECK_THAT(idx_error(plain), Contains(plain + ": truncated: an IDX header needs 4 bytes, found 3"));
    write_bytes(plain, {'a', ',', 'b', '\n', '1'});
    CHECK_THAT(idx_error(plain), Contains(plain + ": not an IDX file: it starts with bytes 0x61 0x2c"));
    write_bytes(plain, concat(idx_header(0x0A, {1}), {0}));
    CHECK_THAT(idx_error(plain), Contains(plain + ": byte 2: unknown IDX element type code 0x0a"));
    write_bytes(plain, Bytes{0, 0, 8, 0});
    CHECK_THAT(idx_error(plain), Contains(plain + ": byte 3: the IDX header declares 0 dimensions"));
    write_bytes(plain, Bytes{0, 0, 8, 9});
    CHECK_THAT(idx_error(plain),
               Contains(plain + ": byte 3: the IDX header declares 9 dimensions, at most 8"));
    write_bytes(plain, Bytes{0, 0, 8, 3, 0, 0, 0, 1, 0, 0});
    CHECK_THAT(idx_error(plain),
               Contains(plain + ": truncated: the header declares 3 dimensions (12 bytes), found 6"));
  }
  SECTION("headers claiming absurd sizes are refused before any allocation") {
    // The element count overflows 64 bits.
    write_bytes(plain, concat(idx_header(0x0E, {0xffffffff, 0xffffffff, 0xffffffff}), {1, 2, 3}));
    CHECK_THAT(idx_error(plain),
               Contains(plain + ": the IDX header's dimensions [4294967295, 4294967295, "
                                "4294967295] of float64 describe more bytes than any file holds"));
    // 10^11 bytes claimed, 12 present: plain files are checked against their size, gzip ones are
    // read incrementally (the buffer grows with the data actually decompressed).
    const Bytes huge = concat(idx_header(0x08, {100000, 100000, 10}), noise_bytes(12, 2));
    write_bytes(plain, huge);
    CHECK_THAT(idx_error(plain),
               Contains(plain + ": truncated: expected 100000000000 bytes of data, found 12"));
    write_gzip(gz, huge);
    CHECK_THAT(idx_error(gz), Contains(gz + ": truncated: expected 100000000000 bytes of data, found 12"));
  }
  SECTION("from memory and missing files") {
    const Bytes cut(file.begin(), file.begin() + 100);
    CHECK_THROWS_MATCHES(parse_idx(std::as_bytes(std::span(cut)), "mem.idx"), FormatError,
                         What(Contains("mem.idx: truncated: expected 4000 bytes of data, found 88")));
    CHECK_THROWS_MATCHES(read_idx(dir / "nope.idx"), IOError,
                         What(Contains(dir / "nope.idx") && Contains("No such file or directory")));
  }
}

TEST_CASE("data: mnist loader reads an MNIST-layout directory, gzip or plain") {
  const gg::test::TempDir dir("test_data");
  // Three 2x3 "images" and their labels, in the train (gzip) and t10k (plain) files.
  const Bytes pixels{0, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 255, 1, 2, 3, 4, 5, 6};
  write_gzip(dir / "train-images-idx3-ubyte.gz", concat(idx_header(0x08, {3, 2, 3}), pixels));
  write_gzip(dir / "train-labels-idx1-ubyte.gz", concat(idx_header(0x08, {3}), {9, 0, 4}));
  write_bytes(dir / "t10k-images-idx3-ubyte",
              concat(idx_header(0x08, {1, 2, 3}), {0, 0, 0, 255, 255, 255}));
  write_bytes(dir / "t10k-labels-idx1-ubyte", concat(idx_header(0x08, {1}), {1}));

  const Dataset train = load_fashion_mnist(dir.path.string(), true);
  CHECK(train.x.shape() == Shape{3, 6});
  CHECK(train.x.dtype() == f64);
  check_values(kernel::slice(train.x, 0, 0, 1), {0, 0.2, 0.4, 0.6, 0.8, 1.0});
  check_values(train.y, {9, 0, 4});
  CHECK(train.num_classes == 10);
  CHECK(train.class_names.size() == 10);
  CHECK(train.class_names[9] == "Ankle boot");

  const Dataset test = load_mnist(dir.path.string(), false, f32);
  CHECK(test.x.shape() == Shape{1, 6});
  CHECK(test.x.dtype() == f32);
  check_values(test.x, {0, 0, 0, 1, 1, 1});
  CHECK(test.num_classes == 2);
  CHECK(test.class_names.empty());

  check_values(scale_pixels(Tensor({0, 255, 51}, {3})), {0, 1, 0.2});

  write_bytes(dir / "t10k-labels-idx1-ubyte", concat(idx_header(0x08, {2}), {1, 2}));
  CHECK_THROWS_MATCHES(load_mnist(dir.path.string(), false), FormatError,
                       What(Contains("1 images but 2 labels")));
  write_bytes(dir / "t10k-labels-idx1-ubyte", concat(idx_header(0x0C, {1}), {0, 0, 0, 1}));
  CHECK_THROWS_MATCHES(load_mnist(dir.path.string(), false), FormatError,
                       What(Contains("expected labels as 1-d unsigned bytes, found [1] of int32")));
  CHECK_THROWS_MATCHES(load_fashion_mnist(dir / "missing"), IOError,
                       What(Contains("train-labels-idx1-ubyte.gz") && Contains("No such file or directory") &&
                            Contains("dataset-fashion-mnist")));
}

TEST_CASE("data: load_idx_dataset takes examples of any shape and integer labels of any width") {
  const gg::test::TempDir dir("test_data");
  // Two examples of 2x1x2 int16 values (kept as they are, not scaled) and int32 labels 0 and 4.
  write_bytes(dir / "x.idx",
              concat(idx_header(0x0B, {2, 2, 1, 2}), {0, 1, 0, 2, 0, 3, 1, 0, 0, 5, 0, 6, 0, 7, 0, 8}));
  write_bytes(dir / "y.idx", concat(idx_header(0x0C, {2}), {0, 0, 0, 0, 0, 0, 0, 4}));
  const Dataset d = load_idx_dataset(dir / "x.idx", (dir / "y.idx"), f32);
  CHECK(d.x.shape() == Shape{2, 4});
  CHECK(d.x.dtype() == f32);
  check_values(d.x, {1, 2, 3, 256, 5, 6, 7, 8});
  check_values(d.y, {0, 4});
  CHECK(d.num_classes == 5);
  // Unsigned-byte examples are pixels: scaled to [0, 1].
  write_bytes(dir / "px.idx", concat(idx_header(0x08, {2, 1}), {255, 51}));
  check_values(load_idx_dataset(dir / "px.idx", (dir / "y.idx")).x, {1, 0.2});
  const Tensor px32 = load_idx_dataset(dir / "px.idx", (dir / "y.idx"), f32).x; // scaled in float
  CHECK(px32.data<float>()[0] == 1.0f);
  CHECK(px32.data<float>()[1] == 51.0f / 255.0f);
  // Float labels, negative labels and no labels are not class ids.
  write_bytes(dir / "yf.idx", concat(idx_header(0x0D, {2}), {0, 0, 0, 0, 0, 0, 0, 0}));
  CHECK_THROWS_MATCHES(
      load_idx_dataset(dir / "px.idx", (dir / "yf.idx")), FormatError,
      What(Contains("yf.idx: expected class ids as a 1-d array of integers, found [2] of float32")));
  write_bytes(dir / "yn.idx", concat(idx_header(0x09, {2}), {0, 0xff}));
  CHECK_THROWS_MATCHES(load_idx_dataset(dir / "px.idx", (dir / "yn.idx")), FormatError,
                       What(Contains("yn.idx: label -1 of entry 1 is not a class id")));
  write_bytes(dir / "y0.idx", idx_header(0x08, {0}));
  CHECK_THROWS_MATCHES(load_idx_dataset(dir / "px.idx", (dir / "y0.idx")), FormatError,
                       What(Contains("y0.idx: no labels")));
}

// ---------------------------------------------------------------------------------------------
// DataLoader, split, Standardizer

TEST_CASE("data: dataloader yields row-aligned batches, sizes and drop_last") {
  const Tensor x = Tensor::arange(0, 10).reshape({10, 1});
  const Tensor y = Tensor::arange(0, 100, 10);
  DataLoader loader(x, y, {.batch_size = 3});
  CHECK(loader.size() == 4);
  CHECK(loader.num_samples() == 10);
  std::vector<std::vector<double>> xs, ys;
  for (const Batch& b : loader) {
    xs.push_back(b.x.to_vector());
    ys.push_back(b.y.to_vector());
    CHECK(b.x.rank() == 2);
  }
  CHECK(xs == std::vector<std::vector<double>>{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}});
  CHECK(ys == std::vector<std::vector<double>>{{0, 10, 20}, {30, 40, 50}, {60, 70, 80}, {90}});

  DataLoader dropping(x, y, {.batch_size = 3, .drop_last = true});
  CHECK(dropping.size() == 3);
  std::int64_t count = 0;
  for (const Batch& b : dropping) {
    CHECK(b.x.shape()[0] == 3);
    ++count;
  }
  CHECK(count == 3);
  CHECK(DataLoader(x, y, {.batch_size = 5, .drop_last = true}).size() == 2);
  CHECK(DataLoader(x, y, {.batch_size = 20}).size() == 1);
  CHECK(DataLoader(x, y, {.batch_size = 20, .drop_last = true}).size() == 0);

  // Images keep their trailing dimensions; a loader without targets gives undefined y.
  DataLoader images(Tensor::zeros(Shape{5, 1, 2, 2}), {.batch_size = 2});
  auto it = images.begin();
  CHECK(it->x.shape() == Shape{2, 1, 2, 2});
  CHECK_FALSE(it->y.defined());

  CHECK_THROWS_MATCHES(DataLoader(x, y, {.batch_size = 0}), ValueError,
                       What(Contains("batch_size must be positive, got 0")));
  CHECK_THROWS_MATCHES(DataLoader(x, Tensor::zeros(Shape{9})), ShapeError,
                       What(Contains("x has 10 rows (shape [10, 1]) but y has 9")));
}

TEST_CASE("data: dataloader shuffles with Fisher-Yates, anew each epoch, reproducibly") {
  const Tensor x = Tensor::arange(0, 10).reshape({10, 1});
  const Tensor y = Tensor::arange(0, 100, 10);
  auto epoch_order = [](DataLoader& loader) {
    std::vector<double> order;
    for (const Batch& b : loader) {
      const auto bx = b.x.to_vector(), by = b.y.to_vector();
      for (std::size_t i = 0; i < bx.size(); ++i) CHECK(by[i] == 10 * bx[i]); // rows stay paired
      order.insert(order.end(), bx.begin(), bx.end());
    }
    return order;
  };
  DataLoader a(x, y, {.batch_size = 4, .shuffle = true, .seed = 7});
  DataLoader b(x, y, {.batch_size = 4, .shuffle = true, .seed = 7});
  DataLoader c(x, y, {.batch_size = 4, .shuffle = true, .seed = 8});
  const auto a1 = epoch_order(a), a2 = epoch_order(a);
  CHECK(a.epoch() == 2);
  CHECK(epoch_order(b) == a1);
  CHECK(epoch_order(b) == a2);
  CHECK(a1 != a2);
  CHECK(epoch_order(c) != a1);
  for (const auto& order : {a1, a2}) {
    std::vector<double> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == Tensor::arange(0, 10).to_vector());
  }
  // The first epoch's order is Fisher–Yates (from the end, j = below(i + 1)) on a fresh Rng(seed).
  Rng rng(7);
  std::vector<double> expected = Tensor::arange(0, 10).to_vector();
  for (std::size_t i = expected.size() - 1; i > 0; --i) std::swap(expected[i], expected[rng.below(i + 1)]);
  CHECK(a1 == expected);
  Rng rng2(7);
  const std::vector<std::int64_t> p = permutation(10, rng2);
  CHECK(std::vector<double>(p.begin(), p.end()) == expected);
}

TEST_CASE("data: dataloader shards each batch across data-parallel ranks, together the one-process batch") {
  const Tensor x = Tensor::arange(0, 11).reshape({11, 1});
  const Tensor y = Tensor::arange(0, 110, 10);
  for (const int world : {1, 2, 3, 4, 5}) {
    DataLoader whole(x, y, {.batch_size = 4, .shuffle = true, .seed = 3});
    std::vector<DataLoader> ranks;
    for (int r = 0; r < world; ++r)
      ranks.emplace_back(
          x, y,
          DataLoaderOptions{.batch_size = 4, .shuffle = true, .seed = 3, .rank = r, .world_size = world});
    for (int epoch = 0; epoch < 2; ++epoch) {
      std::vector<std::vector<double>> together(3);
      std::vector<std::int64_t> global_rows;
      for (DataLoader& loader : ranks) {
        CHECK(loader.size() == 3);
        std::size_t i = 0;
        for (const Batch& b : loader) {
          const auto bx = b.x.to_vector(), by = b.y.to_vector();
          for (std::size_t k = 0; k < bx.size(); ++k) CHECK(by[k] == 10 * bx[k]);
          together[i].insert(together[i].end(), bx.begin(), bx.end());
          if (&loader == &ranks.front()) global_rows.push_back(b.global_rows);
          ++i;
        }
      }
      std::vector<std::vector<double>> expected;
      for (const Batch& b : whole) expected.push_back(b.x.to_vector());
      CHECK(together == expected); // the ranks' shares in rank order are the batch, row for row
      CHECK(global_rows == std::vector<std::int64_t>{4, 4, 3});
    }
  }
  // The last batch of 3 rows over 4 ranks: one rank gets none (a zero share of the mean gradient).
  DataLoader r0(x, y, {.batch_size = 4, .rank = 0, .world_size = 4});
  CHECK(r0.batch(2).x.shape() == Shape{0, 1});
  CHECK(r0.batch(2).global_rows == 3);
  CHECK_THROWS_MATCHES(DataLoader(x, y, {.batch_size = 4, .rank = 2, .world_size = 2}), ValueError,
                       What(Contains("rank 2 is not one of the 2 ranks of world_size (0 to 1)")));
}

TEST_CASE("data: train_test_split takes ceil of the test fraction, disjoint and reproducible") {
  const Tensor x = Tensor::arange(0, 20).reshape({10, 2});
  const Tensor y = Tensor::arange(0, 10);
  const Split s = train_test_split(x, y, 0.25, 3);
  CHECK(s.x_train.shape() == Shape{7, 2});
  CHECK(s.y_train.shape() == Shape{7});
  CHECK(s.x_test.shape() == Shape{3, 2});
  CHECK(s.y_test.shape() == Shape{3});
  std::set<double> seen;
  for (const auto& [xs, ys] : {std::pair{s.x_train, s.y_train}, std::pair{s.x_test, s.y_test}})
    for (std::int64_t i = 0; i < ys.numel(); ++i) {
      CHECK(xs.flat(2 * i) == 2 * ys.flat(i)); // x and y rows stay paired
      seen.insert(ys.flat(i));
    }
  CHECK(seen.size() == 10);
  const Split again = train_test_split(x, y, 0.25, 3);
  CHECK(again.y_test.to_vector() == s.y_test.to_vector());
  CHECK(train_test_split(x, y, 0.25, 4).y_train.to_vector() != s.y_train.to_vector());
  CHECK(train_test_split(x, y, 0.01).y_test.numel() == 1);
  CHECK_THROWS_MATCHES(train_test_split(x, y, 0.0), ValueError,
                       What(Contains("test_fraction must be in (0, 1), got 0")));
  CHECK_THROWS_MATCHES(train_test_split(x, y, 1.0), ValueError, What(Contains("test_fraction")));
  CHECK_THROWS_MATCHES(train_test_split(x, y, 0.95), ValueError,
                       What(Contains("leave 0 for training and 10 for testing")));
  CHECK_THROWS_AS(train_test_split(x, Tensor::arange(0, 9), 0.5), ShapeError);
}

TEST_CASE("data: standardizer uses the population std, leaves constant columns unscaled, round-trips") {
  const Tensor x({1, 10, 5, 2, 20, 5, 3, 30, 5, 4, 40, 5}, {4, 3});
  Standardizer s;
  CHECK_FALSE(s.fitted());
  CHECK_THROWS_AS(s.transform(x), UsageError);
  const Tensor z = s.fit_transform(x);
  check_values(s.mean(), {2.5, 25, 5});
  check_values(s.std(), {std::sqrt(1.25), std::sqrt(125.0), 1});
  // numpy: (x - x.mean(0)) / x.std(0) with ddof 0
  const double a = 1.5 / std::sqrt(1.25), b = 0.5 / std::sqrt(1.25);
  check_values(z, {-a, -a, 0, -b, -b, 0, b, b, 0, a, a, 0});
  check_values(s.inverse_transform(z), x.to_vector());
  // float32 data stays float32; a single row [d] works too.
  const Tensor z32 = s.transform(x.to(f32));
  CHECK(z32.dtype() == f32);
  CHECK(z32.flat(0) == Approx(-a).epsilon(1e-6));
  check_values(s.transform(Tensor({2.5, 25, 6}, {3})), {0, 0, 1});
  // Save and restore.
  Standardizer restored;
  restored.load_state_dict(s.state_dict());
  check_values(restored.transform(x), z.to_vector());
  check_values(Standardizer(s.mean(), s.std()).transform(x), z.to_vector());
  CHECK_THROWS_MATCHES(restored.load_state_dict({{"mean", s.mean()}}), ValueError,
                       What(Contains("'std' is missing")));
  CHECK_THROWS_MATCHES(Standardizer(s.mean(), Tensor({1, 0, 1}, {3})), ValueError,
                       What(Contains("std[1] = 0 must be positive")));
  CHECK_THROWS_MATCHES(s.transform(Tensor::zeros(Shape{2, 2})), ShapeError,
                       What(Contains("expected data with 3 columns, got shape [2, 2]")));
  CHECK_THROWS_AS(Standardizer().fit(Tensor::zeros(Shape{3})), ShapeError);
  CHECK_THROWS_AS(Standardizer().fit(Tensor::zeros(Shape{0, 3})), ValueError);
}

// ---------------------------------------------------------------------------------------------
// Synthetic datasets

TEST_CASE("data: triangle labels are the point-in-triangle test, about 28 percent inside") {
  const Dataset ds = triangle(4000, 1);
  CHECK(ds.x.shape() == Shape{4000, 2});
  CHECK(ds.num_classes == 2);
  std::int64_t inside = 0;
  for (std::int64_t i = 0; i < 4000; ++i) {
    const double px = ds.x.flat(2 * i), py = ds.x.flat(2 * i + 1);
    CHECK((px >= -1 && px < 1 && py >= -1 && py < 1));
    // Barycentric check, independent of the library's edge test.
    const double l1 =
        ((-0.6 - 0.8) * (px - 0.0) + (0.0 - 0.8) * (py - 0.8)) / ((-0.6 - 0.8) * (-0.8) + (-0.8) * (-1.4));
    const double l2 =
        ((0.8 + 0.6) * (px - 0.0) + (-0.8 - 0.0) * (py - 0.8)) / ((-0.6 - 0.8) * (-0.8) + (-0.8) * (-1.4));
    const bool expected = l1 >= 0 && l2 >= 0 && 1 - l1 - l2 >= 0;
    CHECK(ds.y.flat(i) == (expected ? 1 : 0));
    inside += ds.y.flat(i) == 1;
  }
  // Triangle area 1.12 of the square's 4: 28%.
  CHECK(static_cast<double>(inside) / 4000 == Approx(0.28).margin(0.03));
  CHECK(in_triangle(0, 0));
  CHECK_FALSE(in_triangle(0.7, 0.5));
  CHECK(triangle(50, 1).x.to_vector() == triangle(50, 1).x.to_vector());
  CHECK(triangle(50, 2).x.to_vector() != triangle(50, 1).x.to_vector());
  CHECK_THROWS_MATCHES(triangle(-1), ValueError,
                       What(Contains("triangle: n must be in [0, 100000000], got -1")));
  CHECK_THROWS_AS(triangle(1'000'000'000'000), ValueError);
  CHECK(triangle(0).x.shape() == Shape{0, 2});
}

TEST_CASE("data: xor is the truth table without noise and balanced quadrants with it") {
  const Dataset table = xor_dataset(4, 0.0, 0);
  check_values(table.x, {0, 0, 0, 1, 1, 0, 1, 1});
  check_values(table.y, {0, 1, 1, 0});
  const Dataset ds = xor_dataset(400, 0.1, 3);
  std::int64_t ones = 0;
  for (std::int64_t i = 0; i < 400; ++i) {
    const bool a = ds.x.flat(2 * i) > 0.5, b = ds.x.flat(2 * i + 1) > 0.5;
    CHECK(ds.y.flat(i) == (a != b ? 1 : 0));
    ones += ds.y.flat(i) == 1;
  }
  CHECK(ones == 200);
  CHECK_THROWS_MATCHES(xor_dataset(4, -0.1, 0), ValueError, What(Contains("noise must be")));
}

TEST_CASE("data: two moons and circles lie on their curves, balanced and shuffled as sklearn's") {
  const Dataset moons = two_moons(101, 0.0, 2);
  CHECK(moons.x.shape() == Shape{101, 2});
  std::int64_t zeros = 0;
  for (std::int64_t i = 0; i < 101; ++i) {
    const double px = moons.x.flat(2 * i), py = moons.x.flat(2 * i + 1);
    if (moons.y.flat(i) == 0) {
      ++zeros;
      CHECK(std::hypot(px, py) == Approx(1).margin(1e-12));
      CHECK(py >= -1e-12);
    } else {
      CHECK(std::hypot(px - 1, py - 0.5) == Approx(1).margin(1e-12));
      CHECK(py <= 0.5 + 1e-12);
    }
  }
  CHECK(zeros == 50); // n // 2 outer points, as sklearn
  std::vector<double> labels = moons.y.to_vector();
  CHECK_FALSE(std::is_sorted(labels.begin(), labels.end()));
  const Dataset noisy = two_moons(200, 0.1, 5);
  CHECK(noisy.x.to_vector() == two_moons(200, 0.1, 5).x.to_vector());
  CHECK(noisy.x.to_vector() != two_moons(200, 0.1, 6).x.to_vector());

  const Dataset c = circles(100, 0.0, 0.5, 1);
  zeros = 0;
  for (std::int64_t i = 0; i < 100; ++i) {
    const double r = std::hypot(c.x.flat(2 * i), c.x.flat(2 * i + 1));
    const bool outer = c.y.flat(i) == 0;
    zeros += outer;
    CHECK(r == Approx(outer ? 1.0 : 0.5).margin(1e-12));
  }
  CHECK(zeros == 50);
  CHECK_THROWS_MATCHES(circles(10, 0.0, 1.0), ValueError, What(Contains("factor must be in [0, 1), got 1")));
}

TEST_CASE("data: spiral has the cs231n layout and radii linspace(0, 1)") {
  const Dataset ds = spiral(100, 3, 0.2, 0);
  CHECK(ds.x.shape() == Shape{300, 2});
  CHECK(ds.num_classes == 3);
  for (std::int64_t j = 0; j < 3; ++j)
    for (std::int64_t i = 0; i < 100; ++i) {
      const std::int64_t row = j * 100 + i;
      CHECK(ds.y.flat(row) == j);
      const double r = std::hypot(ds.x.flat(2 * row), ds.x.flat(2 * row + 1));
      CHECK(r == Approx(static_cast<double>(i) / 99).margin(1e-12));
      CHECK((r >= 0 && r <= 1 + 1e-12));
    }
  // Without noise, the angle is exactly linspace(4j, 4(j+1)): x = r sin t, y = r cos t.
  const Dataset exact = spiral(5, 2, 0.0, 0);
  const double t = 4.0 + 4.0 * 3 / 4, r = 0.75;
  CHECK(exact.x.flat(2 * 8) == Approx(r * std::sin(t)).margin(1e-12));
  CHECK(exact.x.flat(2 * 8 + 1) == Approx(r * std::cos(t)).margin(1e-12));
  CHECK(spiral(1, 2).x.shape() == Shape{2, 2});
  CHECK_THROWS_AS(spiral(10, 0), ValueError);
}

// ---------------------------------------------------------------------------------------------
// Metrics

TEST_CASE("data: accuracy from class ids, logits and one-hot rows") {
  using metrics::accuracy;
  CHECK(accuracy(Tensor({0, 1, 2, 1}, {4}), Tensor({0, 1, 1, 1}, {4})) == 0.75);
  const Tensor logits({2.0, -1.0, 0.1, 0.3, 5.0, 4.0}, {3, 2});
  CHECK(accuracy(logits, Tensor({0, 1, 1}, {3})) == Approx(2.0 / 3));
  CHECK(accuracy(logits, Tensor({1, 0, 0, 1, 0, 1}, {3, 2})) == Approx(2.0 / 3));
  check_values(metrics::class_ids(logits), {0, 1, 0});
  CHECK_THROWS_MATCHES(accuracy(Tensor::zeros(Shape{3, 1}), Tensor({0, 1, 1}, {3})), ShapeError,
                       What(Contains("one column, which is ambiguous")));
  CHECK_THROWS_MATCHES(accuracy(Tensor({0, 1}, {2}), Tensor({0, 1, 1}, {3})), ShapeError,
                       What(Contains("accuracy: 2 predictions (shape [2]) but 3 targets (shape [3])")));
  CHECK_THROWS_AS(accuracy(Tensor::zeros(Shape{0}), Tensor::zeros(Shape{0})), ValueError);
}

TEST_CASE("data: regression metrics equal sklearn's, for one target and the average of several") {
  // sklearn.metrics' documented examples.
  const Tensor t({3, -0.5, 2, 7}, {4}), p({2.5, 0.0, 2, 8}, {4});
  CHECK(metrics::mean_squared_error(p, t) == Approx(0.375));
  CHECK(metrics::mean_absolute_error(p, t) == Approx(0.5));
  CHECK(metrics::r2_score(p, t) == Approx(0.9486081370449679));
  CHECK(metrics::r2_score(p.reshape({4, 1}), t) == Approx(0.9486081370449679)); // a model's [n, 1] output
  const Tensor t2({0.5, 1, -1, 1, 7, -6}, {3, 2}), p2({0, 2, -1, 2, 8, -5}, {3, 2});
  CHECK(metrics::mean_squared_error(p2, t2) == Approx(0.7083333333333334));
  CHECK(metrics::r2_score(p2, t2) == Approx(0.9368005266622779));
  const Tensor constant({1, 1}, {2});
  CHECK(metrics::r2_score(constant, constant) == 1);
  CHECK(metrics::r2_score(Tensor({1, 2}, {2}), constant) == 0);
  CHECK_THROWS_AS(metrics::mean_squared_error(Tensor({1, 2, 3}, {3}), t), ShapeError);
  CHECK_THROWS_AS(metrics::r2_score(Tensor::zeros({0}), Tensor::zeros({0})), ValueError);
}

TEST_CASE("data: confusion matrix counts rows of true classes and prints aligned") {
  const Tensor cm = metrics::confusion_matrix(Tensor({0, 1, 2, 2, 1}, {5}), Tensor({0, 1, 1, 2, 2}, {5}), 3);
  CHECK(cm.shape() == Shape{3, 3});
  check_values(cm, {1, 0, 0, 0, 1, 1, 0, 1, 1});
  CHECK_THROWS_MATCHES(metrics::confusion_matrix(Tensor({0, 1}, {2}), Tensor({0, 3}, {2}), 3), ValueError,
                       What(Contains("targets[1] = 3 is not a class id in [0, 3)")));
  CHECK_THROWS_MATCHES(metrics::confusion_matrix(Tensor({0.5, 1}, {2}), Tensor({0, 1}, {2}), 3), ValueError,
                       What(Contains("predictions[0] = 0.5")));
  CHECK_THROWS_AS(metrics::confusion_matrix(Tensor({0}, {1}), Tensor({0}, {1}), 0), ValueError);

  const Tensor two({5, 1, 0, 0}, {2, 2});
  CHECK(metrics::format_confusion_matrix(two, {"cat", "dog"}) ==
        "true \\ predicted     cat     dog  recall\n"
        "cat                    5       1   0.833\n"
        "dog                    0       0       -\n");
  CHECK_THAT(metrics::format_confusion_matrix(cm),
             Contains("true \\ predicted       0       1       2  recall"));
  CHECK_THROWS_AS(metrics::format_confusion_matrix(cm, {"a"}), ValueError);
}
