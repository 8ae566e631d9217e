// Command-line options as train and eval read them: numbers parsed one way by every subcommand (the
// whole text in decimal, an optional leading '+', a '-' only where the option is signed, the type's
// range, never NaN; Boost's own conversion took "-1" for an unsigned option as 2^64 - 1 and "nan"
// as a number), and --help.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "messages.hpp" // parse_number

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/value_semantic.hpp>
#include <boost/program_options/variables_map.hpp>

namespace gg::cli {

/// A Boost.Program_options value whose text parse_number turns into *target when the options are
/// notified: ("seed", number_value(&seed, "--seed")->default_value("0"), "...").
template <class T>
boost::program_options::typed_value<std::string>* number_value(T* target, const std::string& option) {
  return boost::program_options::value<std::string>()->notifier(
      [target, option](const std::string& text) { *target = parse_number<T>(option, text); });
}

/// Parses args into vm (and desc's variables, notified); for --help, prints `usage`, a blank line and
/// the options instead, and returns false.
bool parse_or_help(const std::vector<std::string>& args,
                   const boost::program_options::options_description& desc, const std::string& usage,
                   std::ostream& out, boost::program_options::variables_map& vm);

} // namespace gg::cli
