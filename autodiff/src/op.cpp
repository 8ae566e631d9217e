// The tables over op kinds, generated from the op list (GG_OP_LIST): each op's rule, found by its
// kind — an elementwise op's from its row (ops/elementwise.hpp), any other's from its family's file.
#include <array>

#include "ops/elementwise.hpp"
#include "ops/family.hpp"

namespace gg {

namespace detail {
namespace {
/// An op's rule: an elementwise op's from its row, any other's from its family's rule<op>().
template <Op op> const OpRule& rule_entry() {
  if constexpr (is_elementwise<op>)
    return elementwise_rule<op>();
  else
    return rule<op>();
}

constexpr std::array<const OpRule& (*)(), static_cast<std::size_t>(Op::count_)> k_rules{
#define GG_RULE_ENTRY(name) &rule_entry<Op::name>,
    GG_OP_LIST(GG_RULE_ENTRY)
#undef GG_RULE_ENTRY
};
} // namespace

const OpRule& rule_of(Op op) {
  return k_rules[static_cast<std::size_t>(op)]();
}
} // namespace detail

const OpInfo& op_info(Op op) {
  return detail::rule_of(op).info;
}

} // namespace gg
