// parse_number: std::from_chars over the whole text (locale-independent), with the rules options.hpp
// states and messages that name what the option takes; and parse_or_help.
#include "options.hpp"

#include "messages.hpp"

#include <autodiff/error.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include <boost/program_options/parsers.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

namespace gg::cli {

namespace {
/// " (use a dot for decimals: 0.5)" for a number spelled as documents spell it, or "".
std::string hint(const std::string& text) {
  const std::string h = number_hint(text);
  return h.empty() ? h : " (" + h + ")";
}
} // namespace

template <class T> T parse_number(const std::string& option, const std::string& text) {
  std::string_view body = text;
  if (body.size() > 1 && body[0] == '+' && body[1] != '-' && body[1] != '+') body.remove_prefix(1);
  T value{};
  const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value);
  const bool whole = !body.empty() && ec == std::errc() && end == body.data() + body.size();
  if constexpr (std::is_floating_point_v<T>) {
    if (whole && std::isnan(value))
      throw UsageError(fmt::format("{} '{}': NaN is not a value this option takes", option, text));
    if (ec == std::errc::result_out_of_range && end == body.data() + body.size())
      throw UsageError(fmt::format("{} '{}': out of the range of a double", option, text));
    if (!whole) throw UsageError(fmt::format("{} '{}': not a number{}", option, text, hint(text)));
  } else {
    if (!whole && std::is_unsigned_v<T>)
      throw UsageError(fmt::format("{} '{}': not a whole number from 0 to {}", option, text,
                                   std::numeric_limits<T>::max()));
    if (!whole && ec == std::errc::result_out_of_range)
      throw UsageError(fmt::format("{} '{}': out of the range of this option", option, text));
    if (!whole) throw UsageError(fmt::format("{} '{}': not a whole number{}", option, text, hint(text)));
  }
  return value;
}

template int parse_number<int>(const std::string&, const std::string&);
template std::int64_t parse_number<std::int64_t>(const std::string&, const std::string&);
template std::uint64_t parse_number<std::uint64_t>(const std::string&, const std::string&);
template double parse_number<double>(const std::string&, const std::string&);

bool parse_or_help(const std::vector<std::string>& args,
                   const boost::program_options::options_description& desc, const std::string& usage,
                   std::ostream& out, boost::program_options::variables_map& vm) {
  namespace po = boost::program_options;
  po::store(po::command_line_parser(args).options(desc).run(), vm);
  if (vm.count("help")) {
    fmt::print(out, "{}\n\n{}", usage, fmt::streamed(desc));
    return false;
  }
  po::notify(vm);
  return true;
}

} // namespace gg::cli
