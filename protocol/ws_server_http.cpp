// WsServer, HTTP stage: the request head, the upgrade (RFC 6455 4.2.2) and plain responses.
#include <algorithm>
#include <string>
#include <vector>

#include "protocol/close_code.h"
#include "protocol/deflate_offer.h"
#include "protocol/handshake.h"
#include "protocol/ws_connection.h"
#include "protocol/ws_server.h"

namespace protocol {

void WsServer::process_request_head(Connection& c, uint8_t* data, size_t length) {
  std::string_view head(reinterpret_cast<const char*>(data), length);
  HttpRequest request;
  HttpParseStatus status;
  if (c.extra != nullptr && !c.extra->pending.empty()) {
    // Bounded: a head still incomplete at kMaxRequestHead is refused below (431).
    std::vector<uint8_t>& pending = c.extra->pending;
    pending.insert(pending.end(), data, data + length);
    head = std::string_view(reinterpret_cast<const char*>(pending.data()), pending.size());
    // A trickling head costs only its new bytes until the scan sees its end.
    HeadScanStatus scan = scan_request_head(head, c.extra->head_scan);
    if (scan == HeadScanStatus::kNeedMore && head.size() < kMaxRequestHead) return;
    status = scan == HeadScanStatus::kBad ? HttpParseStatus::kBadRequest : parse_http_request(head, request);
  } else {
    // The usual case: the whole head in one read, parsed in one pass.
    status = parse_http_request(head, request);
    if (status == HttpParseStatus::kNeedMore) {
      // Refuse garbage (random bytes, a TLS ClientHello on the plain port) at once rather
      // than after the handshake timeout; keep a plausible prefix and where its check ended.
      HeadScanState scan;
      if (scan_request_head(head, scan) == HeadScanStatus::kBad) {
        status = HttpParseStatus::kBadRequest;
      } else {
        ConnectionExtra* extra = extra_for(c);
        if (extra == nullptr) {
          destroy(c, kCloseInternalError);
          return;
        }
        extra->pending.assign(data, data + length);
        extra->head_scan = scan;
        return;
      }
    }
  }
  switch (status) {
    case HttpParseStatus::kNeedMore:
      // The scan saw the head end where the parser does not: they disagree, so refuse rather
      // than wait (scan_request_head is tested never to do this).
    case HttpParseStatus::kBadRequest:
      ++stats_.bad_requests;
      respond_http(c, 400, "text/plain", "malformed HTTP request\n");
      return;
    case HttpParseStatus::kTooLarge:
      respond_http(c, 431, "text/plain", "request head too large\n");
      return;
    case HttpParseStatus::kBadVersion:
      respond_http(c, 505, "text/plain", "only HTTP/1.1 is supported\n");
      return;
    case HttpParseStatus::kComplete:
      break;
  }
  const Route* route = nullptr;
  for (const Route& r : routes_) {
    if (r.path == request.path) route = &r;
  }
  if (route == nullptr || route->app == nullptr) {
    serve_http(c, request, route);
    return;
  }
  if (memory_nearly_exhausted()) {
    // Near the memory budget a new WebSocket connection would only add to it (issue 13); the
    // plain HTTP routes (/metrics, /healthz) still answer, so the server can be watched there.
    ++stats_.memory_rejected;
    respond_http(c, 503, "text/plain", "server busy: memory budget reached\n", "Retry-After: 5\r\n");
    return;
  }
  if (!is_upgrade_request(request)) {
    respond_http(c, 426, "text/plain", "this path speaks WebSocket only\n",
                 "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    return;
  }
  // Bytes after the head (a client that did not wait for the 101) are frames.
  size_t rest = head.size() - request.head_length;
  std::vector<uint8_t> head_copy;
  uint8_t* rest_data = nullptr;
  if (c.extra != nullptr && !c.extra->pending.empty()) {
    head_copy.swap(c.extra->pending);  // the request's views point into this; keep it alive
    rest_data = head_copy.data() + request.head_length;
  } else {
    rest_data = data + request.head_length;
  }
  upgrade(c, request, *route);
  if (c.state == ConnectionState::kOpen) {
    release_extra_if_idle(c);
    if (rest > 0) process_frames(c, rest_data, rest);
  }
}

void WsServer::upgrade(Connection& c, const HttpRequest& request, const Route& route) {
  UpgradeCheck check = check_upgrade_request(request);
  if (check.status != 101) {
    std::string body = std::string(check.reason) + "\n";
    respond_http(c, check.status, "text/plain", body,
                 check.status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "");
    return;
  }
  ConnectionId id = id_of(c);
  UpgradeVerdict verdict = route.app->on_upgrade(id, request);
  if (find(id) == nullptr) return;
  if (verdict.status != 101) {
    std::string body = std::string(verdict.reason) + "\n";
    respond_http(c, verdict.status, "text/plain", body);
    return;
  }
  // RFC 7692 7.1: an unacceptable or malformed offer declines the extension, never the upgrade.
  const DeflateAgreement deflate = config_.deflate ? negotiate_deflate(request) : DeflateAgreement();
  char response[1024];
  size_t length = write_upgrade_response(response, sizeof response, check.key, verdict.subprotocol,
                                         deflate.response_view());
  if (length == 0) {
    respond_http(c, 500, "text/plain", "upgrade response too large\n");
    return;
  }
  leave_handshake(c);
  c.state = ConnectionState::kOpen;
  c.user_data = verdict.user_data;
  c.route = static_cast<uint8_t>(&route - routes_.data());
  c.flags2 |= kUpgraded;
  if (deflate.accepted) {
    c.flags2 |= kDeflate | PermessageDeflate::window_class(deflate.server_max_window_bits) << kDeflateWindowShift;
  }
  wheel_.cancel(&c.timer);
  start_heartbeat(c);
  ++stats_.upgrades;
  write_bytes(c, reinterpret_cast<const uint8_t*>(response), length, nullptr, 0);
  // Only a connection whose 101 went out is announced, so on_close always follows an on_open.
  if (c.state == ConnectionState::kOpen) {
    c.flags |= kOpenNotified;
    route.app->on_open(id);
  }
}

void WsServer::serve_http(Connection& c, const HttpRequest& request, const Route* route) {
  bool head_only = request.method == "HEAD";
  if (request.method != "GET" && !head_only) {
    respond_http(c, 405, "text/plain", "method not allowed\n", "Allow: GET, HEAD\r\n");
    return;
  }
  if (route == nullptr || !route->handler) {
    respond_http(c, 404, "text/plain", "not found\n");
    return;
  }
  HttpReply reply;
  route->handler(request, reply);
  if (head_only) {
    // RFC 9110 9.3.2: HEAD gets the GET headers (with the body's length) and no body.
    std::string headers = reply.extra_headers;
    respond_http(c, reply.status, reply.content_type, {}, headers);
    return;
  }
  respond_http(c, reply.status, reply.content_type, reply.body, reply.extra_headers);
}

void WsServer::respond_http(Connection& c, int status, std::string_view content_type, std::string_view body,
                            std::string_view extra_headers) {
  std::string response(body.size() + extra_headers.size() + content_type.size() + 256, '\0');
  size_t length = write_http_response(response.data(), response.size(), status, content_type, body, extra_headers);
  ++stats_.http_responses;
  if (refusal_listener_ && status >= 400 && status != 404 && status != 405) refusal_listener_(id_of(c), status, body);
  leave_handshake(c);
  wheel_.cancel(&c.timer);
  // The response is the last thing on this connection: flush, shut down, wait for EOF.
  c.flags |= kCloseSent | kCloseReceived;
  c.state = ConnectionState::kClosing;
  c.close_code = kCloseAbnormal;
  c.timer_purpose = TimerPurpose::kClose;
  wheel_.schedule(&c.timer, config_.close_timeout_ms);
  if (c.extra != nullptr) {
    c.extra->pending.clear();
    c.extra->reader = ReaderState();
  }
  write_bytes(c, reinterpret_cast<const uint8_t*>(response.data()), length, nullptr, 0);
  if (c.state != ConnectionState::kClosed) {
    release_extra_if_idle(c);
    maybe_shutdown(c);
  }
}


}  // namespace protocol
