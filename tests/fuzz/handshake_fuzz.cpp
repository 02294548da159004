// libFuzzer target for the request-head parser and the opening handshake: no crash, no read past
// the input, every view inside the head, and a result that does not depend on where reads split.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "protocol/handshake.h"
#include "protocol/http_request.h"

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

bool inside(std::string_view inner, const char* begin, size_t size) {
  return inner.data() >= begin && inner.data() + inner.size() <= begin + size;
}

bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

void check_complete(const protocol::HttpRequest& r, const char* data, size_t size,
                    size_t max_head) {
  require(r.head_length > 0 && r.head_length <= size && r.head_length <= max_head);
  require(r.header_count <= protocol::kMaxHeaders);
  require(!r.method.empty() && !r.target.empty());
  require(r.version_minor >= 0 && r.version_minor <= 9);
  for (std::string_view v : {r.method, r.target, r.query, r.authority}) {
    require(v.data() == nullptr || inside(v, data, r.head_length));
  }
  // The path is inside the target, or "/" for an absolute-form URI without one.
  require(inside(r.path, r.target.data(), r.target.size()) || (r.path == "/" && !r.authority.empty()));
  require(r.authority.empty() || r.target.find("://") != std::string_view::npos);
  for (size_t i = 0; i < r.header_count; ++i) {
    require(!r.headers[i].name.empty());
    require(inside(r.headers[i].name, data, r.head_length));
    require(inside(r.headers[i].value, data, r.head_length));
    require(!has_line_break(r.headers[i].value));
  }
}

// The incremental scan agrees with the parser: never kBad where the parser could complete, and
// kComplete exactly where the parser first stops asking for more. Scanned in one call and in
// pieces of a few bytes (the state carried across), with the same outcome.
void check_scan(std::string_view input) {
  protocol::HeadScanState whole;
  const protocol::HeadScanStatus at_once = protocol::scan_request_head(input, whole);
  protocol::HeadScanState pieces;
  protocol::HeadScanStatus stepped = protocol::HeadScanStatus::kNeedMore;
  for (size_t end = 0; end < input.size() && stepped == protocol::HeadScanStatus::kNeedMore;) {
    end += 1 + (input[end] & 3);
    if (end > input.size()) end = input.size();
    stepped = protocol::scan_request_head(input.substr(0, end), pieces);
  }
  require(stepped == at_once);
  if (at_once != protocol::HeadScanStatus::kBad) require(pieces.offset == whole.offset);
  static protocol::HttpRequest r;
  const protocol::HttpParseStatus parsed = protocol::parse_http_request(input, r);
  if (at_once == protocol::HeadScanStatus::kBad) require(parsed != protocol::HttpParseStatus::kComplete);
  if (parsed == protocol::HttpParseStatus::kComplete) {
    require(at_once == protocol::HeadScanStatus::kComplete && whole.offset == r.head_length);
  }
  if (at_once == protocol::HeadScanStatus::kComplete && whole.offset <= protocol::kMaxRequestHead) {
    require(protocol::parse_http_request(input.substr(0, whole.offset), r) != protocol::HttpParseStatus::kNeedMore);
    require(protocol::parse_http_request(input.substr(0, whole.offset - 1), r) == protocol::HttpParseStatus::kNeedMore);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  const char* data = reinterpret_cast<const char*>(bytes);
  const std::string_view input(data, size);
  check_scan(input);
  // A small cap as well as the default, so both the 431 path and long heads get exercised.
  for (size_t max_head : {protocol::kMaxRequestHead, size_t{64}}) {
    static protocol::HttpRequest r;
    const protocol::HttpParseStatus status = protocol::parse_http_request(input, r, max_head);
    if (status == protocol::HttpParseStatus::kNeedMore) require(size < max_head);
    // Once decided, a result must not change when more bytes arrive. A trailing byte also
    // moves the parser off its ends-in-a-blank-line shortcut onto the pre-scan path.
    if (status != protocol::HttpParseStatus::kNeedMore) {
      static std::string extended;
      extended.assign(input);
      extended.push_back('x');
      static protocol::HttpRequest more;
      require(protocol::parse_http_request(extended, more, max_head) == status);
      if (status == protocol::HttpParseStatus::kComplete) {
        require(more.head_length == r.head_length && more.header_count == r.header_count);
      }
    }
    if (status != protocol::HttpParseStatus::kComplete) continue;
    check_complete(r, data, size, max_head);

    // The head alone parses the same; one byte less is still waiting for more.
    static protocol::HttpRequest again;
    require(protocol::parse_http_request(input.substr(0, r.head_length), again, max_head) ==
            protocol::HttpParseStatus::kComplete);
    require(again.head_length == r.head_length && again.header_count == r.header_count);
    require(protocol::parse_http_request(input.substr(0, r.head_length - 1), again, max_head) ==
            protocol::HttpParseStatus::kNeedMore);

    const protocol::UpgradeCheck check = protocol::check_upgrade_request(r);
    require(check.status == 101 || check.status == 400 || check.status == 405 ||
            check.status == 426);
    require(check.status == 101 ? check.key.size() == 24 : !check.reason.empty());
    if (check.status == 101) require(protocol::is_upgrade_request(r));

    char out[1024];
    const size_t n = protocol::write_upgrade_response(
        out, sizeof out, r.header("Sec-WebSocket-Key"), check.protocols, check.extensions);
    if (n != 0) require(n <= sizeof out && std::memcmp(out, "HTTP/1.1 101 ", 13) == 0);
    const int status_code = check.status == 101 ? 200 : check.status;
    const size_t m =
        protocol::write_http_response(out, sizeof out, status_code, "text/plain", check.reason);
    require(m > 0 && m <= sizeof out);
  }
  char accept[protocol::kAcceptKeyLength];
  protocol::compute_accept_key(input, accept);
  return 0;
}
