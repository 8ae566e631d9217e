// parse_or_help: options parsed, or --help printed (parse_number is in messages.cpp, shared with the
// browser page's engine).
#include "options.hpp"

#include <boost/program_options/parsers.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

namespace gg::cli {

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
