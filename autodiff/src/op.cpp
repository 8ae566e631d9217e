// The tables over op kinds, generated from the op list (GG_OP_LIST): each op's rule, defined in its
// family's file (autodiff/src/ops/), found by its kind.
#include <array>

#include "ops/family.hpp"

namespace gg {

namespace detail {
namespace {
constexpr std::array<const OpRule& (*)(), static_cast<std::size_t>(Op::count_)> k_rules{
#define GG_RULE_ENTRY(name) &rule<Op::name>,
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
