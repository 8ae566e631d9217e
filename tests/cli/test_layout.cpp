// Text laid out in a terminal's width (cli/src/layout.hpp): paragraphs, the table layouts from
// aligned columns down to one cell a line, cut words, glued spaces; and explain's output staying
// within 80 columns when it is not printed on a terminal, or within --width.
#include "cli_test.hpp"

#include <cli/src/layout.hpp>

#include <catch2/catch.hpp>

#include <sstream>
#include <string>
#include <vector>

using gg::cli::display_width;
using gg::cli::Layout;

namespace {

std::string table(const std::vector<Layout::Row>& rows, std::size_t width, std::size_t indent = 2) {
  std::ostringstream os;
  Layout(os, width).table(
      [&](const auto& emit) {
        for (const auto& r : rows) emit(r);
      },
      indent);
  return os.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream is(text);
  for (std::string l; std::getline(is, l);) lines.push_back(l);
  return lines;
}

std::size_t widest(const std::string& text) {
  std::size_t w = 0;
  for (const std::string& l : lines_of(text)) w = std::max(w, display_width(l));
  return w;
}

} // namespace

TEST_CASE("layout: a paragraph wraps at word boundaries, at 100 columns at most") {
  std::ostringstream os;
  Layout(os, 20).paragraph("one two three four five six seven eight");
  CHECK(os.str() == "one two three four\nfive six seven eight\n");
  std::ostringstream wide;
  Layout(wide, 0).paragraph(std::string(60, 'a') + " " + std::string(60, 'b'));
  CHECK(wide.str() == std::string(60, 'a') + "\n" + std::string(60, 'b') + "\n");
}

TEST_CASE("layout: a table that fits is aligned columns, without trailing spaces") {
  const std::string t = table({{"x", "= 1", "input"}, {"long name", "= 22", ""}, {"    where a = 1"}}, 80);
  CHECK(t == "  x           = 1    input\n  long name   = 22\n      where a = 1\n");
}

TEST_CASE("layout: when a row is too wide its last cell wraps under itself, phrases whole") {
  const std::string t =
      table({{"a", "b", "df/dx = 1 + 2 = 3   (2 of 2: complete)"}, {"a", "b", "short"}}, 40);
  CHECK(t == "  a   b   df/dx = 1 + 2 = 3\n"
             "          (2 of 2: complete)\n"
             "  a   b   short\n");
  // A phrase longer than a line wraps word by word, under the cell's start.
  const std::string words = table({{"df/dx = 0", "agrees: abs(y) has a kink here (its input is 0)"}}, 40);
  CHECK(words == "  df/dx = 0   agrees: abs(y) has a kink\n"
                 "              here (its input is 0)\n");
}

TEST_CASE("layout: with little room left, the last cell goes below the second column, then each "
          "cell on its own line") {
  const Layout::Row row{"    ∂(log(p))/∂p = 1/p = 1.22313", "-1 × 1.22313 = -1.22313", "dL/dp = -1.22313"};
  CHECK(table({row}, 60) == "      ∂(log(p))/∂p = 1/p = 1.22313   -1 × 1.22313 = -1.22313\n"
                            "                                     dL/dp = -1.22313\n");
  CHECK(table({row}, 30) == "      ∂(log(p))/∂p = 1/p =\n"
                            "          1.22313\n"
                            "          -1 × 1.22313 =\n"
                            "          -1.22313\n"
                            "          dL/dp = -1.22313\n");
}

TEST_CASE("layout: a word too long for any line is cut with an ellipsis, and glued spaces do not "
          "break") {
  const std::string t = table({{std::string(50, 'x')}}, 20, 0);
  CHECK(t == std::string(19, 'x') + "…\n");
  std::ostringstream os;
  Layout(os, 12).paragraph(std::string("where a") + Layout::glue + "=" + Layout::glue + "1, b" +
                           Layout::glue + "=" + Layout::glue + "2");
  CHECK(os.str() == "where a = 1,\nb = 2\n");
}

TEST_CASE("layout: explain's text stays within 80 columns when not on a terminal, or within --width") {
  const std::vector<std::vector<std::string>> runs{
      {"z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x", "x=-4"},
      {"--check", "f = relu(x) + abs(y)", "x=0", "y=0"},
      {"L = -(y0*log(p0) + y1*log(p1) + y2*log(p2))", "y0=1", "y1=0", "y2=0", "p0=0.5", "p1=0.5", "p2=0"},
      {"f = x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x; g = f*f*f*f*f*f*f*f*f*f*f*f*f*f",
       "x=1"},
  };
  for (std::vector<std::string> args : runs) {
    INFO(args.front());
    args.insert(args.begin(), "explain");
    auto r = gg::cli::test::run(args);
    REQUIRE(r.code == 0);
    CHECK(widest(r.out) <= 80);
    args.insert(args.begin() + 1, {"--width", "40"});
    r = gg::cli::test::run(args);
    CHECK(widest(r.out) <= 40);
  }
  // --width 0: no limit, each step on one line.
  const auto r = gg::cli::test::run({"explain", "--width", "0", runs[0][0], "x=-4"});
  CHECK(widest(r.out) > 100);
}
