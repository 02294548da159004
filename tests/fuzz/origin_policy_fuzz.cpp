// libFuzzer target for OriginPolicy (chat/origin_policy.h). Input: "<allow list>\n<Origin>".
// Checked: no crash; a parsed list allows each of its own exact entries and a subdomain of each
// wildcard entry; a failed parse leaves the policy alone and says why; without "*", a header
// that is not scheme://host[:port] is never allowed.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "chat/origin_policy.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  const size_t nl = input.find('\n');
  const std::string_view list = input.substr(0, nl);
  const std::string_view origin = nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1);

  static chat::OriginPolicy fixed = [] {
    chat::OriginPolicy p;
    std::string error;
    require(p.parse("https://chat.example.com, https://*.example.org:8443, http://[::1]:3000", error));
    return p;
  }();
  const bool fixed_allows = fixed.allows(origin);
  if (fixed_allows) {
    require(origin.find_first_of("/?#@ ", origin.find("://") + 3) == std::string_view::npos);
  }

  chat::OriginPolicy policy;
  std::string error;
  if (!policy.parse(list, error)) {
    require(!error.empty() && error.find('\n') == std::string::npos);
    require(policy.empty());
    return 0;
  }
  require(error.empty());
  bool any = false;
  std::string_view rest = list;
  while (true) {
    const size_t comma = rest.find(',');
    const std::string_view entry = trim(rest.substr(0, comma));
    if (entry == "*") {
      any = true;
    } else {
      const size_t star = entry.find("://*.");
      if (star == std::string_view::npos) {
        require(policy.allows(entry));
      } else {
        std::string sub(entry.substr(0, star + 3));
        sub += "a";
        sub += entry.substr(star + 4);
        require(policy.allows(sub));
        // The bare domain is not covered (unless another entry covers it).
        if (list.find(',') == std::string_view::npos) {
          require(!policy.allows(std::string(entry.substr(0, star + 3)) +
                                 std::string(entry.substr(star + 5))));
        }
      }
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (any) {
    require(origin.empty() || policy.allows(origin));
  } else if (policy.allows(origin) && !origin.empty()) {
    require(origin.find("://") != std::string_view::npos);
    require(origin.find_first_of("/?#@ ", origin.find("://") + 3) == std::string_view::npos);
  }
  return 0;
}
