// libFuzzer target for permessage-deflate negotiation (protocol/deflate_offer.h). Input: a
// Sec-WebSocket-Extensions value. Checked: no crash or overrun; an accepted offer yields the
// fixed no-context-takeover answer with a legal window that was really offered; the answer is
// itself an acceptable offer with the same window; a valid offer in front always wins.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/deflate_offer.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

constexpr std::string_view kFixed = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  const protocol::DeflateAgreement a = protocol::negotiate_deflate(input);
  if (a.accepted) {
    const std::string_view response = a.response_view();
    require(response.size() <= protocol::kMaxDeflateResponse);
    require(response.substr(0, kFixed.size()) == kFixed);
    require(a.server_max_window_bits >= 8 && a.server_max_window_bits <= 15);
    require(input.find("permessage-deflate") != std::string_view::npos);
    const bool window_answered = response.find("server_max_window_bits=") != std::string_view::npos;
    if (window_answered) require(input.find("server_max_window_bits") != std::string_view::npos);
    if (!window_answered) require(a.server_max_window_bits == 15);
    const protocol::DeflateAgreement again = protocol::negotiate_deflate(response);
    require(again.accepted && again.server_max_window_bits == a.server_max_window_bits);
    require(again.response_view() == response);
  } else {
    require(a.response_length == 0);
  }
  const std::string prefixed = "permessage-deflate, " + std::string(input);
  const protocol::DeflateAgreement first = protocol::negotiate_deflate(prefixed);
  require(first.accepted && first.server_max_window_bits == 15 && first.response_view() == kFixed);
  return 0;
}
